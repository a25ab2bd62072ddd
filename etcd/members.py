"""Cluster information, membership administration and health.

:class:`Membership` is a base class of :class:`etcd.Client`: its methods and
properties (``client.get_members()``, ``client.members``, ``client.stats``,
...) call the functions here with the client, or those of
:mod:`etcd._v3_cluster` for a client of the v3 gateway. Every request goes through the client's
seams (:meth:`~etcd.Client.api_execute`, ``http.request``), so a subclass or
a test double that replaces them sees these calls too (compat §10).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from . import _transport, _v3_cluster
from ._endpoints import Member
from ._engine import Request
from ._exceptions import EtcdConnectionFailed, EtcdException, EtcdTypeError, EtcdV2ApiDisabled

if TYPE_CHECKING:
    from .client import Client

__all__ = [
    "Membership",
    "add_member",
    "get_leader",
    "get_members",
    "health",
    "leader",
    "members",
    "remove_member",
    "sync_members",
    "update_member",
]

log = logging.getLogger("etcd.client")

_HEALTH_ERRORS: tuple[type[BaseException], ...] = (
    *_transport.TRANSPORT_ERRORS,
    ValueError,
    AttributeError,
)


def get_json(client: Client, path: str) -> Any:
    """``GET version_prefix + path`` through ``client.api_execute``, parsed as JSON."""
    response = client.api_execute(client.version_prefix + path, client._MGET)
    try:
        return json.loads(response.data)
    except ValueError as exc:
        raise EtcdException("Cannot parse json data in the response") from exc


def members(client: Client) -> dict[str, dict[str, Any]]:
    """The 0.4.5 ``members`` property: the members by id, stored in ``client._members``."""
    try:
        data = get_json(client, "/members")
        client._members = {m["id"]: m for m in data["members"]}
    except EtcdV2ApiDisabled:
        raise  # the real cause, with what to do about it
    except (EtcdException, LookupError, TypeError, ValueError) as exc:
        # 0.4.5's message; a connection failure adds which member and what happened
        detail = f" {exc}" if isinstance(exc, EtcdConnectionFailed) else ""
        raise EtcdException(
            f"Could not get the members list, maybe the cluster has gone away?{detail}"
        ) from exc
    return client._members


def leader(client: Client) -> dict[str, Any]:
    """The 0.4.5 ``leader`` property: the leading member, from ``stats`` and ``members``."""
    try:
        leader_id = client.stats["leaderInfo"]["leader"]
        return client.members[leader_id]
    except EtcdV2ApiDisabled:
        raise
    except (EtcdException, LookupError, TypeError) as exc:
        raise EtcdException(f"Cannot get leader data: {exc}") from exc


def get_members(client: Client) -> list[Member]:
    """The cluster's members, from ``/v2/members``."""
    data = get_json(client, "/members")
    try:
        return [Member.from_json(m) for m in data["members"] or ()]
    except (KeyError, TypeError) as exc:
        raise EtcdException(f"Unable to decode the member list: {data!r}") from exc


def get_leader(client: Client) -> Member:
    """The leading member, from ``/v2/members/leader``."""
    data = get_json(client, "/members/leader")
    if not isinstance(data, Mapping):
        raise EtcdException(f"Unable to decode the leader: {data!r}")
    return Member.from_json(data)


def _peer_urls(peer_urls: Sequence[str]) -> list[str]:
    if isinstance(peer_urls, str):
        raise EtcdTypeError("peer_urls must be a list of URLs, not a string")
    return list(peer_urls)


def add_member(client: Client, peer_urls: Sequence[str]) -> Member:
    """Announce a new member with these peer URLs; returns it with its id."""
    urls = _peer_urls(peer_urls)
    try:
        response = client.api_execute_json(
            client.version_prefix + "/members", client._MPOST, {"peerURLs": urls}
        )
    except EtcdException as exc:
        if isinstance(exc.payload, Mapping) and exc.payload.get("status") == 500:
            raise EtcdException(
                f"The cluster refused to add a member ({exc}). etcd does so until its "
                "members have been connected for 5 seconds, and when the new member "
                "could cost the cluster its quorum; try again later.",
                exc.payload,
            ) from exc
        raise
    try:
        return Member.from_json(json.loads(response.data))
    except (ValueError, AttributeError) as exc:
        raise EtcdException(f"Unable to decode the new member: {response.data!r}") from exc


def _member_path(client: Client, member_id: str) -> str:
    if not isinstance(member_id, str) or not member_id:
        raise EtcdTypeError(f"member ids are hex strings, not {member_id!r}")
    return f"{client.version_prefix}/members/{urllib.parse.quote(member_id, safe='')}"


def remove_member(client: Client, member_id: str) -> None:
    """Remove a member from the cluster."""
    path = _member_path(client, member_id)
    client._request(Request(client._MDELETE, path, no_content=True))


def update_member(client: Client, member_id: str, peer_urls: Sequence[str]) -> None:
    """Change the peer URLs of a member."""
    urls = _peer_urls(peer_urls)
    path = _member_path(client, member_id)
    client._request(
        Request(client._MPUT, path, {"peerURLs": urls}, json_body=True, no_content=True)
    )


def sync_members(client: Client) -> list[Member]:
    """Refresh the members to fail over to (and, with ``prefer_leader``, the current one)."""
    with client._endpoint_lock:
        if client._member_sync_interval is not None:
            client._next_member_sync = time.monotonic() + client._member_sync_interval
    found = client.get_members()
    if not client._allow_reconnect or client._use_proxies:
        return found
    leader_url = None
    if client._prefer_leader:
        chosen = client.get_leader()
        leader_url = chosen.client_urls[0] if chosen.client_urls else None
    urls = [url for m in found for url in m.client_urls]
    endpoints = client._endpoints
    with endpoints.lock:
        if leader_url is not None:
            endpoints.set_base(leader_url)
        endpoints.learn(urls)
    log.debug("Members now: %s, talking to %s", urls, endpoints.base)
    return found


def sync_due(client: Client) -> bool:
    """Whether a periodic member sync is due; only one thread is told so."""
    with client._endpoint_lock:
        if time.monotonic() < client._next_member_sync:
            return False
        # one thread syncs; the others go on with what they have
        client._next_member_sync = time.monotonic() + (client._member_sync_interval or 0)
        return True


def sync_quietly(client: Client) -> None:
    """:func:`sync_members`, logging instead of raising when the cluster does not answer."""
    try:
        client.sync_members()
    except EtcdException as exc:
        log.info("Could not refresh the member list (%s); keeping the old one", exc)


def health(client: Client, timeout: float = 5.0) -> dict[str, bool]:
    """Ask every known member ``GET /health``; each URL maps to whether it is healthy."""
    base, others = client._endpoints.snapshot()
    urls = [base, *others]
    report = {}
    for url in urls:
        try:
            response = client.http.request(
                client._MGET,
                url + "/health",
                headers=client._get_headers(),
                timeout=float(timeout),
                retries=client._retries,
            )
            healthy = response.status == 200 and json.loads(response.data).get("health") in (
                "true",
                True,
            )
        except _HEALTH_ERRORS:
            healthy = False
        report[url] = healthy
    return report


def _as_client(mixin: Membership) -> Client:
    return cast("Client", mixin)


def _stats(membership: Membership, path: str) -> dict[str, Any]:
    """The statistics at *path*, over whichever protocol the client speaks."""
    client = _as_client(membership)
    result: dict[str, Any] = (_v3_cluster.get_json if client._v3 else get_json)(client, path)
    return result


class Membership:
    """The cluster-information and membership API of :class:`etcd.Client`.

    A base class of ``Client``; each method works with the v2 API here and
    with the v3 gateway in :mod:`etcd._v3_cluster`.
    """

    @property
    def members(self) -> dict[str, dict[str, Any]]:
        """The cluster's members by id, each a dict with ``id``, ``name``,
        ``peerURLs`` and ``clientURLs``.

        .. note:: Each access is a request.

        :raises EtcdV2ApiDisabled: the server does not serve the v2 API.
        :raises EtcdException: any other failure, as
            ``"Could not get the members list, maybe the cluster has gone away?"``.
        """
        client = _as_client(self)
        if client._v3 is not None:
            return _v3_cluster.members(client)
        return members(client)

    @property
    def leader(self) -> dict[str, Any]:
        """The member that leads the cluster, as in :attr:`members`.

        .. note:: Each access makes two requests.

        :raises EtcdV2ApiDisabled: the server does not serve the v2 API.
        :raises EtcdException: any other failure, as ``"Cannot get leader data: ..."``.
        """
        client = _as_client(self)
        if client._v3 is not None:
            return _v3_cluster.leader(client)
        return leader(client)

    @property
    def stats(self) -> dict[str, Any]:
        """This member's statistics, from ``/v2/stats/self``.

        .. note:: Each access is a request.
        """
        return _stats(self, "/stats/self")

    @property
    def leader_stats(self) -> dict[str, Any]:
        """The leader's view of its followers, from ``/v2/stats/leader``.

        .. note:: Each access is a request. A follower refuses it with
           ``EtcdException("not current leader : None")``.
        """
        return _stats(self, "/stats/leader")

    @property
    def store_stats(self) -> dict[str, Any]:
        """The key store's counters, from ``/v2/stats/store``.

        .. note:: Each access is a request.
        """
        return _stats(self, "/stats/store")

    @property
    def version(self) -> str | None:
        """The etcd server version, fetched once from ``/version``."""
        client = _as_client(self)
        if not client._version:
            client._set_version_info()
        return client._version

    @property
    def cluster_version(self) -> str | None:
        """The cluster version, fetched once from ``/version``."""
        client = _as_client(self)
        if not client._cluster_version:
            client._set_version_info()
        return client._cluster_version

    def _set_version_info(self) -> None:
        client = _as_client(self)
        response = client.api_execute("/version", client._MGET)
        try:
            info = json.loads(response.data)
            client._version = info["etcdserver"]
            client._cluster_version = info["etcdcluster"]
        except (ValueError, KeyError, TypeError) as exc:
            raise EtcdException(
                f"Cannot parse the /version answer: {response.data[:200]!r}"
            ) from exc

    def get_members(self) -> list[Member]:
        """The cluster's members, from ``/v2/members``.

        :raises EtcdV2ApiDisabled: the server does not serve the v2 API.
        :raises EtcdException: the cluster could not be asked.

        .. versionadded:: 0.5.0
        """
        client = _as_client(self)
        if client._v3 is not None:
            return _v3_cluster.get_members(client)
        return get_members(client)

    def get_leader(self) -> Member:
        """The member that leads the cluster, from ``/v2/members/leader``.

        :raises EtcdException: there is no leader now (an election is going on).

        .. versionadded:: 0.5.0
        """
        client = _as_client(self)
        if client._v3 is not None:
            return _v3_cluster.get_leader(client)
        return get_leader(client)

    def add_member(self, peer_urls: Sequence[str]) -> Member:
        """Announce a new member to the cluster, before it is started.

        :param peer_urls: the URLs the new member will listen on for its peers.
        :returns: the new member, with its id; its name and client URLs stay
            empty until it has started and joined.
        :raises EtcdException: the cluster refused (a peer URL is in use, say).

        .. versionadded:: 0.5.0
        """
        client = _as_client(self)
        if client._v3 is not None:
            return _v3_cluster.add_member(client, peer_urls)
        return add_member(client, peer_urls)

    def remove_member(self, member_id: str) -> None:
        """Remove a member from the cluster.

        :raises EtcdKeyNotFound: there is no such member.

        .. versionadded:: 0.5.0
        """
        client = _as_client(self)
        if client._v3 is not None:
            _v3_cluster.remove_member(client, member_id)
            return
        remove_member(client, member_id)

    def update_member(self, member_id: str, peer_urls: Sequence[str]) -> None:
        """Change the peer URLs of a member.

        :raises EtcdKeyNotFound: there is no such member.

        .. versionadded:: 0.5.0
        """
        client = _as_client(self)
        if client._v3 is not None:
            _v3_cluster.update_member(client, member_id, peer_urls)
            return
        update_member(client, member_id, peer_urls)

    def sync_members(self) -> list[Member]:
        """Refresh the list of members to fail over to from the cluster itself.

        With ``prefer_leader``, the leader becomes the member requests go to.
        Without ``allow_reconnect``, or with ``use_proxies``, the list of
        members to use is left as it is.

        :returns: the members.

        .. versionadded:: 0.5.0
        """
        client = _as_client(self)
        return sync_members(client)

    def health(self, timeout: float = 5.0) -> dict[str, bool]:
        """Ask every known member whether it is healthy (``GET /health``).

        A member is healthy when it is part of a cluster that has a leader.

        :param timeout: seconds to wait for each member.
        :returns: each member's URL and whether it answered that it is healthy.

        .. versionadded:: 0.5.0
        """
        client = _as_client(self)
        return health(client, timeout)
