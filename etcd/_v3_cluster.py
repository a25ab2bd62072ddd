"""Members, leader and membership administration over the v3 gateway.

The answers are turned into the JSON shapes of ``/v2/members`` (ids as
lowercase hex), so that :attr:`etcd.Client.members` and
:meth:`etcd.Client.get_members` give the same results with either API.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import _engine, _transport
from ._endpoints import Member
from ._exceptions import EtcdException, EtcdTypeError
from ._v3_codec import decode_answer

if TYPE_CHECKING:
    from ._v3 import V3Protocol
    from .client import Client

__all__ = [
    "add_member",
    "get_json",
    "get_leader",
    "get_members",
    "leader",
    "machines",
    "members",
    "remove_member",
    "update_member",
]

log = logging.getLogger(__name__)


def _hex(decimal: Any) -> str:
    try:
        return format(int(decimal), "x")
    except (TypeError, ValueError) as exc:
        raise EtcdException(f"Unable to decode a member id: {decimal!r}") from exc


def _decimal(member_id: str) -> str:
    if not isinstance(member_id, str) or not member_id:
        raise EtcdTypeError(f"member ids are hex strings, not {member_id!r}")
    try:
        return str(int(member_id, 16))
    except ValueError as exc:
        raise EtcdTypeError(f"member ids are hex strings, not {member_id!r}") from exc


def _as_v2(member: Any) -> dict[str, Any]:
    if not isinstance(member, Mapping):
        raise EtcdException(f"Unable to decode a member: {member!r}")
    urls = {}
    for field in ("peerURLs", "clientURLs"):
        value = member.get(field) or []
        if not isinstance(value, list) or not all(isinstance(url, str) for url in value):
            raise EtcdException(f"Unable to decode a member: {field} is {value!r}")
        urls[field] = list(value)
    name = member.get("name") or ""
    if not isinstance(name, str):
        raise EtcdException(f"Unable to decode a member: name is {name!r}")
    return {"id": _hex(member.get("ID")), "name": name, **urls}


def _proto(client: Client) -> V3Protocol:
    proto = client._v3
    if proto is None:  # pragma: no cover - the client dispatches here only for api="v3"
        raise EtcdException('the client was not made with api="v3"')
    return proto


def _member_list(client: Client) -> list[dict[str, Any]]:
    answer = _proto(client).send(client, "/v3/cluster/member/list", {}, idempotent=True)
    return [_as_v2(m) for m in answer.get("members") or ()]


def _leader_json(client: Client) -> dict[str, Any]:
    status = _proto(client).send(client, "/v3/maintenance/status", {}, idempotent=True)
    leader_id = _hex(status.get("leader", 0))
    for member in _member_list(client):
        if member["id"] == leader_id and leader_id != "0":
            return member
    raise EtcdException(f"The cluster has no leader now (status said {leader_id!r})")


def get_json(client: Client, path: str) -> Any:
    """The v2 statistics have no v3 equivalent.

    :raises EtcdException: always.
    """
    raise EtcdException(
        f"{client.version_prefix}{path} has no equivalent in etcd's v3 API "
        '(api="v3"); etcd\'s /metrics endpoint has some of its counters'
    )


def members(client: Client) -> dict[str, dict[str, Any]]:
    """The 0.4.5 ``members`` property: the members by id, as ``/v2/members`` lists them."""
    client._members = {m["id"]: m for m in _member_list(client)}
    return client._members


def leader(client: Client) -> dict[str, Any]:
    """The 0.4.5 ``leader`` property: the leading member, as in :func:`members`."""
    try:
        return _leader_json(client)
    except EtcdException as exc:
        raise EtcdException(f"Cannot get leader data: {exc}") from exc


def get_members(client: Client) -> list[Member]:
    """The cluster's members, from ``/v3/cluster/member/list``."""
    return [Member.from_json(m) for m in _member_list(client)]


def get_leader(client: Client) -> Member:
    """The leader, from ``/v3/maintenance/status``.

    :raises EtcdException: there is no leader now.
    """
    return Member.from_json(_leader_json(client))


def add_member(client: Client, peer_urls: Sequence[str]) -> Member:
    """Announce a new member."""
    if isinstance(peer_urls, str):
        raise EtcdTypeError("peer_urls must be a list of URLs, not a string")
    answer = _proto(client).send(
        client, "/v3/cluster/member/add", {"peerURLs": list(peer_urls)}, idempotent=False
    )
    return Member.from_json(_as_v2(answer.get("member")))


def remove_member(client: Client, member_id: str) -> None:
    """Remove a member.

    :raises EtcdKeyNotFound: there is no such member.
    """
    _proto(client).send(
        client, "/v3/cluster/member/remove", {"ID": _decimal(member_id)}, idempotent=False
    )


def update_member(client: Client, member_id: str, peer_urls: Sequence[str]) -> None:
    """Change the peer URLs of a member."""
    if isinstance(peer_urls, str):
        raise EtcdTypeError("peer_urls must be a list of URLs, not a string")
    _proto(client).send(
        client,
        "/v3/cluster/member/update",
        {"ID": _decimal(member_id), "peerURLs": list(peer_urls)},
        idempotent=True,
    )


def machines(client: Client) -> list[str]:
    """The client URLs of every member, asking the members in turn as v2's ``machines``
    does (:func:`etcd._engine.ask_members`: once only during a failover).

    :raises EtcdException: no member answered.
    """
    path = "/v3/cluster/member/list"

    def ask(base: str, timeout: _transport.TimeoutValue) -> list[str]:
        request = _engine.Request("POST", path, {}, json_body=True)
        response = _engine.send_once(client, base, request, timeout)
        answer = decode_answer(response.status, response.data)
        return [url for m in answer.get("members") or () for url in _as_v2(m)["clientURLs"]]

    return _engine.ask_members(client, path, ask)
