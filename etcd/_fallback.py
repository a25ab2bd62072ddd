"""The requests urllib3 sends: those the lean path (:mod:`etcd._wire`) leaves to it.

That is every request when the client's ``http`` was replaced (a proxy
manager, a pool manager of the caller's, a test double), and the unusual
ones otherwise (a path or a header urllib3 rewrites or refuses).

For a real urllib3 pool manager, the rules of the lean path hold here too:

* one deadline bounds the exchange (:mod:`etcd._watchdog`); urllib3's own
  ``Timeout`` only bounds each socket wait. With the client's own pool
  manager, connecting, ``100 Continue`` answers, the headers and the body all
  count; with a pool manager of the caller's, the body does (its connections
  cannot report themselves before the headers are read);
* the body is read in pieces and refused, with its connection closed, as soon
  as it grows past ``max_response_size``, whether or not the server announced
  its length;
* a compressed answer is refused unread.

A test double (anything that is not a :class:`urllib3.PoolManager`) sees its
call exactly as before, and its response is read through ``data``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import urllib3
import urllib3.exceptions
from urllib3.response import HTTPResponse

from . import _transport, _watchdog
from ._answer import refuse_unwanted, too_large
from ._exceptions import EtcdBadResponse, EtcdException

__all__ = ["send"]

_PIECE = 1 << 16


def send(
    http: Any,
    base: str,
    method: str,
    path: str,
    params: Any,
    *,
    json_body: bool,
    headers: dict[str, str],
    timeout: _transport.TimeoutValue,
    seconds: float | None,
    redirect: bool,
    retries: urllib3.Retry,
    on_headers: Callable[[Any], None],
    max_bytes: int | None,
) -> Any:
    """Send one request through ``http`` and read its whole answer.

    :param seconds: the deadline of the exchange; ``None``: no deadline.
    :param on_headers: called with the answer before its body is read.
    :returns: what ``http`` returned, its body read.
    :raises EtcdBadResponse: the answer was refused or broke HTTP in a way
        urllib3 leaks as a ``ValueError``.
    """
    url = base + path
    real = isinstance(http, urllib3.PoolManager)
    with _watchdog.bounded(seconds if real else None) as deadline:
        try:
            response = _request(
                http, method, url, params, json_body, headers, timeout, redirect, retries
            )
            if real:
                _watchdog.watch(getattr(response, "connection", None))
            try:
                on_headers(response)
                refuse_unwanted(response, url, max_bytes)
                _read_body(response, url, max_bytes, http)
            finally:
                if real:  # another request may take the connection once released
                    _watchdog.unwatch(getattr(response, "connection", None))
                # a test double written for 0.4.5 may lack it (compat §10.2)
                release = getattr(response, "release_conn", None)
                if release is not None:
                    release()
        except _transport.TRANSPORT_ERRORS as exc:
            if deadline is None or not deadline.expired:
                raise
            raise _timed_out(exc, url, seconds) from exc
        if deadline is not None and deadline.expired:
            # http.client takes an end of the stream within the headers for their end:
            # what was read before the watchdog shut the socket may be any part of it
            raise _timed_out(None, url, seconds)
    return response


def _request(
    http: Any,
    method: str,
    url: str,
    params: Any,
    json_body: bool,
    headers: dict[str, str],
    timeout: _transport.TimeoutValue,
    redirect: bool,
    retries: urllib3.Retry,
) -> Any:
    kw: dict[str, Any] = {
        "headers": headers,
        "timeout": timeout,
        "redirect": redirect,
        "retries": retries,
        "preload_content": False,
    }
    try:
        if json_body:
            headers["Content-Type"] = "application/json"
            return http.urlopen(method, url, body=json.dumps(params), **kw)
        if method == "GET" or method == "DELETE":
            if params or type(http) is not urllib3.PoolManager or "request" in vars(http):
                return http.request(method, url, fields=params, **kw)
            # what request() would do without fields, minus two calls
            return http.urlopen(method, url, **kw)
        return http.request_encode_body(method, url, fields=params, encode_multipart=False, **kw)
    except ValueError as exc:
        if not _from_urllib3(exc, http):
            raise
        # for example a redirect to an invalid URL, which urllib3 leaks as a ValueError
        raise EtcdBadResponse(
            f"urllib3 could not send {method} {url} or follow the answer: {exc}"
        ) from exc


def _read_body(response: Any, url: str, max_bytes: int | None, http: Any) -> None:
    """Read the body while its errors are transport errors, refusing it past *max_bytes*."""
    try:
        if type(response) is not HTTPResponse or response._body:
            response.data  # noqa: B018 - a double's body, or one read already
            return
        pieces = []
        size = 0
        while piece := response.read(_PIECE):
            size += len(piece)
            if max_bytes is not None and size > max_bytes:
                response.close()  # the rest is never read: the connection cannot be reused
                raise EtcdBadResponse(too_large(url, size, max_bytes))
            pieces.append(piece)
        response._body = b"".join(pieces)  # what ``data`` returns from now on
    except _transport.TRANSPORT_ERRORS as exc:
        _transport.remember_headers(exc, getattr(response, "headers", {}))
        raise
    except ValueError as exc:  # http.client's, for a negative chunk size
        if not _from_urllib3(exc, http):
            raise
        response.close()  # its connection is in an unknown state
        broken = urllib3.exceptions.ProtocolError(f"the answer broke HTTP: {exc}", exc)
        _transport.remember_headers(broken, getattr(response, "headers", {}))
        raise broken from exc


def _timed_out(exc: BaseException | None, url: str, seconds: float | None) -> Exception:
    """The timeout the watchdog caused, in place of the broken read it left behind."""
    new: Exception
    if exc is not None and _transport.in_connect(exc):
        new = urllib3.exceptions.ConnectTimeoutError(
            f"Connecting to {url} timed out. (connect timeout={seconds})"
        )
    else:
        new = urllib3.exceptions.ReadTimeoutError(
            None,  # type: ignore[arg-type]
            url,
            f"Read timed out. (the answer did not complete within {seconds} s)",
        )
    headers: Mapping[str, str] | None = None if exc is None else exc.__dict__.get("_etcd_headers")
    if headers is not None:
        _transport.remember_headers(new, headers)
    return new


def _from_urllib3(exc: ValueError, http: Any) -> bool:
    """Whether *exc* is a bare ValueError that urllib3 or http.client let through."""
    return isinstance(http, urllib3.PoolManager) and not isinstance(
        exc, (EtcdException, urllib3.exceptions.HTTPError)
    )
