"""The v3 protocol: python-etcd's key-space calls over etcd's v3 JSON gateway.

Every call is turned into ``POST /v3/...`` requests in the key layout of
:mod:`etcd._v3_codec` and sent through one function the client supplies (it
fails over, verifies TLS and adds the auth token); the answers become the same
:class:`etcd.EtcdResult` objects and exceptions as with the v2 API. Writes are
one ``/v3/kv/txn`` carrying every structural check, whose failure branch
diagnoses the v2 error; a TTL adds a lease grant before it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import Any, NoReturn

from ._exceptions import EtcdException, EtcdTypeError
from ._result import EtcdResult
from ._v3_auth import Sender, Tokens
from ._v3_codec import (
    Layout,
    absent,
    compare,
    delete,
    get,
    int_field,
    mkdir_if_missing,
    present,
    put,
    responses,
    txn,
    unb64,
)
from ._v3_errors import (
    _ancestors,
    _bool_option,
    _compare_failed,
    _expiration,
    _int_option,
    _kvs,
    _not_file,
    _not_found,
    _raise,
    _validation,
)
from ._v3_tree import dir_node, file_node
from ._v3_watch import WatchBuffer

__all__ = ["Sender", "V3Protocol", "protocol_for"]

_APPEND_ATTEMPTS = 64


class V3Protocol:
    """The key-space operations of the v2 API, carried out over the v3 gateway.

    :param namespace: the prefix of every v3 key (see :class:`~etcd._v3_codec.Layout`).

    One instance serves a client and its clones; it keeps only the namespace,
    the newest revision seen (to name in-order keys) and the auth tokens, each
    tied to the credentials it was issued for.
    """

    def __init__(self, namespace: str = "") -> None:
        self.layout = Layout(namespace)
        self._revision = 0
        self._lock = threading.Lock()
        self.tokens = Tokens()
        self.watch_buffer = WatchBuffer()

    # ------------------------------------------------------------------
    # Authentication (etcd/_v3_auth.py)

    def auth_headers(
        self, io: Sender, username: str | None, password: str | None
    ) -> dict[str, str]:
        """The ``Authorization`` header for *username*, authenticating first if needed."""
        return self.tokens.headers(io, username, password)

    def renew_token(self, exc: EtcdException) -> bool:
        """Forget the token after *exc*; whether a new one may help (retry once)."""
        return self.tokens.renew(exc)

    # ------------------------------------------------------------------
    # Plumbing

    def send(
        self,
        io: Sender,
        endpoint: str,
        body: Mapping[str, Any],
        *,
        idempotent: bool,
        timeout: float | None = None,
        ranges: bool = False,
    ) -> dict[str, Any]:
        """Send one request; remember the revision of its answer.

        :param ranges: the answer is one of ranges only, whose pairs may come
            with ``key`` and ``value`` decoded (:func:`decode_range_answer`):
            only for readers that take both forms, through ``unb64`` and the
            listing code.
        """
        answer = io._v3_send(endpoint, body, idempotent=idempotent, timeout=timeout, ranges=ranges)
        header = answer.get("header")
        if isinstance(header, Mapping):
            revision = int_field(header, "revision")
            if revision > self._revision:
                with self._lock:
                    self._revision = max(self._revision, revision)
        return answer

    @staticmethod
    def revision_of(answer: Mapping[str, Any]) -> int:
        header = answer.get("header")
        return int_field(header, "revision") if isinstance(header, Mapping) else 0

    def _result(
        self,
        answer: Mapping[str, Any],
        action: str,
        node: dict[str, Any],
        prev: dict[str, Any] | None = None,
    ) -> EtcdResult:
        result = EtcdResult(action, node, prev)
        result.etcd_index = result.raft_index = self.revision_of(answer)
        return result

    def _lease_info(self, io: Sender, lease: int, timeout: float | None) -> tuple[int, int]:
        """(remaining seconds, granted TTL) of a lease; (-1, 0) when it is gone."""
        answer = self.send(
            io, "/v3/lease/timetolive", {"ID": str(lease)}, idempotent=True, timeout=timeout
        )
        # A gone lease says "TTL": "-1"; in its last second the gateway leaves the 0 out.
        return int(answer.get("TTL", 0)), int_field(answer, "grantedTTL")

    def _with_ttl(
        self, io: Sender, node: dict[str, Any], kv: Mapping[str, Any], timeout: float | None
    ) -> dict[str, Any]:
        lease = int_field(kv, "lease")
        if lease:
            remaining, _ = self._lease_info(io, lease, timeout)
            if remaining >= 0:
                node["ttl"] = remaining
                node["expiration"] = _expiration(remaining)
        return node

    def _grant(self, io: Sender, ttl: int, timeout: float | None) -> tuple[int, int]:
        answer = self.send(
            io, "/v3/lease/grant", {"TTL": str(ttl)}, idempotent=False, timeout=timeout
        )
        return int_field(answer, "ID"), int_field(answer, "TTL")

    def _missing(self, io: Sender, path: str, index: int, timeout: float | None) -> NoReturn:
        """Raise 104 when a file sits above *path*, else 100 naming, as v2 does, the
        first part of *path* that does not exist."""
        above = _ancestors(path)
        if above:
            layout = self.layout
            ops = []
            for ancestor in above:
                ops.append(get(layout.file(ancestor), keys_only=True))
                ops.append(
                    get(layout.marker(ancestor), layout.end(ancestor), keys_only=True, limit=1)
                )
            answer = self.send(io, "/v3/kv/txn", txn([], ops), idempotent=True, timeout=timeout)
            found = responses(answer)
            for number, ancestor in enumerate(above):
                if _kvs(found[2 * number]):
                    _raise(104, "Not a directory", ancestor, index)
                if not _kvs(found[2 * number + 1]):
                    _not_found(ancestor, index)
        _not_found(path, index)

    # ------------------------------------------------------------------
    # Reads

    def read(
        self,
        io: Sender,
        key: str,
        *,
        recursive: bool = False,
        quorum: bool = False,
        timeout: float | None = None,
    ) -> EtcdResult:
        """``GET /v2/keys/<key>``: a file, or a directory listing (sorted)."""
        layout = self.layout
        path = layout.path(key)
        serializable = not quorum
        marker, end = layout.marker(path), layout.end(path)
        if path == "":
            answer = self.send(
                io,
                "/v3/kv/range",
                get(marker, end, serializable=serializable)["request_range"],
                idempotent=True,
                timeout=timeout,
                ranges=True,
            )
            node = dir_node(layout, path, _kvs(answer), recursive=recursive) or {"dir": True}
            return self._result(answer, "get", node)
        answer = self.send(
            io,
            "/v3/kv/txn",
            txn(
                [],
                [
                    get(layout.file(path), serializable=serializable),
                    get(marker, end, serializable=serializable),
                ],
            ),
            idempotent=True,
            timeout=timeout,
            ranges=True,
        )
        file_answer, dir_answer = responses(answer)
        files = _kvs(file_answer)
        if files:
            return self._result(
                answer, "get", self._with_ttl(io, file_node(layout, files[0]), files[0], timeout)
            )
        listing = dir_node(layout, path, _kvs(dir_answer), recursive=recursive)
        if listing is None:
            self._missing(io, path, self.revision_of(answer), timeout)
        return self._result(answer, "get", listing)

    # ------------------------------------------------------------------
    # Writes

    def write(
        self,
        io: Sender,
        key: str,
        value: Any,
        *,
        ttl: Any = None,
        dir: bool = False,
        append: bool = False,
        conditions: Mapping[str, Any],
        timeout: float | None = None,
    ) -> EtcdResult:
        """``PUT`` (or with *append* ``POST``) ``/v2/keys/<key>`` with its conditions."""
        path = self.layout.path(key)
        if path == "":
            _raise(107, "Root is read only", "/", self._revision)
        text = None if value is None else str(value)
        prev_value = conditions.get("prevValue")
        if "prevValue" in conditions and (prev_value is None or str(prev_value) == ""):
            _validation(201, "PrevValue is Required in POST form", '"prevValue" cannot be empty')
        prev_index = None
        if "prevIndex" in conditions:
            prev_index = _int_option(
                "prevIndex",
                conditions["prevIndex"],
                203,
                "The given index in POST form is not a number",
            )
            prev_index = prev_index or None  # 0 is no condition, as in v2
        prev_exist = None
        if "prevExist" in conditions and conditions["prevExist"] is not None:
            prev_exist = _bool_option("prevExist", conditions["prevExist"])
        ttl_seconds = None
        if ttl is not None and str(ttl) != "":
            ttl_seconds = _int_option(
                "ttl", ttl, 202, "The given TTL in POST form is not a number"
            )
        refresh = "refresh" in conditions and _bool_option("refresh", conditions["refresh"])
        if refresh:
            if text is not None:
                _validation(211, "Value provided on refresh", "A value was provided on a refresh")
            if ttl_seconds is None:
                _validation(212, "A TTL must be provided on refresh", "No TTL value set")
            return self._refresh(io, path, ttl_seconds, prev_value, prev_index, timeout)
        if append:
            return self._append(io, path, text or "", ttl_seconds, timeout)
        return self._set(
            io,
            path,
            text or "",
            ttl=ttl_seconds,
            is_dir=dir,
            prev_value=None if prev_value is None else str(prev_value),
            prev_index=prev_index,
            prev_exist=prev_exist,
            timeout=timeout,
        )

    def _set(
        self,
        io: Sender,
        path: str,
        value: str,
        *,
        ttl: int | None,
        is_dir: bool,
        prev_value: str | None,
        prev_index: int | None,
        prev_exist: bool | None,
        timeout: float | None,
    ) -> EtcdResult:
        layout = self.layout
        k, marker, end = layout.file(path), layout.marker(path), layout.end(path)
        above = _ancestors(path)
        cas = prev_value is not None or prev_index is not None
        compares = [absent(layout.file(a)) for a in above]
        compares.append(absent(marker, end))  # not a directory (102), nor one to create (105)
        if prev_exist is False:
            compares.append(absent(k))
        elif prev_exist is True or cas:
            compares.append(present(k))
        if prev_value is not None:
            compares.append(compare("VALUE", k, "EQUAL", prev_value))
        if prev_index is not None:
            compares.append(compare("MOD", k, "EQUAL", prev_index))
        lease, granted = self._grant(io, ttl, timeout) if ttl is not None else (0, 0)
        if is_dir:
            success = [delete(k), put(marker, lease=lease)]
        else:
            success = [put(k, value, lease=lease, prev_kv=True)]
        success.extend(mkdir_if_missing(layout.marker(a)) for a in above)
        failure = [get(layout.file(a), keys_only=True) for a in above]
        failure.append(get(marker, end, keys_only=True, limit=1))
        failure.append(get(k))
        answer = self.send(
            io, "/v3/kv/txn", txn(compares, success, failure), idempotent=False, timeout=timeout
        )
        index = self.revision_of(answer)
        if not answer.get("succeeded"):
            if lease:
                self._revoke_quietly(io, lease)
            found = responses(answer)
            for ancestor, item in zip(above, found, strict=False):
                if _kvs(item):
                    _raise(104, "Not a directory", ancestor, index)
            in_dir, current = _kvs(found[-2]), _kvs(found[-1])
            if prev_exist is False and (current or in_dir):
                _raise(105, "Key already exists", path, index)
            if in_dir:
                _not_file(path, index)
            if not current:
                _not_found(path, index)
            _compare_failed(current[0], prev_value, prev_index, index)
        done = responses(answer)
        prev_kv = (done[0].get("prev_kv") if not is_dir else None) or None
        if is_dir:
            deleted = done[0].get("prev_kvs") or []
            prev_kv = deleted[0] if deleted else None
        node: dict[str, Any] = {"key": path}
        if is_dir:
            node["dir"] = True
        else:
            node["value"] = value
        node["modifiedIndex"] = index
        node["createdIndex"] = (
            int_field(prev_kv, "create_revision") if prev_kv and not is_dir else index
        )
        if lease:
            node["ttl"] = granted
            node["expiration"] = _expiration(granted)
        action = "set"
        if cas:
            action = "compareAndSwap"
        elif prev_exist is False:
            action = "create"
        elif prev_exist is True:
            action = "update"
        prev = file_node(layout, prev_kv) if prev_kv else None
        result = self._result(answer, action, node, prev)
        result.newKey = prev_kv is None and prev_exist is not True
        return result

    def _revoke_quietly(self, io: Sender, lease: int) -> None:
        with contextlib.suppress(EtcdException):  # else it expires on its own
            self.send(io, "/v3/lease/revoke", {"ID": str(lease)}, idempotent=True)

    def _refresh(
        self,
        io: Sender,
        path: str,
        ttl: int,
        prev_value: Any,
        prev_index: int | None,
        timeout: float | None,
    ) -> EtcdResult:
        """Give an existing key a new TTL: silently when it keeps the same TTL."""
        layout = self.layout
        k = layout.file(path)
        answer = self.send(
            io,
            "/v3/kv/txn",
            txn([], [get(k), get(layout.marker(path), layout.end(path), keys_only=True, limit=1)]),
            idempotent=True,
            timeout=timeout,
        )
        index = self.revision_of(answer)
        found, in_dir = (_kvs(r) for r in responses(answer))
        if not found:
            if in_dir:
                _not_file(path, index)
            self._missing(io, path, index, timeout)
        kv = found[0]
        causes = []
        if prev_value is not None and unb64(kv.get("value")) != str(prev_value):
            causes.append(f"[{prev_value} != {unb64(kv.get('value'))}]")
        if prev_index is not None and int_field(kv, "mod_revision") != prev_index:
            causes.append(f"[{prev_index} != {int_field(kv, 'mod_revision')}]")
        if causes:
            _raise(101, "Compare failed", " ".join(causes), index)
        prev = file_node(layout, kv)
        lease = int_field(kv, "lease")
        granted = 0
        if lease:
            remaining, granted = self._lease_info(io, lease, timeout)
            if remaining < 0:
                _not_found(path, index)
        node = dict(prev)
        if lease and (granted == ttl or ttl < granted <= 2):  # 2: a clamped minimum
            alive = self.send(
                io, "/v3/lease/keepalive", {"ID": str(lease)}, idempotent=True, timeout=timeout
            )
            result = alive.get("result", alive)
            if not isinstance(result, Mapping) or not result.get("TTL"):
                _not_found(path, index)
        else:
            # Another TTL: a new lease, attached by a put that keeps the value. This
            # makes a revision and a PUT event, which a v2 refresh does not.
            lease, granted = self._grant(io, ttl, timeout)
            moved = self.send(
                io,
                "/v3/kv/txn",
                txn(
                    [compare("MOD", k, "EQUAL", int_field(kv, "mod_revision"))],
                    [put(k, lease=lease, ignore_value=True)],
                ),
                idempotent=False,
                timeout=timeout,
            )
            if not moved.get("succeeded"):
                self._revoke_quietly(io, lease)
                _raise(101, "Compare failed", "the key changed during the refresh", index)
            answer = moved
            node["modifiedIndex"] = self.revision_of(moved)
        node["ttl"] = granted
        node["expiration"] = _expiration(granted)
        return self._result(answer, "update", node, prev)

    def _append(
        self, io: Sender, path: str, value: str, ttl: int | None, timeout: float | None
    ) -> EtcdResult:
        """``POST``: a new key below *path* named after (about) its creation revision."""
        layout = self.layout
        marker, end = layout.marker(path), layout.end(path)
        lease, granted = self._grant(io, ttl, timeout) if ttl is not None else (0, 0)
        chain = [*_ancestors(path), path]
        seen = self._revision
        for _ in range(_APPEND_ATTEMPTS):
            name = f"{path}/{seen + 1:020d}"
            new_key = layout.file(name)
            compares = [absent(layout.file(a)) for a in chain]
            compares.append(compare("MOD", marker, "LESS", seen + 1, range_end=end))
            compares.append(compare("CREATE", new_key, "EQUAL", 0))
            success = [put(new_key, value, lease=lease)]
            success.extend(mkdir_if_missing(layout.marker(a)) for a in chain)
            failure = [get(layout.file(a), keys_only=True) for a in chain]
            answer = self.send(
                io,
                "/v3/kv/txn",
                txn(compares, success, failure),
                idempotent=False,
                timeout=timeout,
            )
            index = self.revision_of(answer)
            if answer.get("succeeded"):
                node: dict[str, Any] = {
                    "key": name,
                    "value": value,
                    "modifiedIndex": index,
                    "createdIndex": index,
                }
                if lease:
                    node["ttl"] = granted
                    node["expiration"] = _expiration(granted)
                result = self._result(answer, "create", node)
                result.newKey = True
                return result
            for ancestor, item in zip(chain, responses(answer), strict=False):
                if _kvs(item):
                    if lease:
                        self._revoke_quietly(io, lease)
                    _raise(104, "Not a directory", ancestor, index)
            seen = max(seen, index)
        if lease:
            self._revoke_quietly(io, lease)
        raise EtcdException(
            f"Could not create an in-order key below {path} in {_APPEND_ATTEMPTS} attempts: "
            "the directory changes too fast"
        )

    # ------------------------------------------------------------------
    # Deletes

    def delete(
        self,
        io: Sender,
        key: str,
        *,
        recursive: bool = False,
        dir: bool = False,
        conditions: Mapping[str, Any],
        timeout: float | None = None,
    ) -> EtcdResult:
        """``DELETE /v2/keys/<key>`` with its options and conditions."""
        layout = self.layout
        path = layout.path(key)
        if path == "":
            _raise(107, "Root is read only", "/", self._revision)
        k, marker, end = layout.file(path), layout.marker(path), layout.end(path)
        prev_value = conditions.get("prevValue")
        prev_value = None if prev_value is None else str(prev_value)
        prev_index = None
        if conditions.get("prevIndex") is not None:
            prev_index = _int_option(
                "prevIndex",
                conditions["prevIndex"],
                203,
                "The given index in POST form is not a number",
            )
            prev_index = prev_index or None
        cas = prev_value is not None or prev_index is not None
        compares = []
        if cas:
            compares.append(present(k))
            if prev_value is not None:
                compares.append(compare("VALUE", k, "EQUAL", prev_value))
            if prev_index is not None:
                compares.append(compare("MOD", k, "EQUAL", prev_index))
        if recursive:
            success = [delete(marker, end), delete(k)]
        elif dir:
            compares.append(absent(marker + "\x00", end))
            success = [delete(marker), delete(k)]
        else:
            compares.append(absent(marker, end))
            success = [delete(k)]
        failure = [get(k), get(marker, end, keys_only=True, limit=1)]
        answer = self.send(
            io, "/v3/kv/txn", txn(compares, success, failure), idempotent=False, timeout=timeout
        )
        index = self.revision_of(answer)
        if not answer.get("succeeded"):
            current, in_dir = (_kvs(r) for r in responses(answer))
            if cas:
                if not current:
                    if in_dir:
                        _not_file(path, index)
                    self._missing(io, path, index, timeout)
                if in_dir:
                    _not_file(path, index)
                _compare_failed(current[0], prev_value, prev_index, index)
            if dir:
                _raise(108, "Directory not empty", path, index)
            _not_file(path, index)
        deleted: list[dict[str, Any]] = []
        for item in responses(answer):
            deleted.extend(item.get("prev_kvs") or [])
        if not deleted:
            self._missing(io, path, index, timeout)
        file_kv = next((kv for kv in deleted if unb64(kv.get("key")) == k), None)
        prev: dict[str, Any] | None
        if file_kv is not None:
            prev = file_node(layout, file_kv)
            node = {"key": path, "modifiedIndex": index, "createdIndex": prev["createdIndex"]}
        else:
            prev = dir_node(layout, path, deleted, recursive=False)
            assert prev is not None
            prev.pop("nodes", None)
            node = {
                "key": path,
                "dir": True,
                "modifiedIndex": index,
                "createdIndex": prev["createdIndex"],
            }
        return self._result(answer, "compareAndDelete" if cas else "delete", node, prev)


def protocol_for(api: Any, namespace: Any) -> V3Protocol | None:
    """The protocol a client made with *api* and *namespace* speaks; ``None`` is v2.

    :raises EtcdTypeError: an unknown *api*, or a *namespace* without ``api="v3"``.
    """
    if api == "v3":
        return V3Protocol(namespace)
    if api != "v2":
        raise EtcdTypeError(f'api must be "v2" or "v3", not {api!r}')
    if namespace != "":
        raise EtcdTypeError('namespace applies only to api="v3"')
    return None
