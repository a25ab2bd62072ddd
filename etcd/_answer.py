"""The answer the lean path returns, and the refusals every path shares.

:class:`Response` has what compat §10.1 asks of a response (``status``,
``data`` as bytes, case-insensitive ``headers``, ``getheader()`` and
``release_conn()``) and the other parts of urllib3's response that callers
commonly use; :func:`refuse_unwanted` applies the client's refusals
(compressed answers, bodies over ``max_response_size``) to an answer urllib3
received.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._exceptions import EtcdBadResponse

__all__ = ["REDIRECTS", "Headers", "Response", "compressed", "refuse_unwanted", "too_large"]

#: The statuses whose ``Location`` a client follows.
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class Headers(dict[str, str]):
    """The headers of an answer, by lower-case name; lookups ignore case.

    Repeated headers are joined with ``", "``, as urllib3's ``HTTPHeaderDict`` does.
    """

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, name.lower(), default)

    def getlist(self, name: str) -> list[str]:
        """The values of *name*, split where repeats were joined."""
        value = dict.get(self, name.lower())
        return [] if value is None else [part.strip() for part in value.split(",")]


class Response:
    """An answer read by the lean path, with the parts of urllib3's response callers use.

    :ivar status: the HTTP status.
    :ivar reason: the reason phrase.
    :ivar version: ``11`` or ``10``, as urllib3 reports HTTP/1.1 and HTTP/1.0.
    :ivar headers: the headers (:class:`Headers`, case-insensitive).
    :ivar data: the whole body.
    """

    __slots__ = ("data", "headers", "reason", "status", "url", "version")

    def __init__(self, status: int, reason: str, version: int, headers: Headers, url: str) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.url = url
        self.data = b""

    def getheader(self, name: str, default: str | None = None) -> str | None:
        """The value of header *name* (any case), as python-etcd 0.4.5 read headers."""
        value: str | None = self.headers.get(name, default)
        return value

    def getheaders(self) -> Headers:
        return self.headers

    def get_redirect_location(self) -> str | bool | None:
        """The ``Location`` of a redirect, ``False`` for other statuses (as urllib3)."""
        if self.status in REDIRECTS:
            location: str | None = self.headers.get("location")
            return location
        return False

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.data)

    def release_conn(self) -> None:
        """Nothing to release: the connection went back to the pool with the last byte."""

    def drain_conn(self) -> None:
        """Nothing to drain: the body is read."""

    def close(self) -> None:
        """Nothing to close: the connection went back to the pool with the last byte."""

    @property
    def closed(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<etcd response {self.status} {self.reason} from {self.url}>"


def _declared_size(length: object) -> int:
    """A Content-Length as a number; -1 when absent or not plain decimal digits."""
    if isinstance(length, str) and (digits := length.strip()).isdecimal():
        return int(digits)
    return -1


def refuse_unwanted(response: Any, url: str, max_bytes: int | None) -> None:
    """Refuse, before its body is read, an answer urllib3 received that is compressed or
    announces a body over *max_bytes*; answers without headers (test doubles) pass.

    :raises EtcdBadResponse: the answer is refused; its connection is closed.
    """
    headers = getattr(response, "headers", None)
    if not isinstance(headers, Mapping):
        return
    problem = None
    encoding = headers.get("content-encoding")
    length = headers.get("content-length")
    if encoding and encoding.strip().lower() != "identity":
        problem = compressed(url, encoding)
    elif max_bytes is not None and _declared_size(length) > max_bytes:
        problem = too_large(url, _declared_size(length), max_bytes)
    if problem is None:
        return
    close = getattr(response, "close", None)
    if close is not None:
        close()  # the body is never read: the connection cannot be reused
    raise EtcdBadResponse(problem)


def compressed(url: str, encoding: str) -> str:
    return (
        f"{url} answered with a compressed body (Content-Encoding: {encoding[:40]}) "
        "although the client asks for none; it was refused unread, so that a small "
        "answer cannot inflate into a huge one. Check for a proxy between the client "
        "and etcd that compresses answers."
    )


def too_large(url: str, size: int, max_bytes: int | None) -> str:
    return (
        f"{url} answered with a body of {size} bytes or more, over the client's "
        f"max_response_size of {max_bytes} bytes; it was refused. Read less at once "
        "(a smaller subtree), or raise max_response_size."
    )
