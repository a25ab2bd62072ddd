"""One request: send it, classify a failure, fail over, back off, translate.

Every request of a :class:`etcd.Client` ends in :func:`send`, whichever
protocol built it. A request is a :class:`Request` value; :func:`send` takes it
to the current member (``client._base_uri``) through the client's
``http`` pool and its ``_get_headers()``, and then:

* a failure before anything was sent (connecting, the TLS handshake) may go
  to another member;
* a failure after the request was sent may go to another member only when
  the request is idempotent; otherwise its outcome is unknown, and the error
  says so;
* a 5xx answer to an idempotent request moves on to the next member after a
  :class:`Backoff` delay, with ``failover_on_server_error``;
* any other answer goes through ``client._handle_server_response``.

Which member comes next is decided by the client's
:class:`~etcd._endpoints.Endpoints` (through the ``_next_server`` seam); the
errors a caller sees are built here and nowhere else (:func:`_translated`,
:func:`all_failed`).

The seam for protocols: a protocol module (``_v2.py``, ``_v3.py``) turns a
key-space call into one or more :class:`Request` values and hands each to
:func:`send`, which may be called as often as the operation needs (a lease
grant, then a transaction). Failover, TLS, timeouts and the cluster-id check
are done here for all of them.
"""

from __future__ import annotations

import contextvars
import dataclasses
import enum
import functools
import logging
import time
import types
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast

import urllib3

from . import _fallback, _transport, _wire
from ._exceptions import (
    EtcdClusterIdChanged,
    EtcdConnectionFailed,
    EtcdException,
    EtcdWatchTimedOut,
)
from ._result import response_header

if TYPE_CHECKING:
    from ._result import EtcdResult
    from .client import Client

__all__ = [
    "IDEMPOTENT",
    "SERVER_ERROR_BACKOFF",
    "UNSET",
    "Backoff",
    "KeyCall",
    "KeyProtocol",
    "Request",
    "all_failed",
    "learn_cluster_id",
    "machines",
    "next_server",
    "send",
    "send_once",
]

log = logging.getLogger("etcd.client")

#: Set by ``write(idempotent=True)`` and ``delete(idempotent=True)`` around
#: their call of ``api_execute``, whose signature (compat §10) has no room for it.
IDEMPOTENT: contextvars.ContextVar[bool] = contextvars.ContextVar("etcd_idempotent", default=False)

# Set while a failover asks the new member for the member list: that member
# is asked once, and ``machines`` must not walk the others (compat §4.7 step 4).
_ASK_ONCE: contextvars.ContextVar[bool] = contextvars.ContextVar("etcd_ask_once", default=False)

_REFRESH_ERRORS: tuple[type[BaseException], ...] = (EtcdException, *_transport.TRANSPORT_ERRORS)


@dataclasses.dataclass(frozen=True)
class Backoff:
    """How long to wait before the next attempt: *first*, then growing by
    *factor* per attempt up to *maximum* seconds.

    An immutable value: the attempt count is the caller's local variable.
    """

    first: float = 0.05
    maximum: float = 1.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        """The wait before retry number *attempt* (1 for the first retry)."""
        if attempt < 1:
            return 0.0
        return float(min(self.first * self.factor ** (attempt - 1), self.maximum))

    def delays(self) -> Iterator[float]:
        """The waits of the retries, one after another, without end."""
        attempt = 0
        while True:
            attempt += 1
            yield self.delay(attempt)


class _Unset(enum.Enum):
    UNSET = enum.auto()


#: "Not given": a call without ``timeout`` calls ``api_execute`` without it.
UNSET = _Unset.UNSET
_NO_OPTIONS: Mapping[str, Any] = types.MappingProxyType({})


class KeyCall(NamedTuple):
    """A key-space call (an immutable value), described once by the 0.4.5 methods of
    :class:`etcd.Client` after their argument checks, for a protocol to carry out.

    Option values are as the caller gave them (a ``bool`` is still a ``bool``);
    a protocol encodes them. Options that a subclass added to the client's
    option sets are in *options* too (compat §10.1).

    :param op: ``"read"``, ``"write"`` or ``"delete"``.
    :param key: the key as ``client._sanitize_key`` normalised it, not quoted.
    :param options: read: the read options given (``recursive``, ``wait``,
        ``waitIndex``, ``sorted``, ``quorum``), without ``None`` values;
        write and delete: the conditions given (``prevValue``, ``prevIndex``,
        ``prevExist``, ``refresh``).
    :param value: write: the text to store, or ``None``.
    :param ttl: write: seconds until the key expires, or ``None``.
    :param dir: write: create a directory; delete: delete an empty one
        (``None``: not given).
    :param append: write: create an in-order key below *key*.
    :param recursive: delete: the whole tree (``None``: not given).
    :param timeout: seconds, ``None`` for the client's default, or
        :data:`UNSET` when the caller did not give it.
    :param idempotent: the caller allows the call to be sent again after its
        outcome was lost.
    :param endpoint: write: a path prefix instead of ``client.key_endpoint``.
    """

    op: str
    key: str
    options: Mapping[str, Any] = _NO_OPTIONS
    value: Any = None
    ttl: Any = None
    dir: bool | None = None
    append: bool = False
    recursive: bool | None = None
    timeout: float | _Unset | None = UNSET
    idempotent: bool = False
    endpoint: str | None = None

    @property
    def method(self) -> str:
        """The v2 HTTP method of the call."""
        if self.op == "read":
            return "GET"
        if self.op == "delete":
            return "DELETE"
        return "POST" if self.append else "PUT"

    @property
    def watching(self) -> bool:
        """A read that waits for a change."""
        return self.op == "read" and self.options.get("wait") in (True, "true")


class KeyProtocol(Protocol):
    """What the client hands a :class:`KeyCall` to (``client._key_protocol``).

    ``execute`` carries the call out and returns its result or raises the
    etcd exception. The v2 protocol calls ``client.api_execute`` once, so that
    the seams of compat §10 see every call; another protocol may call
    :func:`send` as many times as the operation needs.
    """

    def execute(self, client: Client, call: KeyCall) -> EtcdResult: ...


#: The wait between members that answered a request with a 5xx status.
SERVER_ERROR_BACKOFF = Backoff(first=0.05, maximum=1.0)


class Request(NamedTuple):
    """One HTTP request to the cluster, as a protocol describes it (an immutable value).

    :param method: ``GET``, ``PUT``, ``POST`` or ``DELETE``.
    :param path: the path below the member's URI, already quoted.
    :param params: query (GET, DELETE) or form (PUT, POST) fields; with
        *json_body*, the object sent as the JSON body.
    :param timeout: seconds; ``None`` is the client's ``read_timeout``, ``0`` none.
    :param json_body: send *params* as JSON (``http.urlopen``).
    :param idempotent: the request may be sent again after it reached a
        member whose answer was lost. A GET that is not a watch always may.
    :param watching: a long poll, whose read timeout is not a failure;
        ``None`` reads it from ``params["wait"] == "true"``.
    :param no_content: a 204 answer is a success (the members API).
    :param headers: headers added to those of ``client._get_headers()``.
    :param raw: return any answer that arrived, whatever its status, for a
        protocol that reads errors from the body (the v3 gateway).
    :param raise_for_answer: with *raw*, raises the protocol's exception for a
        failed answer; a 5xx answer to an idempotent request is then failed
        over as for v2, and the last member's error raised when none is left.
    """

    method: str
    path: str
    params: Any = None
    timeout: float | None = None
    json_body: bool = False
    idempotent: bool = False
    watching: bool | None = None
    no_content: bool = False
    headers: Mapping[str, str] | None = None
    raw: bool = False
    raise_for_answer: Callable[[urllib3.BaseHTTPResponse], object] | None = None

    def is_watch(self) -> bool:
        if self.watching is not None:
            return self.watching
        params = self.params
        return bool(params) and isinstance(params, Mapping) and params.get("wait") == "true"


def send(client: Client, request: Request) -> urllib3.BaseHTTPResponse:
    """Send *request* to the cluster and return the successful answer.

    :returns: the urllib3 response, status 200 or 201 (or 204 with
        ``no_content``), body loaded.
    :raises EtcdConnectionFailed: no member could be reached, or the request
        reached one and its outcome is unknown.
    :raises EtcdWatchTimedOut: a watch saw no change in time.
    :raises EtcdException: the server refused the request.
    """
    timeout = _transport.resolve_timeout(request.timeout, client._read_timeout)
    watching = request.is_watch()
    idempotent = request.idempotent or (request.method == "GET" and not watching)
    failures: dict[str, BaseException] = {}
    while True:
        base = client._base_uri
        try:
            response = _send_once(client, base, request, timeout)
        except _transport.TRANSPORT_ERRORS as exc:
            kind = _transport.classify(exc, watching=watching)
            if (
                kind is _transport.FailureKind.NOT_SENT
                or (kind is _transport.FailureKind.SENT and idempotent)
            ) and client._allow_reconnect:
                log.warning("Request to %s failed: %s", base, _transport.describe(exc, base))
                _fail_over(client, base, exc, failures)
                continue
            raise _translated(
                exc, kind, request, base, idempotent=idempotent, seconds=_seconds(client, request)
            ) from exc
        if (
            response.status >= 500
            and idempotent
            and client._allow_reconnect
            and client._failover_on_server_error
            and (not request.raw or request.raise_for_answer is not None)
        ):
            try:
                if request.raise_for_answer is not None:
                    request.raise_for_answer(response)
                    return response  # the protocol found no error in it
                return client._handle_server_response(response)  # a subclass may accept it
            except EtcdException as server_error:
                log.warning("%s answered %s: %s", base, response.status, server_error)
                try:
                    _fail_over(client, base, server_error, failures)
                except EtcdConnectionFailed:
                    raise server_error from None  # every member tried: the server's own error
            time.sleep(SERVER_ERROR_BACKOFF.delay(len(failures)))
            continue
        if request.raw:
            return response
        if request.no_content and response.status == 204:
            return response
        return client._handle_server_response(response)


def _fail_over(
    client: Client, base: str, cause: BaseException, failures: dict[str, BaseException]
) -> None:
    """Note that *base* failed with *cause* and move on, through ``client._next_server``."""
    failures[base] = cause
    client._next_server(cause=cause, tried=failures)


def _translated(
    exc: BaseException,
    kind: _transport.FailureKind,
    request: Request,
    base: str,
    *,
    idempotent: bool,
    seconds: float | None = None,
) -> EtcdConnectionFailed:
    """The etcd exception for a transport failure that is not retried.

    Its message names the member and says what happened in words, never
    with urllib3's reprs; the urllib3 error is its ``cause``.
    """
    if kind is _transport.FailureKind.WATCH_TIMEOUT:
        timed_out = EtcdWatchTimedOut(
            _transport.watch_timeout_message(exc, base, seconds), cause=exc
        )
        timed_out.etcd_index = _transport.etcd_index_of(exc)
        return timed_out
    if kind is _transport.FailureKind.SENT and not idempotent:
        hint = _transport.explain(exc, base)
        return EtcdConnectionFailed(
            f"{request.method} {request.path} reached {base} but failed before an answer "
            f"({_transport.describe(exc, base, seconds)}); its outcome is unknown. "
            f"Read the key to learn whether it was applied. {hint}".rstrip(),
            cause=exc,
        )
    return EtcdConnectionFailed(_transport.failure_message(exc, base, seconds), cause=exc)


def _seconds(client: Client, request: Request) -> float | None:
    """The timeout of *request* in seconds, for messages; ``None`` when there is none."""
    timeout = request.timeout if request.timeout is not None else client._read_timeout
    return float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else None


def all_failed(
    tried: Mapping[str, BaseException], cause: BaseException | None
) -> EtcdConnectionFailed:
    """The error when every member failed: it names each with its error."""
    details = "; ".join(f"{uri}: {_transport.describe(e, uri)}" for uri, e in tried.items())
    hint = next((h for uri, e in tried.items() if (h := _transport.explain(e, uri))), "")
    return EtcdConnectionFailed(
        f"All etcd members failed: {details}{'. ' if hint else ''}{hint}", cause=cause
    )


def _send_once(
    client: Client,
    base: str,
    request: Request,
    timeout: _transport.TimeoutValue,
    *,
    check_cluster_id: bool = True,
) -> urllib3.BaseHTTPResponse:
    """The single point where the client sends a request to a member.

    :param check_cluster_id: compare the answer's cluster id with the one
        learned before (``machines`` makes no such check, compat §5).
    """
    headers = client._get_headers()
    if request.headers:
        headers.update(request.headers)
    on_headers = functools.partial(_check_cluster_id, client) if check_cluster_id else _no_check
    http = client.http
    seconds = _wire.seconds(timeout)
    if _wire.usable(http):  # the client's own pool manager: the lean path
        answer = _wire.send(
            http,
            base,
            request.method,
            request.path,
            request.params,
            json_body=request.json_body,
            headers=headers,
            timeout=seconds,
            retries=client._retries,
            on_headers=on_headers,
            max_bytes=client._max_response_size,
        )
        if answer is not None:
            # it has what compat §10.1 asks of a response: status, data, headers ...
            return cast(urllib3.BaseHTTPResponse, answer)
    response: urllib3.BaseHTTPResponse = _fallback.send(
        http,
        base,
        request.method,
        request.path,
        request.params,
        json_body=request.json_body,
        headers=headers,
        timeout=timeout,
        seconds=seconds,
        redirect=client._allow_redirect,
        retries=client._retries,
        on_headers=on_headers,
        max_bytes=client._max_response_size,
    )
    return response


def _check_cluster_id(client: Client, response: _transport.HTTPAnswer) -> None:
    cluster_id = response_header(response, "x-etcd-cluster-id")
    if not cluster_id or cluster_id == client.expected_cluster_id:
        return
    learn_cluster_id(client, cluster_id, response)


def learn_cluster_id(client: Client, cluster_id: str, response: Any = None) -> None:
    """Learn the id of the cluster an answer came from, or raise once when it changed.

    :param response: the answer, closed before raising (a watch's body may
        never come); ``None`` when the id was read from a body.
    :raises EtcdClusterIdChanged: the id differs from the one learned before.
    """
    if cluster_id == client.expected_cluster_id:
        return
    with client._endpoint_lock:
        old = client.expected_cluster_id
        if old is None or old == cluster_id:
            client.expected_cluster_id = cluster_id
            return
        client.expected_cluster_id = cluster_id
    close = getattr(response, "close", None)
    if close is not None:
        close()  # a watch's body may never come: do not wait for it
    client.http.clear()
    raise EtcdClusterIdChanged(f"The UUID of the cluster changed from {old} to {cluster_id}.")


def next_server(
    client: Client, cause: BaseException | None, tried: Mapping[str, BaseException]
) -> str:
    """Make an untried member the current one and refresh the member list from it.

    :raises EtcdConnectionFailed: every member failed; the message names each.
    """
    if not tried:  # called as python-etcd 0.4.5 did: the current member failed
        tried = {client._base_uri: cause or EtcdConnectionFailed("failed")}
    try:
        old, new = client._endpoints.fail_over(tried)
    except LookupError:
        raise all_failed(tried, cause) from cause  # the last urllib3 error, as .cause
    if old is None:
        return new  # another thread failed over already
    log.warning("Failing over from %s to %s", old, new)
    if not client._use_proxies:
        _refresh_members(client, new)
    return client._base_uri


def _refresh_members(client: Client, base: str) -> None:
    """Ask the new member *base* once for the member list, through the
    ``machines`` seam (which subclasses override); keep the list on failure.

    The current member is left alone either way: another thread may have
    moved it while the question was out.
    """
    token = _ASK_ONCE.set(True)
    try:
        found = client.machines
    except _REFRESH_ERRORS as exc:
        log.debug("Keeping the old member list: %s did not answer (%s)", base, exc)
        return
    finally:
        _ASK_ONCE.reset(token)
    client._endpoints.learn(found)


def machines(client: Client) -> list[str]:
    """``GET /v2/machines`` from the current member (compat §5), as :func:`ask_members` does."""
    path = client.version_prefix + "/machines"

    def ask(base: str, timeout: _transport.TimeoutValue) -> list[str]:
        response = send_once(client, base, Request(client._MGET, path), timeout)
        client._handle_server_response(response)
        text = response.data.decode("utf-8", errors="replace")
        return [part.strip() for part in text.split(",") if part.strip()]

    return ask_members(client, path, ask)


def ask_members(
    client: Client, path: str, ask: Callable[[str, _transport.TimeoutValue], list[str]]
) -> list[str]:
    """``ask(member, timeout)`` the current member for the members' client URLs.

    On a transport error the other members are asked in turn, each becoming
    the current one (:meth:`Endpoints.step`), except while a failover asks its
    new member once (``_ASK_ONCE``): then the first failure raises.

    :param path: what is asked for, to name it in messages.
    :raises EtcdException: no member answered; the message names each one asked.
    """
    timeout = _transport.resolve_timeout(None, client._read_timeout)
    failed: list[str] = []
    while True:
        base = client._base_uri  # read once: another thread may fail over meanwhile
        uri = base + path
        try:
            return ask(base, timeout)
        except _transport.TRANSPORT_ERRORS as exc:
            what = _transport.describe(exc, uri, client._read_timeout)
            log.warning("Cannot ask %s for the members: %s", uri, what)
            failed.append(f"{base}: {what}")
            if _ASK_ONCE.get() or client._endpoints.step() is None:
                hint = _transport.explain(exc, uri)
                # 0.4.5's message, then which members were asked and what happened
                raise EtcdException(
                    "Could not get the list of servers, maybe you provided "
                    f"the wrong host(s) to connect to? {'; '.join(failed)}."
                    f"{' ' if hint else ''}{hint}"
                ) from exc


def send_once(
    client: Client, base: str, request: Request, timeout: _transport.TimeoutValue
) -> urllib3.BaseHTTPResponse:
    """Send *request* to the member *base* once, for :func:`ask_members`' questions.

    No failover and no cluster-id check (compat §5); the deadline, the body
    limit and the typed errors of every other request apply.
    """
    return _send_once(client, base, request, timeout, check_cluster_id=False)


def _no_check(response: _transport.HTTPAnswer) -> None:
    """``machines`` makes no cluster-id check (compat §5)."""
