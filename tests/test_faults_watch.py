"""Watches that time out, are interrupted or dropped, from the fake server.

The faults come from the fake server in tests/fakes.py.
"""

from __future__ import annotations

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


# The client's read_timeout is 60 s: a watch that ignored its own timeout=1
# would outlast these tests' 20 s limit. No elapsed time is asserted.
@pytest.mark.timeout(20)
def test_watch_without_headers_times_out_promptly():
    with serving(Stall()) as (fake, client):
        with pytest.raises(etcd.EtcdException) as info:
            client.watch("/a", timeout=1)
        # exactly one attempt: no silent urllib3 retry (python-etcd issue #81)
        assert len(fake.requests) == 1
    assert type(info.value) is etcd.EtcdWatchTimedOut
    assert str(info.value).startswith("Watch timed out")
    assert info.value.cause is not None


@pytest.mark.timeout(20)
def test_watch_with_headers_but_no_event_times_out_promptly():
    with serving(HeadersThenStall(200, etcd_headers())) as (fake, client):
        with pytest.raises(etcd.EtcdException) as info:
            client.watch("/a", timeout=1)
        assert len(fake.requests) == 1
    assert type(info.value) is etcd.EtcdWatchTimedOut
    assert info.value.cause is not None


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
