"""Small helpers shared by the tests."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

import etcd

from .fakes import FakeServer, Responder


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll *condition* until it is true or *timeout* seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def raised(
    expected: type[etcd.EtcdException], call: Callable[..., Any], *args: Any, **kw: Any
) -> Any:
    """Call and return the exception it raises, which must be exactly of class *expected*."""
    with pytest.raises(etcd.EtcdException) as info:
        call(*args, **kw)
    assert type(info.value) is expected, f"{type(info.value)!r}: {info.value}"
    return info.value


def established_to(ports: set[int]) -> int:
    """Established TCP connections on this machine whose remote port is one of *ports*."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if int(fields[2].rsplit(":", 1)[1], 16) in ports and fields[3] == "01":
                count += 1
    return count


def consume_in_thread(items: Iterable[Any], out: queue.Queue[Any]) -> threading.Thread:
    """Iterate *items* in a daemon thread, putting each item on *out*.

    An exception is put on *out* too (for the test to assert on), and
    :class:`StopIteration` when the iteration has ended.
    """

    def run() -> None:
        try:
            for item in items:
                out.put(item)
        except Exception as exc:  # handed to the test, which asserts on it
            out.put(exc)
        out.put(StopIteration)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def call_in_thread(
    call: Callable[..., Any], *args: Any, **kwargs: Any
) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``call(*args, **kwargs)`` in a daemon thread.

    The returned dict gets ``"result"`` (or ``"error"``, for the test to assert
    on) and ``"at"``, the ``time.monotonic()`` at which the call ended.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call(*args, **kwargs)
        except Exception as exc:  # handed to the test, which asserts on it
            outcome["error"] = exc
        outcome["at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@contextlib.contextmanager
def serving(
    *answers: Responder, default: Responder | None = None, **client_kwargs: Any
) -> Iterator[tuple[FakeServer, etcd.Client]]:
    """A fake server scripted with *answers* (then *default*) and a client of it."""
    with (
        FakeServer(*answers, default=default) as fake,
        etcd.Client(host="127.0.0.1", port=fake.port, **client_kwargs) as client,
    ):
        yield fake, client
