"""Token authentication over the v3 gateway.

With a user and a password, the client asks ``/v3/auth/authenticate`` once for
a token and sends it in a bare ``Authorization`` header (``Bearer`` is
refused). A token the server no longer knows (an idle simple token expires
after ``--auth-token-ttl``) is forgotten, and the refused request is sent
once more with a new one.

A token is kept for the user name and password it was issued for: after
``client.username`` or ``client.password`` changes, the next request
authenticates again with the new ones. A client and its clones share one
:class:`Tokens`, which is safe because of that tie (a clone given other
credentials gets a token of its own) and saves a clone the costly
authentication when its credentials are the same.
"""

from __future__ import annotations

import contextvars
import hashlib
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from ._exceptions import EtcdException

__all__ = ["Sender", "Tokens"]

_authenticating: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "etcd_v3_authenticating", default=False
)


class Sender(Protocol):
    """What the protocol needs from the client: one way to send a gateway request."""

    def _v3_send(
        self,
        endpoint: str,
        body: Mapping[str, Any],
        *,
        idempotent: bool,
        timeout: float | None,
        ranges: bool = False,
    ) -> dict[str, Any]: ...


def _is_auth_off(exc: EtcdException) -> bool:
    payload = exc.payload if isinstance(exc.payload, Mapping) else {}
    return payload.get("grpcCode") == 9 and "not enabled" in str(payload.get("cause", ""))


def _credentials(username: str, password: str) -> bytes:
    """What a token is kept under: a digest of both, rather than the password itself."""
    pair = f"{len(username)}:{username}{password}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(pair).digest()


class Tokens:
    """The tokens of one client and its clones, one per user name and password."""

    #: Credentials kept at most; a client that keeps changing them starts afresh.
    _MAX_KEPT = 8

    def __init__(self) -> None:
        # credentials -> token; "": the server has auth off; missing: not asked yet
        self._tokens: dict[bytes, str] = {}
        self._lock = threading.Lock()

    def headers(self, io: Sender, username: str | None, password: str | None) -> dict[str, str]:
        """The ``Authorization`` header for *username*, authenticating first if needed."""
        if username is None or password is None or _authenticating.get():
            return {}
        key = _credentials(username, password)
        token = self._tokens.get(key)
        if token is None:
            token = self._authenticate(io, username, password)
            with self._lock:
                if len(self._tokens) >= self._MAX_KEPT:
                    self._tokens.clear()
                self._tokens[key] = token
        return {"authorization": token} if token else {}

    def _authenticate(self, io: Sender, username: str, password: str) -> str:
        flag = _authenticating.set(True)  # the authenticate request itself has no token
        try:
            answer = io._v3_send(
                "/v3/auth/authenticate",
                {"name": username, "password": password},
                idempotent=True,
                timeout=None,
            )
            token = answer.get("token")
            token = token if isinstance(token, str) else ""
        except EtcdException as exc:
            if not _is_auth_off(exc):
                raise
            token = ""  # auth is off: send no token
        finally:
            _authenticating.reset(flag)
        return token

    def forget(self) -> None:
        """Drop every token: the next request authenticates again."""
        with self._lock:
            self._tokens.clear()

    def renew(self, exc: EtcdException) -> bool:
        """Forget the token after *exc*; whether a new one may help (retry once)."""
        payload = exc.payload if isinstance(exc.payload, Mapping) else {}
        code = payload.get("grpcCode")
        message = str(payload.get("cause", "")).lower()
        renewable = ("user name is empty", "auth store is old")  # not yet, or stale
        if code == 16 or (code == 3 and any(reason in message for reason in renewable)):
            self.forget()
            return True
        return False
