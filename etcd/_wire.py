"""The lean send path: one HTTP/1.1 exchange on a connection from urllib3's pool.

urllib3 keeps managing the connections: one pool per member, TLS contexts and
verification, ``urllib3.util.connection.create_connection`` (which users patch
for DNS caching), pool limits and the marks of :mod:`etcd._transport` on
failures while connecting. What this module leaves out is ``urlopen``'s
per-request machinery (``Retry`` and ``Timeout`` copies, ``HTTPHeaderDict``,
``HTTPResponse``, URL parsing, the ``PoolManager`` key lookup and http.client's
e-mail header parser): it writes the request itself and parses the answer
straight from the socket.

:func:`send` handles the common request and returns ``None`` for anything
unusual (a header or path urllib3 would rewrite or refuse), which the client
then sends through urllib3 (:mod:`etcd._fallback`, under the same deadline).
:func:`usable` says whether the client's ``http`` is still the pool manager
the client built, so that a replaced ``http`` (a proxy manager, a test
double, a patched ``request``) sees every request.

One monotonic deadline bounds each exchange: connecting, the TLS handshake,
sending, interim ``1xx`` answers, the headers and the body all count against
``timeout`` seconds, so a server that drips its answer cannot stretch a call.
Failures are raised as urllib3 would raise them (through the client's
``Retry``), so :func:`etcd._transport.classify` sorts them exactly as before.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeGuard

import urllib3
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import ConnectTimeoutError, ProtocolError, ReadTimeoutError, SSLError
from urllib3.util import parse_url
from urllib3.util.ssltransport import SSLTransport

from ._answer import REDIRECTS, Headers, Response, compressed, refuse_unwanted, too_large
from ._exceptions import EtcdBadResponse, EtcdException
from ._transport import EtcdPoolManager, in_connect, remember_headers
from ._watchdog import DEADLINE_ATTR

try:  # the class urllib3 raises for a host-name mismatch when ssl's own check is off
    from urllib3.util.ssl_match_hostname import CertificateError
except ImportError:  # pragma: no cover - urllib3 layouts without it
    CertificateError = ValueError  # type: ignore[assignment,misc]

__all__ = ["Headers", "Response", "refuse_unwanted", "seconds", "send", "usable"]

#: Headers of one answer may not exceed this (http.client allows 100 lines of 64 KiB).
MAX_HEAD_BYTES = 65536
_MAX_HEADER_LINES = 100
_MAX_LINE = 8192
#: A socket wait may overrun the deadline by this much before its timeout is tightened.
_SLACK = 0.25
_FIRST_READ = 65536
_BIG_READ = 1 << 20
_USER_AGENT = f"python-urllib3/{getattr(urllib3, '__version__', '2')}"
# What urllib3 would send unchanged: anything else goes through urllib3.
_PLAIN_PATH = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})*")
# A whole "." or ".." segment, which urllib3 would remove (RFC 3986 section 5.2.4).
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|$)")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[^\x00-\x1f\x7f]*")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS = re.compile(r"[0-9]{1,19}")
# Headers that describe a body, dropped when a 303 turns the request into a GET.
_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding"})

_REQUEST = urllib3.PoolManager.request
_REQUEST_ENCODE_BODY = urllib3.PoolManager.request_encode_body
_URLOPEN = urllib3.PoolManager.urlopen
_OVERRIDES = ("request", "request_encode_body", "urlopen")


def usable(http: Any) -> TypeGuard[EtcdPoolManager]:
    """Whether *http* is the client's own pool manager, unreplaced and unpatched."""
    return (
        type(http) is EtcdPoolManager
        and EtcdPoolManager.request is _REQUEST
        and EtcdPoolManager.request_encode_body is _REQUEST_ENCODE_BODY
        and EtcdPoolManager.urlopen is _URLOPEN
        and not any(name in http.__dict__ for name in _OVERRIDES)
    )


def seconds(timeout: urllib3.Timeout | float | None) -> float | None:
    """The seconds an exchange may take for a timeout the client resolved; ``None``: no limit."""
    if timeout is None or type(timeout) is float:
        return timeout
    if isinstance(timeout, urllib3.Timeout):
        values = [
            float(value)
            for value in (timeout.connect_timeout, timeout.read_timeout, timeout.total)
            if isinstance(value, (int, float))
        ]
        return max(values) if values else None
    return float(timeout)


class _Route:
    """A member's pool and what every request to it needs."""

    __slots__ = ("host_header", "https", "kw", "pool")

    def __init__(self, http: EtcdPoolManager, base: str) -> None:
        parsed = parse_url(base)
        pool = http.connection_from_host(parsed.host, port=parsed.port, scheme=parsed.scheme)
        assert isinstance(pool, HTTPConnectionPool)
        self.pool = pool
        self.https = parsed.scheme == "https"
        netloc = base.split("://", 1)[-1].rstrip("/")
        default = ":443" if self.https else ":80"
        self.host_header = netloc[: -len(default)] if netloc.endswith(default) else netloc
        self.kw = dict(http.connection_pool_kw)


def _route(http: EtcdPoolManager, base: str) -> _Route:
    routes: dict[str, Any] = http.routes
    route: _Route | None = routes.get(base)
    if route is None or route.pool.pool is None or route.kw != http.connection_pool_kw:
        route = _Route(http, base)
        if len(routes) < 64:
            routes[base] = route
    return route


def send(
    http: EtcdPoolManager,
    base: str,
    method: str,
    path: str,
    params: Any,
    *,
    json_body: bool,
    headers: Mapping[str, str],
    timeout: float | None,
    retries: urllib3.Retry,
    on_headers: Callable[[Response], None],
    max_bytes: int | None = None,
) -> Response | None:
    """Send one request as ``api_execute`` describes it, and read the whole answer.

    :param http: the client's pool manager (:func:`usable` said yes).
    :param base: the member, ``scheme://host:port``.
    :param path: the path below *base*, already quoted.
    :param params: query (GET, DELETE) or form (PUT, POST) fields, or the JSON
        body with *json_body*.
    :param headers: extra request headers (the authorization header).
    :param timeout: seconds the whole exchange may take; ``None`` waits forever.
    :param retries: the client's urllib3 policy; it decides how many redirects
        are followed, which headers a redirect to another host drops, and how a
        failure is raised.
    :param on_headers: called with the final answer once its headers are read,
        before its body (the cluster-id check).
    :param max_bytes: the largest body accepted; ``None`` accepts any.
    :returns: the answer with its body read, or ``None`` when urllib3 must send it.
    """
    body: bytes | None = None
    content_type = None
    if json_body:
        body = json.dumps(params).encode("utf-8")
        content_type = "application/json"
    elif method in ("GET", "DELETE"):
        if params:
            path = f"{path}?{urllib.parse.urlencode(params)}"
    elif params:
        body = urllib.parse.urlencode(params).encode("utf-8")
        content_type = "application/x-www-form-urlencoded"
    if not _PLAIN_PATH.fullmatch(bare := path.partition("?")[0]) or _DOT_SEGMENT.search(bare):
        return None  # urllib3 would normalise it
    extra = dict(headers)
    if content_type is not None:
        extra.setdefault("Content-Type", content_type)
    if not _TOKEN.fullmatch(method) or not all(
        _TOKEN.fullmatch(name) and _HEADER_VALUE.fullmatch(value) for name, value in extra.items()
    ):
        return None  # urllib3 raises its own error for these
    deadline = None if timeout is None else time.monotonic() + timeout
    redirects = retries.redirect if isinstance(retries.redirect, int) else 0
    while True:
        route = _route(http, base)
        request = _request_bytes(method, path, route.host_header, extra, body)
        if request is None:
            return None
        exchange = _Exchange(route, method, base + path, deadline, timeout, retries, max_bytes)
        response = exchange.run(request, redirects > 0, on_headers)
        location = response.headers.get("location") if redirects > 0 else None
        if location is None or response.status not in REDIRECTS:
            return response
        redirects -= 1
        base, path = _redirect_target(response, base + path, location)
        if response.status == 303:
            method, body = "GET", None
            extra = {k: v for k, v in extra.items() if k.lower() not in _BODY_HEADERS}
        if not route.pool.is_same_host(base + path):
            secret = retries.remove_headers_on_redirect
            extra = {k: v for k, v in extra.items() if k.lower() not in secret}


def _request_bytes(
    method: str, target: str, host: str, headers: Mapping[str, str], body: bytes | None
) -> bytes | None:
    lines = [
        f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n"
        f"User-Agent: {_USER_AGENT}\r\n"
    ]
    for name, value in headers.items():
        lines.append(f"{name}: {value}\r\n")
    if body is not None or method in ("PUT", "POST", "PATCH"):
        lines.append(f"Content-Length: {0 if body is None else len(body)}\r\n")
    lines.append("\r\n")
    try:
        head = "".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        return None  # urllib3 raises its own error for it
    return head if body is None else head + body


def _redirect_target(response: Response, url: str, location: str) -> tuple[str, str]:
    """The base and path a redirect leads to; a typed error for an invalid ``Location``."""
    try:
        target = parse_url(urllib.parse.urljoin(url, location))
        scheme, host = target.scheme, target.host
        if scheme not in ("http", "https") or not host:
            raise ValueError("not an absolute http or https URL")
    except ValueError as exc:  # LocationParseError is a ValueError too
        raise EtcdBadResponse(
            f"{url} answered {response.status} with a redirect to an invalid URL "
            f"{location[:200]!r} ({exc}); it was not followed"
        ) from exc
    netloc = target.netloc or host
    return f"{scheme}://{netloc}", target.request_uri


class _Exchange:
    """One request and its answer on one pooled connection."""

    def __init__(
        self,
        route: _Route,
        method: str,
        url: str,
        deadline: float | None,
        timeout: float | None,
        retries: urllib3.Retry,
        max_bytes: int | None,
    ) -> None:
        self.route = route
        self.pool = route.pool
        self.method = method
        self.url = url
        self.deadline = deadline
        self.timeout = timeout
        self.retries = retries
        self.max_bytes = max_bytes
        self.sock: Any = None
        self.sock_timeout: float | None = None
        self.buf = b""
        self.pos = 0
        self.response: Response | None = None

    # -- the exchange ---------------------------------------------------------

    def run(
        self, request: bytes, may_redirect: bool, on_headers: Callable[[Response], None]
    ) -> Response:
        pool = self.pool
        conn: Any = pool._get_conn()
        try:
            reused = conn.sock is not None
            if not reused:
                self._connect(conn)
            self._use(conn.sock)
            try:
                sent = self.sock.send(request)
            except TimeoutError:
                raise
            except OSError:
                if not reused:
                    raise
                # A stale keep-alive connection refused the first byte: nothing was
                # sent, so one new connection may carry the request.
                conn.close()
                self._connect(conn)
                self._use(conn.sock)
                sent = self.sock.send(request)
            if sent < len(request):
                self._tighten()
                self.sock.sendall(memoryview(request)[sent:])
            response = self._read_head()
            self.response = response
            status = response.status
            if not (may_redirect and status in REDIRECTS and "location" in response.headers):
                on_headers(response)
            self._check_encoding(response)
            will_close = self._read_body(response)
        except BaseException as exc:
            conn.close()
            pool._put_conn(None)
            self._fail(exc)
        if will_close or self.pos != len(self.buf):
            conn.close()
        pool._put_conn(conn)
        return response

    def _connect(self, conn: HTTPConnection) -> None:
        if self.deadline is not None:
            conn.timeout = max(self.deadline - time.monotonic(), 0.001)
            conn.__dict__[DEADLINE_ATTR] = self.deadline  # for the TLS handshake
        else:
            conn.timeout = None
        conn.connect()
        if self.route.https:
            self.pool._validate_conn(conn)  # urllib3's warning for an unverified server

    def _use(self, sock: socket.socket | SSLTransport | None) -> None:
        assert sock is not None
        self.sock = sock
        current = sock.gettimeout()
        if current != self.timeout:
            sock.settimeout(self.timeout)
        self.sock_timeout = self.timeout

    def _tighten(self) -> None:
        """Shorten the socket's timeout to what is left of the deadline."""
        deadline = self.deadline
        if deadline is None:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise _DeadlinePassed
        current = self.sock_timeout
        if current is None or left < current - _SLACK:
            self.sock.settimeout(left)
            self.sock_timeout = left

    def _recv(self, size: int) -> bytes:
        if self.deadline is not None:
            self._tighten()
        data: bytes = self.sock.recv(size)
        return data

    # -- reading --------------------------------------------------------------

    def _read_head(self) -> Response:
        """Read headers up to the final answer's; interim ``1xx`` answers are skipped."""
        while True:
            buf = self.buf[self.pos :].lstrip(b"\r\n")
            if not buf:
                buf = self._recv(_FIRST_READ)
                if not buf:
                    if self.response is None:
                        raise http.client.RemoteDisconnected(
                            "Remote end closed connection without response"
                        )
                    raise ProtocolError("the server closed the connection after a 1xx answer")
            end = buf.find(b"\r\n\r\n")
            while end < 0 and b"\n\n" not in buf:
                if len(buf) > MAX_HEAD_BYTES:
                    raise ProtocolError(
                        f"the server's headers are longer than {MAX_HEAD_BYTES} bytes"
                    )
                more = self._recv(_FIRST_READ)
                if not more:
                    raise ProtocolError("the server closed the connection within the headers")
                buf += more
                end = buf.find(b"\r\n\r\n")
            lf = buf.find(b"\n\n")
            if end >= 0 and (lf < 0 or end < lf):
                lines = buf[:end].decode("latin-1").split("\r\n")
                self.buf, self.pos = buf, end + 4
            else:
                lines = buf[:lf].decode("latin-1").replace("\r\n", "\n").split("\n")
                self.buf, self.pos = buf, lf + 2
            response = self._parse_head(lines)
            if response.status >= 200:
                return response
            self.response = response  # an interim answer: the final one follows

    def _parse_head(self, lines: list[str]) -> Response:
        status_line = lines[0]
        version, _, rest = status_line.partition(" ")
        code, _, reason = rest.partition(" ")
        if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not code.isdigit():
            raise ProtocolError(f"the server's answer is not HTTP/1.x: {status_line[:80]!r}")
        if len(lines) > _MAX_HEADER_LINES + 1:
            raise ProtocolError(f"the server sent more than {_MAX_HEADER_LINES} headers")
        headers = Headers()
        name = ""
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and name:  # an obsolete folded continuation
                dict.__setitem__(
                    headers, name, f"{dict.__getitem__(headers, name)} {line.strip()}"
                )
                continue
            key, sep, value = line.partition(":")
            name = key.strip().lower()
            if not sep or not name:
                raise ProtocolError(f"the server sent a malformed header line {line[:80]!r}")
            value = value.strip()
            if dict.__contains__(headers, name):
                value = f"{dict.__getitem__(headers, name)}, {value}"
            dict.__setitem__(headers, name, value)
        return Response(int(code), reason, 11 if version == "HTTP/1.1" else 10, headers, self.url)

    def _check_encoding(self, response: Response) -> None:
        encoding = response.headers.get("content-encoding")
        if encoding and encoding.strip().lower() != "identity":
            raise EtcdBadResponse(compressed(self.url, encoding))

    def _too_large(self, size: int) -> NoReturn:
        raise EtcdBadResponse(too_large(self.url, size, self.max_bytes))

    def _read_body(self, response: Response) -> bool:
        """Read the body into *response*; return whether the connection must close."""
        headers = response.headers
        token = headers.get("connection", "").lower()
        will_close = "close" in token if response.version == 11 else "keep-alive" not in token
        status = response.status
        if status < 200 or status in (204, 304) or self.method == "HEAD":
            return will_close
        encoding = headers.get("transfer-encoding")
        if encoding is not None:
            if encoding.lower().rstrip().endswith("chunked"):
                response.data = self._read_chunked()
                return will_close
            response.data = self._read_to_close()
            return True
        length = headers.get("content-length")
        if length is None:
            response.data = self._read_to_close()
            return True
        size = self._content_length(length)
        if self.max_bytes is not None and size > self.max_bytes:
            self._too_large(size)
        response.data = self._read_exact(size)
        return will_close

    @staticmethod
    def _content_length(text: str) -> int:
        values = {part.strip() for part in text.split(",")}
        if len(values) != 1 or not _DIGITS.fullmatch(next(iter(values))):
            raise ProtocolError(f"the server sent an invalid Content-Length {text[:40]!r}")
        return int(next(iter(values)))

    def _read_exact(self, size: int) -> bytes:
        buf, pos = self.buf, self.pos
        available = len(buf) - pos
        if available >= size:
            self.pos = pos + size
            return buf[pos : pos + size]
        parts = [buf[pos:]]
        need = size - available
        while need > 0:
            chunk = self._recv(min(need, _BIG_READ))
            if not chunk:
                raise ProtocolError(
                    f"the server closed the connection {need} bytes before the end of the body",
                    http.client.IncompleteRead(b"", need),
                )
            parts.append(chunk)
            need -= len(chunk)
        self.buf, self.pos = b"", 0
        return b"".join(parts)

    def _read_line(self) -> bytes:
        buf, pos = self.buf, self.pos
        end = buf.find(b"\n", pos)
        while end < 0:
            if len(buf) - pos > _MAX_LINE:
                raise ProtocolError(
                    "the server sent a chunk-size or trailer line that is too long"
                )
            more = self._recv(_FIRST_READ)
            if not more:
                raise ProtocolError("the server closed the connection within a chunked body")
            buf = buf[pos:] + more
            pos = 0
            end = buf.find(b"\n")
        self.buf, self.pos = buf, end + 1
        return buf[pos:end].rstrip(b"\r")

    def _read_chunked(self) -> bytes:
        parts = []
        total = 0
        limit = self.max_bytes
        while True:
            line = self._read_line()
            text = line.split(b";", 1)[0].strip()
            if not _HEX.fullmatch(text):
                raise ProtocolError(f"the server sent an invalid chunk size {text[:40]!r}")
            size = int(text, 16)
            if size == 0:
                break
            total += size
            if limit is not None and total > limit:
                self._too_large(total)
            parts.append(self._read_exact(size))
            if self._read_line():
                raise ProtocolError("the server sent a chunk longer than its size")
        for _ in range(_MAX_HEADER_LINES):  # trailers, ignored
            if not self._read_line():
                return b"".join(parts)
        raise ProtocolError(f"the server sent more than {_MAX_HEADER_LINES} trailer lines")

    def _read_to_close(self) -> bytes:
        parts = [self.buf[self.pos :]]
        total = len(parts[0])
        limit = self.max_bytes
        while True:
            if limit is not None and total > limit:
                self._too_large(total)
            chunk = self._recv(_BIG_READ)
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
        self.buf, self.pos = b"", 0
        return b"".join(parts)

    # -- failures -------------------------------------------------------------

    def _fail(self, exc: BaseException) -> NoReturn:
        """Raise *exc* as urllib3's ``urlopen`` would have, through the client's ``Retry``."""
        if not isinstance(exc, Exception) or isinstance(exc, EtcdException):
            raise exc  # our own verdicts, and the cluster-id check's
        if isinstance(exc, _DeadlinePassed):
            new: Exception = ReadTimeoutError(
                self.pool,
                self.url,
                f"Read timed out. (the answer did not complete within {self.timeout} s)",
            )
        elif (
            isinstance(exc, (TimeoutError, socket.timeout))
            or (isinstance(exc, ssl.SSLError) and "timed out" in str(exc))
        ) and in_connect(exc):
            new = ConnectTimeoutError(
                f"Connecting to {self.url} timed out. (connect timeout={self.timeout})"
            )
        elif isinstance(exc, (TimeoutError, socket.timeout)) or (
            isinstance(exc, ssl.SSLError) and "timed out" in str(exc)
        ):
            new = ReadTimeoutError(
                self.pool, self.url, f"Read timed out. (read timeout={self.timeout})"
            )
        elif isinstance(exc, (ssl.SSLError, CertificateError)):
            new = SSLError(exc)
        elif isinstance(exc, (OSError, http.client.HTTPException)):
            new = ProtocolError("Connection aborted.", exc)
        elif isinstance(exc, urllib3.exceptions.HTTPError):
            new = exc
        else:
            raise exc  # an error of the caller's callback (the cluster-id check)
        if new is not exc:
            new.__cause__ = exc
        try:
            self.retries.increment(
                self.method, self.url, error=new, _pool=self.pool, _stacktrace=sys.exc_info()[2]
            )
            raise new
        except BaseException as raised:
            if self.response is not None:
                remember_headers(raised, self.response.headers)
            raise


class _DeadlinePassed(Exception):
    """The exchange's deadline passed between two socket waits."""
