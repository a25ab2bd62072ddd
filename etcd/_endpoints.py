"""Where the members are: the endpoint state, DNS SRV discovery and URI helpers.

:class:`Endpoints` is the one place that holds which member requests go to
(``base``), the other members to fail over to (``others``) and the seeds the
client was given. One lock guards it; no method makes a network call, so the
lock is never held across one. Every change replaces ``others`` with a new
list instead of editing it, so a list handed out is never changed afterwards
by the library.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ._exceptions import EtcdException

__all__ = [
    "SRV_NAMES",
    "Endpoints",
    "Member",
    "discover_srv",
    "format_uri",
    "order_srv_records",
]

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


class Endpoints:
    """The member requests go to, the others to fail over to, and the seeds.

    :param seeds: the members the client was given, the first one used first.
    :param others: the members to fail over to at the start.
    """

    def __init__(self, seeds: Sequence[str], others: Sequence[str]) -> None:
        #: Guards every field; re-entrant so that callers can group changes.
        self.lock = threading.RLock()
        self.seeds: tuple[str, ...] = tuple(seeds)
        self.base: str = self.seeds[0]
        self.others: list[str] = list(others)

    def copy(self) -> Endpoints:
        """An independent copy of the current state (for :meth:`etcd.Client.clone`)."""
        with self.lock:
            twin = Endpoints(self.seeds, self.others)
            twin.base = self.base
        return twin

    def snapshot(self) -> tuple[str, tuple[str, ...]]:
        """The current member and the others, read together."""
        with self.lock:
            return self.base, tuple(self.others)

    def set_base(self, uri: str) -> None:
        """Make *uri* the current member (an explicit choice, e.g. the leader)."""
        with self.lock:
            self.base = uri
            if uri in self.others:
                self.others = [u for u in self.others if u != uri]

    def fail_over(self, tried: Mapping[str, object]) -> tuple[str | None, str]:
        """Move from a failed current member to one not in *tried*.

        The last of :attr:`others` is chosen first (as python-etcd 0.4.5 did);
        when none is left untried, the list is first seeded again from the
        seeds. The failed member goes to the end of :attr:`others`.

        :param tried: the members this request has tried, the current one among
            them when it failed.
        :returns: ``(old, new)``; *old* is ``None`` when another thread had
            already moved away from the failed member, and *new* is then the
            member it chose.
        :raises LookupError: every member has been tried.
        """
        with self.lock:
            if self.base not in tried:
                return None, self.base
            candidates = [uri for uri in self.others if uri not in tried]
            if not candidates:
                # re-seed from the user's hosts, but keep the learned members
                # when the seeds offer nothing new either
                reseeded = [u for u in self.seeds if u != self.base]
                candidates = [uri for uri in reseeded if uri not in tried]
                if candidates:
                    self.others = reseeded
            if not candidates:
                raise LookupError("every member was tried")
            old, new = self.base, candidates[-1]
            others = [u for u in self.others if u != new]
            if old not in others:
                others.append(old)
            self.base, self.others = new, others
            return old, new

    def step(self) -> str | None:
        """Drop the current member for the first of the others (the 0.4.5
        walk of ``machines``); ``None`` when there is no other."""
        with self.lock:
            if not self.others:
                return None
            self.base, self.others = self.others[0], self.others[1:]
            return self.base

    def learn(self, urls: Sequence[str]) -> None:
        """Take the member list a member answered as the members to fail over to.

        The current member is never changed here: it may be one that another
        thread failed over to while the list was being fetched.
        """
        if not urls:
            return
        with self.lock:
            self.others = [u for u in urls if u != self.base]


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
