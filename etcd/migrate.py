"""Copying a v2 tree into the v3 layout that ``etcd.Client(..., api="v3")`` reads.

etcd 3.6 removed the v2 API and 3.7 the v2 store, and ``etcdctl migrate`` is
gone since etcd 3.5. Run this while the server still serves v2 (etcd 3.4 or
3.5 with ``--enable-v2=true``)::

    import etcd, etcd.migrate

    source = etcd.Client(port=2379)               # the v2 API
    target = etcd.Client(port=2379, api="v3")     # the same server, its v3 store
    print(etcd.migrate.migrate(source, target, "/app", dry_run=True))
    etcd.migrate.migrate(source, target, "/app", progress=print)
    assert etcd.migrate.verify(source, target, "/app") == []

Files become v3 keys of the same path, directories their ``P/`` markers, and a
TTL a lease with the TTL that remained. Keys are written in batches, one
transaction each; a key that already holds the same value is left alone, so
running the copy again changes nothing. The copy is not atomic: writers of
the v2 tree should be stopped while it runs, and :func:`verify` run after.

Hidden keys (names that start with ``_``) are not listed by the v2 API, so
they are copied only when *prefix* names them.

.. versionadded:: 0.5.0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ._exceptions import EtcdKeyNotFound, EtcdTypeError, EtcdValueError
from ._v3_codec import b64, unb64

if TYPE_CHECKING:
    from ._result import EtcdResult
    from .client import Client

__all__ = ["Difference", "MigrationReport", "migrate", "verify"]

_MAX_BATCH = 128  # etcd's default --max-txn-ops


@dataclasses.dataclass(frozen=True)
class MigrationReport:
    """What :func:`migrate` found and did.

    .. versionadded:: 0.5.0
    """

    #: Files in the v2 tree.
    files: int
    #: Directories in the v2 tree (the prefix itself included, when it is one).
    directories: int
    #: Files and directories that had a TTL, now a lease.
    leased: int
    #: Keys written (or, in a dry run, that would be written).
    written: int
    #: Keys that held the same value already and were left alone.
    unchanged: int
    #: Whether this was a dry run that wrote nothing.
    dry_run: bool


@dataclasses.dataclass(frozen=True)
class Difference:
    """One path where the v2 tree and its v3 copy disagree.

    .. versionadded:: 0.5.0
    """

    #: The v2 path.
    key: str
    #: ``"missing"`` (only in v2), ``"extra"`` (only in v3), ``"value"`` or ``"kind"``
    #: (a file on one side, a directory on the other).
    problem: str
    #: What v2 holds: the value, ``"<dir>"``, or ``None`` when absent.
    source: str | None
    #: What v3 holds, in the same terms.
    target: str | None


@dataclasses.dataclass(frozen=True)
class _Item:
    path: str
    value: str | None  # None: a directory
    ttl: int | None


def _check(source: Client, target: Client) -> None:
    if source.api != "v2":
        raise EtcdTypeError('the source of a migration is a client with api="v2"')
    if target.api != "v3":
        raise EtcdTypeError('the target of a migration is a client with api="v3"')


def _tree(client: Client, prefix: str) -> Iterator[EtcdResult]:
    try:
        root = client.read(prefix, recursive=True)
    except EtcdKeyNotFound:
        return
    for node in root.get_subtree():
        if node.key is None:  # the root directory itself
            continue
        yield node


def _items(source: Client, prefix: str) -> list[_Item]:
    return [
        _Item(node.key or "", None if node.dir else (node.value or ""), node.ttl)
        for node in _tree(source, prefix)
    ]


def _target_key(target: Client, item: _Item) -> str:
    return target.namespace + item.path + ("/" if item.value is None else "")


def _batches(items: list[_Item], size: int) -> Iterator[list[_Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def migrate(
    source: Client,
    target: Client,
    prefix: str = "/",
    *,
    batch_size: int = 100,
    dry_run: bool = False,
    progress: Callable[[int, int], object] | None = None,
) -> MigrationReport:
    """Copy the v2 tree at *prefix* into the v3 store, in the layout of ``api="v3"``.

    :param source: a client with ``api="v2"`` (a server still serving v2).
    :param target: a client with ``api="v3"``; its ``namespace`` applies.
    :param prefix: the v2 directory or file to copy; ``"/"`` copies everything.
    :param batch_size: keys per transaction, at most 128 (etcd's default limit).
    :param dry_run: count what would be written, and write nothing.
    :param progress: called as ``progress(done, total)`` after each batch.
    :returns: the counts of what was found and written.
    :raises etcd.EtcdTypeError: the clients use the wrong APIs.
    :raises etcd.EtcdException: a request failed; running again resumes the copy.
    """
    _check(source, target)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise EtcdTypeError(f"batch_size must be an int, not {batch_size!r}")
    if not 0 < batch_size <= _MAX_BATCH:
        raise EtcdValueError(f"batch_size must be from 1 to {_MAX_BATCH}, not {batch_size!r}")
    items = _items(source, prefix)
    written = unchanged = 0
    done = 0
    for batch in _batches(items, batch_size):
        keys = [_target_key(target, item) for item in batch]
        current = target.api_execute_v3(
            "/v3/kv/txn",
            {"success": [{"request_range": {"key": b64(key)}} for key in keys]},
        )
        todo = []
        for item, key, answer in zip(batch, keys, current.get("responses") or (), strict=True):
            kvs = (answer.get("response_range") or {}).get("kvs") or []
            if kvs and unb64(kvs[0].get("value")) == (item.value or ""):
                unchanged += 1
            else:
                todo.append((item, key))
        written += len(todo)
        if todo and not dry_run:
            puts = []
            for item, key in todo:
                put: dict[str, Any] = {"key": b64(key)}
                if item.value:
                    put["value"] = b64(item.value)
                if item.ttl:
                    # a lease of its own, so that refreshing one key refreshes no other
                    granted = target.api_execute_v3("/v3/lease/grant", {"TTL": str(item.ttl)})
                    put["lease"] = str(granted["ID"])
                puts.append({"request_put": put})
            target.api_execute_v3("/v3/kv/txn", {"success": puts})
        done += len(batch)
        if progress is not None:
            progress(done, len(items))
    return MigrationReport(
        files=sum(1 for item in items if item.value is not None),
        directories=sum(1 for item in items if item.value is None),
        leased=sum(1 for item in items if item.ttl),
        written=written,
        unchanged=unchanged,
        dry_run=dry_run,
    )


def _described(client: Client, prefix: str) -> dict[str, tuple[bool, str]]:
    return {node.key or "": (node.dir, node.value or "") for node in _tree(client, prefix)}


def _shown(entry: tuple[bool, str] | None) -> str | None:
    if entry is None:
        return None
    return "<dir>" if entry[0] else entry[1]


def verify(source: Client, target: Client, prefix: str = "/") -> list[Difference]:
    """Compare the v2 tree at *prefix* with its v3 copy.

    Values and the file-or-directory kind are compared; indexes and TTLs are
    not (the v3 store numbers its changes apart, and a TTL runs on).

    :returns: the differences, sorted by key; empty when the copy is complete.
    :raises etcd.EtcdTypeError: the clients use the wrong APIs.
    """
    _check(source, target)
    before, after = _described(source, prefix), _described(target, prefix)
    differences = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if new is None:
            problem = "missing"
        elif old is None:
            problem = "extra"
        elif old[0] != new[0]:
            problem = "kind"
        else:
            problem = "value"
        differences.append(Difference(key, problem, _shown(old), _shown(new)))
    return differences
