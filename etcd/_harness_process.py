"""Process bookkeeping, free ports, log tails and the polling clock of :mod:`etcd.testing`."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time

_LOCALHOST = "127.0.0.1"

#: How long to wait for a process to disappear after SIGKILL.
_KILL_WAIT_SECONDS = 10.0

# --------------------------------------------------------------------------
# Process bookkeeping for the atexit fallback

_live_lock = threading.Lock()
_live_processes: dict[int, subprocess.Popen[bytes]] = {}
_live_directories: set[str] = set()
_atexit_registered = False


def _register_atexit() -> None:
    global _atexit_registered
    with _live_lock:
        if not _atexit_registered:
            atexit.register(_reap_everything)
            _atexit_registered = True


def _track_process(proc: subprocess.Popen[bytes]) -> None:
    _register_atexit()
    with _live_lock:
        _live_processes[proc.pid] = proc


def _untrack_process(proc: subprocess.Popen[bytes]) -> None:
    with _live_lock:
        _live_processes.pop(proc.pid, None)


def _track_directory(path: str) -> None:
    _register_atexit()
    with _live_lock:
        _live_directories.add(path)


def _remove_directory(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    with _live_lock:
        _live_directories.discard(path)


def _reap_everything() -> None:
    """Kill every server still running and delete every directory still present."""
    with _live_lock:
        processes = list(_live_processes.values())
        directories = list(_live_directories)
        _live_processes.clear()
        _live_directories.clear()
    for proc in processes:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    for proc in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(_KILL_WAIT_SECONDS)
    for path in directories:
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------
# Small helpers


def _free_ports(count: int) -> list[int]:
    """Ask the kernel for *count* distinct free loopback ports."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((_LOCALHOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _read_tail(path: str, lines: int) -> str:
    """Return the last *lines* lines of the file at *path* ("" if it is missing)."""
    if lines <= 0:
        return ""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            position = handle.tell()
            data = b""
            block = 16384
            while position > 0 and data.count(b"\n") <= lines:
                step = min(block, position)
                position -= step
                handle.seek(position)
                data = handle.read(step) + data
    except FileNotFoundError:
        return ""
    text = data.decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


class _Poll:
    """The clock of a polling loop: a deadline, a growing pause, a growing request timeout.

    Requests start with a short timeout, so that one answer the server holds
    back (``/health`` while a leader is being elected) costs little, and the
    timeout grows each time it is used up, so that a slow machine still gets
    its answers.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self._pause = 0.01
        self._request_timeout = 0.5

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def request_timeout(self) -> float:
        return max(0.05, min(self._request_timeout, self.remaining()))

    def timed(self, elapsed: float) -> None:
        if elapsed >= 0.9 * self._request_timeout:
            self._request_timeout = min(2 * self._request_timeout, 5.0)

    def sleep(self) -> None:
        time.sleep(max(0.0, min(self._pause, self.remaining())))
        self._pause = min(2 * self._pause, 0.2)
