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
import logging
import threading
from collections.abc import Mapping
from typing import Any, ClassVar, NoReturn

import urllib3

from . import _engine, _transport, _v2, _v3_cluster
from . import members as _members
from ._checks import check_max_response_size, check_settings, check_sync_interval
from ._endpoints import Endpoints, discover_srv, format_uri
from ._engine import KeyProtocol
from ._exceptions import (
    EtcdException,
    EtcdInsufficientPermissions,
    EtcdTypeError,
    EtcdValueError,
    raise_for_body,
)
from ._keyspace import KeySpace
from ._result import EtcdResult, decode_v2_answer
from ._v3 import V3Protocol, protocol_for
from ._v3_codec import decode_answer, decode_range_answer, int_field
from ._v3_keyspace import V3KeySpace

__all__ = ["Client"]

#: The largest answer body a client accepts unless told otherwise (256 MiB).
DEFAULT_MAX_RESPONSE_SIZE = 256 * 1024 * 1024

log = logging.getLogger(__name__)


def _raise_for_v3_answer(response: urllib3.BaseHTTPResponse) -> None:
    decode_answer(response.status, response.data)


class Client(KeySpace, _members.Membership):
    """A client of one etcd cluster, speaking the v2 HTTP API.

    :param host: the member to talk to, or with ``allow_reconnect`` a tuple of
        ``(host, port)`` pairs naming several.
    :param port: the member's client port.
    :param srv_domain: find the members from this domain's DNS SRV records.
    :param version_prefix: the API prefix of the keys, members and stats paths.
    :param read_timeout: seconds a request may take; 0 waits forever. The
        limit covers the whole exchange with one member, not each socket
        wait: connecting, the TLS handshake, sending, the headers and the
        body all count against it, so a member that answers a byte at a
        time still ends the call within ``read_timeout`` plus at most one
        second. A watch's wait for its event counts too. With
        ``allow_reconnect``, a call that fails over may use this time once
        per member it tries. A call's own ``timeout`` argument replaces it.
        The rule holds for the client's own transport, including the requests
        it leaves to urllib3; once ``http`` is replaced by a pool manager of
        the caller's (a ``urllib3.ProxyManager``, say), the body still counts
        against the deadline but connecting and the headers get only urllib3's
        timeout for each socket wait, and a test double is not timed at all.
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
        member, after a short backoff; other requests raise the error. With
        ``api="v3"`` the same holds for the gateway's answers.
    :param api: ``"v2"`` speaks etcd's v2 API; ``"v3"`` carries the same calls
        over etcd's v3 JSON gateway, for etcd 3.6 and later, which have no v2
        API (see :doc:`v3`). The two APIs keep separate data.
    :param namespace: with ``api="v3"``, a prefix for every key, such as
        ``"/v2"``, that keeps this client's tree apart from other v3 users.
    :param max_response_size: the largest answer body accepted, in bytes; a
        larger one raises :class:`etcd.EtcdBadResponse` before it is read
        whole, whether or not the server announced its length, and its
        connection is closed. The default, 256 MiB, holds a recursive read of several
        hundred thousand keys; ``None`` accepts any size. A compressed answer
        (which the client never asks for) is refused whatever its size.
    :raises EtcdTypeError: an unknown *api*, or a *namespace* without
        ``api="v3"``, or a *host* given as a URL or as ``"host:port"`` (that
        error is also an :class:`etcd.EtcdConnectionFailed`, which python-etcd
        0.4.5 raised for such a host at the first request).
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

    .. versionadded:: 0.5.0
       *max_response_size*.

    .. versionchanged:: 0.5.0
       ``read_timeout`` bounds the whole exchange rather than each socket wait.
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
    _max_response_size: int | None = DEFAULT_MAX_RESPONSE_SIZE

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
        max_response_size: int | None = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        self._v3 = protocol_for(api, namespace)
        check_max_response_size(max_response_size)
        self._max_response_size = max_response_size
        if self._v3 is not None:
            self._key_protocol = V3KeySpace(self._v3)
        self._srv_resolver = dns_resolver
        check_sync_interval(member_sync_interval)
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
        check_settings(host, port, protocol, read_timeout, per_host_pool_size)
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
    def api(self) -> str:
        """``"v2"`` or ``"v3"``: the etcd API this client speaks.

        .. versionadded:: 0.5.0
        """
        return "v2" if self._v3 is None else "v3"

    @property
    def namespace(self) -> str:
        """With ``api="v3"``, the prefix of every v3 key; ``""`` otherwise.

        .. versionadded:: 0.5.0
        """
        return "" if self._v3 is None else self._v3.layout.namespace

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

        :raises EtcdV2ApiDisabled: the server does not serve the v2 API.
        :raises EtcdException: no member could be asked; the message names
            each member tried and what happened.
        """
        if self._v3 is not None:
            return _v3_cluster.machines(self)
        return _engine.machines(self)

    @property
    def election(self) -> NoReturn:
        """Removed in etcd 2.0."""
        raise NotImplementedError("Election primitives were removed from etcd 2.0")

    def get_lock(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Removed in etcd 2.0; use :class:`etcd.Lock`."""
        raise NotImplementedError("Lock primitives were removed from etcd 2.0")

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

    def api_execute_v3(
        self, endpoint: str, body: Mapping[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """Send one request to etcd's v3 JSON gateway (a client with ``api="v3"`` only).

        Keys and values in *body* are base64, as the gateway expects; the
        namespace is not applied. Failover, TLS and the auth token are handled
        as for every other request. Only requests that can be repeated safely
        (reads) are re-sent to another member.

        :param endpoint: such as ``/v3/kv/range``.
        :param body: the request object.
        :param timeout: seconds; ``None`` is ``read_timeout``, ``0`` none.
        :returns: the decoded answer.
        :raises EtcdTypeError: the client speaks the v2 API.
        :raises EtcdException: the server refused; the class follows the gRPC code.

        .. versionadded:: 0.5.0
        """
        if self._v3 is None:
            raise EtcdTypeError('api_execute_v3() needs a client made with api="v3"')
        if not isinstance(endpoint, str) or not endpoint.startswith("/v3"):
            raise EtcdValueError(f"endpoint must be a path such as /v3/kv/range, not {endpoint!r}")
        idempotent = endpoint in ("/v3/kv/range", "/v3/cluster/member/list")
        return self._v3.send(self, endpoint, body, idempotent=idempotent, timeout=timeout)

    def _v3_send(
        self,
        endpoint: str,
        body: Mapping[str, Any],
        *,
        idempotent: bool,
        timeout: float | None = None,
        ranges: bool = False,
    ) -> dict[str, Any]:
        """Send one request of the v3 protocol: failover, TLS and auth as for v2.

        :param ranges: decode the answer with :func:`decode_range_answer`.
        """
        request = _engine.Request(
            self._MPOST,
            endpoint,
            body,
            timeout,
            json_body=True,
            idempotent=idempotent or _engine.IDEMPOTENT.get(),
            raw=True,
            raise_for_answer=_raise_for_v3_answer,
        )
        decode = decode_range_answer if ranges else decode_answer
        response = self._request(request)
        try:
            answer = decode(response.status, response.data)
        except EtcdInsufficientPermissions as exc:
            # an expired token is renewed once; the request was refused, not applied
            if self._v3 is None or self.username is None or not self._v3.renew_token(exc):
                raise
            response = self._request(request)
            answer = decode(response.status, response.data)
        header = answer.get("header")
        if isinstance(header, Mapping) and header.get("cluster_id"):
            _engine.learn_cluster_id(self, format(int_field(header, "cluster_id"), "x"), response)
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
