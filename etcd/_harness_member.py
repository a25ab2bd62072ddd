"""One etcd server process of :mod:`etcd.testing` (re-exported there as ``EtcdMember``)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import ssl
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import urllib3

from ._harness_binary import (
    EtcdHarnessError,
    _check_binary,
    _child_environment,
    etcd_binary_version,
    find_etcd_binary,
)
from ._harness_process import (
    _KILL_WAIT_SECONDS,
    _LOCALHOST,
    _Poll,
    _read_tail,
    _track_process,
    _untrack_process,
)

#: How long a member that was sent SIGTERM may take before it gets SIGKILL.
_STOP_GRACE_SECONDS = 5.0


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
        self._exit_requested = False
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
    def crashed(self) -> bool:
        """Whether the last process exited although the harness did not stop it.

        ``True`` once a started server died by itself (or was killed from
        outside the harness), until the next :meth:`start`; ``False`` before
        the first start, while it runs and once :meth:`stop` or :meth:`kill`
        ended it. The pytest plugin shows the server log of a failed test only
        for such a member.
        """
        proc = self._proc
        return proc is not None and not self._exit_requested and proc.poll() is not None

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
        self._exit_requested = False
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
        if proc.poll() is None:
            self._exit_requested = True
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
            self._send_kill()
            self._finish(proc)

    def _send_kill(self) -> None:
        """Send SIGKILL and return at once; :meth:`kill` also waits for the exit.

        Sending it to a member that is not running does nothing.
        """
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self._exit_requested = True
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

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

    def is_leader(self, timeout: float = 2.0) -> bool:
        """Whether this member says it is the leader; ``False`` when it does not answer.

        A member serving the v2 API is asked ``GET /v2/stats/self``; one
        without it (``enable_v2=False``) is asked the v3 gateway's
        ``POST /v3/maintenance/status``, whose ``leader`` is then the member's
        own id.

        :param timeout: request timeout in seconds.
        :returns: whether it leads.
        """
        if self.enable_v2:
            stats = self.stats_self(timeout=timeout)
            return stats is not None and stats.get("state") == "StateLeader"
        try:
            response = self._http().request(
                "POST",
                self.client_url + "/v3/maintenance/status",
                body=b"{}",
                headers={"Content-Type": "application/json"},
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                redirect=False,
            )
            status = json.loads(response.data)
        except (urllib3.exceptions.HTTPError, ValueError):
            return False
        if response.status != 200 or not isinstance(status, dict):
            return False
        header = status.get("header")
        own = header.get("member_id") if isinstance(header, dict) else None
        return own is not None and str(status.get("leader")) == str(own)

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
