"""Connections that break: closed, reset, cut short or refused, and which calls are
retried or sent only once.

The faults come from the fake server in tests/fakes.py.
"""

from __future__ import annotations

import pytest

import etcd

from .fakes import (
    Hangup,
    Truncated,
    etcd_headers,
    refusing_port,
)
from .faults_support import raised, read_a, serving


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_connection_closed_without_an_answer_on_a_read(reset):
    with serving(Hangup(reset=reset)) as (fake, client):
        with pytest.raises(etcd.EtcdException) as info:
            client.read("/a")
        assert len(fake.requests) == 1
    exc = info.value
    assert type(exc) is etcd.EtcdConnectionFailed
    assert str(exc).startswith("Connection to etcd failed")
    assert exc.cause is not None
    assert exc.__cause__ is exc.cause


def test_body_cut_short_on_a_read():
    answer = Truncated(200, b'{"action":"get","node":{"key":"/a"', etcd_headers())
    exc = raised(etcd.EtcdConnectionFailed, read_a, answer)
    assert "the answer was cut off after " in str(exc)
    assert exc.cause is not None


def test_body_cut_short_on_a_write_says_the_outcome_is_unknown():
    answer = Truncated(201, b'{"action":"set"', etcd_headers())
    with serving(answer) as (fake, client):
        with pytest.raises(etcd.EtcdException) as info:
            client.write("/a", "1")
        assert len(fake.requests) == 1
    assert type(info.value) is etcd.EtcdConnectionFailed
    assert "outcome is unknown" in str(info.value)
    assert info.value.cause is not None


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.write("/queue", "job", append=True), id="append"),
        pytest.param(lambda c: c.write("/a", "1", prevValue="0"), id="compare-and-swap"),
        pytest.param(lambda c: c.delete("/a"), id="delete"),
    ],
)
def test_a_write_that_may_have_arrived_is_sent_exactly_once(call):
    # urllib3's own retries are off: a write that reached the server is never
    # re-sent behind the caller's back (compat §11 d, f).
    with serving(Hangup()) as (fake, client):
        with pytest.raises(etcd.EtcdException) as info:
            call(client)
        assert len(fake.requests) == 1
        assert fake.connections == 1
    assert type(info.value) is etcd.EtcdConnectionFailed
    assert "outcome is unknown" in str(info.value)
    assert fake.requests[0].method in ("POST", "PUT", "DELETE")


def test_a_failed_read_is_not_retried_without_allow_reconnect():
    with serving(Hangup()) as (fake, client):
        with pytest.raises(etcd.EtcdConnectionFailed):
            client.read("/a")
        assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(read_a, id="read"),
        pytest.param(lambda c: c.write("/a", "1"), id="write"),
    ],
)
def test_refused_connection(call):
    with (
        refusing_port() as port,
        etcd.Client(host="127.0.0.1", port=port) as client,
        pytest.raises(etcd.EtcdException) as info,
    ):
        call(client)
    exc = info.value
    assert type(exc) is etcd.EtcdConnectionFailed
    assert exc.cause is not None
    assert exc.__cause__ is exc.cause
    assert "refused" in str(exc).lower()
    # nothing was sent, so nothing is uncertain
    assert "outcome is unknown" not in str(exc)
