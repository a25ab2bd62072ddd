"""A distributed mutual-exclusion lock on etcd's in-order keys.

Every contender for the lock *name* creates an in-order key below
``{client.lock_prefix}/{name}`` (a POST, so the server names the key with its
own, strictly increasing, index) and stores its :attr:`Lock.uuid` in it. The
contender whose key sorts first holds the lock. Every other contender watches
only the key just before its own, and looks again when that key changes or
disappears, so a release wakes exactly one waiter and no contender ever
polls::

    /_locks/jobs/00000000000000000041   holder
    /_locks/jobs/00000000000000000057   waits for ...041 to go
    /_locks/jobs/00000000000000000063   waits for ...057 to go

Its guarantees, and their limits:

* **Mutual exclusion** holds as long as every holder's key lives: a key is
  only removed by :meth:`Lock.release`, by a failed or timed-out acquire
  (which removes its own key), or by its TTL running out.
* **A TTL makes a crash harmless**: the key of a holder that died disappears
  at most ``lock_ttl`` seconds (plus the server's expiry lag of about half a
  second) after its last renewal, and the next waiter is woken at once.
* **A TTL cannot stop a paused holder.** A holder that is stopped (a long GC
  pause, a swapped-out VM, ``SIGSTOP``) for longer than its TTL loses its key
  without knowing it; when it resumes it may still act as the holder while a
  new holder acts too. No lock with a timeout can prevent that on its own.
* **The fencing token closes that gap.** :attr:`Lock.fencing_token` is the
  ``createdIndex`` of the holder's key, and it strictly increases from one
  holder to the next. Pass it along with every write to the resource the
  lock protects, and have the resource reject a token lower than the highest
  it has seen. The paused holder's late writes then fail, because the new
  holder's token is higher.
* **Renewal wakes nobody.** Renewing a held lock (``acquire`` again with a
  ``lock_ttl``, or ``auto_renew``) and a waiter keeping its own key alive use
  the server's ``refresh``, which fires no watcher.
* **Losing the lock is reported.** With ``auto_renew``, a renewal that finds
  the key gone (or cannot reach the server for a whole TTL) sets
  :attr:`Lock.lost` and calls ``on_lost``.
* **Not re-entrant.** Acquiring a lock this object already holds renews it
  and returns ``True``; one :meth:`Lock.release` releases it. Another
  :class:`Lock` object for the same name, even in the same thread, is another
  contender and waits.
* A :class:`Lock` object is meant to be used by one thread at a time; the
  client it uses may be shared.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid as _uuid_module
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from ._exceptions import (
    EtcdConnectionFailed,
    EtcdEventIndexCleared,
    EtcdException,
    EtcdInsufficientPermissions,
    EtcdKeyError,
    EtcdKeyNotFound,
    EtcdLockExpired,
    EtcdV2ApiDisabled,
    EtcdValueError,
    EtcdWatcherCleared,
    EtcdWatchTimedOut,
)
from ._result import EtcdResult
from .keepalive import KeepAlive, _call_then_set, _check_ttl

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Lock"]

log = logging.getLogger(__name__)

#: The TTL of the key of a lock taken with ``with`` when ``ttl`` was not given;
#: the key is refreshed every third of it for as long as the block runs.
CONTEXT_TTL = 30
#: Look-ups of our own key after a create whose answer was lost.
_FIND_ATTEMPTS = 3
#: Answers to a create that say it was refused, so that no key can exist.
_REFUSED = (EtcdKeyError, EtcdValueError, EtcdInsufficientPermissions, EtcdV2ApiDisabled)


class _Default:
    """The ``ttl`` that was not given (``None`` asks explicitly for no TTL)."""

    def __repr__(self) -> str:
        return "<default>"


_DEFAULT = _Default()


def _queue(client: Client, path: str) -> tuple[list[EtcdResult], int]:
    """The in-order keys directly below *path*, sorted, and the read's etcd index.

    In-order keys are zero-padded to 20 digits (etcd 2.2+), so sorting the
    names as text sorts them by creation.

    :raises etcd.EtcdKeyNotFound: *path* does not exist.
    """
    listing = client.read(path, recursive=True)
    parent = listing.key
    entries = [
        node
        for node in listing.leaves
        if not node.dir and node.key is not None and node.key.rpartition("/")[0] == parent
    ]
    entries.sort(key=lambda node: node.key or "")
    return entries, listing.etcd_index


def _name_of(key: str) -> str:
    return key.rpartition("/")[2]


class Lock:
    """A lock shared by every client of the cluster that uses the same name.

    :param client: the client to talk through; it may be shared.
    :param lock_name: the lock's name; its keys live below
        ``{client.lock_prefix}/{lock_name}``.
    :param ttl: the ``lock_ttl`` the context manager acquires with. When it
        is not given, the key gets a TTL of :data:`CONTEXT_TTL` (30) seconds
        and is refreshed in the background for as long as the ``with`` block
        runs, so the key of a process that dies inside the block disappears
        within 30 seconds. ``None`` asks explicitly for a key without TTL, as
        python-etcd 0.4.5 made, which stays until someone deletes it.
    :param auto_renew: after every successful acquire with a TTL, refresh the
        key in a background thread (every third of the TTL) until
        :meth:`release`, and report a failure through :attr:`lost`.
    :param on_lost: called with this lock, from the renewal thread, when
        ``auto_renew`` finds that the lock was lost.
    :raises etcd.EtcdTypeError: *ttl* is not an ``int``.
    :raises etcd.EtcdValueError: *ttl* is below 1.

    **When the TTL runs out under the holder** (it did not renew in time, or
    it was paused for longer than the TTL) the server deletes the key and the
    next waiter takes the lock. The old holder is not interrupted: with
    ``auto_renew`` it learns of the loss through :attr:`lost` and ``on_lost``
    as soon as its next renewal runs; without, :attr:`is_acquired` turns
    ``False``. Guard the protected resource with :attr:`fencing_token`.

    **The lock is not re-entrant**: acquiring it again while holding it
    renews it, and one :meth:`release` releases it.

    .. versionchanged:: 0.5.0
       The keyword-only parameters *ttl*, *auto_renew* and *on_lost* are new.
       A ``with`` block gives the key a TTL (renewed while the block runs)
       unless ``ttl=None`` is passed; python-etcd 0.4.5 gave it none.
    """

    def __init__(
        self,
        client: Client,
        lock_name: str,
        *,
        ttl: int | _Default | None = _DEFAULT,
        auto_renew: bool = False,
        on_lost: Callable[[Lock], object] | None = None,
    ) -> None:
        self.client = client
        self.name = lock_name
        self.path = f"{client.lock_prefix}/{lock_name}"
        self.is_taken = False
        self._uuid = _uuid_module.uuid4().hex
        self._sequence: str | None = None
        # A with block renews a key whose TTL the caller did not choose, so that
        # the block may last any time while a crashed holder's key still expires.
        self._renew_in_with = isinstance(ttl, _Default)
        self._ttl = (
            CONTEXT_TTL
            if isinstance(ttl, _Default)
            else (None if ttl is None else _check_ttl(ttl))
        )
        self._entering = False
        self._auto_renew = auto_renew
        self._on_lost = on_lost
        self._lock_ttl: int | None = None
        self._token: int | None = None
        self._renewer: KeepAlive | None = None
        # The (uuid, sequence) for which no key can exist: a fresh object, or
        # one whose key was deleted. acquire() then needs no look-up first.
        self._no_key_for: tuple[str, str | None] | None = (self._uuid, None)
        self._read_index: int | None = None
        #: Set when ``auto_renew`` found the lock lost; cleared by the next acquire.
        #:
        #: .. versionadded:: 0.5.0
        self.lost = threading.Event()
        #: The error that made ``auto_renew`` report the loss, or ``None``.
        #:
        #: .. versionadded:: 0.5.0
        self.renew_error: BaseException | None = None

    def __repr__(self) -> str:
        return f"<etcd.Lock {self.path!r} held={self.is_taken}>"

    # ------------------------------------------------------------------
    # Properties of python-etcd 0.4.5

    @property
    def uuid(self) -> str:
        """The value this lock stores in its key.

        Setting it adopts the key of another :class:`Lock` object (or process)
        that used this uuid.

        :raises ValueError: (on setting) no key of this lock holds the uuid;
            the old uuid is kept.
        """
        return self._uuid

    @uuid.setter
    def uuid(self, value: str) -> None:
        old = self._uuid
        self._uuid = value
        if not self._find_lock():
            self._uuid = old
            raise ValueError("Inexistent UUID")

    @property
    def lock_key(self) -> str:
        """The full key of this lock's in-order entry.

        :raises ValueError: there is no entry (never acquired).
        """
        if not self._sequence:
            raise ValueError("No sequence present.")
        return f"{self.path}/{self._sequence}"

    @property
    def is_acquired(self) -> bool:
        """Whether this object holds the lock and its key still exists.

        .. note::
           When the lock was taken, reading this property asks the server
           (one GET of :attr:`lock_key`), as in python-etcd 0.4.5.
        """
        if not self.is_taken:
            return False
        try:
            self.client.read(self.lock_key)
        except EtcdKeyNotFound:
            log.debug("The key of lock %s has gone", self.path)
            self.is_taken = False
            return False
        return True

    # ------------------------------------------------------------------
    # New in 0.5.0

    @property
    def fencing_token(self) -> int | None:
        """A number that strictly increases from one holder of the lock to the next.

        It is the ``createdIndex`` of the holder's key, ``None`` while this
        object does not hold the lock. Send it with every change to the
        resource the lock protects; the resource remembers the highest token
        it has accepted and refuses a lower one. That stops a holder that was
        paused past its TTL, and lost the lock without knowing, from
        overwriting the work of the next holder.

        .. versionadded:: 0.5.0
        """
        return self._token if self.is_taken else None

    @property
    def ttl(self) -> int | None:
        """The TTL the context manager acquires with.

        .. versionadded:: 0.5.0
        """
        return self._ttl

    # ------------------------------------------------------------------
    # Acquiring and releasing

    def acquire(
        self, blocking: bool = True, lock_ttl: int | None = 3600, timeout: float | None = 0
    ) -> bool:
        """Take the lock, waiting for it unless *blocking* is false.

        Calling it again while holding the lock renews the key's TTL (with a
        refresh, which wakes no waiter) and returns ``True``.

        While waiting with a *lock_ttl*, the waiter refreshes its own key at
        least every ``lock_ttl / 3`` seconds, so a TTL shorter than the wait
        is fine. A wait that fails for any reason (timeout, error, a
        :exc:`KeyboardInterrupt`) deletes this lock's queued key.

        When the answer to the creation of the key is lost (the connection
        broke after the request was sent, or the answer was garbled), the
        lock looks for its key by its :attr:`uuid`: a key found is used and
        the acquire goes on; otherwise the original error is raised, and a
        key created after all expires after its TTL.

        :param blocking: wait until the lock is free; otherwise give up at once.
        :param lock_ttl: seconds the key lives without renewal; ``None`` or
            ``0`` ask for a key without TTL, which stays if the process dies.
        :param timeout: the longest wait in seconds; ``0``, ``None`` or a
            negative value wait forever.
        :returns: ``True`` when the lock is held, ``False`` when *blocking* is
            false and another contender holds it.
        :raises etcd.EtcdWatchTimedOut: *timeout* seconds passed.
        :raises etcd.EtcdLockExpired: this lock's own key expired while waiting.
        :raises etcd.EtcdException: the server failed or refused a request.

        .. versionchanged:: 0.5.0
           A timeout really raises :exc:`etcd.EtcdWatchTimedOut`, a failed
           or timed-out attempt leaves no key behind, waiting is a loop that
           survives the server's history moving on, waiters keep their key
           alive, and renewing wakes nobody.
        """
        started = time.monotonic()
        self._stop_renewal()
        self.lost.clear()
        self.renew_error = None
        self._lock_ttl = lock_ttl or None
        self._enqueue(lock_ttl)
        remaining: float = 0
        if timeout is not None and timeout > 0:
            # The deadline counts from the call, not from the end of the enqueueing.
            remaining = max(timeout - (time.monotonic() - started), 1e-6)
        taken = self._acquired(blocking=blocking, timeout=remaining)
        renew = self._auto_renew or (self._entering and self._renew_in_with)
        if taken and renew and self._lock_ttl:
            self._start_renewal(self._lock_ttl)
        return taken

    def _enqueue(self, lock_ttl: int | None) -> None:
        """Create this lock's key, or renew it when it exists already."""
        if self._no_key_for != (self._uuid, self._sequence) and self._find_lock():
            if lock_ttl:
                try:
                    self.client.refresh(self.lock_key, ttl=lock_ttl)
                except EtcdKeyNotFound as exc:  # expired just now: queue again
                    log.debug("The key of lock %s expired before its renewal: %s", self.path, exc)
                else:
                    return
            else:
                return
        self._no_key_for = None  # from here on, a key may exist
        try:
            result = self.client.write(self.path, self._uuid, ttl=lock_ttl or None, append=True)
        except _REFUSED:
            raise  # the server said no: there is no key to look for
        except EtcdException as exc:
            if not self._find_own_key(exc):
                raise
            return
        self._token = result.createdIndex
        self._set_sequence(result.key or "")

    def _find_own_key(self, exc: EtcdException) -> bool:
        """After a create that failed, find out whether it created our key anyway.

        The answer may have been lost after the server applied the create (a
        connection cut after sending, a timeout, a garbled answer). The uuid
        is ours alone, so a key that holds it is the one the create made: it
        is used, and the caller's wait goes on as if the answer had come.

        :returns: whether the key was found (and adopted).
        """
        self._sequence = None
        for attempt in range(_FIND_ATTEMPTS):
            try:
                found = self._find_lock()
            except EtcdException as lookup:
                log.debug("Looking for the key of lock %s failed: %s", self.path, lookup)
                if not isinstance(lookup, EtcdConnectionFailed):
                    break
                time.sleep(0.1 * 2**attempt)
                continue
            if found:
                log.warning(
                    "The answer to the creation of lock %s's key was lost (%s); "
                    "found the key %s and using it",
                    self.path,
                    exc,
                    self.lock_key,
                )
                return True
            self._no_key_for = (self._uuid, None)  # the create did not happen
            return False
        log.warning(
            "Cannot tell whether the key of lock %s was created (%s); if it was, it "
            "expires after its TTL",
            self.path,
            exc,
        )
        return False

    def _acquired(self, blocking: bool = True, timeout: float | None = 0) -> bool:
        """Wait until this lock's key is the first one (step 3 of the algorithm).

        :param blocking: give up at once when another key is first.
        :param timeout: seconds; ``0``, ``None`` or a negative value: forever.
        :returns: whether the lock is held.
        :raises etcd.EtcdWatchTimedOut: *timeout* seconds passed.
        """
        deadline = None
        if timeout is not None and timeout > 0:
            deadline = time.monotonic() + timeout
        try:
            while True:
                first, predecessor = self._get_locker()
                if predecessor is None or first == self.lock_key:
                    self.is_taken = True
                    log.debug("Acquired lock %s with %s", self.path, self._sequence)
                    return True
                self.is_taken = False
                if not blocking:
                    self._drop_key()
                    return False
                if deadline is not None and time.monotonic() >= deadline:
                    raise EtcdWatchTimedOut(f"Lock {self.path} was not acquired in time")
                self._wait_for(predecessor, deadline)
        except BaseException:
            # A timeout, an error or an interrupt: leave the queue, so that
            # nobody waits behind a key whose owner has given up.
            self.is_taken = False
            self._drop_key(best_effort=True)
            raise

    def _wait_for(self, predecessor: EtcdResult, deadline: float | None) -> None:
        """Watch the key before ours once; return when it is time to look again."""
        lock_ttl = self._lock_ttl
        wait: float = 0  # client.watch: forever
        if deadline is not None:
            wait = max(deadline - time.monotonic(), 1e-3)
        if lock_ttl:
            wait = min(wait, lock_ttl / 3) if wait else lock_ttl / 3
        index = None
        if self._read_index is not None:
            # Nothing happened to the predecessor between its last change and
            # the read, and the read's index is never out of the history.
            index = self._read_index + 1
        elif predecessor.modifiedIndex is not None:
            index = predecessor.modifiedIndex + 1
        try:
            self.client.watch(predecessor.key or "", index=index, timeout=wait)
        except (EtcdKeyNotFound, EtcdWatcherCleared):
            pass  # gone before the watch started, or the server dropped it: look again
        except EtcdEventIndexCleared:
            pass  # read again, then watch from that read
        except EtcdWatchTimedOut:
            if deadline is not None and time.monotonic() >= deadline:
                return  # the loop raises the timeout
            if lock_ttl:
                # The TTL cap: keep our own key alive while we wait. A refresh
                # fires no watcher, so nobody behind us wakes up.
                try:
                    self.client.refresh(self.lock_key, ttl=lock_ttl)
                except EtcdKeyNotFound as exc:
                    raise EtcdLockExpired("Lock not found") from exc

    def _drop_key(self, *, best_effort: bool = False) -> None:
        """Delete our queued key and forget its sequence."""
        if not self._sequence:
            return
        try:
            self.client.delete(self.lock_key)
        except EtcdKeyNotFound:
            pass
        except EtcdException as exc:
            if not best_effort:
                raise
            log.warning("Could not delete the key of lock %s: %s", self.lock_key, exc)
            return
        self._sequence = None
        self._no_key_for = (self._uuid, None)

    def release(self) -> None:
        """Release the lock, or leave the queue; nothing happens without a key.

        :raises etcd.EtcdException: the delete failed.

        .. versionchanged:: 0.5.0
           Releasing without a key does nothing instead of raising ``ValueError``.
        """
        self._stop_renewal()
        if not self._sequence and self._no_key_for != (self._uuid, None):
            self._find_lock()
        if not self._sequence or self._no_key_for == (self._uuid, self._sequence):
            self.is_taken = False
            return
        try:
            self.client.delete(self.lock_key)
        except EtcdKeyNotFound:
            log.debug("The key of lock %s had gone already", self.lock_key)
        finally:
            self.is_taken = False
        # The sequence stays (lock_key still names the old key), but acquire()
        # knows that there is no key to look for.
        self._no_key_for = (self._uuid, self._sequence)

    def __enter__(self) -> Lock:
        self._entering = True
        try:
            self.acquire(blocking=True, lock_ttl=self._ttl)
        finally:
            self._entering = False
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        self.release()
        return False

    # ------------------------------------------------------------------
    # Internals kept under their python-etcd 0.4.5 names

    def _find_lock(self) -> bool:
        """Find this lock's key, by its sequence or else by its uuid.

        :returns: whether a key was found; its value becomes the uuid (with a
            sequence) or its name the sequence (without one).
        """
        if self._sequence:
            try:
                found = self.client.read(self.lock_key)
            except EtcdKeyNotFound:
                return False
            if found.value is not None:
                self._uuid = found.value
            self._token = found.createdIndex
            return True
        try:
            entries, _ = _queue(self.client, self.path)
        except EtcdKeyNotFound:
            return False
        for entry in entries:
            if entry.value == self._uuid:
                self._set_sequence(entry.key or "")
                self._token = entry.createdIndex
                return True
        return False

    def _get_locker(self) -> tuple[str, EtcdResult | None]:
        """Read the queue: the first key, and the entry just before ours.

        :returns: ``(first_key, None)`` when ours is first, else
            ``(first_key, predecessor)``.
        :raises etcd.EtcdLockExpired: our key is not in the queue.
        :raises etcd.EtcdKeyNotFound: the lock's directory does not exist.
        """
        entries, self._read_index = _queue(self.client, self.path)
        names = [_name_of(entry.key or "") for entry in entries]
        try:
            position = names.index(self._sequence or "")
        except ValueError:
            raise EtcdLockExpired("Lock not found") from None
        first = entries[0].key or ""
        if position == 0:
            return first, None
        return first, entries[position - 1]

    def _set_sequence(self, key: str) -> None:
        """Remember the in-order name of *key* (its last path segment)."""
        self._sequence = _name_of(key)

    # ------------------------------------------------------------------
    # Automatic renewal

    def _start_renewal(self, lock_ttl: int) -> None:
        renewer = KeepAlive(
            self.client, self.lock_key, None, ttl=lock_ttl, on_lost=self._renewal_lost
        )
        self._renewer = renewer
        renewer._begin(None, self._token)

    def _stop_renewal(self) -> None:
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.stop(delete=False)

    def _renewal_lost(self, renewer: KeepAlive) -> None:
        if renewer is not self._renewer:
            return
        self.renew_error = renewer.error
        self.is_taken = False
        _call_then_set(self._on_lost, self, self.lost)
