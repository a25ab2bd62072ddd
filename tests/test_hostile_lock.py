"""Locks and keep-alives behind a hostile network: nothing is left behind, nothing lost early.

The client talks to a real etcd through the fault-injecting proxy of
tests/fakes.py; what is left on the server is checked with a second client
that talks to etcd directly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import etcd

from .fakes import FakeServer, Fault, FaultProxy, Reply
from .helpers import wait_for


@pytest.fixture
def proxy(etcd_server) -> Iterator[FaultProxy]:
    ((host, port),) = etcd_server.hosts
    with FaultProxy(host, port) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def behind(proxy) -> Iterator[etcd.Client]:
    """A client whose every request goes through the proxy."""
    with etcd.Client(host=proxy.host, port=proxy.port, read_timeout=5) as client:
        yield client


def _keys(client: etcd.Client, lock: etcd.Lock) -> list[etcd.EtcdResult]:
    try:
        listing = client.read(lock.path, recursive=True)
    except etcd.EtcdKeyNotFound:
        return []
    return [node for node in listing.leaves if not node.dir and node.key != lock.path]


@pytest.mark.parametrize("fault", [Fault("cut"), Fault("reset", after=40)], ids=["cut", "reset"])
def test_a_lock_whose_create_answer_is_lost_finds_and_uses_its_key(
    etcd_client, behind, proxy, fault
):
    lock = etcd.Lock(behind, "lost-create")
    proxy.inject(fault, times=1)  # the first answer is the one to the create
    assert lock.acquire(lock_ttl=30) is True
    assert proxy.faults_applied == 1
    keys = _keys(etcd_client, lock)
    assert [k.value for k in keys] == [lock.uuid]  # created once, and it is ours
    assert keys[0].key == lock.lock_key and keys[0].ttl is not None
    lock.release()
    assert _keys(etcd_client, lock) == []


def test_a_lock_that_cannot_look_for_its_key_leaves_at_most_a_key_with_a_ttl(
    etcd_client, behind, proxy
):
    lock = etcd.Lock(behind, "lost-twice")
    proxy.inject(Fault("cut"), times=None)  # the create and every look-up
    with pytest.raises(etcd.EtcdConnectionFailed):
        lock.acquire(lock_ttl=30)
    proxy.heal()
    left = _keys(etcd_client, lock)
    assert [k.value for k in left] == [lock.uuid]
    assert left[0].ttl is not None  # it expires by itself


def test_the_context_manager_gives_the_key_a_ttl_and_renews_it(etcd_client, behind, proxy):
    proxy.inject(Fault("cut"), times=1)
    with etcd.Lock(behind, "with") as lock:
        (key,) = _keys(etcd_client, lock)
        assert key.value == lock.uuid and 0 < (key.ttl or 0) <= etcd.lock.CONTEXT_TTL
        first_expiration = key.expiration
        # Renewed every third of the TTL while the block runs.
        assert wait_for(
            lambda: etcd_client.read(lock.lock_key).expiration != first_expiration,
            timeout=etcd.lock.CONTEXT_TTL,
            interval=0.5,
        )
        assert not lock.lost.is_set()
    assert _keys(etcd_client, lock) == []


def test_ttl_none_still_asks_for_a_key_without_ttl(etcd_client, behind):
    with etcd.Lock(behind, "no-ttl", ttl=None) as lock:
        (key,) = _keys(etcd_client, lock)
        assert key.ttl is None
    assert _keys(etcd_client, lock) == []


# --------------------------------------------------------------------------
# KeepAlive: a failed or malformed refresh is retried within the TTL


def _keepalive_server(refresh_answers: list[Reply], *, then: Reply | None = None) -> FakeServer:
    """A member that stores /k, then answers its refreshes with *refresh_answers*."""
    node = {"key": "/k", "value": "v", "ttl": 3, "modifiedIndex": 8, "createdIndex": 8}
    stored = Reply.etcd({"action": "set", "node": node}, 201, index=8)
    good = Reply.etcd({"action": "update", "node": node}, index=8)
    return FakeServer(stored, *refresh_answers, default=then or good)


GARBLED = {
    "not-json": Reply(200, b'{"action":"update","node":', {"Content-Type": "application/json"}),
    "wrong-types": Reply.etcd({"action": "update", "node": {"key": 5, "modifiedIndex": "8"}}),
    "server-error": Reply.text("upstream connect error\n", 503),
    "raft-timeout": Reply.etcd({"errorCode": 300, "message": "Raft Internal Error"}, 500),
}


@pytest.mark.parametrize("answer", GARBLED.values(), ids=GARBLED.keys())
def test_keepalive_retries_a_malformed_refresh_and_keeps_the_key(answer):
    with _keepalive_server([answer, answer]) as fake:
        client = etcd.Client(port=fake.port)
        alive = etcd.KeepAlive(client, "/k", "v", ttl=3)
        alive.start()
        try:
            fake.wait_for_requests(5)  # the write, two bad refreshes, two good ones
            assert not alive.lost.is_set()
            assert isinstance(alive.error, etcd.EtcdException)
        finally:
            alive.stop(delete=False)
    refreshes = [r for r in fake.requests[1:] if r.form.get("refresh") == ["true"]]
    assert len(refreshes) >= 4


def test_keepalive_reports_the_loss_once_no_refresh_worked_for_a_ttl():
    with _keepalive_server([], then=GARBLED["wrong-types"]) as fake:
        client = etcd.Client(port=fake.port)
        alive = etcd.KeepAlive(client, "/k", "v", ttl=2)
        alive.start()
        try:
            assert alive.lost.wait(10)
            refreshes = len(fake.requests) - 1
        finally:
            alive.stop(delete=False)
    assert refreshes > 2  # retried, not given up at the first garbled answer
    assert str(alive.error).startswith("Unable to decode server response")


def test_keepalive_reports_a_deleted_key_at_once():
    gone = Reply.etcd({"errorCode": 100, "message": "Key not found", "cause": "/k"}, 404)
    with _keepalive_server([gone]) as fake:
        client = etcd.Client(port=fake.port)
        alive = etcd.KeepAlive(client, "/k", "v", ttl=30)
        alive.start()
        try:
            assert alive.lost.wait(20)
        finally:
            alive.stop(delete=False)
    assert isinstance(alive.error, etcd.EtcdKeyNotFound)
    assert len(fake.requests) == 2  # the write and the one refresh that found it gone


def test_a_refused_create_raises_at_once_without_looking_for_a_key():
    refused = Reply.etcd(
        {"errorCode": 110, "message": "The request requires user authentication"}, 401
    )
    with FakeServer(default=refused) as fake, etcd.Client(port=fake.port) as client:
        with pytest.raises(etcd.EtcdInsufficientPermissions):
            etcd.Lock(client, "refused").acquire(lock_ttl=10)
        requests = fake.requests
    assert [r.method for r in requests] == ["POST"]  # no look-up: the server said no
