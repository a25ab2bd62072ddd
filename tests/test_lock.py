"""etcd.Lock against real etcd: exclusion, crashes, pauses, timeouts and renewals."""

from __future__ import annotations

import os
import signal
import time

import pytest

import etcd

from .helpers import call_in_thread, wait_for
from .recipes_support import counting, kill, leaves, public_only, python_process


def _queued(client: etcd.Client, lock: etcd.Lock) -> list[str]:
    return [node.key or "" for node in leaves(client, lock.path)]


def test_the_python_etcd_045_api(etcd_client):
    client, calls = counting(etcd_client)
    lock = etcd.Lock(client, "api")
    assert (lock.client, lock.name) == (client, "api")
    assert lock.path == f"{etcd_client.lock_prefix}/api"
    assert lock.is_taken is False and lock._sequence is None
    assert lock.uuid == lock._uuid and len(lock.uuid) == 32
    with pytest.raises(ValueError, match="No sequence present"):
        lock.lock_key  # noqa: B018
    assert lock.is_acquired is False
    assert lock.fencing_token is None
    lock.release()  # nothing held: a no-op, without a request
    assert sum(calls.values()) == 0

    assert lock.acquire(lock_ttl=30) is True
    assert lock.is_taken and lock.is_acquired
    key = etcd_client.read(lock.lock_key)
    assert lock.lock_key == key.key and key.value == lock.uuid and key.ttl <= 30
    assert lock.fencing_token == key.createdIndex

    # Another object takes over the key by its uuid; an unknown uuid is refused.
    other = etcd.Lock(client, "api")
    other.uuid = lock.uuid
    assert other.lock_key == lock.lock_key
    with pytest.raises(ValueError, match="Inexistent UUID"):
        etcd.Lock(client, "api").uuid = "nope"

    lock.release()
    assert lock.is_acquired is False and lock.fencing_token is None
    assert _queued(etcd_client, lock) == []
    lock.release()  # released twice: a no-op


def test_an_uncontended_cycle_costs_three_requests(etcd_client):
    client, calls = counting(etcd_client)
    lock = etcd.Lock(client, "cheap")
    for _ in range(3):
        assert lock.acquire(lock_ttl=10)
        lock.release()
    assert calls == {"write": 3, "read": 3, "delete": 3}
    # As in 0.4.5, lock_key still names the released key.
    assert lock.lock_key.startswith(lock.path + "/")


def test_eight_processes_count_to_800_under_the_lock(etcd_client, etcd_prefix, etcd_server):
    counter = f"{etcd_prefix}/counter"
    etcd_client.write(counter, "0")
    body = f"""
        lock = etcd.Lock(client, "counter", ttl=30)
        for _ in range(100):
            with lock:
                # A plain read-then-write: only the lock keeps increments apart.
                value = int(client.read({counter!r}).value)
                client.write({counter!r}, str(value + 1))
        """
    procs = [python_process(etcd_server.members[0], etcd_client, body) for _ in range(8)]
    try:
        assert [proc.wait(timeout=100) for proc in procs] == [0] * 8
    finally:
        for proc in procs:
            kill(proc)
    assert etcd_client.read(counter).value == "800"
    assert leaves(etcd_client, f"{etcd_client.lock_prefix}/counter") == []


def test_a_killed_holder_is_replaced_within_its_ttl(etcd_client, etcd_prefix, etcd_server):
    ttl = 2
    marker = f"{etcd_prefix}/holder"
    holder = python_process(
        etcd_server.members[0],
        etcd_client,
        f"""
        lock = etcd.Lock(client, "crash", auto_renew=True)
        lock.acquire(lock_ttl={ttl})
        client.write({marker!r}, str(lock.fencing_token))
        time.sleep(60)
        """,
    )
    try:
        assert wait_for(lambda: marker in etcd_client, timeout=15)
        waiter = etcd.Lock(public_only(etcd_client), "crash")
        thread, outcome = call_in_thread(waiter.acquire, lock_ttl=10, timeout=30)
        assert wait_for(lambda: len(_queued(etcd_client, waiter)) == 2)
        # The holder renews in the background: its TTL passes and it still holds.
        assert not wait_for(lambda: "at" in outcome, timeout=ttl + 1)
        killed = time.monotonic()
        os.kill(holder.pid, signal.SIGKILL)
        thread.join(timeout=ttl + 5)
        assert outcome.get("result") is True, outcome
        assert outcome["at"] - killed <= ttl + 2
        assert (waiter.fencing_token or 0) > int(etcd_client.read(marker).value)
        waiter.release()
    finally:
        kill(holder)


def test_a_paused_holder_loses_the_lock_and_learns_it(etcd_client, etcd_prefix, etcd_server):
    ttl = 2
    token_key, lost_key = f"{etcd_prefix}/token", f"{etcd_prefix}/lost"
    holder = python_process(
        etcd_server.members[0],
        etcd_client,
        f"""
        lock = etcd.Lock(client, "pause", auto_renew=True)
        lock.acquire(lock_ttl={ttl})
        client.write({token_key!r}, str(lock.fencing_token))
        lock.lost.wait(60)
        report = (lock.is_acquired, lock.fencing_token, type(lock.renew_error).__name__)
        client.write({lost_key!r}, repr(report))
        """,
    )
    try:
        assert wait_for(lambda: token_key in etcd_client, timeout=15)
        old_token = int(etcd_client.read(token_key).value)
        os.kill(holder.pid, signal.SIGSTOP)
        waiter = etcd.Lock(public_only(etcd_client), "pause")
        started = time.monotonic()
        assert waiter.acquire(lock_ttl=10, timeout=ttl + 5) is True
        assert time.monotonic() - started <= ttl + 2
        assert (waiter.fencing_token or 0) > old_token
        os.kill(holder.pid, signal.SIGCONT)
        assert wait_for(lambda: lost_key in etcd_client, timeout=10)
        assert etcd_client.read(lost_key).value == "(False, None, 'EtcdKeyNotFound')"
        assert holder.wait(timeout=10) == 0
        assert waiter.is_acquired
        waiter.release()
    finally:
        kill(holder)


def test_a_timed_out_acquire_raises_and_leaves_no_key(etcd_client):
    holder = etcd.Lock(public_only(etcd_client), "busy")
    assert holder.acquire(lock_ttl=30)
    waiter = etcd.Lock(public_only(etcd_client), "busy")
    started = time.monotonic()
    # Its timeout ends the wait: without it, the holder's key would expire in 30 s
    # and the acquire return True.
    with pytest.raises(etcd.EtcdWatchTimedOut):
        waiter.acquire(lock_ttl=30, timeout=1)
    assert time.monotonic() - started >= 0.9, "gave up before its timeout"
    assert waiter.is_taken is False and waiter._sequence is None
    assert _queued(etcd_client, holder) == [holder.lock_key]
    # Without a TTL as well (the watch is then bounded by the deadline only).
    with pytest.raises(etcd.EtcdWatchTimedOut):
        waiter.acquire(lock_ttl=None, timeout=0.5)
    assert _queued(etcd_client, holder) == [holder.lock_key]
    holder.release()


def test_a_failed_non_blocking_acquire_leaves_no_key(etcd_client):
    holder = etcd.Lock(public_only(etcd_client), "try")
    assert holder.acquire(blocking=False, lock_ttl=30) is True
    other = etcd.Lock(public_only(etcd_client), "try")
    assert other.acquire(blocking=False, lock_ttl=30) is False
    assert other.is_taken is False and other._sequence is None
    assert _queued(etcd_client, holder) == [holder.lock_key]
    holder.release()
    assert other.acquire(blocking=False, lock_ttl=30) is True
    other.release()


def _knows_its_key(lock: etcd.Lock) -> bool:
    try:
        lock.lock_key  # noqa: B018 - raises until the lock has its key
    except ValueError:
        return False
    return True


def test_a_waiter_with_a_short_ttl_keeps_its_key(etcd_client):
    holder = etcd.Lock(public_only(etcd_client), "long")
    assert holder.acquire(lock_ttl=None)
    waiter = etcd.Lock(public_only(etcd_client), "long")
    thread, outcome = call_in_thread(waiter.acquire, lock_ttl=1)
    # The waiter's key is on the server before its thread has read the answer.
    assert wait_for(lambda: len(_queued(etcd_client, holder)) == 2 and _knows_its_key(waiter))
    queued_key = waiter.lock_key
    # Three TTLs: an unrefreshed key would have expired (and the wait failed).
    assert not wait_for(lambda: "at" in outcome, timeout=3), outcome
    assert _queued(etcd_client, holder) == [holder.lock_key, queued_key]
    holder.release()
    thread.join(timeout=5)
    assert outcome.get("result") is True, outcome
    assert waiter.lock_key == queued_key
    waiter.release()


def test_renewing_does_not_wake_the_waiters(etcd_client):
    holder = etcd.Lock(public_only(etcd_client), "quiet", auto_renew=True)
    assert holder.acquire(lock_ttl=2)
    client, calls = counting(etcd_client)
    waiter = etcd.Lock(client, "quiet")
    thread, outcome = call_in_thread(waiter.acquire, lock_ttl=None)
    assert wait_for(lambda: calls["watch"] == 1)
    first = etcd_client.read(holder.lock_key).modifiedIndex
    for _ in range(3):
        assert holder.acquire(lock_ttl=2)  # an explicit renewal
    # ... and the renewal thread refreshes every 2/3 s meanwhile.
    assert wait_for(lambda: etcd_client.read(holder.lock_key).modifiedIndex > first + 4)
    assert calls == {"write": 1, "read": 1, "watch": 1}, calls
    holder.release()
    thread.join(timeout=5)
    assert outcome.get("result") is True, outcome
    assert calls == {"write": 1, "read": 2, "watch": 1}, calls
    waiter.release()


def test_a_waiter_survives_the_history_moving_past_it(etcd_client, etcd_prefix):
    holder = etcd.Lock(public_only(etcd_client), "history")
    assert holder.acquire(lock_ttl=None)
    client, calls = counting(etcd_client)
    waiter = etcd.Lock(client, "history")
    thread, outcome = call_in_thread(waiter.acquire, lock_ttl=3)  # watches last 1 s
    assert wait_for(lambda: calls["watch"] == 1)
    for i in range(1100):
        etcd_client.write(f"{etcd_prefix}/noise", str(i))
    # The waiter's next watch starts from an index that has left the history:
    # it reads again and watches from the read, then waits quietly, one watch
    # per third of its TTL, instead of spinning or hanging.
    watches = calls["watch"]
    assert wait_for(lambda: calls["watch"] >= watches + 2, timeout=5)
    settled = calls["watch"]
    # one watch a second; a waiter that re-watched from the lost index first
    # would make two
    assert not wait_for(lambda: calls["watch"] > settled + 3, timeout=2.5)
    holder.release()
    thread.join(timeout=5)
    assert outcome.get("result") is True, outcome
    waiter.release()


def test_the_context_manager(etcd_client):
    client = public_only(etcd_client)
    with etcd.Lock(client, "cm") as lock:
        assert lock.is_acquired
        # Unlike 0.4.5, the key has a TTL (renewed while the block runs).
        assert 0 < etcd_client.read(lock.lock_key).ttl <= etcd.lock.CONTEXT_TTL
    assert not lock.is_taken and _queued(etcd_client, lock) == []
    with etcd.Lock(client, "cm", ttl=None) as lock:
        assert etcd_client.read(lock.lock_key).ttl is None  # asked for: as in 0.4.5
    assert _queued(etcd_client, lock) == []
    with etcd.Lock(client, "cm", ttl=20) as lock:
        assert 0 < etcd_client.read(lock.lock_key).ttl <= 20
    assert _queued(etcd_client, lock) == []
    with pytest.raises(RuntimeError), etcd.Lock(client, "cm"):
        raise RuntimeError("released on the way out")
    assert _queued(etcd_client, lock) == []
    with pytest.raises(ValueError):
        etcd.Lock(client, "cm", ttl=0)
    with pytest.raises(TypeError):
        etcd.Lock(client, "cm", tll=3)  # type: ignore[call-arg]


def test_auto_renew_reports_a_lost_lock(etcd_client):
    lost: list[etcd.Lock] = []
    lock = etcd.Lock(public_only(etcd_client), "renewed", auto_renew=True, on_lost=lost.append)
    assert lock.acquire(lock_ttl=2)
    token = lock.fencing_token
    # The background renewal keeps the key beyond its TTL.
    assert not wait_for(lock.lost.is_set, timeout=3)
    assert lock.is_acquired and lock.fencing_token == token
    etcd_client.delete(lock.lock_key)  # as if it had expired
    assert lock.lost.wait(timeout=3)
    assert lost == [lock]
    assert isinstance(lock.renew_error, etcd.EtcdKeyNotFound)
    assert lock.fencing_token is None and not lock.is_acquired
    lock.release()
    # A new acquire starts afresh.
    assert lock.acquire(lock_ttl=2) and not lock.lost.is_set()
    assert lock.fencing_token > token
    lock.release()


def test_fencing_tokens_increase_from_holder_to_holder(etcd_client):
    client = public_only(etcd_client)
    first, second = etcd.Lock(client, "fence"), etcd.Lock(client, "fence")
    tokens: list[int] = []
    for _ in range(3):
        for lock in (first, second):
            with lock:
                assert lock.fencing_token is not None
                tokens.append(lock.fencing_token)
    assert tokens == sorted(set(tokens)) and len(tokens) == 6
    # Re-acquiring a held lock (a renewal) keeps the token.
    assert first.acquire(lock_ttl=5)
    token = first.fencing_token
    assert first.acquire(lock_ttl=5) and first.fencing_token == token
    first.release()
