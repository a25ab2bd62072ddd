"""The key-space API of :class:`etcd.Client`: ``read``, ``write``, ``delete`` and
the verbs built on them, as in python-etcd 0.4.5.

:class:`KeySpace` is a base class of ``Client``. Each verb checks its
arguments as 0.4.5 did, describes the call once as an immutable
:class:`~etcd._engine.KeyCall` and hands it to ``self._key_protocol`` (the
v2 protocol of :mod:`etcd._v2` unless the client was made with ``api="v3"``).
The option sets ``_comparison_conditions``, ``_read_options`` and
``_del_conditions`` are the client's, consulted at call time (compat §10.1).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, cast

from ._checks import (
    NoPreviousNode,
    check_key,
    check_options,
    check_result,
    check_text,
    check_ttl,
    unsendable,
)
from ._engine import UNSET, Backoff, KeyCall
from ._exceptions import (
    EtcdException,
    EtcdKeyNotFound,
    EtcdNotDir,
    EtcdTypeError,
    EtcdValueError,
    EtcdWatcherCleared,
)
from ._result import EtcdResult

if TYPE_CHECKING:
    from ._engine import KeyProtocol
    from .client import Client
    from .watch import Watcher

__all__ = ["KeySpace"]

log = logging.getLogger(__name__)

# Keywords of write and delete that are not sent as parameters (compat §4.2).
_WRITE_EXTRAS = frozenset({"timeout", "idempotent", "_endpoint"})
_DELETE_EXTRAS = frozenset({"timeout", "idempotent"})
# The jitter of watch retries has its own generator: the global one is the application's.
_JITTER = random.Random()


def _as_client(mixin: KeySpace) -> Client:
    return cast("Client", mixin)


class KeySpace:
    """The 0.4.5 key-space verbs of :class:`etcd.Client`."""

    if TYPE_CHECKING:
        _comparison_conditions: ClassVar[set[str]]
        _read_options: ClassVar[set[str]]
        _del_conditions: ClassVar[set[str]]
        _key_protocol: KeyProtocol

    def _execute(self, call: KeyCall) -> EtcdResult:
        try:
            return self._key_protocol.execute(_as_client(self), call)
        except UnicodeEncodeError as exc:  # a condition such as prevValue='\ud800'
            raise unsendable(exc) from exc

    def _sanitize_key(self, key: str) -> str:
        """Normalise *key*: one leading slash, no runs of slashes.

        :raises EtcdTypeError: *key* is not a string.
        :raises EtcdValueError: *key* has a ``.`` or ``..`` segment, which etcd
            would resolve to another key, or a lone surrogate.
        """
        if not isinstance(key, str):
            raise EtcdTypeError(f"keys must be str, not {type(key).__name__} ({key!r})")
        if "." in key or not key.isascii():
            check_key(key)
        if "//" in key:
            trailing = key.endswith("/")
            key = "/".join(part for part in key.split("/") if part)
            if trailing and key:
                key += "/"
        if not key.startswith("/"):
            key = "/" + key
        return key

    def _option_names(self) -> set[str]:
        """Every option of the key-space methods, as the option sets say at call time."""
        return self._comparison_conditions | self._read_options | self._del_conditions

    def __contains__(self, key: str) -> bool:
        """``key in client``: whether the key exists.

        ``False`` also when the key cannot exist because one of its parents is
        a file, not a directory (where python-etcd 0.4.5 raised
        :class:`etcd.EtcdNotDir`).
        """
        try:
            self.get(key)
        except (EtcdKeyNotFound, EtcdNotDir):
            return False
        return True

    def write(
        self,
        key: str,
        value: Any,
        ttl: int | None = None,
        dir: bool = False,
        append: bool = False,
        **kwdargs: Any,
    ) -> EtcdResult:
        """Write a key or create a directory.

        :param key: the key.
        :param value: the value, sent as ``str(value)``; ``None`` sends none.
        :param ttl: seconds until the key expires; ``0`` is sent as is.
        :param dir: create a directory.
        :param append: create an in-order key below *key* (POST).
        :param kwdargs: the conditions ``prevValue``, ``prevIndex``,
            ``prevExist`` and ``refresh``; ``timeout`` in seconds (0: none);
            ``idempotent=True`` lets a failed write be re-sent to another member.
        :returns: the written node; ``newKey`` says whether it was created.
        :raises EtcdCompareFailed: a ``prevValue``/``prevIndex`` condition failed.
        :raises EtcdAlreadyExist: ``prevExist=False`` and the key exists.
        :raises EtcdKeyNotFound: ``prevExist=True`` and the key is missing.
        :raises EtcdNotFile: *key* is a directory.
        :raises EtcdValueError: *ttl* is negative, a float or a bool (checked
            before anything is sent).
        :raises EtcdTypeError: an option resembles a condition without being
            one (``prevvalue=``, ``prev_exist=``); nothing was sent. Other
            unknown keywords are ignored, as in python-etcd 0.4.5.

        .. versionchanged:: 0.5.0
           A near-miss of an option name raises :class:`etcd.EtcdTypeError`;
           ``timeout`` and ``idempotent`` are new.
        """
        options = self._comparison_conditions
        if kwdargs and not kwdargs.keys() <= options:
            check_options("write", kwdargs, options | _WRITE_EXTRAS, self._option_names())
        if ttl is not None and (type(ttl) is not int or ttl < 0):
            ttl = check_ttl(ttl)
        if dir and value:
            raise EtcdException("Cannot create a directory with a value")
        call = KeyCall(
            "write",
            self._sanitize_key(key),
            {name: option for name, option in kwdargs.items() if name in options},
            value=None if value is None else self._value(value),
            ttl=ttl,
            dir=bool(dir),
            append=bool(append),
            timeout=kwdargs.get("timeout", UNSET),
            idempotent=bool(kwdargs.get("idempotent")),
            endpoint=kwdargs.get("_endpoint"),
        )
        return self._execute(call)

    @staticmethod
    def _value(value: Any) -> Any:
        if isinstance(value, (bytes, bytearray)):
            try:
                return bytes(value).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise EtcdValueError(
                    "etcd v2 stores text: decode the bytes, or encode binary data "
                    f"(for example with base64) before writing it ({exc})"
                ) from exc
        if type(value) is str and not value.isascii():
            check_text(value, "value")
        return value

    def update(self, obj: EtcdResult) -> EtcdResult:
        """Write back an edited result, only if the key has not changed since.

        :param obj: a result from :meth:`read`, with ``value`` or ``ttl`` edited.
        :raises EtcdCompareFailed: the key changed after *obj* was read.
        :raises EtcdRaftInternalError: *obj* is a directory and the server is
            etcd 3.5, which cannot update directories.
        :raises EtcdTypeError: *obj* is not an :class:`etcd.EtcdResult` (the
            error is also an :class:`AttributeError`, as in python-etcd 0.4.5).
        """
        check_result(obj, EtcdResult)
        kwdargs: dict[str, Any] = {"prevExist": True}
        if not obj.dir:
            # A directory has no index condition: the server answers "Not a file".
            kwdargs["prevIndex"] = obj.modifiedIndex
        return self.write(obj.key, obj.value, dir=obj.dir, ttl=obj.ttl, **kwdargs)  # type: ignore[arg-type]

    def read(self, key: str, **kwdargs: Any) -> EtcdResult:
        """Read a key or a directory.

        :param key: the key.
        :param kwdargs: ``recursive``, ``sorted``, ``quorum``, ``wait`` and
            ``waitIndex`` (see :meth:`watch`), and ``timeout`` in seconds
            (``None``: the client's ``read_timeout``; 0: none).
        :raises EtcdKeyNotFound: the key does not exist.
        :raises EtcdWatchTimedOut: a ``wait`` saw no change in time.
        :raises EtcdEventIndexCleared: ``waitIndex`` has left the server's history.
        :raises EtcdTypeError: an option resembles a read option without
            being one (``recursve=``); other unknown keywords are ignored.
        """
        options: dict[str, Any] = {}
        if kwdargs:
            allowed = self._read_options
            if not kwdargs.keys() <= allowed:
                check_options("read", kwdargs, allowed | {"timeout"}, self._option_names())
            options = {
                name: value
                for name, value in kwdargs.items()
                if name in allowed and value is not None
            }
        call = KeyCall("read", self._sanitize_key(key), options, timeout=kwdargs.get("timeout"))
        return self._execute(call)

    def get(self, key: str) -> EtcdResult:
        """The same as :meth:`read` without options."""
        return self.read(key)

    def delete(
        self,
        key: str,
        recursive: bool | None = None,
        dir: bool | None = None,
        **kwdargs: Any,
    ) -> EtcdResult:
        """Delete a key or a directory.

        :param key: the key.
        :param recursive: delete a directory and everything below it.
        :param dir: delete an empty directory.
        :param kwdargs: the conditions ``prevValue`` and ``prevIndex``;
            ``timeout``; ``idempotent=True`` lets a failed delete be re-sent.
        :returns: the deleted node, with the old one in ``_prev_node``.
        :raises EtcdKeyNotFound: the key does not exist.
        :raises EtcdCompareFailed: a condition failed.
        :raises EtcdDirNotEmpty: a non-recursive delete of a non-empty directory.
        :raises EtcdTypeError: ``prevExist``, which a delete cannot honour, or
            an option that resembles a condition without being one; other
            unknown keywords are ignored.
        """
        options = self._del_conditions
        if kwdargs and not kwdargs.keys() <= options:
            check_options("delete", kwdargs, options | _DELETE_EXTRAS, self._option_names())
        call = KeyCall(
            "delete",
            self._sanitize_key(key),
            {name: option for name, option in kwdargs.items() if name in options},
            dir=dir,
            recursive=recursive,
            timeout=kwdargs.get("timeout", UNSET),
            idempotent=bool(kwdargs.get("idempotent")),
        )
        return self._execute(call)

    def pop(
        self, key: str, recursive: bool | None = None, dir: bool | None = None, **kwdargs: Any
    ) -> EtcdResult:
        """Delete a key and return what it held.

        :returns: the deleted node as it was before.
        :raises EtcdException: the server's answer has no previous node; the
            error is also an :class:`AttributeError`, which python-etcd 0.4.5
            raised for such an answer.
        """
        result = self.delete(key, recursive=recursive, dir=dir, **kwdargs)
        try:
            return result._prev_node
        except AttributeError:
            raise NoPreviousNode(
                f"The server deleted {key!r} but sent no previous node (prevNode) in its "
                "answer, so pop() has no old value to return.",
                {"action": result.action, "key": result.key},
            ) from None

    def set(self, key: str, value: Any, ttl: int | None = None) -> EtcdResult:
        """Write *value* to *key* unconditionally."""
        return self.write(key, value, ttl=ttl)

    def test_and_set(
        self, key: str, value: Any, prev_value: Any, ttl: int | None = None
    ) -> EtcdResult:
        """Write *value* only if the key holds *prev_value* (compare-and-swap).

        :raises EtcdCompareFailed: the key holds another value.
        """
        return self.write(key, value, prevValue=prev_value, ttl=ttl)

    def refresh(self, key: str, ttl: int, **kwdargs: Any) -> EtcdResult:
        """Reset the TTL of an existing key without changing it or waking watchers.

        :raises EtcdKeyNotFound: the key does not exist (it may have expired).
        """
        kwdargs.pop("prevExist", None)
        return self.write(key, None, ttl=ttl, refresh=True, prevExist=True, **kwdargs)

    def watch(
        self,
        key: str,
        index: int | None = None,
        timeout: float | None = None,
        recursive: bool | None = None,
    ) -> EtcdResult:
        """Wait for the next change of *key*, or the first one at *index* or later.

        :param key: the key or directory to watch.
        :param index: the first etcd index to report; falsy means "from now".
        :param timeout: seconds to wait; ``None`` is the client's
            ``read_timeout`` and ``0`` waits forever.
        :param recursive: also report changes below *key* (needed for a directory).
        :returns: the change.
        :raises EtcdWatchTimedOut: nothing changed in time.
        :raises EtcdEventIndexCleared: *index* has left the server's history.
        """
        if index:
            return self.read(key, wait=True, waitIndex=index, timeout=timeout, recursive=recursive)
        return self.read(key, wait=True, timeout=timeout, recursive=recursive)

    def eternal_watch(
        self, key: str, index: int | None = None, recursive: bool | None = None
    ) -> Iterator[EtcdResult]:
        """Yield every change of *key* from *index* on, forever.

        A watch the server dropped (an empty answer, or error 400) is asked
        again from the same index: at once the first time, then after a
        growing, jittered wait (up to a second) while the server keeps dropping
        it, logged at DEBUG. A connection that died silently is noticed
        by TCP keep-alive and raised as :class:`etcd.EtcdConnectionFailed`.
        :meth:`watcher` also survives that, and a dying member.

        :raises EtcdEventIndexCleared: the next index has left the server's history.
        """
        local_index = index
        dropped = 0  # watches in a row that the server ended without an event
        backoff = Backoff(first=0.05, maximum=1.0)
        while True:
            try:
                response = self.watch(key, index=local_index, timeout=0, recursive=recursive)
            except EtcdWatcherCleared:
                # The server dropped the watch: ask again from the same index, at
                # once the first time, then after a growing, jittered wait, so
                # that a member that drops every watch is not asked in a loop.
                delay = backoff.delay(dropped) * _JITTER.uniform(0.5, 1.0)
                dropped += 1
                if delay:
                    log.debug(
                        "The server ended the watch of %s without an event %d times in a "
                        "row; waiting %.2fs before watching again",
                        key,
                        dropped,
                        delay,
                    )
                    time.sleep(delay)
                continue
            dropped = 0
            if response.modifiedIndex is not None:
                local_index = response.modifiedIndex + 1
            yield response

    def watcher(
        self,
        key: str,
        *,
        recursive: bool = False,
        index: int | None = None,
        snapshots: bool = False,
        poll_timeout: float = 30.0,
    ) -> Watcher:
        """Watch *key* for every change, exactly once and in order.

        See :class:`etcd.watch.Watcher` for what it survives and guarantees.

        :param key: the key or directory to watch.
        :param recursive: also report changes below *key*.
        :param index: the first etcd index to report; ``None`` is the next change.
        :param snapshots: yield a :class:`etcd.watch.Snapshot` and go on when the
            server's history has moved past the watcher, instead of raising
            :class:`etcd.EtcdEventIndexCleared`.
        :param poll_timeout: the longest one long poll lasts, in seconds.
        :returns: an iterator of events that is also a context manager.

        .. versionadded:: 0.5.0
        """
        from .watch import Watcher

        return Watcher(
            _as_client(self),
            key,
            recursive=recursive,
            index=index,
            snapshots=snapshots,
            poll_timeout=poll_timeout,
        )
