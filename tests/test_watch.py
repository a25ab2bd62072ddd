"""Watchers that never lose an event, against real etcd and a misbehaving server."""

from __future__ import annotations

import queue
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

import etcd
from etcd.watch import Snapshot

from .fakes import FakeServer, Reply, dropped_watch
from .helpers import consume_in_thread, established_to, wait_for
from .recipes_support import child_client


def _writer_process(
    member: Any, like: etcd.Client, prefix: str, count: int
) -> subprocess.Popen[bytes]:
    """Start a process that makes *count* changes under *prefix*: sets, and some deletes.

    Its client speaks as *like* does (protocol and namespace).
    """
    script = (
        "import etcd\n"
        + child_client(member, like)
        + textwrap.dedent(
            f"""
        for i in range({count}):
            key = "{prefix}/k%d" % (i % 37)
            if i % 11 == 10:
                try:
                    client.delete(key)
                except etcd.EtcdKeyNotFound:
                    pass
            else:
                client.write(key, str(i))
        """
        )
    )
    return subprocess.Popen([sys.executable, "-c", script])


def _leaf_state(result: etcd.EtcdResult | None) -> dict[str, str]:
    if result is None:
        return {}
    return {n.key: n.value or "" for n in result.leaves if not n.dir and n.key is not None}


def test_events_come_once_and_in_order(etcd_client, etcd_prefix):
    start = etcd_client.write(f"{etcd_prefix}/w/a", "0")
    written = [etcd_client.write(f"{etcd_prefix}/w/{k}", str(i)) for i, k in enumerate("abcab")]
    with etcd_client.watcher(
        f"{etcd_prefix}/w", recursive=True, index=start.modifiedIndex + 1
    ) as watcher:
        events = [next(watcher) for _ in written]
        assert watcher.next_index == written[-1].modifiedIndex + 1
    assert [e.modifiedIndex for e in events] == [w.modifiedIndex for w in written]
    assert [e.value for e in events] == ["0", "1", "2", "3", "4"]


def test_history_overrun_in_strict_mode_raises_with_the_resume_index(
    etcd_client, etcd_prefix, etcd_server
):
    first = etcd_client.write(f"{etcd_prefix}/tree/start", "0")
    watcher = etcd_client.watcher(f"{etcd_prefix}/tree", recursive=True, index=first.modifiedIndex)
    assert next(watcher).modifiedIndex == first.modifiedIndex
    # The deliberately slow watcher: it waits for the whole burst of 5,000 changes.
    writer = _writer_process(etcd_server.members[0], etcd_client, f"{etcd_prefix}/tree", 5000)
    assert writer.wait(timeout=120) == 0
    final = etcd_client.read(f"{etcd_prefix}/tree", recursive=True)
    with pytest.raises(etcd.EtcdEventIndexCleared) as info:
        next(watcher)
    watcher.close()
    assert info.value.resume_index is not None
    assert info.value.resume_index >= final.etcd_index
    assert info.value.resume_index > first.modifiedIndex + 1000


def test_history_overrun_in_snapshot_mode_converges(etcd_client, etcd_prefix, etcd_server):
    tree = f"{etcd_prefix}/tree"
    first = etcd_client.write(f"{tree}/start", "0")
    writer = _writer_process(etcd_server.members[0], etcd_client, tree, 5000)
    state: dict[str, str] = {f"{tree}/start": "0"}
    indexes: list[int] = [first.modifiedIndex or 0]
    snapshots: list[Snapshot] = []
    with etcd_client.watcher(
        tree, recursive=True, index=first.modifiedIndex, snapshots=True
    ) as watcher:
        assert next(watcher).modifiedIndex == first.modifiedIndex
        # The consumer stalls until the writer is 1,500 changes ahead, so the
        # history surely moves past it, then goes on while the writer still runs.
        assert wait_for(
            lambda: etcd_client.read(tree).etcd_index > first.modifiedIndex + 1500, timeout=60
        )
        # Once the writer is done, one last key marks the end: the watcher then
        # always has a change to deliver, however the end of the writer and the
        # consumer's last item interleave.
        end = f"{tree}/end"
        marker = threading.Thread(
            target=lambda: writer.wait(timeout=120) == 0 and etcd_client.write(end, "1"),
            daemon=True,
        )
        marker.start()
        for item in watcher:
            if isinstance(item, Snapshot):
                snapshots.append(item)
                state = _leaf_state(item.result)
                indexes.append(item.index)
            else:
                time.sleep(0.002)  # a deliberately slow consumer
                indexes.append(item.modifiedIndex)
                if item.action in ("delete", "expire", "compareAndDelete"):
                    state.pop(item.key, None)
                else:
                    state[item.key] = item.value
            if end in state:
                break
        marker.join(timeout=30)
    assert writer.wait(timeout=120) == 0
    final = etcd_client.read(tree, recursive=True)
    assert snapshots, "the history never moved past the slow watcher"
    assert state == _leaf_state(final)
    # Nothing is yielded twice, nothing goes backwards: every item moves the index up.
    assert indexes == sorted(set(indexes))


def test_floor_follows_the_server_while_other_keys_change(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/quiet"
    start = etcd_client.write(f"{etcd_prefix}/noise", "0")
    out: queue.Queue[Any] = queue.Queue()
    watcher = etcd_client.watcher(key, index=start.modifiedIndex + 1, poll_timeout=0.2)
    thread = consume_in_thread(watcher, out)
    for i in range(1100):  # more than the server's history of 1,000 events
        etcd_client.write(f"{etcd_prefix}/noise", str(i))
    # Let at least one long poll time out after the burst, so the floor moves.
    assert wait_for(lambda: (watcher.next_index or 0) > start.modifiedIndex + 1100, timeout=5)
    marker = etcd_client.write(key, "now")
    item = out.get(timeout=5)
    watcher.stop()
    thread.join(timeout=2)
    assert isinstance(item, etcd.EtcdResult), item
    assert item.modifiedIndex == marker.modifiedIndex


def test_watcher_outlives_its_long_poll_bound(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/idle"
    out: queue.Queue[Any] = queue.Queue()
    watcher = etcd_client.watcher(key, poll_timeout=0.2)
    thread = consume_in_thread(watcher, out)
    time.sleep(1.0)  # idle for five long-poll bounds: the point of the test, not a sync
    assert out.empty()
    marker = etcd_client.write(key, "late")
    item = out.get(timeout=5)
    watcher.stop()
    thread.join(timeout=2)
    assert isinstance(item, etcd.EtcdResult), item
    assert (item.value, item.modifiedIndex) == ("late", marker.modifiedIndex)


def test_stop_from_another_thread_ends_iteration_promptly(etcd_server, etcd_prefix):
    member = etcd_server.members[0]
    client = etcd.Client(host=member.host, port=member.port)
    threads_before = threading.active_count()
    sockets_before = established_to({member.port})
    out: queue.Queue[Any] = queue.Queue()
    # A long poll far longer than any wait below: iteration can only end in
    # time if stop() cuts the poll short instead of waiting for its answer.
    watcher = client.watcher(f"{etcd_prefix}/never", poll_timeout=600)
    thread = consume_in_thread(watcher, out)
    assert wait_for(lambda: established_to({member.port}) > sockets_before, timeout=10)

    threading.Thread(target=watcher.stop).start()
    assert out.get(timeout=30) is StopIteration
    thread.join(timeout=10)
    watcher.close()
    client.close()

    assert out.empty(), "no event, no error: the iteration just ended"
    assert not thread.is_alive()
    assert wait_for(lambda: threading.active_count() <= threads_before, timeout=2)
    assert wait_for(lambda: established_to({member.port}) <= sockets_before, timeout=2)


def test_watcher_uses_its_own_connection(etcd_server, etcd_prefix):
    member = etcd_server.members[0]
    client = etcd.Client(host=member.host, port=member.port, per_host_pool_size=1)
    out: queue.Queue[Any] = queue.Queue()
    watchers = [client.watcher(f"{etcd_prefix}/w{i}", poll_timeout=30) for i in range(3)]
    threads = [consume_in_thread(w, out) for w in watchers]
    # Three long polls are waiting; ordinary requests of the client still go through.
    assert wait_for(lambda: client.store_stats["watchers"] >= 3, timeout=5)
    client.write(f"{etcd_prefix}/other", "v", timeout=2)
    assert client.read(f"{etcd_prefix}/other", timeout=2).value == "v"
    # ... and none of the long polls ever took a connection of the client's pool.
    assert client.http.connection_from_url(member.client_url).num_connections == 1
    for w in watchers:
        w.stop()
    for t in threads:
        t.join(timeout=2)
    assert all(not t.is_alive() for t in threads)


def test_eternal_watch_keeps_its_results(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/ew"
    first = etcd_client.write(key, "1")
    etcd_client.write(key, "2")
    events = etcd_client.eternal_watch(key, index=first.modifiedIndex)
    got = [next(events) for _ in range(2)]
    events.close()
    assert [type(e) for e in got] == [etcd.EtcdResult, etcd.EtcdResult]
    assert [e.value for e in got] == ["1", "2"]


@pytest.mark.slow
def test_watcher_survives_the_death_of_its_member(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3)
    leader = cluster.leader()
    follower, other = [m for m in cluster.members if m is not leader]
    hosts = tuple((m.host, m.port) for m in (follower, leader, other))
    watch_client = etcd.Client(host=hosts, allow_reconnect=True, read_timeout=5)
    assert watch_client.base_uri == follower.client_url
    writer = etcd.Client(host=leader.host, port=leader.port)
    start_index = writer.write("/survive/start", "0").modifiedIndex or 0

    out: queue.Queue[Any] = queue.Queue()
    watcher = watch_client.watcher(
        "/survive", recursive=True, index=start_index + 1, poll_timeout=2
    )
    thread = consume_in_thread(watcher, out)
    acked: list[int | None] = []
    for i in range(300):
        acked.append(writer.write(f"/survive/k{i % 10}", str(i)).modifiedIndex)
        if i == 100:
            follower.kill()
    seen: list[int | None] = []
    while len(seen) < len(acked):
        item = out.get(timeout=20)
        assert isinstance(item, etcd.EtcdResult), item
        seen.append(item.modifiedIndex)
    watcher.stop()
    thread.join(timeout=2)
    assert seen == acked


# --- a misbehaving server --------------------------------------------------


def _event(index: int) -> dict[str, Any]:
    return {
        "action": "set",
        "node": {"key": "/w", "value": str(index), "modifiedIndex": index, "createdIndex": index},
    }


def test_watcher_retries_dropped_and_cleared_watches_transparently():
    cleared = Reply.etcd({"errorCode": 400, "message": "watcher is cleared"}, 400)
    with FakeServer(dropped_watch(index=6), cleared, Reply.etcd(_event(7), index=6)) as fake:
        client = etcd.Client(host=fake.host, port=fake.port)
        with client.watcher("/w", index=7) as watcher:
            event = next(watcher)
        requests = fake.requests
    assert isinstance(event, etcd.EtcdResult)
    assert event.modifiedIndex == 7
    assert len(requests) == 3
    assert all(r.params["waitIndex"] == ["7"] for r in requests)


def test_watcher_moves_its_floor_from_the_header_of_a_timed_out_poll():
    from .fakes import HeadersThenStall, etcd_headers

    with FakeServer(
        HeadersThenStall(200, etcd_headers(index=41)), Reply.etcd(_event(45), index=44)
    ) as fake:
        client = etcd.Client(host=fake.host, port=fake.port)
        with client.watcher("/w", index=5, poll_timeout=0.3) as watcher:
            event = next(watcher)
        requests = fake.requests
    assert isinstance(event, etcd.EtcdResult)
    assert [r.params["waitIndex"] for r in requests] == [["5"], ["42"]]
    assert event.modifiedIndex == 45
