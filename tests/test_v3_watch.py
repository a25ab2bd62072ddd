"""Watches over the v3 gateway: one-shot, recursive, eternal, Watcher, and history limits."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

import etcd

from .helpers import call_in_thread
from .recipes_support import kill
from .v3_support import b64, gateway, raw_put, v3_client, v3_namespace

__all__ = ["v3_client", "v3_namespace"]


def _result_of(thread_and_box: tuple[threading.Thread, dict[str, Any]]) -> etcd.EtcdResult:
    thread, box = thread_and_box
    thread.join(30)
    assert not thread.is_alive(), "the watch did not return"
    if "error" in box:
        raise box["error"]
    result: etcd.EtcdResult = box["result"]
    return result


def test_a_watch_from_a_past_index_returns_that_change(v3_client):
    first = v3_client.write("/k", "1")
    v3_client.write("/k", "2")
    event = v3_client.watch("/k", index=first.modifiedIndex)
    assert (event.key, event.value, event.modifiedIndex) == ("/k", "1", first.modifiedIndex)
    # Approximate (docs/v3.rst): v3 events are PUT or DELETE; a first version is "create".
    assert event.action == "create"
    again = v3_client.watch("/k", index=first.modifiedIndex + 1)
    assert (again.value, again.action, again._prev_node.value) == ("2", "set", "1")


def test_conditional_writes_are_watched_as_set_and_delete(v3_client):
    # docs/v3.rst row "watch action names": never update, compareAndSwap or compareAndDelete
    first = v3_client.write("/k", "1", prevExist=False)
    v3_client.write("/k", "2", prevExist=True)
    v3_client.test_and_set("/k", "3", "2")
    v3_client.write("/k", "4", prevIndex=v3_client.read("/k").modifiedIndex)
    v3_client.delete("/k", prevValue="4")
    events = v3_client.eternal_watch("/k", index=first.modifiedIndex)
    seen = [(e.action, e.value) for e in itertools.islice(events, 5)]
    assert [action for action, _ in seen] == ["create", "set", "set", "set", "delete"]
    assert [value for _, value in seen[:4]] == ["1", "2", "3", "4"]


def test_a_watch_waits_for_the_next_change(v3_client):
    written = v3_client.write("/k", "1")
    pending = call_in_thread(v3_client.watch, "/k", index=written.etcd_index + 1, timeout=20)
    changed = v3_client.write("/k", "2")
    event = _result_of(pending)
    assert (event.value, event.modifiedIndex) == ("2", changed.modifiedIndex)


def test_a_watch_of_a_missing_key_sees_its_creation(v3_client):
    now = v3_client.write("/other", "x").etcd_index
    pending = call_in_thread(v3_client.watch, "/k", index=now + 1, timeout=20)
    v3_client.write("/k-sibling", "not this one")
    v3_client.write("/k", "born")
    assert _result_of(pending).value == "born"


def test_read_wait_is_a_watch(v3_client):
    written = v3_client.write("/k", "1")
    event = v3_client.read("/k", wait=True, waitIndex=written.modifiedIndex)
    assert event.value == "1"


def test_a_recursive_watch_skips_siblings_and_hidden_keys(v3_client):
    start = v3_client.write("/d/a", "0").etcd_index + 1
    v3_client.write("/d-x", "sibling")
    v3_client.write("/dx/y", "sibling dir")
    v3_client.write("/d/_hidden", "h")
    wanted = v3_client.write("/d/sub/b", "1")
    event = v3_client.watch("/d", index=start, recursive=True)
    assert (event.key, event.value, event.modifiedIndex) == ("/d/sub/b", "1", wanted.modifiedIndex)


def test_deletes_are_delete_events(v3_client):
    v3_client.write("/k", "1")
    deleted = v3_client.delete("/k")
    event = v3_client.watch("/k", index=deleted.modifiedIndex)
    assert (event.action, event.key, event.modifiedIndex) == (
        "delete",
        "/k",
        deleted.modifiedIndex,
    )
    assert event._prev_node.value == "1"


def test_a_recursive_delete_is_one_event_of_the_directory(v3_client):
    for name in "abc":
        v3_client.write(f"/d/{name}", name)
    deleted = v3_client.delete("/d", recursive=True)
    event = v3_client.watch("/d", index=deleted.modifiedIndex, recursive=True)
    assert (event.action, event.key, event.dir) == ("delete", "/d", True)
    assert event.modifiedIndex == deleted.modifiedIndex


def test_a_watch_times_out(v3_client):
    v3_client.write("/k", "1")
    with pytest.raises(etcd.EtcdWatchTimedOut) as caught:
        v3_client.watch("/k", timeout=0.5)
    # The message names the member in words, as on v2, not a urllib3 repr.
    message = str(caught.value)
    assert message.startswith(f"Watch timed out: {v3_client.base_uri} reported no change")
    assert "Error(" not in message and "Pool" not in message


def test_eternal_watch_yields_every_change_in_order(v3_client):
    first = v3_client.write("/k", "0")
    for i in range(1, 6):
        v3_client.write("/k", str(i))
    events = list(itertools.islice(v3_client.eternal_watch("/k", index=first.modifiedIndex), 6))
    assert [e.value for e in events] == [str(i) for i in range(6)]
    indexes = [e.modifiedIndex for e in events]
    assert indexes == sorted(set(indexes))


def test_the_watcher_yields_every_change_once(v3_client):
    first = v3_client.write("/tree/a", "0")
    for i in range(1, 20):
        v3_client.write(f"/tree/{'ab'[i % 2]}", str(i))
    with v3_client.watcher("/tree", recursive=True, index=first.modifiedIndex) as watcher:
        events = list(itertools.islice(watcher, 20))
    assert [e.value for e in events] == [str(i) for i in range(20)]


def test_a_watch_from_a_compacted_index_raises_index_cleared(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=1, enable_v2=False)
    url = cluster.client_urls[0]
    client = cluster.client(api="v3")
    try:
        old = client.write("/k", "1").modifiedIndex
        client.write("/k", "2")
        latest = raw_put(url, "/other", "x")
        gateway(url, "/v3/kv/compaction", {"revision": str(latest), "physical": True})
        with pytest.raises(etcd.EtcdEventIndexCleared, match="cleared") as info:
            client.watch("/k", index=old)
        assert info.value.error_code == 401
        assert info.value.resume_index == latest
        with pytest.raises(etcd.EtcdEventIndexCleared):
            next(client.eternal_watch("/dir", index=old, recursive=True))
        with pytest.raises(etcd.EtcdEventIndexCleared):
            client.read("/k", wait=True, waitIndex=old)
        # a key read after the compaction is watched from its read's index on
        read = client.read("/k")
        pending = call_in_thread(client.watch, "/k", index=read.etcd_index + 1, timeout=20)
        client.write("/k", "3")
        assert _result_of(pending).value == "3"
    finally:
        client.close()
    assert b64("/k")  # the raw helpers and the client agree on the encoding


def test_5000_changes_reach_a_slow_watcher_once_each(v3_client, v3_namespace):
    first = v3_client.write("/tree/start", "0")
    watcher = v3_client.watcher("/tree", recursive=True, index=first.modifiedIndex)
    assert next(watcher).modifiedIndex == first.modifiedIndex
    script = textwrap.dedent(
        f"""
        import etcd
        client = etcd.Client(host={v3_client.host!r}, port={v3_client.port}, api="v3",
                             namespace={v3_namespace!r})
        for i in range(5000):
            key = "/tree/k%d" % (i % 50)
            if i % 11 == 10:
                try:
                    client.delete(key)
                except etcd.EtcdKeyNotFound:
                    pass
            else:
                client.write(key, str(i))
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", script])
    try:
        # the slowest reader: it starts after the whole burst
        assert writer.wait(timeout=200) == 0
    finally:
        kill(writer)
    final = v3_client.read("/tree", recursive=True)
    events: list[Any] = []
    with watcher:
        while not events or events[-1].modifiedIndex < final.etcd_index:
            events.append(next(watcher))
    indexes = [e.modifiedIndex for e in events]
    assert indexes == sorted(set(indexes)), "an event was repeated or came out of order"
    assert len(events) == final.etcd_index - first.modifiedIndex  # one per revision: none lost
    state: dict[Any, Any] = {}
    for event in events:
        if event.action == "delete":
            state.pop(event.key, None)
        else:
            state[event.key] = event.value
    state["/tree/start"] = "0"
    assert state == {n.key: n.value for n in final.leaves}
