"""etcd.Lock, KeepAlive and Election, unchanged, on a client made with ``api="v3"``.

The recipes' own test modules run over v3 as well (``test_v3_parity_recipes.py``),
including the 8 processes counting to 800 under a lock.
"""

from __future__ import annotations

import queue
from typing import Any

import etcd

from .helpers import call_in_thread, consume_in_thread, wait_for
from .recipes_support import public_only
from .v3_support import v3_client, v3_namespace

__all__ = ["v3_client", "v3_namespace"]


def test_a_waiter_gets_the_lock_when_the_holder_releases(v3_client):
    client = public_only(v3_client)
    holder = etcd.Lock(client, "job")
    waiter = etcd.Lock(client, "job")
    assert holder.acquire(lock_ttl=10)
    assert not etcd.Lock(client, "job").acquire(blocking=False)
    thread, outcome = call_in_thread(waiter.acquire, lock_ttl=10, timeout=30)
    assert wait_for(lambda: len(list(v3_client.read(holder.path).leaves)) == 2)
    assert "at" not in outcome
    token = holder.fencing_token
    holder.release()
    thread.join(timeout=15)
    assert outcome.get("result") is True, outcome
    assert waiter.is_acquired and (waiter.fencing_token or 0) > (token or 0)
    waiter.release()
    assert not [n for n in v3_client.read(holder.path, recursive=True).leaves if not n.dir]


def test_a_keepalive_key_outlives_its_ttl(v3_client):
    # A TTL of 3 s leaves a loaded machine time for a late refresh; the key must
    # still outlive more than two of them.
    keepalive = etcd.KeepAlive(public_only(v3_client), "/alive", "me", ttl=3)
    keepalive.start()
    try:
        assert not wait_for(lambda: "/alive" not in v3_client, timeout=8, interval=0.2)
        assert not keepalive.lost.is_set()
    finally:
        keepalive.stop()
    assert "/alive" not in v3_client


def test_leadership_passes_on_when_the_leader_resigns(v3_client):
    client = public_only(v3_client)
    first = etcd.Election(client, "jobs", value="host-1", ttl=5)
    second = etcd.Election(client, "jobs", value="host-2", ttl=5)
    assert first.leader() is None
    observer = first.observe()
    seen: queue.Queue[Any] = queue.Queue()
    watching = consume_in_thread(observer, seen)
    assert seen.get(timeout=5) is None
    first.campaign()
    assert first.is_leader and second.leader() == "host-1"
    assert seen.get(timeout=5) == "host-1"
    thread, outcome = call_in_thread(second.campaign)
    assert wait_for(lambda: len(v3_client.read(first.path)._children) == 2)
    first.resign()
    thread.join(timeout=10)
    assert "result" in outcome, outcome
    assert second.is_leader and first.leader() == "host-2"
    assert seen.get(timeout=5) == "host-2"
    second.resign()
    assert seen.get(timeout=5) is None
    observer.stop()
    watching.join(timeout=5)
    observer.close()
