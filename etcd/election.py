"""Leader election: one leader at a time among the candidates of a name.

An election is the queue of :mod:`etcd.lock` with values: each candidate
creates an in-order key below ``{client.lock_prefix}/_elections/{name}`` that
holds its *value* (an address, a host name ...), and the candidate whose key
sorts first is the leader. Every candidate keeps its key alive with a TTL
refreshed in the background (see :class:`etcd.KeepAlive`), so when the leader
resigns, crashes or is cut off, its key goes and the next candidate leads::

    election = etcd.Election(client, "scheduler", value="host-1:8080", ttl=10)
    with election:                       # campaigns; returns once leading
        run_scheduler(until=election.lost)
    # resigned

    print(etcd.Election(client, "scheduler").leader())   # "host-1:8080" or None

The same limits as for a TTL lock apply: a leader paused for longer than its
TTL is replaced without knowing it until it resumes, when :attr:`Election.lost`
is set. Pass :attr:`Election.fencing_token`, which increases from one leader
to the next, to whatever the leader acts on, so that a stale leader's
actions can be refused.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ._exceptions import (
    EtcdEventIndexCleared,
    EtcdException,
    EtcdKeyNotFound,
    EtcdLockExpired,
    EtcdValueError,
    EtcdWatcherCleared,
    EtcdWatchTimedOut,
)
from .keepalive import KeepAlive, _call_then_set, _check_ttl
from .lock import _name_of, _queue

if TYPE_CHECKING:
    from .client import Client
    from .watch import Watcher

__all__ = ["Election", "LeaderObserver"]

log = logging.getLogger(__name__)


class Election:
    """The candidates for leadership of *name*, as seen by one of them.

    :param client: the client to talk through; it may be shared.
    :param name: the election's name; its keys live below
        ``{client.lock_prefix}/_elections/{name}``.
    :param value: what this candidate publishes while it leads (its address,
        say); the default for :meth:`campaign` and the context manager.
    :param ttl: seconds a candidate's key lives without a refresh; a leader
        that dies is replaced within about this long.
    :param on_lost: called with this election, from the background thread,
        when the candidate's key is lost while campaigning or leading.
    :raises etcd.EtcdTypeError: *ttl* is not an ``int``.
    :raises etcd.EtcdValueError: *ttl* is below 1.

    As a context manager it campaigns on entry (blocking until it leads) and
    resigns on exit. One object campaigns once at a time; it is meant to be
    used by one thread, while :meth:`leader` and :meth:`observe` may be used
    from anywhere.

    .. versionadded:: 0.5.0
    """

    def __init__(
        self,
        client: Client,
        name: str,
        *,
        value: Any = None,
        ttl: int = 10,
        on_lost: Callable[[Election], object] | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self.path = f"{client.lock_prefix}/_elections/{name}"
        self.value = value
        self._ttl = _check_ttl(ttl)
        self._on_lost = on_lost
        self._key: str | None = None
        self._token: int | None = None
        self._leading = False
        self._keepalive: KeepAlive | None = None
        #: Set when the candidate's key was lost (expired, deleted, or the
        #: server unreachable for a whole TTL); cleared by the next campaign.
        self.lost = threading.Event()
        #: The error that made the candidate lose its key, or ``None``.
        self.error: BaseException | None = None

    def __repr__(self) -> str:
        state = "leader" if self.is_leader else ("candidate" if self._key else "idle")
        return f"<etcd.Election {self.path!r} {state}>"

    @property
    def ttl(self) -> int:
        """The TTL of the candidate's key, in seconds."""
        return self._ttl

    @property
    def is_leader(self) -> bool:
        """Whether this candidate won and has not resigned or lost its key (no I/O)."""
        return self._leading and not self.lost.is_set()

    @property
    def key(self) -> str | None:
        """The candidate's key while campaigning or leading, else ``None``."""
        return self._key

    @property
    def fencing_token(self) -> int | None:
        """A number that strictly increases from one leader to the next.

        The ``createdIndex`` of the leader's key while :attr:`is_leader`, else
        ``None``. See :attr:`etcd.Lock.fencing_token` for how to use it.
        """
        return self._token if self.is_leader else None

    def campaign(self, value: Any = None, *, timeout: float | None = None) -> None:
        """Become a candidate and wait until this candidate leads.

        :param value: the value to publish; the constructor's *value* when ``None``.
        :param timeout: the longest wait in seconds; ``None`` waits forever.
        :raises etcd.EtcdValueError: there is no value, or *timeout* is not positive.
        :raises RuntimeError: this object is campaigning or leading already
            (after a loss, campaigning again is allowed).
        :raises etcd.EtcdWatchTimedOut: *timeout* passed; the candidacy is withdrawn.
        :raises etcd.EtcdLockExpired: the candidate's key was lost while waiting.
        :raises etcd.EtcdException: the server failed or refused a request.

        Whatever ends the wait early (a timeout, an error, an interrupt)
        withdraws the candidacy.
        """
        if value is None:
            value = self.value
        if value is None:
            raise EtcdValueError("campaign() needs a value (or give one to Election())")
        if timeout is not None and not timeout > 0:
            raise EtcdValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if self._key is not None and self.lost.is_set():
            self._resign(best_effort=True)  # the old candidacy is over anyway
        if self._key is not None:
            raise RuntimeError("this Election is campaigning or leading already; resign first")
        deadline = None if timeout is None else time.monotonic() + timeout
        self.lost.clear()
        self.error = None
        created = self.client.write(self.path, value, ttl=self._ttl, append=True)
        self._key = created.key
        self._token = created.createdIndex
        keepalive = KeepAlive(
            self.client, created.key or "", None, ttl=self._ttl, on_lost=self._candidate_lost
        )
        self._keepalive = keepalive
        keepalive._begin(created.modifiedIndex, created.createdIndex)
        try:
            self._wait_until_first(deadline)
        except BaseException:
            self._resign(best_effort=True)
            raise
        self._leading = True
        log.debug("%s leads %s", self._key, self.path)

    def _wait_until_first(self, deadline: float | None) -> None:
        sequence = _name_of(self._key or "")
        while True:
            if self.lost.is_set():
                raise EtcdLockExpired(f"The candidate key {self._key} was lost") from self.error
            entries, index = _queue(self.client, self.path)
            names = [_name_of(entry.key or "") for entry in entries]
            if sequence not in names:
                raise EtcdLockExpired(f"The candidate key {self._key} has gone")
            position = names.index(sequence)
            if position == 0:
                return
            # Look again at least once a TTL, to notice a lost key of our own.
            wait = float(self._ttl)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise EtcdWatchTimedOut(f"Not elected leader of {self.path} in time")
                wait = min(wait, remaining)
            predecessor = entries[position - 1]
            # Gone already, time to check, or the history moved on: read again.
            with contextlib.suppress(
                EtcdKeyNotFound, EtcdWatchTimedOut, EtcdEventIndexCleared, EtcdWatcherCleared
            ):
                # Nothing happened to the predecessor after the read.
                self.client.watch(predecessor.key or "", index=index + 1, timeout=wait)

    def _candidate_lost(self, keepalive: KeepAlive) -> None:
        if keepalive is not self._keepalive:
            return
        self.error = keepalive.error
        log.warning("Lost the candidacy %s: %s", self._key, keepalive.error)
        _call_then_set(self._on_lost, self, self.lost)

    def resign(self) -> None:
        """Stop leading (or campaigning): delete the candidate's key.

        The next candidate leads at once. Nothing happens when this object is
        not a candidate.

        :raises etcd.EtcdException: the delete failed; the key then expires
            after its TTL, since it is no longer refreshed.
        """
        self._resign(best_effort=False)

    def _resign(self, *, best_effort: bool) -> None:
        keepalive, self._keepalive = self._keepalive, None
        key, self._key = self._key, None
        self._leading = False
        if keepalive is not None:
            keepalive.stop(delete=False)
        if key is None:
            return
        try:
            self.client.delete(key)
        except EtcdKeyNotFound:
            pass
        except EtcdException as exc:
            if not best_effort:
                raise
            log.warning("Could not delete the candidate key %s: %s", key, exc)

    def leader(self) -> Any:
        """Ask the server for the current leader's value.

        :returns: the value of the leading candidate, or ``None`` when there
            is no candidate.
        """
        return _current_leader(self.client, self.path)[1]

    def observe(self, *, poll_timeout: float = 30.0) -> LeaderObserver:
        """Follow the leadership: the current leader's value, then each change.

        :param poll_timeout: the longest one long poll lasts, in seconds.
        :returns: an iterator of leader values (``None`` while there is no
            leader); stop it with :meth:`LeaderObserver.stop` (from any
            thread) or by leaving its ``with`` block.
        """
        return LeaderObserver(self.client, self.path, poll_timeout=poll_timeout)

    def __enter__(self) -> Election:
        self.campaign()
        return self

    def __exit__(self, *exc: object) -> None:
        self.resign()


def _current_leader(client: Client, path: str) -> tuple[str | None, Any, int]:
    """The leader's key and value (``None`` and ``None`` when there is none), and the index."""
    try:
        entries, index = _queue(client, path)
    except EtcdKeyNotFound as exc:
        index = int(exc.payload["index"]) if isinstance(exc.payload, dict) else 0
        return None, None, index
    if not entries:
        return None, None, index
    return entries[0].key, entries[0].value, index


class LeaderObserver(Iterator[Any]):
    """The leader's value, then every change of leader, of one election.

    Created by :meth:`Election.observe`. The first item is the current
    leader; each further item is the value of a new leader, or ``None`` when
    the last candidate has gone. A leader followed by another candidate with
    the same value is reported again.

    .. versionadded:: 0.5.0
    """

    def __init__(self, client: Client, path: str, *, poll_timeout: float = 30.0) -> None:
        self._client = client
        self._path = path
        self._poll_timeout = poll_timeout
        self._stopped = threading.Event()
        self._watcher: Watcher | None = None
        self._leader_key: str | None = None

    def __iter__(self) -> LeaderObserver:
        return self

    def __next__(self) -> Any:
        if self._stopped.is_set():
            raise StopIteration
        watcher = self._watcher
        if watcher is None:
            key, value, index = _current_leader(self._client, self._path)
            self._leader_key = key
            self._watcher = self._client.watcher(
                self._path,
                recursive=True,
                index=index + 1,
                snapshots=True,
                poll_timeout=self._poll_timeout,
            )
            if self._stopped.is_set():  # stopped while the watcher was made
                self._watcher.stop()
            return value
        for _ in watcher:
            # Any change below the election: read who leads now.
            key, value, _ = _current_leader(self._client, self._path)
            if key != self._leader_key:
                self._leader_key = key
                return value
        raise StopIteration

    def stop(self) -> None:
        """End the iteration, from any thread; a waiting ``next()`` returns promptly."""
        self._stopped.set()
        if self._watcher is not None:
            self._watcher.stop()

    def close(self) -> None:
        """Stop, and release the watcher's connection."""
        self.stop()
        if self._watcher is not None:
            self._watcher.close()

    def __enter__(self) -> LeaderObserver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
