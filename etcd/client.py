"""``etcd.Client``: the key-space API of etcd v2 over HTTP.

The client is a drop-in replacement for python-etcd 0.4.5's. One instance may
be shared by many threads: the endpoint state is guarded by a lock and every
request keeps its retry state in local variables.

How a call travels:

* ``read``, ``write`` and ``delete`` (and the verbs built on them) check their
  arguments as 0.4.5 did, describe the call once as an immutable
  :class:`~etcd._engine.KeyCall` and hand it to ``self._key_protocol``, whose
  ``execute(client, call)`` returns the result (see
  :class:`~etcd._engine.KeyProtocol`). The default, :mod:`etcd._v2`, makes
  one ``self.api_execute(path, method, params=..., timeout=...)`` call, so the
  seams of compat §10 see every call. (``_protocol`` stays the 0.4.5
  attribute that holds ``"http"`` or ``"https"``.)
* ``api_execute`` and ``api_execute_json`` check their arguments and hand an
  :class:`~etcd._engine.Request` to :func:`etcd._engine.send`, which sends it,
  fails over, backs off and raises the etcd exceptions. A protocol that needs
  several round trips for one call sends each through the same function.
* The member requests go to and the others live in one locked
  :class:`~etcd._endpoints.Endpoints`; ``_base_uri`` and ``_machines_cache``
  are views of it. Membership administration is in :mod:`etcd.members`.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import urllib3

from . import _engine, _transport, _v2, _v3_cluster
from . import members as _members
from ._checks import check_options
from ._endpoints import Endpoints, Member, discover_srv, format_uri
from ._engine import UNSET, KeyCall, KeyProtocol
from ._exceptions import (
    EtcdException,
    EtcdInsufficientPermissions,
    EtcdKeyNotFound,
    EtcdTypeError,
    EtcdValueError,
    EtcdWatcherCleared,
    raise_for_body,
)
from ._result import EtcdResult, decode_v2_answer
from ._v3 import V3KeySpace, V3Protocol
from ._v3_codec import decode_answer

if TYPE_CHECKING:
    from .watch import Watcher

__all__ = ["Client"]

log = logging.getLogger(__name__)


# Keywords of write and delete that are not sent as parameters (compat §4.2).
_WRITE_EXTRAS = frozenset({"timeout", "idempotent", "_endpoint"})
_DELETE_EXTRAS = frozenset({"timeout", "idempotent"})


def _protocol_for(api: Any, namespace: Any) -> V3Protocol | None:
    if api == "v3":
        return V3Protocol(namespace)
    if api != "v2":
        raise EtcdTypeError(f'api must be "v2" or "v3", not {api!r}')
    if namespace != "":
        raise EtcdTypeError('namespace applies only to api="v3"')
    return None


class Client:
    """A client of one etcd cluster, speaking the v2 HTTP API.

    :param host: the member to talk to, or with ``allow_reconnect`` a tuple of
        ``(host, port)`` pairs naming several.
    :param port: the member's client port.
    :param srv_domain: find the members from this domain's DNS SRV records.
    :param version_prefix: the API prefix of the keys, members and stats paths.
    :param read_timeout: seconds to wait for an answer; 0 waits forever.
    :param allow_redirect: follow HTTP redirects.
    :param protocol: ``"http"`` or ``"https"``.
    :param cert: a PEM file with the client certificate and its key, or a
        ``(cert_file, key_file)`` pair.
    :param ca_cert: the CA bundle to verify the servers with; the system's
        trust store when ``None``.
    :param username: the user for HTTP basic authentication.
    :param password: the user's password.
    :param allow_reconnect: fail over to the other members of the cluster.
    :param use_proxies: with ``allow_reconnect``, use exactly the given hosts
        and never ask the cluster for its members.
    :param expected_cluster_id: the id of the cluster to talk to; learned from
        the first answer when ``None``. An answer from another cluster raises
        :class:`etcd.EtcdClusterIdChanged` once, and its id is remembered.
    :param per_host_pool_size: connections kept open to each member.
    :param lock_prefix: the directory that :class:`etcd.Lock` uses.
    :param verify: check the servers' certificates and host names. Turning
        this off is unsafe and logs a warning.
    :param dns_resolver: the :class:`dns.resolver.Resolver` that *srv_domain*
        is looked up with; the system's by default.
    :param member_sync_interval: with ``allow_reconnect``, refresh the member
        list from the cluster (:meth:`sync_members`) when a request comes this
        many seconds after the last refresh; ``None`` refreshes only on failover
        and when asked.
    :param prefer_leader: with ``allow_reconnect``, send requests to the
        leader, found at start and at every :meth:`sync_members`.
    :param failover_on_server_error: with ``allow_reconnect``, a read (or a
        write marked ``idempotent``) that a member answers with a 5xx status
        (no leader, a raft timeout, a failing proxy) is tried on the next
        member, after a short backoff; other requests raise the error.
    :param api: ``"v2"`` speaks etcd's v2 API; ``"v3"`` carries the same calls
        over etcd's v3 JSON gateway, for etcd 3.6 and later, which have no v2
        API (see :doc:`v3`). The two APIs keep separate data.
    :param namespace: with ``api="v3"``, a prefix for every key, such as
        ``"/v2"``, that keeps this client's tree apart from other v3 users.
    :raises EtcdTypeError: an unknown *api*, or a *namespace* without ``api="v3"``.
    :raises EtcdException: a tuple of hosts without ``allow_reconnect``, or
        discovery failed.

    .. note::
       With ``allow_reconnect`` (and without ``use_proxies``) the constructor
       asks the cluster for its members, as python-etcd 0.4.5 did.

    A client is safe to share between threads: the member it talks to, the
    known members and the cluster id are guarded by a lock, and every request
    keeps its own retry state. It is also a context manager that calls
    :meth:`close` on exit.

    .. versionchanged:: 0.5.0
       The keyword-only *verify*, *dns_resolver*, *member_sync_interval*,
       *prefer_leader* and *failover_on_server_error*.

    .. versionadded:: 0.5.0
       *api* and *namespace*.
    """

    _MGET = "GET"
    _MPUT = "PUT"
    _MPOST = "POST"
    _MDELETE = "DELETE"

    # Mutable on purpose: subclasses add their own options to these sets, and
    # the key-space methods consult them at call time.
    _comparison_conditions: ClassVar[set[str]] = {"prevValue", "prevIndex", "prevExist", "refresh"}
    _read_options: ClassVar[set[str]] = {"recursive", "wait", "waitIndex", "sorted", "quorum"}
    _del_conditions: ClassVar[set[str]] = {"prevValue", "prevIndex"}

    http: urllib3.PoolManager = None  # type: ignore[assignment]

    #: What the key-space methods hand their :class:`~etcd._engine.KeyCall` to.
    _key_protocol: KeyProtocol = _v2.PROTOCOL
    # The v3 protocol (spec v3.md) when the client was made with api="v3".
    _v3: V3Protocol | None = None

    def __init__(
        self,
        host: str | tuple[tuple[str, int], ...] = "127.0.0.1",
        port: int = 4001,
        srv_domain: str | None = None,
        version_prefix: str = "/v2",
        read_timeout: float = 60,
        allow_redirect: bool = True,
        protocol: str = "http",
        cert: str | tuple[str, str] | None = None,
        ca_cert: str | None = None,
        username: str | None = None,
        password: str | None = None,
        allow_reconnect: bool = False,
        use_proxies: bool = False,
        expected_cluster_id: str | None = None,
        per_host_pool_size: int = 10,
        lock_prefix: str = "/_locks",
        *,
        verify: bool = True,
        dns_resolver: Any = None,
        member_sync_interval: float | None = None,
        prefer_leader: bool = False,
        failover_on_server_error: bool = True,
        api: str = "v2",
        namespace: str = "",
    ) -> None:
        self._v3 = _protocol_for(api, namespace)
        if self._v3 is not None:
            self._key_protocol = V3KeySpace(self._v3)
        self._srv_resolver = dns_resolver
        if member_sync_interval is not None and (
            isinstance(member_sync_interval, bool)
            or not isinstance(member_sync_interval, (int, float))
            or member_sync_interval <= 0
        ):
            raise EtcdValueError(
                "member_sync_interval must be a positive number of seconds or None, "
                f"not {member_sync_interval!r}"
            )
        self._member_sync_interval = (
            member_sync_interval if allow_reconnect and not use_proxies else None
        )
        self._next_member_sync = 0.0
        self._prefer_leader = prefer_leader
        self._failover_on_server_error = failover_on_server_error
        if srv_domain is not None:
            hosts = self._discover(srv_domain)
            if getattr(self, "_srv_https", False):
                protocol = "https"
            host = hosts if allow_reconnect else hosts[0][0]
            if not allow_reconnect:
                port = hosts[0][1]
        self._check_settings(host, port, protocol, read_timeout, per_host_pool_size)
        if isinstance(host, tuple):
            if not allow_reconnect:
                raise EtcdException(
                    "A list of hosts to connect to was given, but reconnection not allowed?"
                )
            seeds = [format_uri(protocol, h, p) for h, p in host]
        else:
            seeds = [format_uri(protocol, host, port)]
        self._endpoints = Endpoints(seeds, seeds[1:])

        self._protocol = protocol
        self._read_timeout = read_timeout
        self._allow_redirect = allow_redirect
        self._use_proxies = use_proxies
        self._allow_reconnect = allow_reconnect
        self._lock_prefix = lock_prefix
        self.version_prefix = version_prefix
        self.expected_cluster_id = expected_cluster_id

        if (username is None) != (password is None):
            log.warning("Both username and password are needed for authentication; ignoring both")
            username = password = None
        self.username = username
        self.password = password

        self.http = _transport.make_pool_manager(
            per_host_pool_size=per_host_pool_size,
            read_timeout=read_timeout,
            protocol=protocol,
            cert=cert,
            ca_cert=ca_cert,
            verify=verify,
        )
        self._retries = _transport.no_retries(allow_redirect)

        if allow_reconnect:
            if not use_proxies:
                cache = list(seeds)
                cache.extend(uri for uri in self.machines if uri not in cache)
                self._machines_cache = cache
            self._endpoints.learn(self._machines_cache)
            log.debug("Members known at start: %s", self._machines_cache)

        self._version: str | None = None
        self._cluster_version: str | None = None
        self._members: dict[str, dict[str, Any]] = {}
        if allow_reconnect and prefer_leader and not use_proxies:
            self.sync_members()

    def _discover(self, domain: str) -> tuple[tuple[str, int], ...]:
        """Find the members from the DNS SRV records of *domain* (compat §3.3).

        :returns: ``(host, port)`` pairs, in RFC 2782 order.
        :raises EtcdException: no records, or DNS failed.
        """
        https, hosts = discover_srv(domain, self._srv_resolver)
        self._srv_https = https
        return hosts

    @staticmethod
    def _check_settings(
        host: Any, port: Any, protocol: Any, read_timeout: Any, pool_size: Any
    ) -> None:
        if isinstance(host, tuple):
            for pair in host:
                if (
                    not isinstance(pair, tuple)
                    or len(pair) != 2
                    or not isinstance(pair[0], str)
                    or isinstance(pair[1], bool)
                    or not isinstance(pair[1], int)
                ):
                    raise EtcdTypeError(
                        f"host must be a tuple of (host, port) pairs such as "
                        f"(('10.0.0.1', 2379), ('10.0.0.2', 2379)); got {pair!r} in it"
                    )
        elif not isinstance(host, str):
            raise EtcdTypeError(
                f"host must be a string, or a tuple of (host, port) pairs; "
                f"got {type(host).__name__} {host!r}"
            )
        if isinstance(port, bool) or not isinstance(port, int):
            raise EtcdTypeError(f"port must be an int, not {type(port).__name__} {port!r}")
        if not 0 < port < 65536:
            raise EtcdValueError(f"port must be from 1 to 65535, not {port!r}")
        if protocol not in ("http", "https"):
            raise EtcdValueError(f"protocol must be 'http' or 'https', not {protocol!r}")
        if isinstance(read_timeout, bool) or not isinstance(read_timeout, (int, float)):
            raise EtcdTypeError(
                f"read_timeout must be a number of seconds, not {type(read_timeout).__name__}"
            )
        if read_timeout < 0:
            raise EtcdValueError(
                f"read_timeout must be a number of seconds (0 waits forever), not {read_timeout!r}"
            )
        if isinstance(pool_size, bool) or not isinstance(pool_size, int):
            raise EtcdTypeError(f"per_host_pool_size must be an int, not {pool_size!r}")
        if pool_size < 1:
            raise EtcdValueError(
                f"per_host_pool_size must be a positive integer, not {pool_size!r}"
            )

    # ------------------------------------------------------------------
    # Settings

    @property
    def _base_uri(self) -> str:
        """The current member (compat §10): a view of the locked endpoint state."""
        return self._endpoints.base

    @_base_uri.setter
    def _base_uri(self, uri: str) -> None:
        self._endpoints.set_base(uri)

    @property
    def _machines_cache(self) -> list[str]:
        """The other members (compat §10); the library replaces this list, never edits it."""
        return self._endpoints.others

    @_machines_cache.setter
    def _machines_cache(self, uris: list[str]) -> None:
        with self._endpoints.lock:
            self._endpoints.others = list(uris)

    @property
    def _endpoint_lock(self) -> threading.RLock:
        return self._endpoints.lock

    @property
    def base_uri(self) -> str:
        """The URI of the member requests go to."""
        return self._base_uri

    @property
    def host(self) -> str:
        """The host part of :attr:`base_uri` (an IPv6 literal keeps its brackets)."""
        return self._netloc()[0]

    @property
    def port(self) -> int:
        """The port of :attr:`base_uri`."""
        return int(self._netloc()[1])

    def _netloc(self) -> tuple[str, str]:
        netloc = self._base_uri.split("://", 1)[1]
        host, _, port = netloc.rpartition(":")
        return host, port

    @property
    def protocol(self) -> str:
        """``"http"`` or ``"https"``."""
        return self._protocol

    @property
    def read_timeout(self) -> float:
        """The default timeout of a request, in seconds; 0 means none."""
        return self._read_timeout

    @property
    def allow_redirect(self) -> bool:
        """Whether HTTP redirects are followed."""
        return self._allow_redirect

    @property
    def lock_prefix(self) -> str:
        """The directory used by :class:`etcd.Lock`."""
        return self._lock_prefix

    @property
    def key_endpoint(self) -> str:
        """The path prefix of the keys API, ``version_prefix + "/keys"``."""
        return self.version_prefix + "/keys"

    def __repr__(self) -> str:
        auth = f" user={self.username!r} password='***'" if self.username else ""
        return f"<etcd.Client {self._base_uri}{auth}>"

    # ------------------------------------------------------------------
    # Lifecycle

    def close(self) -> None:
        """Close the pooled connections. Idempotent; the client stays usable."""
        if self.http is not None:
            self.http.clear()

    def clone(self, *, per_host_pool_size: int | None = None) -> Client:
        """A new client with the same settings, members and user, and its own connections.

        No network I/O is done. The copy is of the same class, so subclasses
        that override :meth:`api_execute` keep their behaviour.

        :param per_host_pool_size: connections the copy keeps to each member;
            the same as this client's by default.

        .. versionadded:: 0.5.0
        """
        twin = copy.copy(self)
        twin._endpoints = self._endpoints.copy()
        pool_kw = {"num_pools": 10, **self.http.connection_pool_kw}
        if per_host_pool_size is not None:
            pool_kw["maxsize"] = per_host_pool_size
        twin.http = _transport.pool_manager(pool_kw)
        twin._members = {}
        return twin

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Nothing to do: connections are released by close() or by the pool's
        # own finalisers, never by network work during garbage collection.
        pass

    # ------------------------------------------------------------------
    # Cluster information

    @property
    def machines(self) -> list[str]:
        """The client URLs of the cluster's members, from ``/v2/machines``.

        .. note:: Each access is a request.

        :raises EtcdException: no member could be asked.
        """
        if self._v3 is not None:
            return _v3_cluster.machines(self)
        return _engine.machines(self)

    @property
    def members(self) -> dict[str, dict[str, Any]]:
        """The cluster's members by id, each a dict with ``id``, ``name``,
        ``peerURLs`` and ``clientURLs``.

        .. note:: Each access is a request.
        """
        if self._v3 is not None:
            return _v3_cluster.members(self)
        return _members.members(self)

    @property
    def leader(self) -> dict[str, Any]:
        """The member that leads the cluster, as in :attr:`members`.

        .. note:: Each access makes two requests.
        """
        if self._v3 is not None:
            return _v3_cluster.leader(self)
        return _members.leader(self)

    @property
    def stats(self) -> dict[str, Any]:
        """This member's statistics, from ``/v2/stats/self``.

        .. note:: Each access is a request.
        """
        result: dict[str, Any] = (_v3_cluster.get_json if self._v3 else _members.get_json)(
            self, "/stats/self"
        )
        return result

    @property
    def leader_stats(self) -> dict[str, Any]:
        """The leader's view of its followers, from ``/v2/stats/leader``.

        .. note:: Each access is a request. A follower refuses it with
           ``EtcdException("not current leader : None")``.
        """
        result: dict[str, Any] = (_v3_cluster.get_json if self._v3 else _members.get_json)(
            self, "/stats/leader"
        )
        return result

    @property
    def store_stats(self) -> dict[str, Any]:
        """The key store's counters, from ``/v2/stats/store``.

        .. note:: Each access is a request.
        """
        result: dict[str, Any] = (_v3_cluster.get_json if self._v3 else _members.get_json)(
            self, "/stats/store"
        )
        return result

    @property
    def version(self) -> str | None:
        """The etcd server version, fetched once from ``/version``."""
        if not self._version:
            self._set_version_info()
        return self._version

    @property
    def cluster_version(self) -> str | None:
        """The cluster version, fetched once from ``/version``."""
        if not self._cluster_version:
            self._set_version_info()
        return self._cluster_version

    def _set_version_info(self) -> None:
        response = self.api_execute("/version", self._MGET)
        try:
            info = json.loads(response.data)
            self._version = info["etcdserver"]
            self._cluster_version = info["etcdcluster"]
        except (ValueError, KeyError, TypeError) as exc:
            raise EtcdException(
                f"Cannot parse the /version answer: {response.data[:200]!r}"
            ) from exc

    # ------------------------------------------------------------------
    # Membership

    def get_members(self) -> list[Member]:
        """The cluster's members, from ``/v2/members``.

        :raises EtcdV2ApiDisabled: the server does not serve the v2 API.
        :raises EtcdException: the cluster could not be asked.

        .. versionadded:: 0.5.0
        """
        if self._v3 is not None:
            return _v3_cluster.get_members(self)
        return _members.get_members(self)

    def get_leader(self) -> Member:
        """The member that leads the cluster, from ``/v2/members/leader``.

        :raises EtcdException: there is no leader now (an election is going on).

        .. versionadded:: 0.5.0
        """
        if self._v3 is not None:
            return _v3_cluster.get_leader(self)
        return _members.get_leader(self)

    def add_member(self, peer_urls: Sequence[str]) -> Member:
        """Announce a new member to the cluster, before it is started.

        :param peer_urls: the URLs the new member will listen on for its peers.
        :returns: the new member, with its id; its name and client URLs stay
            empty until it has started and joined.
        :raises EtcdException: the cluster refused (a peer URL is in use, say).

        .. versionadded:: 0.5.0
        """
        if self._v3 is not None:
            return _v3_cluster.add_member(self, peer_urls)
        return _members.add_member(self, peer_urls)

    def remove_member(self, member_id: str) -> None:
        """Remove a member from the cluster.

        :raises EtcdKeyNotFound: there is no such member.

        .. versionadded:: 0.5.0
        """
        if self._v3 is not None:
            _v3_cluster.remove_member(self, member_id)
            return
        _members.remove_member(self, member_id)

    def update_member(self, member_id: str, peer_urls: Sequence[str]) -> None:
        """Change the peer URLs of a member.

        :raises EtcdKeyNotFound: there is no such member.

        .. versionadded:: 0.5.0
        """
        if self._v3 is not None:
            _v3_cluster.update_member(self, member_id, peer_urls)
            return
        _members.update_member(self, member_id, peer_urls)

    def sync_members(self) -> list[Member]:
        """Refresh the list of members to fail over to from the cluster itself.

        With ``prefer_leader``, the leader becomes the member requests go to.
        Without ``allow_reconnect``, or with ``use_proxies``, the list of
        members to use is left as it is.

        :returns: the members.

        .. versionadded:: 0.5.0
        """
        return _members.sync_members(self)

    def health(self, timeout: float = 5.0) -> dict[str, bool]:
        """Ask every known member whether it is healthy (``GET /health``).

        A member is healthy when it is part of a cluster that has a leader.

        :param timeout: seconds to wait for each member.
        :returns: each member's URL and whether it answered that it is healthy.

        .. versionadded:: 0.5.0
        """
        return _members.health(self, timeout)

    @property
    def election(self) -> NoReturn:
        """Removed in etcd 2.0."""
        raise NotImplementedError("Election primitives were removed from etcd 2.0")

    def get_lock(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Removed in etcd 2.0; use :class:`etcd.Lock`."""
        raise NotImplementedError("Lock primitives were removed from etcd 2.0")

    # ------------------------------------------------------------------
    # Keys

    def _sanitize_key(self, key: str) -> str:
        """Normalise *key*: one leading slash, no runs of slashes.

        :raises EtcdTypeError: *key* is not a string.
        """
        if not isinstance(key, str):
            raise EtcdTypeError(f"keys must be str, not {type(key).__name__} ({key!r})")
        if "//" in key:
            trailing = key.endswith("/")
            key = "/".join(part for part in key.split("/") if part)
            if trailing and key:
                key += "/"
        if not key.startswith("/"):
            key = "/" + key
        return key

    def _option_names(self) -> set[str]:
        """Every option of the key-space methods, as the option sets say at call time."""
        return self._comparison_conditions | self._read_options | self._del_conditions

    def __contains__(self, key: str) -> bool:
        """``key in client``: whether the key exists."""
        try:
            self.get(key)
        except EtcdKeyNotFound:
            return False
        return True

    def write(
        self,
        key: str,
        value: Any,
        ttl: int | None = None,
        dir: bool = False,
        append: bool = False,
        **kwdargs: Any,
    ) -> EtcdResult:
        """Write a key or create a directory.

        :param key: the key.
        :param value: the value, sent as ``str(value)``; ``None`` sends none.
        :param ttl: seconds until the key expires; ``0`` is sent as is.
        :param dir: create a directory.
        :param append: create an in-order key below *key* (POST).
        :param kwdargs: the conditions ``prevValue``, ``prevIndex``,
            ``prevExist`` and ``refresh``; ``timeout`` in seconds (0: none);
            ``idempotent=True`` lets a failed write be re-sent to another member.
        :returns: the written node; ``newKey`` says whether it was created.
        :raises EtcdCompareFailed: a ``prevValue``/``prevIndex`` condition failed.
        :raises EtcdAlreadyExist: ``prevExist=False`` and the key exists.
        :raises EtcdKeyNotFound: ``prevExist=True`` and the key is missing.
        :raises EtcdNotFile: *key* is a directory.
        :raises EtcdTypeError: an option resembles a condition without being
            one (``prevvalue=``, ``prev_exist=``); nothing was sent. Other
            unknown keywords are ignored, as in python-etcd 0.4.5.

        .. versionchanged:: 0.5.0
           A near-miss of an option name raises :class:`etcd.EtcdTypeError`;
           ``timeout`` and ``idempotent`` are new.
        """
        options = self._comparison_conditions
        if kwdargs and not kwdargs.keys() <= options:
            check_options("write", kwdargs, options | _WRITE_EXTRAS, self._option_names())
        if dir and value:
            raise EtcdException("Cannot create a directory with a value")
        call = KeyCall(
            "write",
            self._sanitize_key(key),
            {name: option for name, option in kwdargs.items() if name in options},
            value=None if value is None else self._value(value),
            ttl=ttl,
            dir=bool(dir),
            append=bool(append),
            timeout=kwdargs.get("timeout", UNSET),
            idempotent=bool(kwdargs.get("idempotent")),
            endpoint=kwdargs.get("_endpoint"),
        )
        return self._key_protocol.execute(self, call)

    @staticmethod
    def _value(value: Any) -> Any:
        if isinstance(value, (bytes, bytearray)):
            try:
                return bytes(value).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise EtcdValueError(
                    "etcd v2 stores text: decode the bytes, or encode binary data "
                    f"(for example with base64) before writing it ({exc})"
                ) from exc
        return value

    def update(self, obj: EtcdResult) -> EtcdResult:
        """Write back an edited result, only if the key has not changed since.

        :param obj: a result from :meth:`read`, with ``value`` or ``ttl`` edited.
        :raises EtcdCompareFailed: the key changed after *obj* was read.
        :raises EtcdRaftInternalError: *obj* is a directory and the server is
            etcd 3.5, which cannot update directories.
        """
        kwdargs: dict[str, Any] = {"prevExist": True}
        if not obj.dir:
            # A directory has no index condition: the server answers "Not a file".
            kwdargs["prevIndex"] = obj.modifiedIndex
        return self.write(obj.key, obj.value, dir=obj.dir, ttl=obj.ttl, **kwdargs)  # type: ignore[arg-type]

    def read(self, key: str, **kwdargs: Any) -> EtcdResult:
        """Read a key or a directory.

        :param key: the key.
        :param kwdargs: ``recursive``, ``sorted``, ``quorum``, ``wait`` and
            ``waitIndex`` (see :meth:`watch`), and ``timeout`` in seconds
            (``None``: the client's ``read_timeout``; 0: none).
        :raises EtcdKeyNotFound: the key does not exist.
        :raises EtcdWatchTimedOut: a ``wait`` saw no change in time.
        :raises EtcdEventIndexCleared: ``waitIndex`` has left the server's history.
        :raises EtcdTypeError: an option resembles a read option without
            being one (``recursve=``); other unknown keywords are ignored.
        """
        options: dict[str, Any] = {}
        if kwdargs:
            allowed = self._read_options
            if not kwdargs.keys() <= allowed:
                check_options("read", kwdargs, allowed | {"timeout"}, self._option_names())
            options = {
                name: value
                for name, value in kwdargs.items()
                if name in allowed and value is not None
            }
        call = KeyCall("read", self._sanitize_key(key), options, timeout=kwdargs.get("timeout"))
        return self._key_protocol.execute(self, call)

    def get(self, key: str) -> EtcdResult:
        """The same as :meth:`read` without options."""
        return self.read(key)

    def delete(
        self,
        key: str,
        recursive: bool | None = None,
        dir: bool | None = None,
        **kwdargs: Any,
    ) -> EtcdResult:
        """Delete a key or a directory.

        :param key: the key.
        :param recursive: delete a directory and everything below it.
        :param dir: delete an empty directory.
        :param kwdargs: the conditions ``prevValue`` and ``prevIndex``;
            ``timeout``; ``idempotent=True`` lets a failed delete be re-sent.
        :returns: the deleted node, with the old one in ``_prev_node``.
        :raises EtcdKeyNotFound: the key does not exist.
        :raises EtcdCompareFailed: a condition failed.
        :raises EtcdDirNotEmpty: a non-recursive delete of a non-empty directory.
        :raises EtcdTypeError: ``prevExist``, which a delete cannot honour, or
            an option that resembles a condition without being one; other
            unknown keywords are ignored.
        """
        options = self._del_conditions
        if kwdargs and not kwdargs.keys() <= options:
            check_options("delete", kwdargs, options | _DELETE_EXTRAS, self._option_names())
        call = KeyCall(
            "delete",
            self._sanitize_key(key),
            {name: option for name, option in kwdargs.items() if name in options},
            dir=dir,
            recursive=recursive,
            timeout=kwdargs.get("timeout", UNSET),
            idempotent=bool(kwdargs.get("idempotent")),
        )
        return self._key_protocol.execute(self, call)

    def pop(
        self, key: str, recursive: bool | None = None, dir: bool | None = None, **kwdargs: Any
    ) -> EtcdResult:
        """Delete a key and return what it held.

        :returns: the deleted node as it was before.
        """
        return self.delete(key, recursive=recursive, dir=dir, **kwdargs)._prev_node

    def set(self, key: str, value: Any, ttl: int | None = None) -> EtcdResult:
        """Write *value* to *key* unconditionally."""
        return self.write(key, value, ttl=ttl)

    def test_and_set(
        self, key: str, value: Any, prev_value: Any, ttl: int | None = None
    ) -> EtcdResult:
        """Write *value* only if the key holds *prev_value* (compare-and-swap).

        :raises EtcdCompareFailed: the key holds another value.
        """
        return self.write(key, value, prevValue=prev_value, ttl=ttl)

    def refresh(self, key: str, ttl: int, **kwdargs: Any) -> EtcdResult:
        """Reset the TTL of an existing key without changing it or waking watchers.

        :raises EtcdKeyNotFound: the key does not exist (it may have expired).
        """
        kwdargs.pop("prevExist", None)
        return self.write(key, None, ttl=ttl, refresh=True, prevExist=True, **kwdargs)

    def watch(
        self,
        key: str,
        index: int | None = None,
        timeout: float | None = None,
        recursive: bool | None = None,
    ) -> EtcdResult:
        """Wait for the next change of *key*, or the first one at *index* or later.

        :param key: the key or directory to watch.
        :param index: the first etcd index to report; falsy means "from now".
        :param timeout: seconds to wait; ``None`` is the client's
            ``read_timeout`` and ``0`` waits forever.
        :param recursive: also report changes below *key* (needed for a directory).
        :returns: the change.
        :raises EtcdWatchTimedOut: nothing changed in time.
        :raises EtcdEventIndexCleared: *index* has left the server's history.
        """
        if index:
            return self.read(key, wait=True, waitIndex=index, timeout=timeout, recursive=recursive)
        return self.read(key, wait=True, timeout=timeout, recursive=recursive)

    def eternal_watch(
        self, key: str, index: int | None = None, recursive: bool | None = None
    ) -> Iterator[EtcdResult]:
        """Yield every change of *key* from *index* on, forever.

        A watch the server dropped (an empty answer, or error 400) is asked
        again from the same index; a connection that died silently is noticed
        by TCP keep-alive and raised as :class:`etcd.EtcdConnectionFailed`.
        :meth:`watcher` also survives that, and a dying member.

        :raises EtcdEventIndexCleared: the next index has left the server's history.
        """
        local_index = index
        while True:
            try:
                response = self.watch(key, index=local_index, timeout=0, recursive=recursive)
            except EtcdWatcherCleared:
                continue  # the server dropped the watch: ask again from the same index
            if response.modifiedIndex is not None:
                local_index = response.modifiedIndex + 1
            yield response

    def watcher(
        self,
        key: str,
        *,
        recursive: bool = False,
        index: int | None = None,
        snapshots: bool = False,
        poll_timeout: float = 30.0,
    ) -> Watcher:
        """Watch *key* for every change, exactly once and in order.

        See :class:`etcd.watch.Watcher` for what it survives and guarantees.

        :param key: the key or directory to watch.
        :param recursive: also report changes below *key*.
        :param index: the first etcd index to report; ``None`` is the next change.
        :param snapshots: yield a :class:`etcd.watch.Snapshot` and go on when the
            server's history has moved past the watcher, instead of raising
            :class:`etcd.EtcdEventIndexCleared`.
        :param poll_timeout: the longest one long poll lasts, in seconds.
        :returns: an iterator of events that is also a context manager.

        .. versionadded:: 0.5.0
        """
        from .watch import Watcher

        return Watcher(
            self,
            key,
            recursive=recursive,
            index=index,
            snapshots=snapshots,
            poll_timeout=poll_timeout,
        )

    # ------------------------------------------------------------------
    # Requests

    def _get_headers(self) -> dict[str, str]:
        """The authorization header, when a user is set."""
        if self._v3 is not None:  # a token from /v3/auth/authenticate
            return self._v3.auth_headers(self, self.username, self.password)
        if self.username is not None and self.password is not None:
            # RFC 7617: UTF-8, which is how etcd stores what its JSON API was given
            token = base64.b64encode(f"{self.username}:{self.password}".encode())
            return {"authorization": "Basic " + token.decode("ascii")}
        return {}

    def api_execute(
        self,
        path: str,
        method: str,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """Send a form-encoded request to the cluster and return the answer.

        :param path: the path below the member's URI, already quoted.
        :param method: ``GET``, ``PUT``, ``POST`` or ``DELETE``.
        :param params: query (GET, DELETE) or form (PUT, POST) fields.
        :param timeout: seconds; ``None`` is ``read_timeout``, ``0`` none.
        :returns: the urllib3 response, status 200 or 201, body loaded.
        :raises EtcdConnectionFailed: no member could be reached.
        :raises EtcdException: the server refused the request.
        """
        if not isinstance(path, str):
            raise EtcdTypeError(f"path must be a string such as '/v2/keys/a', not {path!r}")
        if not path.startswith("/"):
            raise ValueError("Path does not start with /")
        if method not in (self._MGET, self._MPUT, self._MPOST, self._MDELETE):
            raise EtcdException(f"HTTP method {method} not supported")
        return self._request(
            _engine.Request(method, path, params, timeout, idempotent=_engine.IDEMPOTENT.get())
        )

    def api_execute_json(
        self,
        path: str,
        method: str,
        params: Any = None,
        timeout: float | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """Send *params* as a JSON body (used by :mod:`etcd.auth`).

        :returns: the urllib3 response, status 200 or 201, body loaded.
        """
        if not isinstance(path, str):
            raise EtcdTypeError(f"path must be a string such as '/v2/keys/a', not {path!r}")
        if not path.startswith("/"):
            raise ValueError("Path does not start with /")
        return self._request(
            _engine.Request(
                method,
                path,
                params,
                timeout,
                json_body=True,
                idempotent=_engine.IDEMPOTENT.get(),
            )
        )

    def _request(self, request: _engine.Request) -> urllib3.BaseHTTPResponse:
        """Send *request* through the engine, first refreshing the members when due."""
        if self._member_sync_interval is not None and _members.sync_due(self):
            _members.sync_quietly(self)
        return _engine.send(self, request)

    def _v3_send(
        self,
        endpoint: str,
        body: Mapping[str, Any],
        *,
        idempotent: bool,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one request of the v3 protocol: failover, TLS and auth as for v2."""
        request = _engine.Request(
            self._MPOST,
            endpoint,
            body,
            timeout,
            json_body=True,
            idempotent=idempotent or _engine.IDEMPOTENT.get(),
            raw=True,
        )
        response = self._request(request)
        try:
            answer = decode_answer(response.status, response.data)
        except EtcdInsufficientPermissions as exc:
            # an expired token is renewed once; the request was refused, not applied
            if self._v3 is None or self.username is None or not self._v3.renew_token(exc):
                raise
            response = self._request(request)
            answer = decode_answer(response.status, response.data)
        header = answer.get("header")
        if isinstance(header, Mapping) and header.get("cluster_id"):
            _engine.learn_cluster_id(self, format(int(header["cluster_id"]), "x"), response)
        return answer

    def _handle_server_response(
        self, response: urllib3.BaseHTTPResponse
    ) -> urllib3.BaseHTTPResponse:
        """Return a 200 or 201 response; raise the server's error for anything else."""
        if response.status in (200, 201):
            return response
        raise_for_body(response.status, response.data)

    def _next_server(
        self, cause: BaseException | None = None, *, tried: Mapping[str, BaseException] = {}
    ) -> str:
        """Make an untried member the base, or raise when none is left.

        :raises EtcdConnectionFailed: every member failed; the message names each.
        """
        return _engine.next_server(self, cause, tried)

    def _result_from_response(self, response: urllib3.BaseHTTPResponse) -> EtcdResult:
        """Build an :class:`EtcdResult` from a successful response."""
        res = decode_v2_answer(response.data)  # every node's types checked here, once
        try:
            result = EtcdResult(**res)
            if response.status == 201:
                result.newKey = True
            result.parse_headers(response)
        except Exception as exc:
            raise EtcdException(f"Unable to decode server response: {exc!r}") from exc
        return result
