"""EtcdResult built from bodies as a real etcd server sends them."""

from __future__ import annotations

from typing import Any

import pytest

import etcd

LISTING: dict[str, Any] = {
    "action": "get",
    "node": {
        "key": "/dir",
        "dir": True,
        "nodes": [
            {"key": "/dir/a", "value": "1", "modifiedIndex": 5, "createdIndex": 5},
            {
                "key": "/dir/sub",
                "dir": True,
                "nodes": [
                    {"key": "/dir/sub/x", "value": "2", "modifiedIndex": 6, "createdIndex": 6},
                    {"key": "/dir/sub/empty", "dir": True, "modifiedIndex": 8, "createdIndex": 8},
                ],
                "modifiedIndex": 6,
                "createdIndex": 6,
            },
            {
                "key": "/dir/t",
                "value": "3",
                "expiration": "2026-11-26T20:00:00.5Z",
                "ttl": 9,
                "modifiedIndex": 7,
                "createdIndex": 7,
            },
        ],
        "modifiedIndex": 5,
        "createdIndex": 5,
    },
}


def test_attributes_and_defaults():
    result = etcd.EtcdResult(**LISTING)
    assert result.action == "get"
    assert (result.key, result.dir, result.value) == ("/dir", True, None)
    assert result.newKey is False and result.ttl is None and result.expiration is None
    assert not hasattr(result, "etcd_index")


def test_get_subtree_depth_first_in_server_order():
    result = etcd.EtcdResult(**LISTING)
    assert [n.key for n in result.get_subtree()] == [
        "/dir",
        "/dir/a",
        "/dir/sub",
        "/dir/sub/x",
        "/dir/sub/empty",
        "/dir/t",
    ]
    leaves = list(result.leaves)
    assert [n.key for n in leaves] == ["/dir/a", "/dir/sub/x", "/dir/sub/empty", "/dir/t"]
    assert [n.key for n in result.children] == [n.key for n in leaves]
    ttl_leaf = leaves[-1]
    assert (ttl_leaf.ttl, ttl_leaf.expiration, ttl_leaf.value) == (
        9,
        "2026-11-26T20:00:00.5Z",
        "3",
    )
    assert all(leaf.action is None for leaf in leaves)


def test_children_are_equal_to_results_built_directly():
    node = LISTING["node"]["nodes"][0]
    child = next(etcd.EtcdResult(**LISTING).leaves)
    direct = etcd.EtcdResult(None, node)
    assert child == direct
    for name in [*etcd.EtcdResult._node_props, "action"]:
        assert getattr(child, name) == getattr(direct, name), name
    assert list(child._children) == list(direct._children)


def test_unknown_fields_are_ignored():
    node = {"key": "/k", "value": "v", "modifiedIndex": 1, "createdIndex": 1, "future": 1}
    result = etcd.EtcdResult("get", node, extra="ignored")
    assert not hasattr(result, "future")
    listing = etcd.EtcdResult("get", {"key": "/d", "dir": True, "nodes": [node]})
    assert not hasattr(next(listing.leaves), "future")


def test_a_leaf_and_an_empty_directory_yield_themselves():
    leaf = etcd.EtcdResult("get", {"key": "/k", "value": "v"})
    assert list(leaf.leaves) == [leaf]
    empty = etcd.EtcdResult("get", {"key": "/d", "dir": True})
    assert [n.key for n in empty.leaves] == ["/d"]


def test_prev_node():
    body: dict[str, Any] = {
        "action": "set",
        "node": {"key": "/k", "value": "new", "modifiedIndex": 9, "createdIndex": 9},
        "prevNode": {"key": "/k", "value": "old", "modifiedIndex": 8, "createdIndex": 8},
    }
    result = etcd.EtcdResult(**body)
    assert result._prev_node.value == "old"
    assert result._prev_node.action is None


def test_directory_ttl_quirk_forces_dir():
    body: dict[str, Any] = {
        "action": "update",
        "node": {"key": "/d", "ttl": 5, "modifiedIndex": 9, "createdIndex": 3},
        "prevNode": {"key": "/d", "dir": True, "modifiedIndex": 3, "createdIndex": 3},
    }
    assert etcd.EtcdResult(**body).dir is True


def test_equality_ignores_action_and_indexes_but_not_type():
    a = etcd.EtcdResult("get", {"key": "/k", "value": "v", "modifiedIndex": 1})
    b = etcd.EtcdResult("set", {"key": "/k", "value": "v", "modifiedIndex": 1})
    c = etcd.EtcdResult("get", {"key": "/k", "value": "w", "modifiedIndex": 1})
    assert a == b
    assert not a != b  # noqa: SIM202 - __ne__ is part of the contract
    assert a != c

    class Sub(etcd.EtcdResult):
        pass

    assert a != Sub("get", {"key": "/k", "value": "v", "modifiedIndex": 1})
    with pytest.raises(TypeError):
        hash(a)


def test_node_is_required():
    with pytest.raises(TypeError):
        etcd.EtcdResult("get", None)


def test_results_are_mutable_and_repr_shows_the_state():
    result = etcd.EtcdResult("get", {"key": "/k", "value": "v"})
    result.value = "edited"
    result.etcd_index = 42
    text = repr(result)
    assert text.startswith("<class 'etcd.EtcdResult'>({")
    assert "'value': 'edited'" in text and "'etcd_index': 42" in text


def test_a_result_can_be_walked_again_and_from_several_threads():
    import threading

    dirs = [
        {
            "key": f"/big/d{d}",
            "dir": True,
            "nodes": [{"key": f"/big/d{d}/k{k}", "value": str(k)} for k in range(500)],
        }
        for d in range(40)
    ]
    result = etcd.EtcdResult("get", {"key": "/big", "dir": True, "nodes": dirs})
    counts: list[int] = []

    def walk() -> None:
        for _ in range(3):
            counts.append(sum(1 for leaf in result.leaves if leaf.value is not None))

    threads = [threading.Thread(target=walk) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == [20_000] * 12
    assert all("nodes" in d for d in dirs)  # the raw listing is left as it was
