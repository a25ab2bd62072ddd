"""Where the members are: DNS SRV discovery and URI helpers."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from typing import Any

from ._exceptions import EtcdException

__all__ = ["SRV_NAMES", "Member", "discover_srv", "format_uri", "order_srv_records"]

#: The SRV names etcd clients look up, in order; the first with records wins.
SRV_NAMES = ("_etcd-client-ssl._tcp", "_etcd-client._tcp", "_etcd-ssl._tcp", "_etcd._tcp")


@dataclasses.dataclass(frozen=True)
class Member:
    """A member of the cluster, as ``/v2/members`` describes it.

    .. versionadded:: 0.5.0
    """

    #: The member id, lowercase hex.
    id: str
    #: The member's name; empty for a member added but not started yet.
    name: str
    #: The URLs its peers reach it at.
    peer_urls: tuple[str, ...]
    #: The URLs clients reach it at; empty until it has started.
    client_urls: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Member:
        """Build a member from its JSON object.

        :raises EtcdException: *data* is not a member object.
        """
        try:
            return cls(
                id=str(data["id"]),
                name=str(data.get("name") or ""),
                peer_urls=tuple(data.get("peerURLs") or ()),
                client_urls=tuple(data.get("clientURLs") or ()),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise EtcdException(f"Unable to decode a member: {data!r}") from exc


def format_uri(protocol: str, host: str, port: int) -> str:
    """Build ``protocol://host:port``, with an IPv6 literal in brackets."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{protocol}://{host}:{int(port)}"


def order_srv_records(records: Sequence[Any], rng: random.Random | None = None) -> list[Any]:
    """Order SRV records as RFC 2782 says.

    Lowest priority first; within one priority, a weighted random order in
    which a record of weight 0 is almost never chosen before a weighted one.
    """
    rng = rng or random.Random()
    ordered: list[Any] = []
    for priority in sorted({r.priority for r in records}):
        pending = [r for r in records if r.priority == priority]
        pending.sort(key=lambda r: r.weight)  # weight 0 first, as the RFC's selection expects
        while pending:
            total = sum(r.weight for r in pending)
            pick = rng.uniform(0, total) if total else 0
            running = 0
            for i, record in enumerate(pending):
                running += record.weight
                if running >= pick:
                    ordered.append(pending.pop(i))
                    break
            else:
                ordered.append(pending.pop())
    return ordered


def discover_srv(domain: str, resolver: Any = None) -> tuple[bool, tuple[tuple[str, int], ...]]:
    """Find the members of a cluster from the SRV records of *domain*.

    :param domain: the DNS domain, e.g. ``"example.com"``.
    :param resolver: a :class:`dns.resolver.Resolver`; the system's by default.
    :returns: whether the records were ``-ssl`` ones (so https must be used),
        and the ``(host, port)`` pairs in the order to use them.
    :raises EtcdException: no record under any name, or DNS failed.
    """
    import dns.exception
    import dns.resolver

    resolve = resolver.resolve if resolver is not None else dns.resolver.resolve
    names = [f"{name}.{domain}" for name in SRV_NAMES]
    for name in names:
        try:
            answer = resolve(name, "SRV")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.exception.DNSException as exc:
            raise EtcdException(f"DNS lookup of {name} failed: {exc}") from exc
        records = order_srv_records(list(answer))
        if not records:
            continue
        hosts = tuple((str(r.target).rstrip("."), int(r.port)) for r in records)
        return "-ssl" in name, hosts
    tried = ", ".join(names)
    raise EtcdException(f"Could not find SRV record for domain {domain} (tried: {tried})")
