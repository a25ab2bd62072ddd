"""The v2 protocol: a key-space call to ``/v2/keys`` HTTP and back.

:class:`V2` carries out a :class:`~etcd._engine.KeyCall` with exactly one call
of ``client.api_execute(path, method, params=..., timeout=...)``, made
through the client so that a subclass or a test double that replaces
``api_execute`` (or ``http``) sees it with the arguments python-etcd 0.4.5
used (compat §4.2, §10.1), and turns the answer into an
:class:`~etcd.EtcdResult` through ``client._result_from_response``.

Another protocol implements the same ``execute(client, call)`` (see
:class:`~etcd._engine.KeyProtocol`).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import TYPE_CHECKING, Any

from . import _engine
from ._exceptions import EtcdWatcherCleared

if TYPE_CHECKING:
    import urllib3

    from ._engine import KeyCall
    from ._result import EtcdResult
    from .client import Client

__all__ = ["PROTOCOL", "V2", "encode_option", "quote_key"]

_TRUE_FALSE = {True: "true", False: "false"}
# The options of python-etcd 0.4.5's option sets, whose bools are sent as true/false.
_OWN_OPTIONS = frozenset(
    {"prevValue", "prevIndex", "prevExist", "refresh", "recursive", "wait", "waitIndex"}
    | {"sorted", "quorum"}
)
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.~/-]*")


def quote_key(key: str) -> str:
    """Percent-quote each segment of a normalised key (compat §11 a)."""
    if _PLAIN_KEY.fullmatch(key):
        return key  # nothing to quote: the common case, kept cheap
    return "/".join(urllib.parse.quote(part, safe="") for part in key.split("/"))


def encode_option(name: str, value: Any) -> Any:
    """A bool of the 0.4.5 options as ``"true"``/``"false"``; anything else as given.

    Options a subclass added to the option sets pass through unchanged.
    """
    if isinstance(value, bool) and name in _OWN_OPTIONS:
        return _TRUE_FALSE[value]
    return value


class V2:
    """The etcd v2 keys API."""

    name = "v2"

    def execute(self, client: Client, call: KeyCall) -> EtcdResult:
        """Carry out *call* through ``client.api_execute``."""
        path = (call.endpoint or client.key_endpoint) + quote_key(call.key)
        params: dict[str, Any]
        if call.op == "read":
            params = {name: encode_option(name, value) for name, value in call.options.items()}
            timeout = None if call.timeout is _engine.UNSET else call.timeout
            response = client.api_execute(path, client._MGET, params=params, timeout=timeout)
            if params.get("wait") == "true" and not response.data.strip():
                raise EtcdWatcherCleared(
                    "The server ended the watch without an event (it drops watchers that "
                    "fall behind); watch again from the same index",
                    {"errorCode": 400, "status": response.status},
                )
            return client._result_from_response(response)
        params = {}
        if call.op == "write":
            if call.value is not None:
                params["value"] = call.value
            if call.ttl is not None:
                params["ttl"] = call.ttl
            if call.dir:
                params["dir"] = "true"
            for name, option in call.options.items():
                params[name] = encode_option(name, option)
            method = client._MPOST if call.append else client._MPUT
        else:
            if call.recursive is not None:
                params["recursive"] = _TRUE_FALSE[bool(call.recursive)]
            if call.dir is not None:
                params["dir"] = _TRUE_FALSE[bool(call.dir)]
            params.update(call.options)
            method = client._MDELETE
        return client._result_from_response(self._send(client, path, method, params, call))

    @staticmethod
    def _send(
        client: Client, path: str, method: str, params: dict[str, Any], call: KeyCall
    ) -> urllib3.BaseHTTPResponse:
        token = _engine.IDEMPOTENT.set(True) if call.idempotent else None
        try:
            if call.timeout is _engine.UNSET:
                return client.api_execute(path, method, params=params)
            return client.api_execute(path, method, params=params, timeout=call.timeout)
        finally:
            if token is not None:
                _engine.IDEMPOTENT.reset(token)


#: The protocol a client uses unless told otherwise.
PROTOCOL = V2()
