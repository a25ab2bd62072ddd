"""Key-space hygiene for the fixtures of :mod:`etcd.testing`: prefixes, leaks, clean-up."""

from __future__ import annotations

import re
import urllib.parse
import uuid

import urllib3

from ._harness_binary import EtcdHarnessError
from ._harness_member import EtcdMember


def _key_url_path(key: str) -> str:
    return "/v2/keys/" + urllib.parse.quote(key.lstrip("/"), safe="/")


def _top_level_keys(member: EtcdMember) -> frozenset[str]:
    """Return the keys directly below ``/`` (hidden ``_`` keys are never listed).

    :param member: the member to ask.
    :returns: keys such as ``"/pytest"``.
    :raises EtcdHarnessError: the listing failed.
    """
    try:
        status, data = member._get_json("/v2/keys/")
    except urllib3.exceptions.HTTPError as exc:
        raise EtcdHarnessError(f"could not list / on {member.client_url}: {exc}") from exc
    if status != 200 or not isinstance(data, dict):
        raise EtcdHarnessError(f"listing / on {member.client_url} answered {status}: {data!r}")
    nodes = data.get("node", {}).get("nodes") or []
    return frozenset(str(node["key"]) for node in nodes)


def _delete_recursive(member: EtcdMember, key: str) -> bool:
    """Delete *key* and everything below it; a missing key is fine.

    :param member: the member to send the request to.
    :param key: the key or directory.
    :returns: whether something was deleted.
    :raises EtcdHarnessError: the server refused.
    """
    try:
        status, body = member.request("DELETE", _key_url_path(key) + "?recursive=true")
    except urllib3.exceptions.HTTPError as exc:
        raise EtcdHarnessError(f"could not delete {key!r}: {exc}") from exc
    if status == 404:
        return False
    if status != 200:
        text = body.decode("utf-8", "replace").strip()
        raise EtcdHarnessError(f"deleting {key!r} answered {status}: {text}")
    return True


def _remove_new_top_level_keys(member: EtcdMember, before: frozenset[str]) -> list[str]:
    """Delete every top-level key that is not in *before*.

    :param member: the member to ask.
    :param before: the result of an earlier :func:`top_level_keys`.
    :returns: the keys that were deleted, sorted.
    :raises EtcdHarnessError: listing or deleting failed.
    """
    leaked = sorted(_top_level_keys(member) - before)
    for key in leaked:
        _delete_recursive(member, key)
    return leaked


_PREFIX_ROOT = "/pytest"


def _ensure_prefix_root(member: EtcdMember) -> None:
    # Creating /pytest before the snapshot keeps the first test from looking
    # as if it had leaked it.
    status, body = member.request("PUT", _key_url_path(_PREFIX_ROOT) + "?dir=true&prevExist=false")
    if status not in (201, 412):
        text = body.decode("utf-8", "replace").strip()
        raise EtcdHarnessError(f"creating {_PREFIX_ROOT} answered {status}: {text}")


def _unique_prefix(test_name: str) -> str:
    """Return a fresh key prefix for a test: ``/pytest/<sanitised name>-<8 hex digits>``.

    :param test_name: the test's name; characters other than letters, digits,
        ``_``, ``.`` and ``-`` become ``_`` and it is cut to 60 characters.
    :returns: the prefix, without a trailing slash.
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name).strip("_.")[:60] or "test"
    return f"{_PREFIX_ROOT}/{safe}-{uuid.uuid4().hex[:8]}"
