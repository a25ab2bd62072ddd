"""The urllib3 side of the client: pool settings, timeouts and transport errors.

This is the only module that looks inside urllib3's exceptions. Every failure
of a request is sorted into one of three kinds, which decide what the client
may do next (compat §4.7):

* :data:`WATCH_TIMEOUT`: a watch saw nothing before its timeout;
* :data:`NOT_SENT`: the request never reached a server, so it can be sent elsewhere;
* :data:`SENT`: the server may have acted on it, so only an idempotent request
  may be sent again.

TLS failures are also told apart (:func:`explain`), so that the error a user
sees says whether the server's certificate, its host name or the client's
certificate is the problem, and what to change.
"""

from __future__ import annotations

import enum
import http.client
import logging
import re
import socket
import ssl
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import urllib3
import urllib3.exceptions
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from . import _watchdog
from ._exceptions import EtcdTypeError, EtcdValueError

__all__ = [
    "TRANSPORT_ERRORS",
    "EtcdPoolManager",
    "FailureKind",
    "HTTPAnswer",
    "classify",
    "describe",
    "etcd_index_of",
    "explain",
    "failure_message",
    "in_connect",
    "make_pool_manager",
    "no_retries",
    "pool_manager",
    "remember_headers",
    "resolve_timeout",
    "watch_timeout_message",
]

log = logging.getLogger("etcd.client")

#: Everything that can go wrong between us and a server, below HTTP statuses.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)

TimeoutValue = urllib3.Timeout | float | None

#: Headers dropped when a redirect leads to another host, port or scheme.
_SECRET_HEADERS = frozenset({"Authorization", "Proxy-Authorization", "Cookie"})


class HTTPAnswer(Protocol):
    """What the client reads of an answer: urllib3's response or the lean path's."""

    status: int

    @property
    def data(self) -> bytes: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def close(self) -> None: ...


class FailureKind(enum.Enum):
    WATCH_TIMEOUT = "watch timeout"
    NOT_SENT = "not sent"
    SENT = "sent"


def _root(exc: BaseException) -> BaseException:
    """Unwrap urllib3's MaxRetryError to the error that really happened."""
    while isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    return exc


def classify(exc: BaseException, *, watching: bool) -> FailureKind:
    """Sort a transport failure by what the client may do about it.

    A failure counts as "not sent" only when it happened while connecting
    (including the TLS handshake): a TLS error while the answer is read comes
    after the request went out.

    :param exc: an exception from :data:`TRANSPORT_ERRORS`.
    :param watching: the request was a long poll (``wait=true``).
    """
    root = _root(exc)
    if (
        watching
        and isinstance(root, (urllib3.exceptions.ReadTimeoutError, TimeoutError))
        and not in_connect(exc)  # a TLS handshake that timed out is no quiet watch
    ):
        return FailureKind.WATCH_TIMEOUT
    if isinstance(
        root,
        (
            urllib3.exceptions.ConnectTimeoutError,  # NewConnectionError and name errors too
            urllib3.exceptions.ProxyError,
            urllib3.exceptions.LocationParseError,
            ConnectionRefusedError,
        ),
    ) or in_connect(exc):
        return FailureKind.NOT_SENT
    return FailureKind.SENT


def in_connect(exc: BaseException) -> bool:
    """Whether *exc* happened while connecting (TCP or TLS), before anything was sent.

    The client's own connections mark such errors; for a pool manager of the
    caller's, a TLS handshake that timed out is recognised by ssl's message.
    """
    return any(
        cause.__dict__.get(_IN_CONNECT)
        or (isinstance(cause, OSError) and _HANDSHAKE_TIMEOUT in str(cause))
        for cause in _causes(exc)
    )


# What ssl says when a TLS handshake outlives its socket's timeout.
_HANDSHAKE_TIMEOUT = "handshake operation timed out"


def remember_headers(exc: BaseException, headers: Mapping[str, str]) -> None:
    """Keep the headers of a response whose body failed, on the error itself."""
    exc.__dict__["_etcd_headers"] = headers


def etcd_index_of(exc: BaseException) -> int | None:
    """The ``X-Etcd-Index`` of the response whose body failed with *exc*, if any."""
    headers = exc.__dict__.get("_etcd_headers")
    if headers is None:
        return None
    try:
        return int(headers.get("x-etcd-index", ""))
    except ValueError:
        return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """*exc* and every error it wraps: reasons, causes, contexts and exception args."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, urllib3.exceptions.MaxRetryError) and current.reason is not None:
            pending.append(current.reason)
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)


# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH
_NAME_MISMATCH_CODES = {62, 64}
# Alerts a server sends when it wants a client certificate it trusts.
_CLIENT_CERT_REASONS = {
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "TLSV1_ALERT_UNKNOWN_CA",
    "TLSV1_ALERT_ACCESS_DENIED",
}
# What OpenSSL reports when the other side does not speak TLS, or hangs up mid-handshake.
_NOT_TLS_REASONS = {
    "WRONG_VERSION_NUMBER",
    "HTTP_REQUEST",
    "RECORD_LAYER_FAILURE",
    "UNEXPECTED_EOF_WHILE_READING",
    "PACKET_LENGTH_TOO_LONG",
    "UNKNOWN_PROTOCOL",
}


class _Tls(enum.Enum):
    """A recognised TLS failure; the value is the label :func:`describe` adds."""

    SERVER_CERT = "TLS certificate problem: the server's certificate could not be verified"
    HOST_NAME = "TLS certificate problem: the server's certificate is for another host name"
    CLIENT_CERT = "TLS certificate problem: the server refused the client certificate"
    HANDSHAKE = "TLS handshake failed: does this port serve https?"
    NO_ANSWER = "closed without an HTTP answer"
    HUNG_UP = "closed without an answer"


def _scheme_of(exc: BaseException, url: str | None) -> str | None:
    if isinstance(exc, urllib3.exceptions.MaxRetryError):
        scheme = getattr(exc.pool, "scheme", None)
        if isinstance(scheme, str):
            return scheme
    if url is not None and "://" in url:
        return url.split("://", 1)[0]
    return None


def _tls_problem(exc: BaseException, url: str | None = None) -> _Tls | None:
    scheme = _scheme_of(exc, url)
    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            if cause.verify_code in _NAME_MISMATCH_CODES:
                return _Tls.HOST_NAME
            return _Tls.SERVER_CERT
        if type(cause).__name__ == "CertificateError" and isinstance(cause, ValueError):
            # urllib3's own host-name matching (when ssl's is off) has its own class
            return _Tls.HOST_NAME
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            reason = getattr(cause, "reason", None)
            if reason in _CLIENT_CERT_REASONS:
                return _Tls.CLIENT_CERT
            if reason in _NOT_TLS_REASONS or isinstance(
                cause, (ssl.SSLEOFError, ssl.SSLZeroReturnError)
            ):
                return _Tls.HANDSHAKE
    hung_up = any(
        isinstance(cause, (ConnectionResetError, http.client.RemoteDisconnected))
        for cause in causes
    )
    if hung_up and scheme == "https":
        return _Tls.HUNG_UP
    if hung_up and scheme == "http":
        return _Tls.NO_ANSWER
    return None


_ADVICE = {
    _Tls.SERVER_CERT: (
        "This is a TLS certificate problem: the server's certificate could not be verified. "
        "Pass ca_cert= with the CA bundle that signed it (without ca_cert the system trust "
        "store is used). verify=False turns all checking off and lets anyone impersonate "
        "the server."
    ),
    _Tls.HOST_NAME: (
        "This is a TLS certificate problem: the server's certificate is not valid for the "
        "host name or address the client connected to. Connect with a name the certificate "
        "lists, or give the server a certificate that lists this one."
    ),
    _Tls.CLIENT_CERT: (
        "This is a TLS certificate problem: the server refused the client certificate or "
        "wants one. Pass cert= with a client certificate and key signed by a CA the server "
        "trusts (its --trusted-ca-file)."
    ),
    _Tls.HANDSHAKE: (
        "The TLS handshake failed: the server may not serve https on this port (then use "
        "protocol='http'), or it hung up because it wants a client certificate it trusts "
        "(then pass cert=)."
    ),
    _Tls.NO_ANSWER: "If the server serves https on this port, use protocol='https'.",
    _Tls.HUNG_UP: (
        "If that happened while connecting, the server may not serve https on this port "
        "(then use protocol='http'), or it may want a client certificate it trusts (then "
        "pass cert=)."
    ),
}


def _seconds(value: float) -> str:
    return f"{value:g} s"


_TIMEOUT_IN_TEXT = re.compile(r"timeout=([0-9]+(?:\.[0-9]+)?)")
# urllib3 wraps its messages in reprs of its pools and connections
_URLLIB3_NOISE = re.compile(r"<?[\w.]*(?:Pool|Connection)(?:\([^)]*\)| object at 0x[0-9a-f]+>?): ")


def _timeout_of(causes: list[BaseException], timeout: float | None) -> float | None:
    for cause in causes:
        found = _TIMEOUT_IN_TEXT.search(str(cause))
        if found:
            return float(found.group(1))
    return timeout or None


def _timeout_text(causes: list[BaseException], timeout: float | None) -> str:
    seconds = _timeout_of(causes, timeout)
    return f" after {_seconds(seconds)}" if seconds else ""


def _host_of(url: str | None) -> str | None:
    if url is None or "://" not in url:
        return None
    try:
        return urllib3.util.parse_url(url).host
    except urllib3.exceptions.LocationParseError:
        return None


def describe(exc: BaseException, url: str | None = None, timeout: float | None = None) -> str:
    """What went wrong, in a few words, without urllib3's wrapping.

    For example ``"connection refused"``, ``"the name 'etcd.invalid' does not
    resolve"``, ``"timed out after 5 s while connecting"``. TLS failures are
    labelled as such, for the messages that list several members' errors.

    :param exc: an exception from :data:`TRANSPORT_ERRORS`.
    :param url: the URL the request went to, for the host name.
    :param timeout: the timeout in seconds, when the error does not say.
    """
    root = _root(exc)
    causes = list(_causes(exc))
    problem = _tls_problem(exc, url)
    if problem is not None and problem not in (_Tls.NO_ANSWER, _Tls.HUNG_UP):
        detail = next((str(c) for c in causes if isinstance(c, ssl.SSLError)), "")
        return f"{problem.value} ({detail})" if detail else problem.value
    if any(isinstance(c, socket.gaierror) for c in causes) or (
        type(root).__name__ == "NameResolutionError"
    ):
        host = _host_of(url) or getattr(getattr(root, "conn", None), "host", None)
        return f"the name {host!r} does not resolve" if host else "the name does not resolve"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "connection refused"
    if isinstance(root, urllib3.exceptions.ConnectTimeoutError):
        return f"timed out{_timeout_text(causes, timeout)} while connecting"
    if isinstance(root, (urllib3.exceptions.ReadTimeoutError, TimeoutError)):
        return f"timed out{_timeout_text(causes, timeout)} waiting for the answer"
    if any(isinstance(c, http.client.RemoteDisconnected) for c in causes):
        return "the server closed the connection without an answer"
    if any(isinstance(c, ConnectionResetError) for c in causes):
        return "the connection was reset"
    for cause in causes:
        if isinstance(cause, (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead)):
            partial = cause.partial
            got = len(partial) if isinstance(partial, (bytes, bytearray)) else partial
            return f"the answer was cut off after {got} bytes, {cause.expected} more expected"
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror[:1].lower() + cause.strerror[1:]
    text = _URLLIB3_NOISE.sub("", str(root)).strip()
    return f"{type(root).__name__}: {text}" if text else type(root).__name__


#: python-etcd 0.4.5's default port; etcd 3 listens on 2379.
_LEGACY_PORT = 4001


def explain(exc: BaseException, url: str | None = None) -> str:
    """What a transport failure most likely means and what to change, or ``""``.

    It recognises an unverifiable server certificate, a certificate for
    another host name, a refused or missing client certificate, a failed
    handshake (https to a plain-http port), a connection closed without an
    answer (plain http to an https port), and a refused connection to port
    4001, python-etcd's default, where etcd 3 listens on 2379.

    :param exc: an exception from :data:`TRANSPORT_ERRORS`.
    :param url: the URL the request went to, to tell http from https when
        *exc* does not say, and to see its port.
    :returns: one or two sentences, or ``""`` for other failures.
    """
    problem = _tls_problem(exc, url)
    if problem is not None:
        return _ADVICE[problem]
    if url is not None and any(isinstance(c, ConnectionRefusedError) for c in _causes(exc)):
        try:
            port = urllib3.util.parse_url(url).port
        except urllib3.exceptions.LocationParseError:
            port = None
        if port == _LEGACY_PORT:
            return (
                f"Nothing listens on port {_LEGACY_PORT}, the default port of python-etcd; "
                "etcd's standard client port is 2379: pass port=2379."
            )
    return ""


def failure_message(exc: BaseException, url: str, timeout: float | None = None) -> str:
    """The message of :class:`etcd.EtcdConnectionFailed` when *url* could not be used.

    It keeps python-etcd 0.4.5's ``Connection to etcd failed due to`` start,
    then names the member, says what happened and, when it can, what to change.
    """
    hint = explain(exc, url)
    return f"Connection to etcd failed due to {url}: {describe(exc, url, timeout)}." + (
        f" {hint}" if hint else ""
    )


def watch_timeout_message(exc: BaseException, url: str, timeout: float | None = None) -> str:
    """The message of :class:`etcd.EtcdWatchTimedOut`."""
    seconds = _timeout_of(list(_causes(exc)), timeout)
    within = f" within {_seconds(seconds)}" if seconds else ""
    return f"Watch timed out: {url} reported no change{within}"


def resolve_timeout(timeout: float | None, read_timeout: float) -> TimeoutValue:
    """Turn a legacy timeout argument into what urllib3 takes.

    ``None`` means the client's ``read_timeout`` (no timeout when that is 0),
    ``0`` means no timeout at all, and a positive number bounds both the
    connect and the read.
    """
    if timeout is None:
        timeout = read_timeout
        if type(timeout) is int or type(timeout) is float:  # the usual case, kept cheap
            return float(timeout) if timeout > 0 else urllib3.Timeout(connect=None, read=None)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise EtcdTypeError(
            f"timeout must be a number of seconds (0 waits forever), not {timeout!r}"
        )
    if timeout < 0:
        raise EtcdValueError(f"timeout must not be negative, not {timeout!r} (0 waits forever)")
    if not timeout:
        return urllib3.Timeout(connect=None, read=None)
    return float(timeout)


def no_retries(allow_redirect: bool) -> urllib3.Retry:
    """The retry policy of every request: urllib3 never re-sends, the client decides."""
    return urllib3.Retry(
        total=None,
        connect=0,
        read=0,
        other=0,
        status=0,
        redirect=10 if allow_redirect else 0,
        raise_on_redirect=False,
        raise_on_status=False,
        # Credentials must never follow a redirect to another host (or scheme).
        remove_headers_on_redirect=_SECRET_HEADERS,
    )


def make_pool_manager(
    *,
    per_host_pool_size: int,
    read_timeout: float,
    protocol: str,
    cert: str | tuple[str, str] | None,
    ca_cert: str | None,
    verify: bool,
) -> urllib3.PoolManager:
    """Build the client's connection pool.

    :param per_host_pool_size: connections kept for each member.
    :param read_timeout: the default timeout in seconds; 0 means none.
    :param protocol: ``"http"`` or ``"https"``.
    :param cert: a PEM file with certificate and key, or a ``(cert, key)`` pair.
    :param ca_cert: the CA bundle to verify servers with; ``None`` is the system store.
    :param verify: check certificates and host names.
    """
    kw: dict[str, Any] = {
        "num_pools": 10,
        "maxsize": per_host_pool_size,
        "retries": no_retries(True),
    }
    if read_timeout and read_timeout > 0:
        kw["timeout"] = float(read_timeout)
    if cert is not None:
        if isinstance(cert, tuple):
            kw["cert_file"], kw["key_file"] = cert
        else:
            kw["cert_file"] = cert
    if verify:
        kw["cert_reqs"] = "CERT_REQUIRED"
        if ca_cert is not None:
            kw["ca_certs"] = ca_cert
    else:
        kw["cert_reqs"] = "CERT_NONE"
        kw["assert_hostname"] = False
        if protocol == "https":
            log.warning(
                "Certificate verification is off (verify=False): this client will trust "
                "any server that answers, including an attacker in the middle."
            )
    return pool_manager(kw)


class EtcdPoolManager(urllib3.PoolManager):
    """urllib3's PoolManager, which also remembers each member's pool for the lean path.

    :attr:`routes` maps a member's base URI to what :mod:`etcd._wire` needs to
    send to it; :meth:`clear` forgets them with the pools.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.routes: dict[str, Any] = {}

    def clear(self) -> None:
        self.routes.clear()
        super().clear()


#: Marks an exception raised while connecting, before any byte of a request was sent.
_IN_CONNECT = "_etcd_in_connect"


def _keepalive_options() -> list[tuple[int, int, int | bytes]]:
    """Socket options that make the kernel notice a silently dead connection."""
    options: list[tuple[int, int, int | bytes]] = [
        *HTTPConnection.default_socket_options,
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    ]
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    return options


def pool_manager(
    pool_kw: Mapping[str, Any],
    on_socket: Callable[[socket.socket], Callable[[], None]] | None = None,
    on_connected: Callable[[HTTPConnection], None] | None = None,
) -> EtcdPoolManager:
    """A PoolManager whose connections mark failures while connecting, and use TCP keep-alive.

    :param pool_kw: the PoolManager's keyword arguments.
    :param on_socket: called with each new socket before it connects (and
        before a TLS handshake), so that another thread can shut it down (a
        watcher's :meth:`~etcd.watch.Watcher.stop`); it returns a function
        called once the connect is over, successful or not.
    :param on_connected: called with each connection once it is connected.
    """

    def connect(conn: HTTPConnection, base: type[HTTPConnection]) -> None:
        _watchdog.watch(conn)
        try:
            base.connect(conn)
            _watchdog.connected(conn)
        except BaseException as exc:
            exc.__dict__[_IN_CONNECT] = True
            raise
        finally:
            conn.__dict__.pop(_watchdog.DEADLINE_ATTR, None)
            release = conn.__dict__.pop("_etcd_release", None)
            if release is not None:
                release()
        if on_connected is not None:
            on_connected(conn)

    def new_conn(conn: HTTPConnection, base: type[HTTPConnection]) -> socket.socket:
        sock = base._new_conn(conn)
        _watchdog.shrink(conn, sock)  # TCP connect and TLS handshake share one deadline
        if on_socket is not None:
            conn.__dict__["_etcd_release"] = on_socket(sock)
        return sock

    class _Connection(HTTPConnection):
        def connect(self) -> None:
            connect(self, HTTPConnection)

        def _new_conn(self) -> socket.socket:
            return new_conn(self, HTTPConnection)

        def request(self, *args: Any, **kwargs: Any) -> None:
            _watchdog.watch(self)  # a request urllib3 sends: under the call's deadline
            HTTPConnection.request(self, *args, **kwargs)

    class _SecureConnection(HTTPSConnection):
        def connect(self) -> None:
            connect(self, HTTPSConnection)

        def _new_conn(self) -> socket.socket:
            return new_conn(self, HTTPSConnection)

        def request(self, *args: Any, **kwargs: Any) -> None:
            _watchdog.watch(self)  # a request urllib3 sends: under the call's deadline
            HTTPSConnection.request(self, *args, **kwargs)

    class _Pool(HTTPConnectionPool):
        ConnectionCls = _Connection

        def _put_conn(self, conn: Any) -> None:
            # back in the pool (a redirect drained, an answer read): another
            # request may take it, which this call's deadline must not shut
            _watchdog.unwatch(conn)
            super()._put_conn(conn)

    class _SecurePool(_Pool, HTTPSConnectionPool):
        ConnectionCls = _SecureConnection  # type: ignore[assignment]

    kw = dict(pool_kw)
    kw.setdefault("socket_options", _keepalive_options())
    manager = EtcdPoolManager(**kw)
    manager.pool_classes_by_scheme = {"http": _Pool, "https": _SecurePool}
    return manager
