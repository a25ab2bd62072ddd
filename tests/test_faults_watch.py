"""Watches that time out, are interrupted or dropped, from the fake server.

The faults come from the fake server in tests/fakes.py.
"""

from __future__ import annotations

import time
import types

import pytest

import etcd

from .fakes import (
    Hangup,
    HeadersThenStall,
    Reply,
    Stall,
    dropped_watch,
    etcd_headers,
)
from .faults_support import raised, serving


def test_watch_without_headers_times_out_promptly():
    with serving(Stall()) as (fake, client):
        start = time.monotonic()
        with pytest.raises(etcd.EtcdException) as info:
            client.watch("/a", timeout=1)
        elapsed = time.monotonic() - start
        # exactly one attempt: no silent urllib3 retry (python-etcd issue #81)
        assert len(fake.requests) == 1
    assert type(info.value) is etcd.EtcdWatchTimedOut
    assert str(info.value).startswith("Watch timed out")
    assert info.value.cause is not None
    assert elapsed < 2, f"the watch took {elapsed:.1f}s to time out"


def test_watch_with_headers_but_no_event_times_out_promptly():
    with serving(HeadersThenStall(200, etcd_headers())) as (fake, client):
        start = time.monotonic()
        with pytest.raises(etcd.EtcdException) as info:
            client.watch("/a", timeout=1)
        elapsed = time.monotonic() - start
        assert len(fake.requests) == 1
    assert type(info.value) is etcd.EtcdWatchTimedOut
    assert info.value.cause is not None
    assert elapsed < 2, f"the watch took {elapsed:.1f}s to time out"


def test_watch_interrupted_by_a_closed_connection_is_not_a_timeout():
    with serving(Hangup()) as (fake, client):
        with pytest.raises(etcd.EtcdException) as info:
            client.watch("/a", timeout=5)
        assert len(fake.requests) == 1
    assert type(info.value) is etcd.EtcdConnectionFailed
    assert "outcome is unknown" in str(info.value)


def test_empty_chunked_200_on_a_watch_is_watcher_cleared():
    exc = raised(etcd.EtcdWatcherCleared, lambda c: c.watch("/a", index=7), dropped_watch())
    assert "watch again" in str(exc)
    assert exc.error_code == 400


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(dropped_watch(index=6), id="empty-body"),
        pytest.param(
            Reply.etcd(
                {"errorCode": 400, "message": "watcher is cleared due to etcd recovery"}, 400
            ),
            id="error-400",
        ),
    ],
)
def test_eternal_watch_retries_a_dropped_watcher_from_the_same_index(first):
    event = {
        "action": "set",
        "node": {"key": "/w", "value": "new", "modifiedIndex": 7, "createdIndex": 7},
    }
    with serving(first, Reply.etcd(event, index=6)) as (fake, client):
        events = client.eternal_watch("/w", index=7)
        assert isinstance(events, types.GeneratorType)
        result = next(events)
        events.close()
        requests = fake.requests
    assert (result.action, result.key, result.value, result.modifiedIndex) == (
        "set",
        "/w",
        "new",
        7,
    )
    assert len(requests) == 2
    for request in requests:
        assert request.path == "/v2/keys/w"
        assert request.params["wait"] == ["true"]
        assert request.params["waitIndex"] == ["7"]
        assert request.params.get("recursive", ["false"]) == ["false"]


def test_eternal_watch_lets_an_index_cleared_error_through():
    body = {
        "errorCode": 401,
        "message": "The event in requested index is outdated and cleared",
        "cause": "the requested history has been cleared [1140/7]",
        "index": 2139,
    }
    with serving(Reply.etcd(body, 400, index=2139)) as (fake, client):
        with pytest.raises(etcd.EtcdException) as info:
            next(client.eternal_watch("/w", index=7))
        assert len(fake.requests) == 1
    assert type(info.value) is etcd.EtcdEventIndexCleared
    assert info.value.resume_index == 2139
