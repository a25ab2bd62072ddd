"""Building v2 nodes (the dicts :class:`etcd.EtcdResult` is made from) from v3 pairs.

Pure code, no I/O. A directory exists when its marker ``P/`` exists or when any
key starts with ``P/``; an implicit directory (no marker: data written by
``etcdctl migrate`` or by a plain v3 client) reports the smallest
``create_revision`` and the largest ``mod_revision`` below it. When a file and
a directory have the same name (possible only when another v3 client wrote
both), the file wins.
"""

from __future__ import annotations

import base64
import binascii
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._exceptions import EtcdException
from ._result import _Leaves
from ._v3_codec import Layout, int_field, unb64

__all__ = ["dir_node", "file_node", "marker_node"]

# The hot loop below decodes base64 inline rather than through unb64(): two
# calls fewer per key and per value of a listing, and none at all for the pairs
# decode_range_answer decoded with msgspec (their fields come as bytes).
# a2b_base64(strict_mode=True) accepts exactly what unb64() accepts (3.11+); on
# a failure unb64() is called, which gives the result or raises the typed error.
if sys.version_info >= (3, 11):
    _a2b: Callable[..., bytes] = binascii.a2b_base64
else:  # pragma: no cover - Python 3.10

    def _a2b(data: Any, strict_mode: bool = True) -> bytes:
        return base64.b64decode(data, validate=strict_mode)


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
    """A directory being built: its marker's revisions, its files and subdirectories by name."""

    __slots__ = ("children", "files", "marker")

    def __init__(self) -> None:
        # (create_revision, mod_revision) of the marker, when there is one
        self.marker: tuple[int, int] | None = None
        # the v2 node of each file, built as the pairs are read; below a child
        # of a listing that is not recursive, the pair itself (never shown)
        self.files: dict[str, Mapping[str, Any]] = {}
        self.children: dict[str, _Entry] = {}


def _revisions(entry: _Entry) -> tuple[int, int]:
    """(smallest create_revision, largest mod_revision) of everything below *entry*."""
    created = 0
    modified = 0
    stack = [entry]
    while stack:
        current = stack.pop()
        pairs = [
            (n["createdIndex"], n["modifiedIndex"]) if "createdIndex" in n else _slow_revisions(n)
            for n in current.files.values()
        ]
        if current.marker is not None:
            pairs.append(current.marker)
        for c, m in pairs:
            created = c if not created or c < created else created
            modified = max(modified, m)
        stack.extend(current.children.values())
    return created, modified


def _render(entry: _Entry, key: str, depth: int) -> dict[str, Any]:
    """The v2 node of the directory *entry*; *depth* levels of children are included."""
    node: dict[str, Any] = {"key": key, "dir": True}
    created, modified = entry.marker or _revisions(entry)
    node["modifiedIndex"] = modified
    node["createdIndex"] = created
    files, children = entry.files, entry.children
    if depth > 0 and (files or children):
        if not children:
            # the usual directory, of files only: its children are plain leaves
            nodes: list[Any] = _Leaves([files[name] for name in sorted(files) if name[0] != "_"])
        else:
            nodes = []
            for name in sorted(files.keys() | children.keys()):
                if name[0] == "_":
                    continue  # hidden, as v2 listings do
                leaf = files.get(name)  # a file wins over a directory of the same name
                if leaf is None:
                    leaf = _render(children[name], f"{key}/{name}", depth - 1)
                nodes.append(leaf)
        if nodes:
            node["nodes"] = nodes
    return node


def _slow_text(kv: Any, field: str) -> str:
    """The text of the base64 *field* of the pair *kv*, with the typed errors of a bad answer."""
    if not isinstance(kv, Mapping):
        raise EtcdException(f"Unable to decode server response: a pair is {kv!r}")
    return unb64(kv.get(field))


def _slow_revisions(kv: Mapping[str, Any]) -> tuple[int, int]:
    return int_field(kv, "create_revision"), int_field(kv, "mod_revision")


def dir_node(
    layout: Layout, path: str, kvs: Iterable[Mapping[str, Any]], *, recursive: bool
) -> dict[str, Any] | None:
    """The v2 node of the directory *path* from the pairs of its prefix range.

    :param path: the directory's v2 path, ``""`` for the root.
    :param kvs: the pairs of the range ``[marker, end)``, in any order.
    :param recursive: include the whole tree, not only the direct children.
    :returns: the node, or ``None`` when *kvs* is empty (no such directory).
    :raises etcd.EtcdException: a pair is not what the gateway sends.
    """
    cut = len(layout.marker(path))
    skip = len(layout.namespace)
    if not isinstance(kvs, list):
        kvs = list(kvs)
    if not kvs:
        return None
    root = _Entry()
    a2b = _a2b
    # Keys written together (a migration, a transaction) follow each other with
    # the same revision, and most keys were never overwritten (created at their
    # last revision): int() runs only when the revision's text changes.
    last_text: Any = None
    last_revision = 0
    # This loop runs once per key of a recursive read, so it does the least it
    # can: every leaf is built here, in one pass, and the directories only
    # collect them. The pairs come sorted, so the files of a directory follow
    # each other: the last directory is remembered.
    last_parent: str | None = None
    last_entry = entry = root
    for kv in kvs:
        try:
            raw = kv["key"]  # bytes when decode_range_answer decoded it already
            full = (raw if type(raw) is bytes else a2b(raw, strict_mode=True)).decode()
        except (KeyError, *_B64_ERRORS):  # also not UTF-8 (a ValueError)
            full = _slow_text(kv, "key")  # a missing key is "", garbage raises
        parent, slash, name = full[cut:].rpartition("/")
        if not slash:
            entry = root
        elif parent != last_parent:
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
        else:
            entry = last_entry
        if not name:  # a directory marker
            entry.marker = _slow_revisions(kv)
            continue
        if not recursive and entry is not root:
            entry.files[name] = kv  # below a child of a listing: only its revisions may count
            continue
        try:
            text = kv["create_revision"]
            if text != last_text:
                last_revision, last_text = int(text), text
            created = last_revision
            text = kv["mod_revision"]
            if text != last_text:
                last_revision, last_text = int(text), text
            modified = last_revision
        except (KeyError, TypeError, ValueError):  # as int_field: missing is 0, garbage raises
            created, modified = _slow_revisions(kv)
        try:
            raw = kv["value"]
            value = (raw if type(raw) is bytes else a2b(raw, strict_mode=True)).decode()
        except (KeyError, *_B64_ERRORS):
            value = _slow_text(kv, "value")  # an empty value is left out
        entry.files[name] = {
            "key": full[skip:] if skip else full,
            "value": value,
            "modifiedIndex": modified,
            "createdIndex": created,
        }
    depth = 1 << 30 if recursive else 1
    node = _render(root, path, depth)
    if path == "":
        return {"dir": True, **({"nodes": node["nodes"]} if "nodes" in node else {})}
    return node
