"""Building v2 nodes (the dicts :class:`etcd.EtcdResult` is made from) from v3 pairs.

Pure code, no I/O. A directory exists when its marker ``P/`` exists or when any
key starts with ``P/``; an implicit directory (no marker: data written by
``etcdctl migrate`` or by a plain v3 client) reports the smallest
``create_revision`` and the largest ``mod_revision`` below it. When a file and
a directory have the same name (possible only when another v3 client wrote
both), the file wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._v3_codec import Layout, int_field, unb64

__all__ = ["dir_node", "file_node", "marker_node"]


def file_node(layout: Layout, kv: Mapping[str, Any]) -> dict[str, Any]:
    """The v2 node of the file stored in the pair *kv*."""
    return {
        "key": layout.v2_key(unb64(kv.get("key"))),
        "value": unb64(kv.get("value")),
        "modifiedIndex": int_field(kv, "mod_revision"),
        "createdIndex": int_field(kv, "create_revision"),
    }


def marker_node(layout: Layout, kv: Mapping[str, Any]) -> dict[str, Any]:
    """The v2 node of the directory whose marker is the pair *kv*."""
    return {
        "key": layout.v2_key(unb64(kv.get("key")))[:-1],
        "dir": True,
        "modifiedIndex": int_field(kv, "mod_revision"),
        "createdIndex": int_field(kv, "create_revision"),
    }


class _Entry:
    __slots__ = ("children", "file", "marker")

    def __init__(self) -> None:
        self.file: Mapping[str, Any] | None = None
        self.marker: Mapping[str, Any] | None = None
        self.children: dict[str, _Entry] = {}


def _insert(root: _Entry, rest: str, kv: Mapping[str, Any]) -> None:
    parts = rest.split("/")
    is_marker = parts[-1] == ""
    if is_marker:
        parts.pop()
    if "" in parts:
        return  # "a//b": a key no v2 path can name
    entry = root
    for part in parts:
        child = entry.children.get(part)
        if child is None:
            child = entry.children[part] = _Entry()
        entry = child
    if is_marker:
        entry.marker = kv
    else:
        entry.file = kv


def _revisions(entry: _Entry) -> tuple[int, int]:
    """(smallest create_revision, largest mod_revision) of everything below *entry*."""
    created = 0
    modified = 0
    stack = [entry]
    while stack:
        current = stack.pop()
        for kv in (current.file, current.marker):
            if kv is not None:
                c = int_field(kv, "create_revision")
                m = int_field(kv, "mod_revision")
                created = c if not created or c < created else created
                modified = max(modified, m)
        stack.extend(current.children.values())
    return created, modified


def _render(entry: _Entry, key: str, depth: int, layout: Layout) -> dict[str, Any]:
    """The v2 node of *entry*; *depth* levels of children are included."""
    if entry.file is not None:
        return {
            "key": key,
            "value": unb64(entry.file.get("value")),
            "modifiedIndex": int_field(entry.file, "mod_revision"),
            "createdIndex": int_field(entry.file, "create_revision"),
        }
    node: dict[str, Any] = {"key": key, "dir": True}
    if entry.marker is not None:
        node["modifiedIndex"] = int_field(entry.marker, "mod_revision")
        node["createdIndex"] = int_field(entry.marker, "create_revision")
    else:
        created, modified = _revisions(entry)
        node["modifiedIndex"] = modified
        node["createdIndex"] = created
    if depth > 0 and entry.children:
        nodes = [
            _render(child, f"{key}/{name}", depth - 1, layout)
            for name, child in sorted(entry.children.items())
            if not name.startswith("_")  # hidden, as v2 listings do
        ]
        if nodes:
            node["nodes"] = nodes
    return node


def dir_node(
    layout: Layout, path: str, kvs: Iterable[Mapping[str, Any]], *, recursive: bool
) -> dict[str, Any] | None:
    """The v2 node of the directory *path* from the pairs of its prefix range.

    :param path: the directory's v2 path, ``""`` for the root.
    :param kvs: the pairs of the range ``[marker, end)``.
    :param recursive: include the whole tree, not only the direct children.
    :returns: the node, or ``None`` when *kvs* is empty (no such directory).
    """
    prefix = layout.marker(path)
    cut = len(prefix)
    root = _Entry()
    found = False
    for kv in kvs:
        found = True
        rest = unb64(kv.get("key"))[cut:]
        if rest:
            _insert(root, rest, kv)
        else:
            root.marker = kv
    if not found:
        return None
    depth = 1 << 30 if recursive else 1
    if path == "":
        node = _render(root, "", depth, layout)
        return {"dir": True, **({"nodes": node["nodes"]} if "nodes" in node else {})}
    return _render(root, path, depth, layout)
