"""Watch loops against a member that never delivers: they back off instead of spinning.

A member that answers every long poll at once with an empty body, with
error 400 ("watcher cleared"), with an event older than the index asked for,
or with error 401 in ``snapshots`` mode, used to make ``eternal_watch`` and
``Watcher`` send 850 to 2,200 requests per second. Each test lets a loop run
against such a member for a fixed window and counts the requests the member
received: with a capped backoff (1 s for ``eternal_watch``, 2 s for
``Watcher``) only a handful fit in the window, whatever the machine's speed.
"""

from __future__ import annotations

import logging
import queue
import random
import time
from typing import Any

import pytest

import etcd

from .fakes import FakeServer, Reply, Request, Responder, dropped_watch
from .helpers import consume_in_thread

#: How long each loop runs against the member. Without backoff, thousands of
#: requests fit in it; with it, about ten (0, 0.05, 0.1 ... then the cap).
WINDOW = 2.0
#: The most requests the backoff allows in WINDOW, with room for the jitter
#: shortening each wait by up to a half.
MOST = 25

CLEARED = Reply.etcd({"errorCode": 400, "message": "watcher is cleared", "index": 6}, 400)
OUTDATED = Reply.etcd(
    {"errorCode": 401, "message": "The event in requested index is outdated", "index": 90}, 400
)


def _event(index: int) -> dict[str, Any]:
    node = {"key": "/w", "value": str(index), "modifiedIndex": index, "createdIndex": index}
    return {"action": "set", "node": node}


DROPPING = {
    "empty-body": dropped_watch(index=6),
    "error-400": CLEARED,
}


def _polls(fake: FakeServer) -> list[Request]:
    return [r for r in fake.requests if r.params.get("wait") == ["true"]]


@pytest.mark.parametrize("answer", DROPPING.values(), ids=DROPPING.keys())
def test_eternal_watch_backs_off_from_a_member_that_drops_every_watch(answer, caplog):
    caplog.set_level(logging.DEBUG, logger="etcd")
    with FakeServer(default=answer) as fake:
        client = etcd.Client(port=fake.port)
        out: queue.Queue[Any] = queue.Queue()
        thread = consume_in_thread(client.eternal_watch("/w", index=7), out)
        time.sleep(WINDOW)  # the measuring window, not a synchronisation
        sent = len(_polls(fake))
    # Closing the member ends the loop with a connection error.
    thread.join(10)
    assert not thread.is_alive()
    assert 3 <= sent < MOST, sent
    assert isinstance(out.get_nowait(), etcd.EtcdConnectionFailed)
    assert all(r.params["waitIndex"] == ["7"] for r in fake.requests)
    assert any("without an event" in r.getMessage() for r in caplog.records)


def test_eternal_watch_asks_again_at_once_after_one_dropped_watch(caplog):
    # The backoff must not slow down the usual case: one drop, then an event.
    caplog.set_level(logging.DEBUG, logger="etcd")
    with FakeServer(dropped_watch(index=6), Reply.etcd(_event(7), index=6)) as fake:
        client = etcd.Client(port=fake.port)
        events = client.eternal_watch("/w", index=7)
        assert next(events).modifiedIndex == 7
        assert not [r for r in caplog.records if "waiting" in r.getMessage()]
        fake.script(CLEARED, CLEARED, Reply.etcd(_event(8), index=7))
        assert next(events).modifiedIndex == 8
        waits = [r for r in caplog.records if "waiting" in r.getMessage()]
        assert len(waits) == 1  # the second drop in a row, not the first
    assert [r.params["waitIndex"] for r in fake.requests] == [["7"], ["7"], ["8"], ["8"], ["8"]]


def _run_watcher(watcher: etcd.watch.Watcher) -> tuple[Any, queue.Queue[Any]]:
    out: queue.Queue[Any] = queue.Queue()
    return consume_in_thread(watcher, out), out


@pytest.mark.parametrize("answer", DROPPING.values(), ids=DROPPING.keys())
def test_watcher_backs_off_from_a_member_that_drops_every_watch(answer, caplog):
    caplog.set_level(logging.DEBUG, logger="etcd")
    with FakeServer(default=answer) as fake:
        client = etcd.Client(port=fake.port)
        with client.watcher("/w", index=7) as watcher:
            thread, out = _run_watcher(watcher)
            time.sleep(WINDOW)
            sent = len(_polls(fake))
            watcher.stop()
            thread.join(10)
    assert not thread.is_alive()
    assert out.get_nowait() is StopIteration
    assert 3 <= sent < MOST, sent
    assert any("in a row" in r.getMessage() for r in caplog.records)


def test_watcher_backs_off_from_a_member_that_answers_with_old_events():
    with FakeServer(default=Reply.etcd(_event(3), index=9)) as fake:
        client = etcd.Client(port=fake.port)
        with client.watcher("/w", index=7) as watcher:
            thread, out = _run_watcher(watcher)
            time.sleep(WINDOW)
            sent = len(_polls(fake))
            watcher.stop()
            thread.join(10)
    assert 3 <= sent < MOST, sent
    assert out.get_nowait() is StopIteration  # the old event was never yielded


def test_watcher_in_snapshot_mode_backs_off_from_a_member_that_refuses_every_index():
    def respond(request: Request) -> Reply:
        if request.params.get("wait") == ["true"]:
            return OUTDATED
        return Reply.etcd({"action": "get", "node": _event(90)["node"]}, index=90)

    with FakeServer(default=respond) as fake:
        client = etcd.Client(port=fake.port)
        with client.watcher("/w", index=7, snapshots=True) as watcher:
            thread, out = _run_watcher(watcher)
            time.sleep(WINDOW)
            sent = len(fake.requests)
            watcher.stop()
            thread.join(10)
    assert 3 <= sent < 20, sent  # a poll and a read per snapshot; 46 without backoff
    first = out.get_nowait()
    assert isinstance(first, etcd.watch.Snapshot) and first.index == 90


def test_watcher_delivers_at_once_after_drops_once_an_event_came(caplog):
    # The streak of drops ends with an event: the next drop is asked again at once.
    caplog.set_level(logging.DEBUG, logger="etcd")
    answers: list[Responder] = [dropped_watch(6), CLEARED, Reply.etcd(_event(7), index=6), CLEARED]
    with FakeServer(*answers, Reply.etcd(_event(8), index=7)) as fake:
        client = etcd.Client(port=fake.port)
        with client.watcher("/w", index=7) as watcher:
            assert next(watcher).modifiedIndex == 7  # type: ignore[union-attr]
            assert next(watcher).modifiedIndex == 8  # type: ignore[union-attr]
    assert [r.params["waitIndex"] for r in fake.requests] == [["7"], ["7"], ["7"], ["8"], ["8"]]
    waits = [r for r in caplog.records if "waiting" in r.getMessage()]
    assert len(waits) == 1  # the second drop before event 7; none before event 8


def test_the_backoff_jitter_leaves_the_global_random_generator_alone():
    # The global generator is the application's; hypothesis, for one, fails a test
    # when another thread's watch loop changes it while a strategy draws.
    random.seed(13)
    state = random.getstate()
    event = Reply.etcd(_event(7), index=6)
    answers = (CLEARED, CLEARED, CLEARED, event, CLEARED, CLEARED, event)
    with FakeServer(*answers) as fake, etcd.Client(port=fake.port) as client:
        events = client.eternal_watch("/w", index=7)
        assert next(events).modifiedIndex == 7
        with client.watcher("/w", index=7) as watcher:
            assert next(watcher).modifiedIndex == 7  # type: ignore[union-attr]
    assert len(fake.requests) == 7  # every drop was asked again, through the jitter
    assert random.getstate() == state
