"""Directory listings built from v3 pairs (``etcd._v3_tree.dir_node``), for any set of keys.

Pure code, no server: the properties every listing must have, whatever other
v3 clients wrote below the directory.
"""

from __future__ import annotations

import base64
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import etcd
from etcd._v3_codec import Layout
from etcd._v3_tree import dir_node

_NAMES = ["a", "b", "_h", "a-x", "a.b", "é", ""]
_keys = st.lists(
    st.tuples(
        st.lists(st.sampled_from(_NAMES), min_size=1, max_size=3),
        st.booleans(),  # a directory marker
    ),
    max_size=15,
)


def _pairs(namespace: str, path: str, keys: list[tuple[list[str], bool]]) -> list[dict[str, Any]]:
    found = {path + "/" + "/".join(parts) + ("/" if marker else "") for parts, marker in keys}
    pairs = []
    for number, key in enumerate(sorted(found, key=str.encode), start=2):
        raw = (namespace + key).encode()
        kv = {"key": base64.b64encode(raw).decode(), "create_revision": str(number)}
        kv["mod_revision"] = str(number + 1)
        if not key.endswith("/"):
            kv["value"] = base64.b64encode(f"v{number}".encode()).decode()
        pairs.append(kv)
    return pairs


def _leaves(node: dict[str, Any]) -> dict[str, str]:
    out = {}
    for child in node.get("nodes", ()):
        if child.get("dir"):
            out.update(_leaves(child))
        else:
            out[child["key"]] = child["value"]
    return out


def _expected_leaves(path: str, pairs: list[dict[str, Any]]) -> dict[str, str]:
    """Files with a v2 name, not hidden, and not below another file (the file wins)."""
    files = {}
    for kv in pairs:
        key = base64.b64decode(kv["key"]).decode()
        if not key.endswith("/"):
            files[key] = base64.b64decode(kv["value"]).decode()
    expected = {}
    for key, value in files.items():
        parts = key[len(path) + 1 :].split("/")
        if "" in parts or any(part.startswith("_") for part in parts):
            continue
        ancestors = [path + "/" + "/".join(parts[:i]) for i in range(1, len(parts))]
        if not any(a in files for a in ancestors):
            expected[key] = value
    return expected


@settings(max_examples=300, deadline=None)
@given(keys=_keys, namespace=st.sampled_from(["", "/ns"]), seed=st.integers(0, 1000))
def test_a_listing_has_every_visible_file_once_in_any_order(keys, namespace, seed):
    path = "/d"
    pairs = _pairs(namespace, path, keys)
    layout = Layout(namespace)
    node = dir_node(layout, path, pairs, recursive=True)
    if not pairs:
        assert node is None
        return
    assert node is not None
    shuffled = list(pairs)
    random.Random(seed).shuffle(shuffled)
    assert dir_node(layout, path, shuffled, recursive=True) == node  # the order does not matter
    unprefixed = [
        dict(kv, key=base64.b64encode(base64.b64decode(kv["key"])[len(namespace) :]).decode())
        for kv in pairs
    ]
    assert _leaves(node) == _expected_leaves(path, unprefixed)
    flat = dir_node(layout, path, pairs, recursive=False)
    assert flat is not None
    names = [child["key"] for child in flat.get("nodes", ())]
    assert names == sorted(names) and len(names) == len(set(names))
    assert all("nodes" not in child for child in flat.get("nodes", ()))


def _kv(key: str, created: Any, modified: Any, value: str = "v") -> dict[str, Any]:
    kv = {"key": base64.b64encode(key.encode()).decode(), "create_revision": created}
    kv["mod_revision"] = modified
    if value:
        kv["value"] = base64.b64encode(value.encode()).decode()
    return kv


@settings(max_examples=200, deadline=None)
@given(
    revisions=st.lists(
        st.tuples(st.sampled_from(["1", "2", "10", "11"]), st.booleans()), max_size=12
    )
)
def test_each_leaf_has_the_revisions_of_its_own_pair(revisions):
    """Neighbours often share revisions (written in one transaction); some were overwritten."""
    kvs = [
        _kv(f"/d/k{number:02d}", created, str(int(created) + 5) if overwritten else created)
        for number, (created, overwritten) in enumerate(revisions)
    ]
    node = dir_node(Layout(), "/d", kvs, recursive=True)
    got = [(n["createdIndex"], n["modifiedIndex"]) for n in (node or {}).get("nodes", ())]
    assert got == [(int(kv["create_revision"]), int(kv["mod_revision"])) for kv in kvs]


@pytest.mark.parametrize(
    "revisions",
    [[("5", "5"), ("5", "x")], [("x", "x")], [("5", "5"), ("5.0", "5.0")], [("7", [7])]],
    ids=["after-a-good-one", "first", "float", "not-text"],
)
def test_a_revision_that_is_not_a_number_is_a_typed_error(revisions):
    kvs = [_kv(f"/d/k{n}", c, m) for n, (c, m) in enumerate(revisions)]
    with pytest.raises(etcd.EtcdException, match="Unable to decode server response"):
        dir_node(Layout(), "/d", kvs, recursive=True)


def test_a_listing_gives_an_implicit_directory_the_revisions_below_it():
    kvs = [_kv("/d/a/x", "4", "9"), _kv("/d/a/y/z", "3", "6"), _kv("/d/f", "8", "8")]
    for recursive in (True, False):
        node = dir_node(Layout(), "/d", kvs, recursive=recursive)
        assert node is not None
        child = node["nodes"][0]
        assert (child["key"], child["createdIndex"], child["modifiedIndex"]) == ("/d/a", 3, 9)
        assert ("nodes" in child) is recursive
        assert node["nodes"][1] == {
            "key": "/d/f",
            "value": "v",
            "modifiedIndex": 8,
            "createdIndex": 8,
        }


def test_a_pair_that_is_not_an_object_is_a_typed_error():
    pairs: list[Any] = [_kv("/d/a", "2", "2"), ["not", "a", "pair"]]
    with pytest.raises(etcd.EtcdException, match="Unable to decode server response"):
        dir_node(Layout(), "/d", pairs, recursive=True)


def test_a_walk_of_a_listing_yields_every_leaf_with_its_value():
    kvs = [_kv(f"/d/{d}/k{k}", "2", "2", f"{d}{k}") for d in "ab" for k in range(3)]
    kvs.insert(0, _kv("/d/top", "3", "3", "t"))
    node = dir_node(Layout(), "/d", kvs, recursive=True)
    result = etcd.EtcdResult("get", node)
    assert [(leaf.key, leaf.value) for leaf in result.leaves] == [
        (f"/d/{d}/k{k}", f"{d}{k}") for d in "ab" for k in range(3)
    ] + [("/d/top", "t")]
