"""Clusters: safe, bounded failover, discovery and membership, against real etcd."""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

import pytest

import etcd
from etcd._endpoints import order_srv_records
from etcd.testing import EtcdMember

from .fake_dns import FakeDns
from .fakes import FakeServer, Reply
from .helpers import established_to, wait_for

pytestmark = pytest.mark.slow


def _client(members: list[Any], **kwargs: Any) -> etcd.Client:
    """A failover client whose first member is ``members[0]``."""
    hosts = tuple((m.host, m.port) for m in members)
    return etcd.Client(host=hosts, allow_reconnect=True, **kwargs)


# --- failover -------------------------------------------------------------


def test_killing_the_leader_during_writes_loses_nothing_acknowledged(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3)
    leader = cluster.leader()
    others = [m for m in cluster.members if m is not leader]
    client = _client([leader, *others], read_timeout=2)
    assert client.base_uri == leader.client_url

    acked_sets: dict[str, str] = {}
    acked_appends: dict[str, str] = {}
    unknown = 0
    killed = False
    acked_after_kill = 0
    for i in range(1000):
        if i == 400:
            leader.kill()
            killed = True
        try:
            if i % 2:
                result = client.write("/queue", f"job-{i}", append=True)
                acked_appends[result.key or ""] = f"job-{i}"
            else:
                client.write(f"/keys/k{i}", str(i))
                acked_sets[f"/keys/k{i}"] = str(i)
        except (etcd.EtcdConnectionFailed, etcd.EtcdRaftInternalError) as exc:
            # The outcome of these is unknown, and the client says so: never re-sent.
            assert killed, f"failure before the kill: {exc!r}"
            assert isinstance(exc, etcd.EtcdRaftInternalError) or "outcome is unknown" in str(exc)
            unknown += 1
            continue
        acked_after_kill += killed

    # The client carried on: at most ten of the 600 writes after the kill failed
    # (each one reported, none re-sent), and every other one was acknowledged.
    assert unknown <= 10
    assert acked_after_kill == 600 - unknown

    reader = _client(others)
    tree = reader.read("/keys", recursive=True)
    stored = {leaf.key: leaf.value for leaf in tree.leaves}
    for key, value in acked_sets.items():
        assert stored.get(key) == value, key
    queue = reader.read("/queue", recursive=True, sorted=True)
    values = [leaf.value for leaf in queue.leaves]
    assert len(values) == len(set(values)), "an in-order key was created twice"
    by_key = {leaf.key: leaf.value for leaf in queue.leaves}
    for key, value in acked_appends.items():
        assert by_key.get(key) == value, key


def _timeouts_at(caplog: pytest.LogCaptureFixture, url: str) -> list[str]:
    """The client's warnings that a request to *url* failed by timing out."""
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("etcd")]
    return [m for m in messages if url in m and "failed" in m and "timed out" in m]


def test_a_paused_member_costs_one_request_timeout(etcd_cluster_factory, caplog):
    cluster = etcd_cluster_factory(size=3)
    leader = cluster.leader()
    follower, other = (m for m in cluster.members if m is not leader)
    client = _client([follower, leader, other], read_timeout=1)
    client.write("/paused/k", "v")
    caplog.set_level(logging.WARNING, logger="etcd")
    follower.pause()
    try:
        # One request timeout on the paused member, then the next member answers.
        assert client.read("/paused/k").value == "v"
        assert client.base_uri != follower.client_url
        assert len(_timeouts_at(caplog, follower.client_url)) == 1
        # A write marked idempotent fails over as well.
        client._base_uri = follower.client_url  # the seam tests and subclasses use
        client.write("/paused/k", "w", idempotent=True)
        assert client.base_uri != follower.client_url
        assert len(_timeouts_at(caplog, follower.client_url)) == 2
        assert client.read("/paused/k").value == "w"
    finally:
        follower.resume()


def test_a_write_to_a_paused_member_is_not_resent(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3)
    leader = cluster.leader()
    follower, other = (m for m in cluster.members if m is not leader)
    client = _client([follower, leader, other], read_timeout=1)
    follower.pause()
    try:
        with pytest.raises(etcd.EtcdConnectionFailed, match="outcome is unknown"):
            client.write("/queue", "once", append=True)
        assert client.base_uri == follower.client_url
    finally:
        follower.resume()
    # The request reached the paused member: once it runs again, it may apply it.
    # What matters is that it was never sent to a second member.
    reader = _client([leader])
    try:
        values = [n.value for n in reader.read("/queue", recursive=True).leaves]
    except etcd.EtcdKeyNotFound:
        values = []
    assert values.count("once") <= 1


def test_all_members_down_fails_fast_and_recovers(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3)
    client = _client(cluster.members, read_timeout=2)
    client.write("/k", "v")
    for member in cluster.members:
        member.kill()
    with pytest.raises(etcd.EtcdConnectionFailed) as info:
        client.read("/k")
    # Every member was tried once, and refused at once: nothing waited for a timeout.
    message = str(info.value)
    assert message.startswith("All etcd members failed")
    for member in cluster.members:
        assert message.count(member.client_url) == 1, message
    assert message.count("connection refused") == len(cluster.members), message
    assert "timed out" not in message

    # Two members make a quorum again; the same client works without being rebuilt.
    for member in cluster.members[:2]:
        member.restart(wait=False)
    cluster.wait_healthy(timeout=30)
    assert wait_for(lambda: _read_or_none(client, "/k") == "v", timeout=10)


def _read_or_none(client: etcd.Client, key: str) -> str | None:
    try:
        return client.read(key).value
    except etcd.EtcdException:
        return None


def test_a_replaced_cluster_is_reported_once(etcd_cluster_factory, tmp_path):
    """A learned cluster id: EtcdClusterIdChanged once, then requests proceed.

    The same holds when ``expected_cluster_id`` was given (python-etcd 0.4.5
    behaviour): the new id is remembered, so callers that must not talk to
    another cluster stop at the exception.
    """
    cluster = etcd_cluster_factory(size=1)
    old = cluster.members[0]
    client = etcd.Client(host=old.host, port=old.port)
    client.write("/k", "old")
    old_id = client.expected_cluster_id
    assert old_id
    old.kill()

    new = EtcdMember("n1", old.client_port, old.peer_port, str(tmp_path / "new"))
    new.start()
    try:
        new.wait_ready()
        with pytest.raises(etcd.EtcdClusterIdChanged, match=f"from {old_id} to "):
            client.read("/k")
        assert client.expected_cluster_id not in (None, old_id)
        with pytest.raises(etcd.EtcdKeyNotFound):  # the new cluster is empty
            client.read("/k")
    finally:
        new.stop()


def test_server_errors_fail_over_reads_but_not_writes(etcd_server, etcd_prefix):
    real = etcd_server.members[0]
    no_leader = Reply.json(
        {
            "errorCode": 300,
            "message": "Raft Internal Error",
            "cause": "etcdserver: request timed out",
        },
        500,
    )
    key = f"{etcd_prefix}/failover"
    with FakeServer(no_leader) as fake:
        fake.default = no_leader
        client = etcd.Client(
            host=(("127.0.0.1", fake.port), (real.host, real.port)),
            allow_reconnect=True,
            use_proxies=True,
        )
        client.write(key, "v", idempotent=True)  # 500 from the fake, then the real one
        assert client.base_uri == real.client_url
        client._base_uri = fake.url
        assert client.read(key).value == "v"

        client._base_uri = fake.url
        before = len(fake.requests)
        with pytest.raises(etcd.EtcdRaftInternalError):
            client.write(key, "w")
        assert len(fake.requests) == before + 1
        assert client.base_uri == fake.url
        client._base_uri = real.client_url
        assert client.read(key).value == "v"
        client.delete(key)


def test_failover_on_server_error_can_be_turned_off(etcd_server):
    real = etcd_server.members[0]
    with FakeServer() as fake:
        fake.default = Reply.text("<html>502 Bad Gateway</html>", 502)
        client = etcd.Client(
            host=(("127.0.0.1", fake.port), (real.host, real.port)),
            allow_reconnect=True,
            use_proxies=True,
            failover_on_server_error=False,
        )
        with pytest.raises(etcd.EtcdException, match="Bad response"):
            client.read("/anything")
        assert client.base_uri == fake.url


@pytest.mark.timeout(180)
def test_sixteen_threads_share_one_client_through_a_member_restart(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3)
    leader = cluster.leader()
    follower, other = (m for m in cluster.members if m is not leader)
    ports = {m.port for m in cluster.members}
    sockets_before = established_to(ports)
    client = _client([follower, leader, other], read_timeout=3, per_host_pool_size=4)
    errors: list[BaseException] = []
    acked: dict[str, str] = {}
    acked_lock = threading.Lock()
    stop = threading.Event()

    def worker(n: int) -> None:
        rng = random.Random(n)
        i = 0
        while not stop.is_set() and i < 400:
            key = f"/threads/t{n}/k{i % 20}"
            value = f"{n}-{i}"
            try:
                client.write(key, value, idempotent=True)
                with acked_lock:
                    acked[key] = value
                if rng.random() < 0.5:
                    # quorum: after a failover another member may not have applied
                    # the write yet, and a plain read there would be stale
                    assert client.read(key, quorum=True).value is not None
            except Exception as exc:  # every failure is reported to the test
                errors.append(exc)
                return
            i += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    assert wait_for(lambda: len(acked) >= 50, timeout=30)
    follower.kill()
    assert wait_for(lambda: len(acked) >= 150, timeout=60)
    follower.restart()
    for t in threads:
        t.join(timeout=120)
    stop.set()
    assert not any(t.is_alive() for t in threads)
    assert errors == []

    reader = _client([leader])
    stored = {leaf.key: leaf.value for leaf in reader.read("/threads", recursive=True).leaves}
    for key, value in acked.items():
        assert stored[key] == value
    # at most the pool size per member, and the reader's own connection
    assert established_to(ports) - sockets_before <= 4 * 3 + 1


# --- discovery ---------------------------------------------------------------


def test_srv_discovery_finds_the_members(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3)
    a, b, c = cluster.members
    records = {
        "_etcd-client._tcp.example.test": [
            (20, 0, c.port, "127.0.0.1."),
            (10, 0, a.port, "127.0.0.1."),
            (15, 0, b.port, "127.0.0.1."),
        ]
    }
    with FakeDns(records) as dns_server:
        client = etcd.Client(
            srv_domain="example.test",
            allow_reconnect=True,
            use_proxies=True,
            dns_resolver=dns_server.resolver(),
        )
        single = etcd.Client(srv_domain="example.test", dns_resolver=dns_server.resolver())
        asked = list(dns_server.questions)
    assert client.base_uri == a.client_url
    assert client._machines_cache == [b.client_url, c.client_url]
    assert client.protocol == "http"
    assert single.base_uri == a.client_url
    client.write("/srv", "found")
    assert single.read("/srv").value == "found"
    client.delete("/srv")
    # The -ssl names are asked first.
    assert asked[0].startswith("_etcd-client-ssl._tcp.example.test")


def test_srv_ssl_names_select_https():
    records = {"_etcd-client-ssl._tcp.secure.test": [(10, 0, 2379, "etcd1.secure.test.")]}
    with FakeDns(records) as dns_server:
        client = etcd.Client(srv_domain="secure.test", dns_resolver=dns_server.resolver())
    assert client.base_uri == "https://etcd1.secure.test:2379"
    assert client.protocol == "https"


def test_srv_without_records_fails_loudly():
    with FakeDns({}) as dns_server, pytest.raises(etcd.EtcdException) as info:
        etcd.Client(srv_domain="nothing.test", dns_resolver=dns_server.resolver())
    message = str(info.value)
    assert message.startswith("Could not find SRV record for domain nothing.test")
    for name in ["_etcd-client-ssl", "_etcd-client.", "_etcd-ssl", "_etcd._tcp"]:
        assert name in message


def test_srv_with_no_dns_server_fails_loudly():
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = 9  # discard: nothing answers
    resolver.lifetime = 0.5
    with pytest.raises(etcd.EtcdException, match=r"DNS lookup of .* failed") as info:
        etcd.Client(srv_domain="example.test", dns_resolver=resolver)
    assert info.value.__cause__ is not None


class _Srv:
    def __init__(self, priority: int, weight: int, name: str) -> None:
        self.priority, self.weight, self.name = priority, weight, name


def test_srv_order_follows_rfc_2782():
    records = [
        _Srv(20, 0, "late"),
        _Srv(10, 90, "heavy"),
        _Srv(10, 10, "light"),
        _Srv(10, 0, "zero"),
    ]
    firsts: dict[str, int] = {}
    rng = random.Random(7)
    for _ in range(2000):
        order = [r.name for r in order_srv_records(records, rng)]
        assert order[-1] == "late"  # a higher priority number always comes last
        firsts[order[0]] = firsts.get(order[0], 0) + 1
    # Within a priority, the weight decides how often a record comes first.
    assert firsts["heavy"] > 5 * firsts["light"] > 0
    assert firsts.get("zero", 0) < 20


# --- membership ---------------------------------------------------------------


def test_members_api_and_sync(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3)
    first = cluster.members[0]
    client = etcd.Client(
        host=((first.host, first.port),), allow_reconnect=True, prefer_leader=True
    )
    leader = cluster.leader()
    assert client.base_uri == leader.client_url

    members = client.get_members()
    assert sorted(m.name for m in members) == sorted(m.name for m in cluster.members)
    assert all(isinstance(m, etcd.Member) for m in members)
    assert client.get_leader().name == leader.name
    assert sorted(client._machines_cache) == sorted(
        m.client_url for m in cluster.members if m is not leader
    )

    spare_port = cluster.members[0].peer_port + 10_000
    new_members: list[etcd.Member] = []

    def add() -> bool:
        try:
            new_members.append(client.add_member([f"http://127.0.0.1:{spare_port}"]))
        except etcd.EtcdException as exc:
            # A young cluster refuses membership changes for its first 5 seconds.
            assert "try again later" in str(exc)
            return False
        return True

    assert wait_for(add, timeout=15, interval=0.5)
    added = new_members[0]
    assert added.id and added.name == "" and added.client_urls == ()
    assert added.id in {m.id for m in client.get_members()}
    client.update_member(added.id, [f"http://127.0.0.1:{spare_port + 1}"])
    updated = {m.id: m for m in client.get_members()}[added.id]
    assert updated.peer_urls == (f"http://127.0.0.1:{spare_port + 1}",)
    client.remove_member(added.id)
    assert added.id not in {m.id for m in client.get_members()}
    with pytest.raises(etcd.EtcdException, match="permanently removed"):
        client.remove_member(added.id)

    def unknown_id_refused() -> bool:
        try:
            client.remove_member("1234abcd")
        except etcd.EtcdKeyNotFound:
            return True
        except etcd.EtcdException as exc:
            # A loaded cluster may time out the proposal of the removal and
            # answer 500 "Internal Server Error" instead: ask again.
            if exc.payload is None or exc.payload.get("status") != 500:
                raise
        return False

    assert wait_for(unknown_id_refused, timeout=30, interval=0.5)


def test_health_reports_each_member(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3)
    client = _client(cluster.members)
    assert client.health() == {m.client_url: True for m in cluster.members}
    leader = cluster.leader()
    down = next(m for m in cluster.members if m is not leader)
    down.kill()
    report = client.health(timeout=1)
    assert report[down.client_url] is False
    assert sum(report.values()) == 2


def test_member_list_is_refreshed_on_an_interval(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3)
    first = cluster.members[0]
    client = etcd.Client(
        host=((first.host, first.port),), allow_reconnect=True, member_sync_interval=0.2
    )
    client._machines_cache = []  # forget the others, as after a long outage
    assert wait_for(lambda: client.read("/").dir and len(client._machines_cache) == 2, timeout=5)
    assert sorted(client._machines_cache) == sorted(m.client_url for m in cluster.members[1:])


def test_allow_reconnect_learns_the_members_the_cluster_knows(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3)
    a, b, c = cluster.members
    client = etcd.Client(host=((a.host, a.port),), allow_reconnect=True)
    assert client.base_uri == a.client_url
    assert sorted(client._machines_cache) == sorted([b.client_url, c.client_url])
    proxied = etcd.Client(host=((a.host, a.port),), allow_reconnect=True, use_proxies=True)
    assert proxied._machines_cache == []


def test_only_idempotent_writes_are_re_sent_after_a_broken_connection():
    from .fakes import Hangup

    created = {"action": "set", "node": {"key": "/k", "value": "v", "modifiedIndex": 5}}
    with FakeServer() as broken, FakeServer() as healthy:
        broken.default = Hangup()
        healthy.default = Reply.etcd(created, 201)
        client = etcd.Client(
            host=(("127.0.0.1", broken.port), ("127.0.0.1", healthy.port)),
            allow_reconnect=True,
            use_proxies=True,
        )
        with pytest.raises(etcd.EtcdConnectionFailed, match="outcome is unknown"):
            client.write("/k", "v")
        assert (len(broken.requests), len(healthy.requests)) == (1, 0)

        assert client.write("/k", "v", idempotent=True).value == "v"
        assert (len(broken.requests), len(healthy.requests)) == (2, 1)
        assert client.base_uri == healthy.url
