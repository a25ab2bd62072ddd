"""A v3 watch of one key from the index of the key's last change (answered without a watch).

The answer must be the one the watch stream would give, and the one v2 gives
(the oracle, on the same server): the change itself, with its previous value.
"""

from __future__ import annotations

import pytest

import etcd

from .v3_support import gateway, raw_put, v3_client, v3_namespace

__all__ = ["v3_client", "v3_namespace"]


def _summary(event: etcd.EtcdResult) -> tuple[object, ...]:
    prev = getattr(event, "_prev_node", None)
    return (event.key, event.value, prev.value if prev is not None else None)


def test_a_watch_at_the_last_change_returns_it_as_v2_does(etcd_client, etcd_prefix, v3_client):
    for client, key in ((etcd_client, f"{etcd_prefix}/k"), (v3_client, "/k")):
        client.write(key, "1")
        written = client.write(key, "2")
        event = client.watch(key, index=written.modifiedIndex)
        assert event.modifiedIndex == written.modifiedIndex
        assert event.action == "set"
        assert _summary(event)[1:] == ("2", "1")
        assert event.key == key
        assert event.etcd_index >= written.modifiedIndex
        # the same from read(wait=True) and from a later revision of the cluster
        client.write(f"{key}-other", "x")
        again = client.read(key, wait=True, waitIndex=written.modifiedIndex)
        assert (again.modifiedIndex, *_summary(again)[1:]) == (written.modifiedIndex, "2", "1")


def test_a_first_version_has_no_previous_node(v3_client):
    v3_client.write("/k", "old")
    v3_client.delete("/k")
    created = v3_client.write("/k", "new")
    event = v3_client.watch("/k", index=created.modifiedIndex)
    assert (event.action, event.value, getattr(event, "_prev_node", None)) == (
        "create",
        "new",
        None,
    )
    assert event.createdIndex == created.modifiedIndex


def test_a_ttl_key_written_again_keeps_its_previous_value(v3_client):
    v3_client.write("/k", "1", ttl=60)
    written = v3_client.write("/k", "2", ttl=60)
    event = v3_client.watch("/k", index=written.modifiedIndex)
    assert (event.modifiedIndex, event.value, event._prev_node.value) == (
        written.modifiedIndex,
        "2",
        "1",
    )


def test_with_the_previous_revision_compacted_the_watch_decides(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=1, enable_v2=False)
    url = cluster.client_urls[0]
    client = cluster.client(api="v3")
    try:
        client.write("/k", "1")
        written = client.write("/k", "2")
        # compacted at the change: the change is still in the history, not the value before
        gateway(url, "/v3/kv/compaction", {"revision": str(written.modifiedIndex)})
        event = client.watch("/k", index=written.modifiedIndex)
        assert (event.modifiedIndex, event.value) == (written.modifiedIndex, "2")
        # compacted past the change: the history is cleared, as for any watch
        latest = raw_put(url, "/other", "x")
        gateway(url, "/v3/kv/compaction", {"revision": str(latest)})
        with pytest.raises(etcd.EtcdEventIndexCleared):
            client.watch("/k", index=written.modifiedIndex)
    finally:
        client.close()
