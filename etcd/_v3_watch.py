"""One-shot v2 watches over the v3 gateway's watch stream.

``POST /v3/watch`` answers a chunked stream of newline-delimited JSON objects
that never ends; the server adds or cancels nothing on a live HTTP/1.1 stream,
so a watch is one connection, read until the first event and then closed.

A watch from an index at or below the current revision is an "unsynced"
watcher, which the server serves about 100 ms later. For a single existing key
whose last change is older than the index, no event for it can lie between the
index and the current revision (a change would have raised its
``mod_revision``, a delete removed it), so such a watch starts at the current
revision + 1 instead, which the server serves at once. And when the key's last
change is exactly at the index, that change is the answer: it is built from
the key and its previous version (a range at the revision before), without a
watch at all.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import _transport
from ._exceptions import (
    EtcdConnectionFailed,
    EtcdError,
    EtcdEventIndexCleared,
    EtcdException,
    EtcdInsufficientPermissions,
    EtcdWatchTimedOut,
)
from ._result import EtcdResult
from ._v3_codec import (
    b64,
    check_permission_cancel,
    decode_answer,
    decode_stream_line,
    int_field,
    split_lines,
    unb64,
)
from ._v3_tree import file_node, marker_node

if TYPE_CHECKING:
    from ._v3 import V3Protocol
    from .client import Client

__all__ = ["WatchBuffer", "watch_once"]

_BUFFERED_SCOPES = 64

log = logging.getLogger(__name__)


class WatchBuffer:
    """Events that came in the same message as the one a watch returned.

    A watch from a past index gets the history in large messages; the next
    watch of the same key, from the next index, is served from here instead
    of a new connection (and etcd's 100 ms catch-up wait). An entry covers
    every revision from ``start`` to ``end``: the events kept are all those of
    the key in that span.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: collections.OrderedDict[
            tuple[str, bool], tuple[int, int, list[tuple[int, dict[str, Any], int]]]
        ] = collections.OrderedDict()

    def put(
        self,
        scope: tuple[str, bool],
        start: int,
        end: int,
        events: list[tuple[int, dict[str, Any], int]],
    ) -> None:
        with self._lock:
            self._entries[scope] = (start, end, events)
            self._entries.move_to_end(scope)
            while len(self._entries) > _BUFFERED_SCOPES:
                self._entries.popitem(last=False)

    def take(self, scope: tuple[str, bool], index: int | None) -> EtcdResult | None:
        """The first kept event at *index* or later, if the entry covers *index*."""
        if index is None:
            return None
        with self._lock:
            entry = self._entries.get(scope)
            if entry is None or not entry[0] <= index <= entry[1]:
                return None
            _, end, events = entry
            for position, (revision, event, etcd_index) in enumerate(events):
                if revision >= index:
                    self._entries[scope] = (revision + 1, end, events[position + 1 :])
                    result = EtcdResult(**event)
                    result.etcd_index = result.raft_index = etcd_index
                    return result
            return None


def _relevant(key: str, file_key: str, marker: str, recursive: bool) -> bool:
    if key in (file_key, marker):
        return True
    if not recursive or not key.startswith(marker):
        return False
    # v2 does not tell a recursive watcher about hidden keys below it
    return not any(part.startswith("_") for part in key[len(marker) :].split("/"))


def _group_event(
    proto: V3Protocol, events: list[Mapping[str, Any]], revision: int
) -> dict[str, Any]:
    """The one v2 event for the v3 events of one revision (the design's §6)."""
    layout = proto.layout
    puts = [e for e in events if e.get("type", "PUT") == "PUT"]
    if puts:
        keyed = [(unb64(e["kv"].get("key")), e) for e in puts]
        files = [item for item in keyed if not item[0].endswith("/")]
        key, event = max(files or keyed, key=lambda item: len(item[0]))
        kv = event["kv"]
        node = marker_node(layout, kv) if key.endswith("/") else file_node(layout, kv)
        action = "create" if int_field(kv, "version") == 1 else "set"
        prev_kv = event.get("prev_kv")
        if prev_kv is None:  # a directory replacing a file: its delete is the previous node
            gone = [e for e in events if e.get("type") == "DELETE" and e.get("prev_kv")]
            prev_kv = gone[0]["prev_kv"] if gone else None
    else:
        keyed = [(unb64(e["kv"].get("key")), e) for e in events]
        key, event = min(keyed, key=lambda item: len(item[0]))
        prev_kv = event.get("prev_kv")
        node = {"key": layout.v2_key(key).rstrip("/"), "modifiedIndex": revision}
        if key.endswith("/"):
            node["dir"] = True
        if prev_kv:
            node["createdIndex"] = int_field(prev_kv, "create_revision")
        action = "delete"
    result: dict[str, Any] = {"action": action, "node": node}
    if prev_kv:
        prev_key = unb64(prev_kv.get("key"))
        result["prevNode"] = (
            marker_node(layout, prev_kv) if prev_key.endswith("/") else file_node(layout, prev_kv)
        )
    return result


def _events_by_revision(
    result: Mapping[str, Any],
) -> Iterator[tuple[int, list[Mapping[str, Any]]]]:
    group: list[Mapping[str, Any]] = []
    current = 0
    for event in result.get("events") or ():
        kv = event.get("kv") or {}
        revision = int_field(kv, "mod_revision")
        if group and revision != current:
            yield current, group
            group = []
        current = revision
        group.append(event)
    if group:
        yield current, group


def watch_once(
    proto: V3Protocol,
    client: Client,
    key: str,
    *,
    index: int | None,
    timeout: float | None,
    recursive: bool,
) -> EtcdResult:
    """Wait for the first change of *key* (at *index* or later) and return it as v2 does.

    :raises EtcdWatchTimedOut: no change in time.
    :raises EtcdEventIndexCleared: *index* is older than the last compaction.
    :raises EtcdInsufficientPermissions: the server refused the watch.
    """
    layout = proto.layout
    path = layout.path(key)
    file_key, marker, end = layout.file(path), layout.marker(path), layout.end(path)
    start = int(index) if index else None
    buffered = proto.watch_buffer.take((path, recursive), start)
    if buffered is not None:
        return buffered
    request: dict[str, Any] = {"prev_kv": True}
    if path == "":
        request.update(key=b64(marker), range_end=b64(end))
    elif not recursive and start is not None:
        answer = proto.send(
            client, "/v3/kv/range", {"key": b64(file_key)}, idempotent=True, timeout=timeout
        )
        kvs = answer.get("kvs") or []
        if kvs:
            request["key"] = b64(file_key)  # a single file: its own key only
            modified = int_field(kvs[0], "mod_revision")
            if modified < start:
                start = max(start, proto.revision_of(answer) + 1)  # the fast path
            elif modified == start:
                last = _last_change(proto, client, kvs[0], answer, timeout)
                if last is not None:
                    return last
        else:
            request.update(key=b64(file_key), range_end=b64(end))
    else:
        request.update(key=b64(file_key), range_end=b64(end))
    if start is not None:
        request["start_revision"] = str(start)
    tried: dict[str, BaseException] = {}
    renewed = False
    while True:
        try:
            return _stream_first_event(
                proto,
                client,
                {"create_request": request},
                start,
                timeout,
                (file_key, marker, recursive),
                (path, recursive),
            )
        except _NotConnected as failed:
            # never reached the member: with allow_reconnect, the next one is asked
            tried[failed.base] = failed.cause
            client._next_server(cause=failed.cause, tried=tried)
        except EtcdInsufficientPermissions:
            # etcd 3.5 cancels a watch with an expired token as "permission denied",
            # like a real refusal: with credentials, one new token is tried
            if renewed or client.username is None:
                raise
            proto.tokens.forget()
            renewed = True


def _last_change(
    proto: V3Protocol,
    client: Client,
    kv: Mapping[str, Any],
    answer: Mapping[str, Any],
    timeout: float | None,
) -> EtcdResult | None:
    """The event of the put that made *kv*, without a watch.

    The key exists and changed last at its ``mod_revision`` M, so the first
    event of the key at M or later is that put; its previous pair is the key
    at M - 1. ``None`` when M - 1 is compacted: the watch then decides.
    """
    revision = int_field(kv, "mod_revision")
    if revision < 2:
        return None
    try:
        before = proto.send(
            client,
            "/v3/kv/range",
            {"key": kv.get("key"), "revision": str(revision - 1)},
            idempotent=True,
            timeout=timeout,
        )
    except EtcdEventIndexCleared:
        return None
    event: dict[str, Any] = {"kv": kv}
    previous = before.get("kvs") or []
    if previous:
        event["prev_kv"] = previous[0]
    result = EtcdResult(**_group_event(proto, [event], revision))
    result.etcd_index = result.raft_index = proto.revision_of(answer)
    return result


def _stream_first_event(
    proto: V3Protocol,
    client: Client,
    body: Mapping[str, Any],
    start: int | None,
    timeout: float | None,
    keys: tuple[str, str, bool],
    scope: tuple[str, bool],
) -> EtcdResult:
    urllib_timeout = _transport.resolve_timeout(timeout, client.read_timeout)
    base = client.base_uri
    headers = {**client._get_headers(), "Content-Type": "application/json"}
    created_at: int | None = None
    response = None
    try:
        response = client.http.urlopen(
            "POST",
            base + "/v3/watch",
            body=json.dumps(body),
            headers=headers,
            timeout=urllib_timeout,
            retries=client._retries,
            redirect=client.allow_redirect,
            preload_content=False,
        )
        if response.status != 200:
            decode_answer(response.status, response.data)
            raise EtcdException(f"The watch was answered with HTTP {response.status}")
        for line in split_lines(response.stream(65536)):
            result = decode_stream_line(line)
            header = result.get("header") or {}
            if result.get("canceled"):
                _canceled(result, start)
            if result.get("created") and created_at is None:
                created_at = int_field(header, "revision")
                continue
            found = []
            last = 0
            for revision, events in _events_by_revision(result):
                last = revision
                mine = [
                    e for e in events if _relevant(unb64((e.get("kv") or {}).get("key")), *keys)
                ]
                if mine:
                    found.append(
                        (revision, _group_event(proto, mine, revision), created_at or revision)
                    )
            if found:
                first_revision, first, etcd_index = found[0]
                if len(found) > 1 or last > first_revision:
                    proto.watch_buffer.put(scope, first_revision + 1, last, found[1:])
                event = EtcdResult(**first)
                event.etcd_index = event.raft_index = etcd_index
                return event
        raise EtcdConnectionFailed(f"The server ended the watch stream of {base} without an event")
    except _transport.TRANSPORT_ERRORS as exc:
        kind = _transport.classify(exc, watching=True)
        if kind is _transport.FailureKind.WATCH_TIMEOUT:
            timed_out = EtcdWatchTimedOut(_transport.watch_timeout_message(exc, base), cause=exc)
            if created_at is not None and (start is None or start > created_at):
                # synced: nothing happened up to the revision the watch started at
                timed_out.etcd_index = created_at
            raise timed_out from exc
        if kind is _transport.FailureKind.NOT_SENT and client._allow_reconnect:
            raise _NotConnected(base, exc) from exc
        hint = _transport.explain(exc, base)
        raise EtcdConnectionFailed(
            f"The watch on {base} failed: {_transport.describe(exc)}{'. ' if hint else ''}{hint}",
            cause=exc,
        ) from exc
    finally:
        if response is not None:
            # the stream never ends by itself: closing it cancels the watch in the server
            response.close()
            response.release_conn()


class _NotConnected(Exception):
    def __init__(self, base: str, cause: BaseException) -> None:
        super().__init__(base)
        self.base = base
        self.cause = cause


def _canceled(result: Mapping[str, Any], start: int | None) -> None:
    compacted = int_field(result, "compact_revision")
    if compacted:
        EtcdError.handle(
            {
                "errorCode": 401,
                "message": "The event in requested index is outdated and cleared",
                "cause": f"the requested history has been cleared [{compacted}/{start}]",
                "index": compacted,
            }
        )
    reason = result.get("cancel_reason")
    check_permission_cancel(reason if isinstance(reason, str) else "canceled")
