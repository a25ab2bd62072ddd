"""Cluster information, membership, failover and the cluster id with ``api="v3"``."""

from __future__ import annotations

from typing import Any

import pytest

import etcd

from .fake_dns import FakeDns
from .fakes import FakeServer, Reply, refusing_port
from .helpers import wait_for
from .v3_support import RecordingPool, v3_client, v3_namespace

__all__ = ["v3_client", "v3_namespace"]


def test_cluster_information_matches_v2(etcd_client, v3_client):
    assert v3_client.machines == etcd_client.machines
    assert v3_client.members == etcd_client.members
    assert v3_client.leader == etcd_client.leader
    assert v3_client.get_members() == etcd_client.get_members()
    assert v3_client.get_leader() == etcd_client.get_leader()
    assert v3_client.version == etcd_client.version
    assert v3_client.health() == etcd_client.health()


def test_the_cluster_id_is_learned_as_v2_spells_it(etcd_client, etcd_prefix, v3_client):
    etcd_client.read("/")
    v3_client.read("/")
    assert v3_client.expected_cluster_id is not None
    assert v3_client.expected_cluster_id == etcd_client.expected_cluster_id


def test_a_different_cluster_is_reported_once(v3_client):
    v3_client.expected_cluster_id = "1234"
    with pytest.raises(etcd.EtcdClusterIdChanged):
        v3_client.read("/")
    assert v3_client.read("/").dir


def test_stats_are_not_available_over_v3(v3_client):
    for name in ("stats", "leader_stats", "store_stats"):
        with pytest.raises(etcd.EtcdException, match="no equivalent in etcd's v3 API"):
            getattr(v3_client, name)


@pytest.mark.slow
def test_membership_and_failover_without_v2(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3, enable_v2=False)
    first = cluster.members[0]
    client = etcd.Client(
        host=((first.host, first.port),), allow_reconnect=True, api="v3", prefer_leader=True
    )
    try:
        leader = cluster.member(client.get_leader().name)
        assert client.base_uri == leader.client_url
        assert sorted(client.machines) == sorted(m.client_url for m in cluster.members)
        assert sorted(m.name for m in client.get_members()) == sorted(
            m.name for m in cluster.members
        )

        spare_port = first.peer_port + 10_000
        added: list[etcd.Member] = []

        def add() -> bool:
            try:
                added.append(client.add_member([f"http://127.0.0.1:{spare_port}"]))
            except etcd.EtcdException:
                return False  # a young cluster refuses membership changes for 5 s
            return True

        assert wait_for(add, timeout=15, interval=0.5)
        new = added[0]
        assert new.id and new.name == "" and new.client_urls == ()
        client.update_member(new.id, [f"http://127.0.0.1:{spare_port + 1}"])
        updated = {m.id: m for m in client.get_members()}[new.id]
        assert updated.peer_urls == (f"http://127.0.0.1:{spare_port + 1}",)
        client.remove_member(new.id)
        assert new.id not in {m.id for m in client.get_members()}
        with pytest.raises(etcd.EtcdException):
            client.remove_member("1234abcd")

        before = client.write("/k", "before")
        watching = etcd.Client(
            host=tuple((m.host, m.port) for m in [leader, *cluster.members] if m is not None),
            allow_reconnect=True,
            api="v3",
        )
        assert watching.base_uri == leader.client_url
        leader.kill()
        assert wait_for(lambda: _readable(client), timeout=20, interval=0.2)
        assert client.base_uri != leader.client_url
        assert client.read("/k", quorum=True).value == "before"
        client.write("/k", "after")
        # its member is dead: a watch (recursive: no read before it) fails over
        event = watching.watch(
            "/k", index=(before.modifiedIndex or 0) + 1, timeout=10, recursive=True
        )
        assert event.value == "after" and watching.base_uri != leader.client_url
        watching.close()
    finally:
        client.close()


def _readable(client: etcd.Client) -> bool:
    try:
        client.read("/k", quorum=True)
    except etcd.EtcdException:
        return False
    return True


@pytest.mark.slow
def test_a_write_to_a_paused_member_is_not_resent_and_a_read_fails_over(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3, enable_v2=False)
    with cluster.client(api="v3") as probe:
        leader = cluster.member(probe.get_leader().name)
    follower, other = (m for m in cluster.members if m is not leader)
    hosts = tuple((m.host, m.port) for m in (follower, leader, other))
    client = etcd.Client(host=hosts, allow_reconnect=True, api="v3", read_timeout=1)
    client.write("/k", "v")
    follower.pause()
    try:
        with pytest.raises(etcd.EtcdConnectionFailed, match="outcome is unknown"):
            client.write("/queue", "once", append=True)
        assert client.base_uri == follower.client_url
        assert client.read("/k").value == "v"  # a read may be sent again, elsewhere
        assert client.base_uri != follower.client_url
    finally:
        follower.resume()
        client.close()
    # The paused member may still apply the append; it was never sent to a second one.
    with etcd.Client(host=leader.host, port=leader.port, api="v3") as reader:
        try:
            values = [n.value for n in reader.read("/queue", recursive=True).leaves]
        except etcd.EtcdKeyNotFound:
            values = []
    assert values.count("once") <= 1


def test_srv_discovery_with_v3(etcd_server, v3_namespace):
    member = etcd_server.members[0]
    records = {"_etcd-client._tcp.example.test": [(10, 0, member.port, "127.0.0.1.")]}
    with FakeDns(records) as dns_server:
        # allow_reconnect without use_proxies: the members are asked over v3 at once
        client = etcd.Client(
            srv_domain="example.test",
            allow_reconnect=True,
            dns_resolver=dns_server.resolver(),
            api="v3",
            namespace=v3_namespace,
        )
    try:
        assert client.base_uri == member.client_url
        client.write("/srv", "found")
        assert client.read("/srv").value == "found"
    finally:
        client.close()


def _recording_client(member: Any, namespace: str, seen: list[str]) -> etcd.Client:
    client = etcd.Client(
        host=member.host, port=member.port, api="v3", namespace=namespace, allow_reconnect=True
    )
    client.http = RecordingPool(seen, **client.http.connection_pool_kw)
    return client


def test_a_failover_asks_only_the_member_it_moved_to_for_the_members(etcd_server, v3_namespace):
    live = etcd_server.members[0].client_url
    seen: list[str] = []
    with refusing_port() as p1, refusing_port() as p2, refusing_port() as p3:
        dead1, dead2, dead3 = (f"http://127.0.0.1:{p}" for p in (p1, p2, p3))
        with _recording_client(etcd_server.members[0], v3_namespace, seen) as client:
            client.write("/k", "v")
            client._base_uri = dead1
            client._machines_cache = [dead2, live, dead3]  # dead1 fails over to dead3 first
            seen.clear()
            assert client.read("/k").value == "v"
    asked = [url.rsplit("/v3/", 1)[0] for url in seen if url.endswith("/member/list")]
    read_at = [url.rsplit("/v3/", 1)[0] for url in seen if url.endswith("/kv/txn")]
    # Each failover asks its new member once; dead2 is never asked, and the
    # failed question about dead3 leaves the request on dead3, as with v2.
    assert asked == [dead3, live]
    assert read_at == [dead1, dead3, live]


def test_machines_walks_the_members_without_editing_the_cached_list(etcd_server, v3_namespace):
    live = etcd_server.members[0].client_url
    with refusing_port() as p1, refusing_port() as p2:
        dead1, dead2 = f"http://127.0.0.1:{p1}", f"http://127.0.0.1:{p2}"
        with _recording_client(etcd_server.members[0], v3_namespace, []) as client:
            client._base_uri = dead1
            client._machines_cache = [live]
            cache = client._machines_cache
            assert client.machines == [live]
            assert cache == [live]  # the library replaces the list, never edits it
            assert client.base_uri == live  # each member asked became the current one
            client._base_uri = dead1
            client._machines_cache = [dead2]
            with pytest.raises(etcd.EtcdException) as info:
                assert not client.machines
    message = str(info.value)
    assert message.startswith("Could not get the list of servers")
    assert f"{dead1}: connection refused" in message and f"{dead2}: connection" in message


def _proxies(namespace: str, *members: tuple[str, int], **kwargs: Any) -> etcd.Client:
    """A v3 client of exactly *members*, in this order, failing over between them."""
    kwargs.update(allow_reconnect=True, use_proxies=True, api="v3", namespace=namespace)
    return etcd.Client(host=members, **kwargs)


# The gateway's answer when its member has no leader (3.4/3.5 form).
_NO_LEADER = Reply.json(
    {"error": "etcdserver: no leader", "code": 14, "message": "etcdserver: no leader"}, 503
)


def test_server_errors_fail_over_reads_but_not_writes(etcd_server, v3_namespace):
    real = etcd_server.members[0]
    with FakeServer(default=_NO_LEADER) as fake:
        client = _proxies(v3_namespace, ("127.0.0.1", fake.port), (real.host, real.port))
        client.write("/k", "v", idempotent=True)  # 503 from the fake, then the real member
        assert client.base_uri == real.client_url
        assert [r.path for r in fake.requests] == ["/v3/kv/txn"]

        client._base_uri = fake.url
        assert client.read("/k").value == "v"
        assert client.base_uri == real.client_url

        client._base_uri = fake.url
        before = len(fake.requests)
        with pytest.raises(etcd.EtcdRaftInternalError, match="no leader"):
            client.write("/k", "w")  # not idempotent: the member's error, at once
        assert len(fake.requests) == before + 1
        assert client.base_uri == fake.url


def test_the_last_server_error_is_raised_when_every_member_fails(v3_namespace):
    with FakeServer(default=_NO_LEADER) as one, FakeServer(default=_NO_LEADER) as two:
        members = (("127.0.0.1", one.port), ("127.0.0.1", two.port))
        client = _proxies(v3_namespace, *members)
        with pytest.raises(etcd.EtcdRaftInternalError, match="no leader"):
            client.read("/k")
        assert len(one.requests) == 1 and len(two.requests) == 1

        off = _proxies(v3_namespace, *members, failover_on_server_error=False)
        off._base_uri = one.url
        with pytest.raises(etcd.EtcdRaftInternalError, match="no leader"):
            off.read("/k")
        assert len(one.requests) == 2 and len(two.requests) == 1


def test_a_proxy_error_without_a_grpc_code_is_an_error_and_fails_over(etcd_server, v3_namespace):
    real = etcd_server.members[0]
    proxy_error = Reply.json({"message": "failure to get a peer from the ring-balancer"}, 503)
    with FakeServer(default=proxy_error) as fake:
        client = _proxies(v3_namespace, ("127.0.0.1", fake.port), (real.host, real.port))
        for call in (
            lambda: client.write("/k", "v"),
            lambda: client.delete("/k"),
        ):
            client._base_uri = fake.url
            with pytest.raises(etcd.EtcdException, match="HTTP 503") as info:
                call()
            assert info.value.payload == {
                "status": 503,
                "cause": '{"message": "failure to get a peer from the ring-balancer"}',
            }
        client._base_uri = fake.url
        client.write("/k", "v", idempotent=True)
        assert client.base_uri == real.client_url
        client._base_uri = fake.url
        assert client.read("/", recursive=True).dir
        assert client.base_uri == real.client_url


def test_a_member_list_of_the_wrong_types_is_a_typed_error(v3_namespace):
    members = {"members": [{"ID": "1", "name": "n", "clientURLs": "http://a:1"}]}
    with FakeServer(default=Reply.json({"header": {"revision": "1"}, **members})) as fake:
        client = etcd.Client(host="127.0.0.1", port=fake.port, api="v3", namespace=v3_namespace)
        with pytest.raises(etcd.EtcdException, match="clientURLs is 'http://a:1'"):
            client.machines  # noqa: B018 - the property asks the server
