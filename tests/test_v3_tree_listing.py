"""Directory listings built from v3 pairs (``etcd._v3_tree.dir_node``), for any set of keys.

Pure code, no server: the properties every listing must have, whatever other
v3 clients wrote below the directory.
"""

from __future__ import annotations

import base64
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

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
