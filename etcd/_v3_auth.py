"""Token authentication over the v3 gateway.

With a user and a password, the client asks ``/v3/auth/authenticate`` once for
a token and sends it in a bare ``Authorization`` header (``Bearer`` is
refused). A token the server no longer knows (an idle simple token expires
after ``--auth-token-ttl``) is forgotten, and the refused request is sent
once more with a new one.
"""

from __future__ import annotations

import contextvars
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
        self, endpoint: str, body: Mapping[str, Any], *, idempotent: bool, timeout: float | None
    ) -> dict[str, Any]: ...


def _is_auth_off(exc: EtcdException) -> bool:
    payload = exc.payload if isinstance(exc.payload, Mapping) else {}
    return payload.get("grpcCode") == 9 and "not enabled" in str(payload.get("cause", ""))


class Tokens:
    """The token of one client (and its clones)."""

    def __init__(self) -> None:
        # None: not asked yet; "": the server has auth off
        self._token: str | None = None

    def headers(self, io: Sender, username: str | None, password: str | None) -> dict[str, str]:
        """The ``Authorization`` header for *username*, authenticating first if needed."""
        if username is None or password is None or _authenticating.get():
            return {}
        token = self._token
        if token is None:
            token = self._authenticate(io, username, password)
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
        self._token = token
        return token

    def forget(self) -> None:
        """Drop the token: the next request authenticates again."""
        self._token = None

    def renew(self, exc: EtcdException) -> bool:
        """Forget the token after *exc*; whether a new one may help (retry once)."""
        payload = exc.payload if isinstance(exc.payload, Mapping) else {}
        code = payload.get("grpcCode")
        message = str(payload.get("cause", "")).lower()
        renewable = ("user name is empty", "auth store is old")  # not yet, or stale
        if code == 16 or (code == 3 and any(reason in message for reason in renewable)):
            self._token = None
            return True
        return False
