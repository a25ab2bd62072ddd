"""The urllib3 side of the client: pool settings, timeouts and transport errors.

This is the only module that looks inside urllib3's exceptions. Every failure
of a request is sorted into one of three kinds, which decide what the client
may do next (compat §4.7):

* :data:`WATCH_TIMEOUT`: a watch saw nothing before its timeout;
* :data:`NOT_SENT`: the request never reached a server, so it can be sent elsewhere;
* :data:`SENT`: the server may have acted on it, so only an idempotent request
  may be sent again.
"""

from __future__ import annotations

import enum
import http.client
import logging
import ssl
from collections.abc import Mapping
from typing import Any

import urllib3
import urllib3.exceptions

__all__ = [
    "TRANSPORT_ERRORS",
    "FailureKind",
    "classify",
    "describe",
    "etcd_index_of",
    "make_pool_manager",
    "no_retries",
    "remember_headers",
    "resolve_timeout",
]

log = logging.getLogger("etcd.client")

#: Everything that can go wrong between us and a server, below HTTP statuses.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)

TimeoutValue = urllib3.Timeout | float | None


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

    :param exc: an exception from :data:`TRANSPORT_ERRORS`.
    :param watching: the request was a long poll (``wait=true``).
    """
    root = _root(exc)
    if watching and isinstance(root, (urllib3.exceptions.ReadTimeoutError, TimeoutError)):
        return FailureKind.WATCH_TIMEOUT
    if isinstance(
        root,
        (
            urllib3.exceptions.ConnectTimeoutError,  # NewConnectionError and name errors too
            urllib3.exceptions.SSLError,
            urllib3.exceptions.ProxyError,
            urllib3.exceptions.LocationParseError,
            ConnectionRefusedError,
            ssl.SSLError,
        ),
    ):
        return FailureKind.NOT_SENT
    return FailureKind.SENT


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


def describe(exc: BaseException) -> str:
    """A short text for an error, without urllib3's wrapping."""
    root = _root(exc)
    return f"{type(root).__name__}: {root}"


def resolve_timeout(timeout: float | None, read_timeout: float) -> TimeoutValue:
    """Turn a legacy timeout argument into what urllib3 takes.

    ``None`` means the client's ``read_timeout`` (no timeout when that is 0),
    ``0`` means no timeout at all, and a positive number bounds both the
    connect and the read.
    """
    if timeout is None:
        timeout = read_timeout
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
    return urllib3.PoolManager(**kw)
