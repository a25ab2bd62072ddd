"""The v3 protocol behind the client's protocol seam.

:class:`V3KeySpace` implements :class:`etcd._engine.KeyProtocol`: it carries a
:class:`~etcd._engine.KeyCall` out with :class:`etcd._v3.V3Protocol`, whose
requests (a lease grant, then a transaction, ...) each go through
``client._v3_send`` and so through :func:`etcd._engine.send`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._engine import IDEMPOTENT, UNSET, KeyCall, _Unset
from ._exceptions import raise_for_body
from ._result import EtcdResult
from ._v3 import V3Protocol

if TYPE_CHECKING:
    from .client import Client

__all__ = ["V3KeySpace"]


def _v3_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


class V3KeySpace:
    """The client's protocol seam (:class:`etcd._engine.KeyProtocol`) over :class:`V3Protocol`.

    Each request of an operation goes through ``client._v3_send``, which
    sends it with :func:`etcd._engine.send`.
    """

    name = "v3"

    def __init__(self, v3: V3Protocol) -> None:
        self.v3 = v3

    def execute(self, client: Client, call: KeyCall) -> EtcdResult:
        """Carry out *call* over the gateway."""
        token = IDEMPOTENT.set(True) if call.idempotent else None
        try:
            return self._execute(client, call)
        finally:
            if token is not None:
                IDEMPOTENT.reset(token)

    def _execute(self, client: Client, call: KeyCall) -> EtcdResult:
        timeout = None if call.timeout is UNSET else call.timeout
        assert not isinstance(timeout, _Unset)
        options = call.options
        if call.op == "write":
            return self.v3.write(
                client,
                call.key,
                call.value,
                ttl=call.ttl,
                dir=bool(call.dir),
                append=call.append,
                conditions=dict(options),
                timeout=timeout,
            )
        if call.op == "delete":
            return self.v3.delete(
                client,
                call.key,
                recursive=bool(call.recursive),
                dir=bool(call.dir),
                conditions=dict(options),
                timeout=timeout,
            )
        if _v3_true(options.get("wait")):
            from ._v3_watch import watch_once

            index = options.get("waitIndex")
            if index is not None and not str(index).isdigit():
                raise_for_body(
                    400,
                    b'{"errorCode":203,"message":"The given index in POST form is not a number",'
                    b'"cause":"invalid value for \\"waitIndex\\"","index":0}',
                )
            return watch_once(
                self.v3,
                client,
                call.key,
                index=int(index) if index is not None else None,
                timeout=timeout,
                recursive=_v3_true(options.get("recursive")),
            )
        return self.v3.read(
            client,
            call.key,
            recursive=_v3_true(options.get("recursive")),
            quorum=_v3_true(options.get("quorum")),
            timeout=timeout,
        )
