"""Watching a key or a tree without losing events.

A :class:`Watcher` is an iterator of the changes of a key (or, with
``recursive=True``, of everything below it), each exactly once and in index
order::

    with client.watcher("/config", recursive=True) as watcher:
        for event in watcher:
            print(event.action, event.key, event.value)

What it survives, so that its caller does not have to:

* a long poll that times out: it watches again, and moves its index up to the
  server's ``X-Etcd-Index`` so that unrelated writes cannot push it out of the
  server's 1,000-event history while it waits;
* the server ending a long poll without an event (an empty body, or error 400
  "watcher cleared"): it watches again from the same index, at once the
  first time and after a growing, jittered wait (up to two seconds, logged at
  DEBUG) while the member keeps doing so, or keeps answering with events
  older than the index asked for, or keeps refusing the index in
  ``snapshots`` mode;
* a dropped, stale or silently dead connection (each poll is bounded by
  ``poll_timeout`` and the connection uses TCP keep-alive), and the member it
  watches dying: it retries with backoff and, with ``allow_reconnect``, fails
  over to another member, continuing from the same index.

What it cannot do is make the server keep history it has dropped. When the
next index has left the history (error 401), a watcher raises
:class:`etcd.EtcdEventIndexCleared` by default; with ``snapshots=True`` it
instead reads the key or tree again and yields a :class:`Snapshot` of it,
then continues with the events after the snapshot, so that a consumer that
applies snapshots and events always converges to the server's state.

Each watcher has a connection of its own, so long polls never take pooled
connections from the client's ordinary requests. :meth:`Watcher.stop` may be
called from any thread; the iteration then ends within a second.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from urllib3.connection import HTTPConnection

from . import _transport
from ._engine import Backoff
from ._exceptions import (
    EtcdConnectionFailed,
    EtcdEventIndexCleared,
    EtcdException,
    EtcdKeyNotFound,
    EtcdTypeError,
    EtcdValueError,
    EtcdWatcherCleared,
    EtcdWatchTimedOut,
)
from ._result import EtcdResult

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Snapshot", "Watcher"]

log = logging.getLogger(__name__)

#: The waits between retries of a failed long poll.
_RETRY = Backoff(first=0.05, maximum=2.0)


# The client's own generator: the global one is the application's (and a test
# framework may watch it for changes, as hypothesis does while it draws).
_JITTER = random.Random()


def _jittered(delay: float) -> float:
    """*delay* shortened by up to a half at random, so that many watchers of a
    failing member do not come back in step."""
    return delay * _JITTER.uniform(0.5, 1.0)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The whole state of the watched key or tree, read again.

    A watcher in ``snapshots=True`` mode yields one when the server's history
    has moved past it. Replace what you know with it; the events that follow
    are the changes after :attr:`index`.

    .. versionadded:: 0.5.0
    """

    #: The key or directory as read (recursively for a recursive watcher), or
    #: ``None`` when it does not exist.
    result: EtcdResult | None
    #: The etcd index the snapshot reflects.
    index: int


class _Sockets:
    """The sockets of one watcher, so that another thread can interrupt them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped = False
        self._connecting: set[socket.socket] = set()
        self._connections: list[HTTPConnection] = []

    def add_socket(self, sock: socket.socket) -> Callable[[], None]:
        # A TLS handshake replaces the socket object, so a duplicate of its
        # descriptor is what lets a stop interrupt a stalled connect.
        dup = sock.dup()
        with self._lock:
            self._connecting.add(dup)
            stopped = self._stopped
        if stopped:
            _shut(dup)

        def release() -> None:
            with self._lock:
                self._connecting.discard(dup)
            dup.close()

        return release

    def add_connection(self, conn: HTTPConnection) -> None:
        with self._lock:
            self._connections = [c for c in self._connections if c.sock is not None]
            self._connections.append(conn)
            stopped = self._stopped
        if stopped and conn.sock is not None:
            _shut(conn.sock)

    def interrupt(self) -> None:
        with self._lock:
            self._stopped = True
            sockets = [*self._connecting]
            sockets += [c.sock for c in self._connections if c.sock is not None]
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


class Watcher(Iterator["EtcdResult | Snapshot"]):
    """Every change of a key or tree, exactly once and in index order.

    Create one with :meth:`etcd.Client.watcher`.

    :param client: the client whose settings and members to use; the watcher
        makes its own connection.
    :param key: the key or directory to watch.
    :param recursive: also report changes below *key* (needed for a directory).
    :param index: the first etcd index to report; ``None`` starts with the
        next change.
    :param snapshots: when the server's history has moved past the watcher,
        yield a :class:`Snapshot` and go on instead of raising
        :class:`etcd.EtcdEventIndexCleared`.
    :param poll_timeout: the longest a single long poll may last, in seconds;
        a connection that died silently is noticed within it.

    Iterating yields :class:`etcd.EtcdResult` events (and, with *snapshots*,
    :class:`Snapshot` items) until :meth:`stop` is called.

    :raises etcd.EtcdEventIndexCleared: (from iteration, without *snapshots*)
        the next index has left the server's history; re-read the key and
        watch from the read's ``etcd_index + 1``.
    :raises etcd.EtcdClusterIdChanged: the members now belong to another
        cluster, whose indexes mean nothing to this watcher.

    .. versionadded:: 0.5.0
    """

    def __init__(
        self,
        client: Client,
        key: str,
        *,
        recursive: bool = False,
        index: int | None = None,
        snapshots: bool = False,
        poll_timeout: float = 30.0,
    ) -> None:
        if isinstance(poll_timeout, bool) or not isinstance(poll_timeout, (int, float)):
            raise EtcdTypeError(f"poll_timeout must be a number of seconds, not {poll_timeout!r}")
        if poll_timeout <= 0:
            raise EtcdValueError(f"poll_timeout must be positive, not {poll_timeout!r}")
        self._key = key
        self._recursive = recursive
        self._next_index = index or None
        self._snapshots = snapshots
        self._poll_timeout = poll_timeout
        self._stopped = threading.Event()
        # Polls in a row that brought no event (dropped, refused, failed):
        # the waits between them grow with it.
        self._streak = 0
        self._sockets = _Sockets()
        self._conn = client.clone()
        self._conn.http = _transport.pool_manager(
            {**client.http.connection_pool_kw, "maxsize": 1, "num_pools": 4},
            on_socket=self._sockets.add_socket,
            on_connected=self._sockets.add_connection,
        )

    @property
    def key(self) -> str:
        """The watched key."""
        return self._key

    @property
    def next_index(self) -> int | None:
        """The etcd index the next event will have at least; ``None`` until known."""
        return self._next_index

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopped.is_set()

    def stop(self) -> None:
        """End the iteration, from any thread; a waiting ``next()`` returns promptly."""
        self._stopped.set()
        self._sockets.interrupt()

    def close(self) -> None:
        """Stop and release the watcher's connection."""
        self.stop()
        self._conn.close()

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Watcher:
        return self

    def __next__(self) -> EtcdResult | Snapshot:
        need_snapshot = False
        while True:
            if self._stopped.is_set():
                self._conn.close()
                raise StopIteration
            try:
                if need_snapshot:
                    snapshot = self._snapshot()
                    # Snapshot after snapshot, with no event between them: the
                    # member keeps refusing the index; do not ask it in a loop.
                    self._no_event("was refused its index again")
                    return snapshot
                event = self._conn.watch(
                    self._key,
                    index=self._next_index,
                    timeout=self._poll_timeout,
                    recursive=self._recursive,
                )
            except EtcdWatchTimedOut as exc:
                if exc.etcd_index is not None:
                    # Nothing we wait for happened up to the index the poll started at.
                    self._next_index = max(self._next_index or 0, exc.etcd_index + 1)
                self._streak = 0  # a poll that lasted its bound: the member is sound
                continue
            except EtcdWatcherCleared:
                # The server dropped the long poll; ask again from the same index.
                self._no_event("ended without an event")
                continue
            except EtcdEventIndexCleared:
                if not self._snapshots:
                    raise
                need_snapshot = True
                continue
            except EtcdConnectionFailed as exc:
                if self._stopped.is_set():
                    continue
                self._streak += 1
                delay = _jittered(_RETRY.delay(self._streak))
                log.warning("Watch of %s failed, retrying in %.2fs: %s", self._key, delay, exc)
                self._stopped.wait(delay)
                continue
            modified = event.modifiedIndex
            floor = self._next_index
            if modified is not None and floor is not None and modified < floor:
                # An event before the index asked for: seen already.
                self._no_event(f"answered with an old event ({modified})")
                continue
            self._streak = 0
            if modified is None:
                return event
            self._next_index = modified + 1
            return event

    def _no_event(self, what: str) -> None:
        """Count an answer without a new event; wait before the next poll if
        they come in a row (the first is asked again at once)."""
        self._streak += 1
        delay = _jittered(_RETRY.delay(self._streak - 1))
        if delay:
            log.debug(
                "The watch of %s %s %d times in a row; waiting %.2fs before the next poll",
                self._key,
                what,
                self._streak,
                delay,
            )
            self._stopped.wait(delay)

    def _snapshot(self) -> Snapshot:
        try:
            result: EtcdResult | None = self._conn.read(self._key, recursive=self._recursive)
            index = result.etcd_index  # type: ignore[union-attr]
        except EtcdKeyNotFound as exc:
            result = None
            index = exc.payload.get("index") if isinstance(exc.payload, dict) else None
            if not isinstance(index, int):
                raise EtcdException(
                    f"Cannot take a snapshot of {self._key}: the server gave no index"
                ) from exc
        self._next_index = index + 1
        return Snapshot(result, index)
