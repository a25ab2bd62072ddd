"""Keys that live exactly as long as the process that keeps them.

A :class:`KeepAlive` writes a key with a TTL and refreshes it in a background
thread, so that the key disappears by itself within one TTL once its process
dies, hangs or loses the network. This is what service registration needs::

    with etcd.KeepAlive(client, "/services/api/host-1", "10.0.0.7:8080", ttl=10) as alive:
        serve_forever(until=alive.lost)

The refreshes use the server's ``refresh=true`` update, which keeps the value
and the key's ``createdIndex`` and **wakes no watcher**: keeping a key alive
costs its watchers nothing.

What it reports instead of swallowing:

* the key disappeared (it expired, or someone deleted it) or someone else
  wrote it: :attr:`KeepAlive.lost` is set, :attr:`KeepAlive.error` holds the
  :class:`etcd.EtcdKeyNotFound` (or :class:`etcd.EtcdCompareFailed`) and the
  ``on_lost`` callback runs. The key is **not** written again unless
  ``recreate=True`` was given;
* no refresh succeeded for a whole TTL: the key must be assumed expired, so
  the same happens with the last error.

Any other failed refresh (the network, a member without a leader, an error
of the server such as a refused permission, an answer that is not what etcd
sends) is retried with backoff (from 50 ms up to the refresh interval) and
recorded in :attr:`KeepAlive.error` and the ``etcd.keepalive`` log while the
key may still be alive.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._engine import Backoff
from ._exceptions import (
    EtcdCompareFailed,
    EtcdException,
    EtcdKeyError,
    EtcdKeyNotFound,
    EtcdTypeError,
    EtcdValueError,
)

if TYPE_CHECKING:
    from ._result import EtcdResult
    from .client import Client

__all__ = ["KeepAlive"]

log = logging.getLogger(__name__)

#: The first retry after a failed refresh, in seconds; it doubles up to the interval.
_RETRY_FIRST = 0.05

#: Errors after which the key may still be alive: the server was unreachable,
#: leaderless, or timed out inside raft.
# A refresh that hangs must not hold up stop() (and a lock's release) for long.
_REFRESH_TIMEOUT_MAX = 5.0
#: Errors that say the key is gone (expired, deleted, or replaced by another
#: writer's); any other failed refresh is retried within the TTL.
_GONE = (EtcdKeyError, EtcdCompareFailed)


def _delay(failures: int, interval: float) -> float:
    """The wait before the next refresh: the interval, or a backoff after failures."""
    if failures == 0:
        return interval
    return Backoff(first=_RETRY_FIRST, maximum=interval).delay(failures)


def _check_ttl(ttl: object, what: str = "ttl") -> int:
    """Return *ttl* if it is a whole number of seconds of at least 1.

    :raises etcd.EtcdTypeError: *ttl* is not an ``int``.
    :raises etcd.EtcdValueError: *ttl* is below 1.
    """
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise EtcdTypeError(f"{what} must be a whole number of seconds, not {ttl!r}")
    if ttl < 1:
        raise EtcdValueError(f"{what} must be at least 1 second, not {ttl}")
    return ttl


def _call_then_set(
    callback: Callable[[Any], object] | None, arg: Any, event: threading.Event
) -> None:
    """Run a loss callback, then set the event: whoever waits on the event sees its effects."""
    try:
        if callback is not None:
            callback(arg)
    except Exception:
        log.exception("The on_lost callback %r failed", callback)
    finally:
        event.set()


class KeepAlive:
    """Write a key with a TTL and keep refreshing it until stopped.

    :param client: the client to write and refresh through; it may be shared.
    :param key: the key to keep alive.
    :param value: the value written by :meth:`start` (sent as ``str(value)``).
    :param ttl: the key's time to live, in whole seconds. The key disappears at
        most this long after the process stops refreshing it (plus the
        server's expiry lag, about half a second).
    :param interval: seconds between refreshes; ``ttl / 3`` by default. It must
        be shorter than *ttl*.
    :param recreate: when the key has disappeared or someone else has written
        it, write it again instead of reporting it lost. Watchers then see a
        new ``set`` event.
    :param on_lost: called with this object, from the background thread, when
        the key is lost and the helper stops.
    :raises etcd.EtcdTypeError: *ttl* is not an ``int``.
    :raises etcd.EtcdValueError: *ttl* is below 1, or *interval* is not between 0
        and *ttl*.

    Use it as a context manager (``__enter__`` calls :meth:`start`,
    ``__exit__`` calls :meth:`stop`), or call the two yourself. One object
    keeps one key alive once; it is not restartable.

    .. versionadded:: 0.5.0
    """

    def __init__(
        self,
        client: Client,
        key: str,
        value: Any,
        *,
        ttl: int,
        interval: float | None = None,
        recreate: bool = False,
        on_lost: Callable[[KeepAlive], object] | None = None,
    ) -> None:
        self._ttl = _check_ttl(ttl)
        if interval is None:
            interval = ttl / 3
        if not 0 < interval < ttl:
            raise EtcdValueError(f"interval must be between 0 and ttl ({ttl}), not {interval!r}")
        self._client = client
        self._key = key
        self._value = value
        self._interval = float(interval)
        self._recreate = recreate
        self._on_lost = on_lost
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._index: int | None = None
        self._created: int | None = None
        self._written: str | None = None  # the value as the server stored it
        #: Set when the key is lost: it expired, was deleted or was written by
        #: someone else (and *recreate* is off), or no refresh succeeded for a
        #: whole TTL. It is set after *on_lost* has returned.
        self.lost = threading.Event()
        #: The last refresh error, transient or final; ``None`` until one happens.
        self.error: BaseException | None = None
        #: How many times *recreate* wrote the key again after it had disappeared.
        self.recreated = 0

    @property
    def key(self) -> str:
        """The key kept alive."""
        return self._key

    @property
    def ttl(self) -> int:
        """The TTL in seconds."""
        return self._ttl

    @property
    def interval(self) -> float:
        """Seconds between refreshes."""
        return self._interval

    @property
    def running(self) -> bool:
        """Whether the background thread is refreshing the key."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def __repr__(self) -> str:
        state = "lost" if self.lost.is_set() else ("running" if self.running else "idle")
        return f"<etcd.KeepAlive {self._key!r} ttl={self._ttl} {state}>"

    def start(self) -> EtcdResult:
        """Write the key with its TTL, then refresh it in a background thread.

        :returns: the result of the write.
        :raises RuntimeError: the helper was started before.
        :raises etcd.EtcdException: the write failed; no thread is started.
        """
        if self._thread is not None:
            raise RuntimeError("this KeepAlive was started already")
        result = self._client.write(self._key, self._value, ttl=self._ttl)
        self._written = result.value
        self._begin(result.modifiedIndex, result.createdIndex)
        return result

    def _begin(self, index: int | None, created: int | None) -> None:
        """Refresh a key that exists already (used by the lock and election recipes).

        :param index: the key's ``modifiedIndex``; ``None`` makes the first
            refresh unconditional.
        :param created: the key's ``createdIndex``, which tells our key from
            one someone else wrote at the same place.
        """
        if self._thread is not None:
            raise RuntimeError("this KeepAlive was started already")
        self._index = index
        self._created = created
        self._thread = threading.Thread(
            target=self._run, name=f"etcd-keepalive {self._key}", daemon=True
        )
        self._thread.start()

    def stop(self, *, delete: bool = True) -> None:
        """Stop refreshing, and by default delete the key.

        The background thread ends within the time one refresh may take. The
        key is deleted only if it is still the one this helper last wrote or
        refreshed, so a key someone else has written since stays.

        :param delete: delete the key (otherwise it expires after its TTL).
        :raises etcd.EtcdException: the delete failed for another reason than
            the key being gone or changed.
        """
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        if not delete or self._index is None or self.lost.is_set():
            return
        # Expired meanwhile, or someone else's key now: leave it.
        with contextlib.suppress(EtcdKeyNotFound, EtcdCompareFailed):
            self._client.delete(self._key, prevIndex=self._index)
        self._index = None

    def __enter__(self) -> KeepAlive:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------
    # The background thread

    def _run(self) -> None:
        failures = 0
        last_ok = time.monotonic()
        while not self._stop.wait(_delay(failures, self._interval)):
            try:
                self._refresh_once()
            except _GONE as exc:  # the key expired or was deleted, or is someone else's
                self.error = exc
                self._lose(exc)
                return
            except EtcdException as exc:
                # Failed, refused or garbled: the key may well be alive, so
                # try again until a whole TTL has passed since the last refresh.
                self.error = exc
                failures += 1
                if self._recreate or time.monotonic() - last_ok < self._ttl:
                    log.warning("Refreshing %s failed, retrying: %s", self._key, exc)
                    continue
                # A whole TTL without a refresh: the server has expired the key.
                self._lose(exc)
                return
            except BaseException as exc:
                self.error = exc
                self._lose(exc)
                raise
            failures = 0
            last_ok = time.monotonic()

    def _refresh_once(self) -> None:
        # Bounded, so that an unanswered refresh cannot outlive the TTL;
        # re-sending a refresh to another member is harmless.
        timeout = min(max(self._interval, 0.5), _REFRESH_TIMEOUT_MAX)
        condition = {} if self._index is None else {"prevIndex": self._index}
        try:
            # prevIndex: never keep alive a key that someone else has written since.
            result = self._client.refresh(
                self._key, ttl=self._ttl, timeout=timeout, idempotent=True, **condition
            )
        except EtcdCompareFailed as exc:
            result = self._changed(exc, timeout)
        except EtcdKeyNotFound as exc:
            result = self._write_again(exc, timeout)
        self._index = result.modifiedIndex

    def _changed(self, exc: EtcdCompareFailed, timeout: float) -> EtcdResult:
        """The key changed since the last refresh: by our own re-sent refresh, or a writer."""
        try:
            current = self._client.read(self._key, timeout=timeout)
        except EtcdKeyNotFound as gone:
            return self._write_again(gone, timeout)
        if (
            self._created is not None
            and current.createdIndex == self._created
            and (self._value is None or current.value == self._written)
        ):
            # Still our key: a refresh keeps createdIndex and the value; a plain
            # write changes createdIndex, a compare-and-swap the value.
            return current
        return self._write_again(exc, timeout)

    def _write_again(self, exc: EtcdException, timeout: float) -> EtcdResult:
        """Write the key again if *recreate* allows it, else raise *exc*."""
        if not self._recreate:
            raise exc
        self.error = exc
        log.warning("%s had disappeared or changed; writing it again", self._key)
        result = self._client.write(self._key, self._value, ttl=self._ttl, timeout=timeout)
        self._created = result.createdIndex
        self._written = result.value
        self.recreated += 1
        return result

    def _lose(self, exc: BaseException) -> None:
        if self._stop.is_set():
            return  # stopped meanwhile: nobody relies on the key any more
        log.warning("Lost %s: %s", self._key, exc)
        _call_then_set(self._on_lost, self, self.lost)
