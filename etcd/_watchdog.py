"""One deadline per exchange when urllib3 sends the request (the fallback path).

The lean path (:mod:`etcd._wire`) shrinks its socket's timeout to what is
left of the exchange's deadline before every wait. urllib3 cannot be asked
to: its ``Timeout`` bounds each socket wait, so a server or proxy that sends a
byte now and then (headers that never end, endless ``100 Continue``, a body
at a few bytes a second) would keep a request going. For the requests urllib3
sends, :func:`bounded` arms a timer at the deadline; the client's connections
report themselves (:func:`watch`) while it runs, and when it fires it shuts
their sockets down, which ends whatever read or write is blocked on them.
The caller then asks :func:`expired` and reports a timeout.

Both paths also share :func:`shrink`, which gives a TLS handshake only what is
left of the deadline after the TCP connect, so that the two together cannot
take twice the timeout.

This module is a leaf: it imports nothing else from the package.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["Deadline", "bounded", "connected", "expired", "shrink", "unwatch", "watch"]

#: Where the lean path leaves its deadline on a connection it is about to connect.
DEADLINE_ATTR = "_etcd_deadline"


class Deadline:
    """The deadline of one exchange urllib3 sends, and the connections it used.

    :param seconds: how long the exchange may take.
    """

    __slots__ = ("_conns", "_lock", "at", "done", "expired", "queued", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self.done = False  # the exchange is over: the deadline no longer applies
        # 0: not in the watchdog's heap; 1: in it; 2: in it, disarmed and counted
        # as stale (guarded by the watchdog's lock)
        self.queued = 0
        self._conns: list[Any] = []
        self._lock = threading.Lock()

    def watch(self, conn: Any) -> None:
        """Shut *conn* down when the deadline passes (at once if it has)."""
        with self._lock:
            if not any(c is conn for c in self._conns):
                self._conns.append(conn)
            late = self.expired
        if late:
            _shut(conn)

    def unwatch(self, conn: Any) -> None:
        """Leave *conn* alone from now on: it goes back to its pool for others to use."""
        with self._lock:
            self._conns = [c for c in self._conns if c is not conn]

    def _expire(self) -> None:
        # Shutting a socket down does not block, so it is done under the lock:
        # once unwatch() or stop() returns, no connection of theirs is shut.
        with self._lock:
            if self.done:
                return
            self.expired = True
            for conn in self._conns:
                _shut(conn)

    def start(self) -> None:
        """Arm the deadline; without a watchdog thread, each socket wait stays bounded alone."""
        _WATCHDOG.arm(self)

    def stop(self) -> None:
        """Disarm the deadline; once this returns, it shuts no connection any more."""
        with self._lock:
            self.done = True
            self._conns.clear()
        _WATCHDOG.disarm(self)


#: How long the watchdog's thread waits for a new deadline before it ends.
_LINGER = 0.5


class _Watchdog:
    """One thread for every armed deadline, started on demand, ending when idle.

    A thread per request would cost more than the request; this one costs a
    heap push and a pop. Disarmed deadlines deep in the heap are dropped in
    bulk once they are the majority.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        # also in a forked child, which has no watchdog thread and may have been
        # forked while another thread held the lock
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Deadline]] = []
        self._seq = itertools.count()
        self._running = False
        self._wake_at = 0.0  # when the thread wakes up next, unless notified
        self._stale = 0

    def arm(self, deadline: Deadline) -> None:
        with self._cond:
            entry = (deadline.at, next(self._seq), deadline)
            heapq.heappush(self._heap, entry)
            deadline.queued = 1
            if not self._running:
                thread = threading.Thread(target=self._run, name="etcd-deadline", daemon=True)
                try:
                    thread.start()
                except RuntimeError as exc:  # no thread to be had (a limit, or shutdown)
                    self._heap.remove(entry)
                    heapq.heapify(self._heap)
                    deadline.queued = 0
                    log.warning("No deadline thread (%s): only each socket wait is bounded", exc)
                    return
                self._running = True  # the thread waits for this lock before it looks
            elif deadline.at < self._wake_at:  # sooner than the thread would look
                self._cond.notify()

    def disarm(self, deadline: Deadline) -> None:
        with self._cond:
            if deadline.queued != 1:
                return
            deadline.queued = 2
            self._stale += 1
            self._drop_done()
            heap = self._heap
            if self._stale > 64 and 2 * self._stale > len(heap):
                for _, _, entry in heap:
                    if entry.done:
                        entry.queued = 0
                self._heap = [entry for entry in heap if not entry[2].done]
                heapq.heapify(self._heap)
                self._stale = sum(entry[2].queued == 2 for entry in self._heap)

    def _drop_done(self) -> None:
        heap = self._heap
        while heap and heap[0][2].done:
            entry = heapq.heappop(heap)[2]
            self._stale -= entry.queued == 2
            entry.queued = 0

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            with self._cond:
                self._running = False

    def _serve(self) -> None:
        while True:
            with self._cond:
                while True:
                    self._drop_done()
                    if not self._heap:
                        self._wake_at = time.monotonic() + _LINGER
                        self._cond.wait(_LINGER)
                        self._drop_done()
                        if not self._heap:
                            return  # _run marks the thread gone, under this same lock
                        continue
                    left = self._heap[0][0] - time.monotonic()
                    if left <= 0:
                        deadline = heapq.heappop(self._heap)[2]
                        deadline.queued = 0
                        break
                    # look at least every _LINGER seconds, so that the thread ends
                    # soon after the last exchange, whatever deadline it had
                    left = min(left, _LINGER)
                    self._wake_at = time.monotonic() + left
                    self._cond.wait(left)
            deadline._expire()  # outside the lock: shutting sockets down may take a while


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WATCHDOG._reset)


_CURRENT: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "etcd_deadline", default=None
)


@contextlib.contextmanager
def bounded(seconds: float | None) -> Iterator[Deadline | None]:
    """Bound what urllib3 sends in this block by *seconds* (``None``: no bound).

    :returns: the :class:`Deadline`, whose ``expired`` tells a failure caused
        by the watchdog from another.
    """
    if seconds is None:
        yield None
        return
    deadline = Deadline(seconds)
    token = _CURRENT.set(deadline)
    try:
        deadline.start()
        yield deadline
    finally:
        _CURRENT.reset(token)
        deadline.stop()


def watch(conn: Any) -> None:
    """Put *conn* under the current deadline, if a request urllib3 sends has one."""
    deadline = _CURRENT.get()
    if deadline is not None and conn is not None:
        deadline.watch(conn)


def unwatch(conn: Any) -> None:
    """Take *conn* from the current deadline: it is going back to its pool."""
    deadline = _CURRENT.get()
    if deadline is not None:
        deadline.unwatch(conn)


def expired() -> bool:
    """Whether the current deadline has passed (and its connections were shut)."""
    deadline = _CURRENT.get()
    return deadline is not None and (deadline.expired or time.monotonic() >= deadline.at)


def connected(conn: Any) -> None:
    """Close *conn*, just connected, if the deadline passed while it connected.

    The watchdog may have fired before the connection had a socket to shut.

    :raises TimeoutError: the deadline passed.
    """
    if expired():
        conn.close()
        raise TimeoutError("the deadline of the exchange passed while connecting")


def shrink(conn: Any, sock: socket.socket) -> None:
    """Leave the TLS handshake that follows a TCP connect only what is left of the deadline.

    :raises TimeoutError: the deadline passed during the TCP connect (*sock* is closed).
    """
    at: float | None = conn.__dict__.pop(DEADLINE_ATTR, None)
    if at is None:
        current = _CURRENT.get()
        if current is None:
            return
        at = current.at
    left = at - time.monotonic()
    if left <= 0:
        sock.close()
        raise TimeoutError("the deadline of the exchange passed while connecting")
    timeout = sock.gettimeout()
    if timeout is None or left < timeout:
        sock.settimeout(left)


def _shut(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    raw = sock if isinstance(sock, socket.socket) else getattr(sock, "socket", None)
    if isinstance(raw, socket.socket):
        with contextlib.suppress(OSError):
            # socket.socket's own shutdown: an SSLSocket's would drop its TLS state
            # under the feet of the thread that is reading
            socket.socket.shutdown(raw, socket.SHUT_RDWR)
