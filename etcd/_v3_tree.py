"""Building v2 nodes (the dicts :class:`etcd.EtcdResult` is made from) from v3 pairs.

Pure code, no I/O. A directory exists when its marker ``P/`` exists or when any
key starts with ``P/``; an implicit directory (no marker: data written by
``etcdctl migrate`` or by a plain v3 client) reports the smallest
``create_revision`` and the largest ``mod_revision`` below it. When a file and
a directory have the same name (possible only when another v3 client wrote
both), the file wins.
"""

from __future__ import annotations

import binascii
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._v3_codec import Layout, int_field, unb64

__all__ = ["dir_node", "file_node", "marker_node"]

# The hot loops below decode base64 inline rather than through unb64(): two
# calls fewer per key and per value of a listing. a2b_base64(strict_mode=True)
# accepts exactly what unb64() accepts (3.11+); on a failure, or on 3.10,
# unb64() is called, which gives the result or raises the typed error.
_INLINE_B64 = sys.version_info >= (3, 11)
_a2b: Callable[..., bytes] = binascii.a2b_base64
_B64_ERRORS = (binascii.Error, TypeError, ValueError)


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
    """A directory being built: its marker, its files and its subdirectories by name."""

    __slots__ = ("children", "files", "marker")

    def __init__(self) -> None:
        self.marker: Mapping[str, Any] | None = None
        self.files: dict[str, Mapping[str, Any]] = {}
        self.children: dict[str, _Entry] = {}


def _revisions(entry: _Entry) -> tuple[int, int]:
    """(smallest create_revision, largest mod_revision) of everything below *entry*."""
    created = 0
    modified = 0
    stack = [entry]
    while stack:
        current = stack.pop()
        kvs = list(current.files.values())
        if current.marker is not None:
            kvs.append(current.marker)
        for kv in kvs:
            c = int_field(kv, "create_revision")
            m = int_field(kv, "mod_revision")
            created = c if not created or c < created else created
            modified = max(modified, m)
        stack.extend(current.children.values())
    return created, modified


def _render(entry: _Entry, key: str, depth: int) -> dict[str, Any]:
    """The v2 node of the directory *entry*; *depth* levels of children are included."""
    node: dict[str, Any] = {"key": key, "dir": True}
    if entry.marker is not None:
        node["modifiedIndex"] = int_field(entry.marker, "mod_revision")
        node["createdIndex"] = int_field(entry.marker, "create_revision")
    else:
        created, modified = _revisions(entry)
        node["modifiedIndex"] = modified
        node["createdIndex"] = created
    files, children = entry.files, entry.children
    if depth > 0 and (files or children):
        nodes = []
        for name in sorted(files.keys() | children.keys() if children else files):
            if name.startswith("_"):
                continue  # hidden, as v2 listings do
            kv = files.get(name)
            if kv is None:
                nodes.append(_render(children[name], f"{key}/{name}", depth - 1))
                continue
            # a file (it wins over a directory of the same name), built inline: this
            # runs once per file of a listing
            try:
                modified, created = int(kv["mod_revision"]), int(kv["create_revision"])
            except (KeyError, TypeError, ValueError):  # as int_field: missing is 0, garbage raises
                modified = int_field(kv, "mod_revision")
                created = int_field(kv, "create_revision")
            data = kv.get("value")
            if data and _INLINE_B64:
                try:
                    value = _a2b(data, strict_mode=True).decode("utf-8", "replace")
                except _B64_ERRORS:
                    value = unb64(data)  # raises the typed error
            else:
                value = unb64(data)
            nodes.append(
                {
                    "key": f"{key}/{name}",
                    "value": value,
                    "modifiedIndex": modified,
                    "createdIndex": created,
                }
            )
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
    # the pairs come sorted, so a directory's files follow each other: remember the last one
    last_parent, last_entry = "", root
    for kv in kvs:
        found = True
        data = kv.get("key")
        if data and _INLINE_B64:
            try:
                rest = _a2b(data, strict_mode=True).decode("utf-8", "replace")[cut:]
            except _B64_ERRORS:
                rest = unb64(data)[cut:]  # raises the typed error
        else:
            rest = unb64(data)[cut:]
        parent, slash, name = rest.rpartition("/")
        if not slash:  # a file right below the directory, or its own marker
            if name:
                root.files[name] = kv
            else:
                root.marker = kv
            continue
        if parent == last_parent and last_entry is not root:
            entry = last_entry
        else:
            parts = parent.split("/")
            if "" in parts:
                continue  # "a//b": a key no v2 path can name
            entry = root
            for part in parts:
                child = entry.children.get(part)
                if child is None:
                    child = entry.children[part] = _Entry()
                entry = child
            last_parent, last_entry = parent, entry
        if name:
            entry.files[name] = kv
        else:
            entry.marker = kv
    if not found:
        return None
    depth = 1 << 30 if recursive else 1
    node = _render(root, path, depth)
    if path == "":
        return {"dir": True, **({"nodes": node["nodes"]} if "nodes" in node else {})}
    return node
