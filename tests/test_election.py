"""etcd.Election against real etcd: campaigning, hand-over, observing."""

from __future__ import annotations

import os
import queue
import signal
import time
from typing import Any

import pytest

import etcd

from .helpers import call_in_thread, consume_in_thread, wait_for
from .recipes_support import kill, public_only, python_process


def test_leadership_passes_on_when_the_leader_resigns(etcd_client):
    client = public_only(etcd_client)
    first = etcd.Election(client, "jobs", value="host-1", ttl=5)
    second = etcd.Election(client, "jobs", value="host-2", ttl=5)
    assert first.leader() is None
    observer = first.observe()
    seen: queue.Queue[Any] = queue.Queue()
    watching = consume_in_thread(observer, seen)
    assert seen.get(timeout=5) is None  # nobody leads yet

    first.campaign()
    assert first.is_leader and first.leader() == "host-1" == second.leader()
    assert seen.get(timeout=5) == "host-1"
    thread, outcome = call_in_thread(second.campaign)
    assert wait_for(lambda: len(etcd_client.read(first.path)._children) == 2)
    assert "at" not in outcome and not second.is_leader

    token = first.fencing_token
    first.resign()
    thread.join(timeout=5)
    assert "result" in outcome, outcome
    assert second.is_leader and not first.is_leader and first.fencing_token is None
    assert second.fencing_token > token
    assert first.leader() == "host-2"
    assert seen.get(timeout=5) == "host-2"

    second.resign()
    assert seen.get(timeout=5) is None
    observer.stop()
    watching.join(timeout=5)
    assert seen.get(timeout=1) is StopIteration
    observer.close()


def test_leadership_passes_on_when_the_leader_dies(etcd_client, etcd_server):
    ttl = 2
    name = "crash"
    leader = python_process(
        etcd_server.members[0],
        etcd_client,
        f"""
        election = etcd.Election(client, {name!r}, value="doomed", ttl={ttl})
        election.campaign()
        time.sleep(60)
        """,
    )
    try:
        follower = etcd.Election(public_only(etcd_client), name, ttl=ttl)
        assert wait_for(lambda: follower.leader() == "doomed", timeout=15)
        thread, outcome = call_in_thread(follower.campaign, "heir")
        # The leader's key is kept alive past its TTL ...
        assert not wait_for(lambda: "at" in outcome, timeout=ttl + 1)
        assert follower.leader() == "doomed"
        # ... until its process dies.
        killed = time.monotonic()
        os.kill(leader.pid, signal.SIGKILL)
        thread.join(timeout=ttl + 5)
        assert "result" in outcome, outcome
        assert outcome["at"] - killed <= ttl + 2
        assert follower.leader() == "heir"
        follower.resign()
    finally:
        kill(leader)


def test_the_context_manager_campaigns_and_resigns(etcd_client):
    client = public_only(etcd_client)
    with etcd.Election(client, "cm", value="me", ttl=3) as election:
        assert election.is_leader and election.leader() == "me"
        key = election.key
        assert key is not None and 0 < etcd_client.read(key).ttl <= 3
    assert not election.is_leader and election.key is None
    assert election.leader() is None


def test_a_campaign_times_out_and_withdraws(etcd_client):
    client = public_only(etcd_client)
    with etcd.Election(client, "busy", value="first", ttl=5) as leader:
        other = etcd.Election(client, "busy", ttl=5)
        started = time.monotonic()
        # Its timeout ends the wait (the leader's key is kept alive).
        with pytest.raises(etcd.EtcdWatchTimedOut):
            other.campaign("second", timeout=0.5)
        assert time.monotonic() - started >= 0.4, "gave up before its timeout"
        assert other.key is None
        assert [n.value for n in etcd_client.read(leader.path).leaves] == ["first"]


def test_a_leader_that_loses_its_key_is_told(etcd_client):
    lost: list[etcd.Election] = []
    election = etcd.Election(public_only(etcd_client), "lose", ttl=3, on_lost=lost.append)
    election.campaign("me")
    assert election.key is not None
    etcd_client.delete(election.key)
    assert election.lost.wait(timeout=3)
    assert lost == [election] and not election.is_leader
    assert isinstance(election.error, etcd.EtcdKeyNotFound)
    # Campaigning again after a loss is allowed.
    election.campaign("me again")
    assert election.is_leader and election.leader() == "me again"
    election.resign()


def test_arguments_are_checked(etcd_client):
    client = public_only(etcd_client)
    election = etcd.Election(client, "args")
    with pytest.raises(ValueError):
        election.campaign()  # no value anywhere
    with pytest.raises(ValueError):
        election.campaign("v", timeout=0)
    with pytest.raises(ValueError):
        etcd.Election(client, "args", ttl=0)
    with etcd.Election(client, "args", value="v") as leading, pytest.raises(RuntimeError):
        leading.campaign()
