"""Clusters of etcd members for :mod:`etcd.testing`, which re-exports the public names."""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import urllib3

from ._harness_binary import EtcdHarnessError, _check_binary, find_etcd_binary
from ._harness_member import EtcdMember
from ._harness_process import _LOCALHOST, _free_ports, _Poll, _remove_directory, _track_directory

if TYPE_CHECKING:
    from .client import Client


#: Attempts at starting a cluster when a chosen port was taken in between.
_PORT_ATTEMPTS = 4


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
        if self.size > 1:
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
                    member._send_kill()
                for member in members:
                    member.kill()
        finally:
            if self.base_dir is not None:
                _remove_directory(self.base_dir)
            self._version = None

    # -- queries

    def leader(self, timeout: float = 10.0) -> EtcdMember:
        """Return the member that says it is the leader (see :meth:`EtcdMember.is_leader`).

        It asks ``/v2/stats/self``, or the v3 gateway's maintenance status
        on a cluster started with ``enable_v2=False``.

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
                leads = member.is_leader(timeout=poll.request_timeout())
                poll.timed(time.monotonic() - started)
                if leads:
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
