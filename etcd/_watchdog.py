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
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["Deadline", "bounded", "connected", "expired", "shrink", "watch"]

#: Where the lean path leaves its deadline on a connection it is about to connect.
DEADLINE_ATTR = "_etcd_deadline"


class Deadline:
    """The deadline of one exchange urllib3 sends, and the connections it used.

    :param seconds: how long the exchange may take.
    """

    __slots__ = ("_conns", "_lock", "_timer", "at", "expired", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._conns: list[Any] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.name = "etcd-deadline"
        self._timer.daemon = True

    def watch(self, conn: Any) -> None:
        """Shut *conn* down when the deadline passes (at once if it has)."""
        with self._lock:
            if not any(c is conn for c in self._conns):
                self._conns.append(conn)
            late = self.expired
        if late:
            _shut(conn)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            conns = list(self._conns)
        for conn in conns:
            _shut(conn)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        """Disarm the timer and wait for its thread, so that no thread outlives the call."""
        self._timer.cancel()
        if self._timer.is_alive():
            self._timer.join()
        with self._lock:
            self._conns.clear()


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
    deadline.start()
    try:
        yield deadline
    finally:
        _CURRENT.reset(token)
        deadline.stop()


def watch(conn: Any) -> None:
    """Put *conn* under the current deadline, if a request urllib3 sends has one."""
    deadline = _CURRENT.get()
    if deadline is not None and conn is not None:
        deadline.watch(conn)


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
