"""etcd.KeepAlive against real etcd: keys that live as long as their process."""

from __future__ import annotations

import pytest

import etcd

from .helpers import wait_for
from .recipes_support import kill, public_only, python_process


def _exists(client: etcd.Client, key: str) -> bool:
    return key in client


def test_a_key_outlives_its_ttl_while_kept_and_goes_when_the_process_dies(
    etcd_client, etcd_prefix, etcd_server
):
    ttl = 2
    key = f"{etcd_prefix}/services/api"
    proc = python_process(
        etcd_server.members[0],
        etcd_client,
        f"""
        alive = etcd.KeepAlive(client, {key!r}, "10.0.0.7:8080", ttl={ttl})
        alive.start()
        time.sleep(60)
        """,
    )
    try:
        assert wait_for(lambda: _exists(etcd_client, key), timeout=15)
        created = etcd_client.read(key)
        assert created.value == "10.0.0.7:8080" and created.ttl <= ttl
        # Three TTLs: the key never goes missing, and it is the same key.
        assert not wait_for(lambda: not _exists(etcd_client, key), timeout=3 * ttl)
        assert etcd_client.read(key).createdIndex == created.createdIndex
        kill(proc)
        # Nothing refreshes the key any more: its TTL runs out and the server expires it
        # (refreshes wake no watcher, so the next change a watch sees is the expiry).
        assert wait_for(lambda: not _exists(etcd_client, key), timeout=ttl + 10)
        removal = etcd_client.watch(key, index=created.modifiedIndex + 1, timeout=10)
        assert removal.action == "expire", removal
    finally:
        kill(proc)


def test_refreshing_wakes_no_watcher_and_stop_deletes_the_key(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/quiet"
    with etcd.KeepAlive(public_only(etcd_client), key, "v", ttl=1, interval=0.2) as alive:
        assert alive.running
        start = etcd_client.read(key)
        # Five refreshes or more (counted by the index) ...
        assert wait_for(lambda: etcd_client.read(key).modifiedIndex >= start.modifiedIndex + 5)
        # ... and not one of them reaches a watcher, not even from the history.
        with pytest.raises(etcd.EtcdWatchTimedOut):
            etcd_client.watch(key, index=start.modifiedIndex + 1, timeout=1)
        assert alive.error is None and not alive.lost.is_set()
    assert not alive.running
    assert not _exists(etcd_client, key)


def test_a_lost_key_is_reported_not_recreated(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/lost"
    reported: list[etcd.KeepAlive] = []
    alive = etcd.KeepAlive(
        public_only(etcd_client), key, "v", ttl=3, interval=0.2, on_lost=reported.append
    )
    alive.start()
    try:
        etcd_client.delete(key)  # as if it had expired
        assert alive.lost.wait(timeout=3)
        assert reported == [alive]
        assert isinstance(alive.error, etcd.EtcdKeyNotFound)
        assert wait_for(lambda: not alive.running)
        assert not _exists(etcd_client, key)
    finally:
        alive.stop()
    assert not _exists(etcd_client, key)


def test_recreate_writes_the_key_again(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/phoenix"
    with etcd.KeepAlive(
        public_only(etcd_client), key, "v", ttl=3, interval=0.2, recreate=True
    ) as alive:
        etcd_client.delete(key)
        assert wait_for(lambda: _exists(etcd_client, key), timeout=3)
        assert etcd_client.read(key).value == "v"
        assert alive.recreated == 1 and not alive.lost.is_set()
        assert isinstance(alive.error, etcd.EtcdKeyNotFound)
    assert not _exists(etcd_client, key)


@pytest.mark.parametrize("conditional", [False, True], ids=["set", "compare-and-swap"])
def test_a_key_someone_else_wrote_is_lost_and_left_alone(etcd_client, etcd_prefix, conditional):
    key = f"{etcd_prefix}/taken-over"
    with etcd.KeepAlive(public_only(etcd_client), key, "mine", ttl=3, interval=0.2) as alive:
        if conditional:  # keeps createdIndex: only the value tells it apart
            etcd_client.write(key, "theirs", ttl=30, prevValue="mine")
        else:
            etcd_client.write(key, "theirs", ttl=30)
        assert alive.lost.wait(timeout=3)
        assert isinstance(alive.error, etcd.EtcdCompareFailed)
    assert etcd_client.read(key).value == "theirs"


def test_a_refresh_it_did_not_expect_is_not_a_loss(etcd_client, etcd_prefix):
    # What a re-sent refresh looks like: the key's modifiedIndex moved, but it
    # is still the same key (same createdIndex).
    key = f"{etcd_prefix}/refreshed"
    with etcd.KeepAlive(public_only(etcd_client), key, "v", ttl=3, interval=0.2) as alive:
        before = etcd_client.refresh(key, ttl=3).modifiedIndex
        assert wait_for(lambda: etcd_client.read(key).modifiedIndex > before + 2)
        assert not alive.lost.is_set() and alive.error is None
    assert not _exists(etcd_client, key)


def test_a_server_that_stays_away_for_a_ttl_means_lost(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=1)
    with cluster.client() as client:
        alive = etcd.KeepAlive(public_only(client), "/away", "v", ttl=1, interval=0.2)
        alive.start()
        try:
            cluster.members[0].pause()
            assert alive.lost.wait(timeout=5)
            assert isinstance(alive.error, etcd.EtcdConnectionFailed)
        finally:
            cluster.members[0].resume()
            alive.stop(delete=False)


def test_arguments_are_checked(etcd_client, etcd_prefix):
    client = public_only(etcd_client)
    with pytest.raises(TypeError):
        etcd.KeepAlive(client, f"{etcd_prefix}/k", "v", ttl=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        etcd.KeepAlive(client, f"{etcd_prefix}/k", "v", ttl=0)
    with pytest.raises(ValueError):
        etcd.KeepAlive(client, f"{etcd_prefix}/k", "v", ttl=3, interval=3)
    alive = etcd.KeepAlive(client, f"{etcd_prefix}/k", "v", ttl=3)
    assert (alive.key, alive.ttl, alive.interval) == (f"{etcd_prefix}/k", 3, 1.0)
    with alive, pytest.raises(RuntimeError):
        alive.start()
