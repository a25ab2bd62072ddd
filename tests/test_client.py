"""Client construction, cluster information and lifecycle against a real etcd."""

from __future__ import annotations

import logging

import pytest

import etcd


@pytest.fixture
def member(etcd_server):
    return etcd_server.members[0]


def test_constructor_defaults_and_properties(member):
    client = etcd.Client(host=member.host, port=member.port)
    assert client.base_uri == f"http://{member.host}:{member.port}"
    assert (client.host, client.port) == (member.host, member.port)
    assert client.protocol == "http"
    assert client.read_timeout == 60
    assert client.allow_redirect is True
    assert client.lock_prefix == "/_locks"
    assert client.key_endpoint == "/v2/keys"
    assert client.version_prefix == "/v2"
    assert client._machines_cache == []
    assert client.expected_cluster_id is None
    assert client.username is None and client.password is None
    import urllib3

    assert isinstance(client.http, urllib3.PoolManager)
    assert client.http.connection_pool_kw["maxsize"] == 10


def test_ipv6_literal_is_bracketed():
    client = etcd.Client(host="::1", port=2379)
    assert client.base_uri == "http://[::1]:2379"
    assert client.host == "[::1]"
    assert client.port == 2379


def test_version_is_fetched_once(member):
    client = etcd.Client(host=member.host, port=member.port)
    assert client._version is None
    version = client.version
    assert version is not None and version.startswith("3.")
    assert (client.cluster_version or "").startswith("3.")
    assert client._version == version


def test_machines_members_leader(member, etcd_server):
    client = etcd.Client(host=member.host, port=member.port)
    assert client.machines == [member.client_url]
    members = client.members
    assert len(members) == 1
    (only,) = members.values()
    assert only["name"] == member.name
    assert only["clientURLs"] == [member.client_url]
    assert client.leader == only


def test_stats(member):
    client = etcd.Client(host=member.host, port=member.port)
    stats = client.stats
    assert stats["state"] == "StateLeader"
    assert stats["name"] == member.name
    assert "followers" in client.leader_stats
    assert "watchers" in client.store_stats


def test_cluster_id_is_learned(member, etcd_prefix):
    client = etcd.Client(host=member.host, port=member.port)
    assert client.expected_cluster_id is None
    client.write(f"{etcd_prefix}/k", "v")
    learned = client.expected_cluster_id
    assert learned and all(c in "0123456789abcdef" for c in learned)


def test_expected_cluster_id_mismatch_raises_once(member, etcd_prefix):
    client = etcd.Client(host=member.host, port=member.port, expected_cluster_id="abc123")
    with pytest.raises(etcd.EtcdClusterIdChanged, match="changed from abc123 to "):
        client.write(f"{etcd_prefix}/k", "v")
    # The id is checked on the answer, so the write itself reached the server;
    # the new id is remembered and the next request proceeds.
    assert client.read(f"{etcd_prefix}/k").value == "v"


def test_tuple_of_hosts_needs_reconnect(member):
    with pytest.raises(etcd.EtcdException, match="reconnection not allowed"):
        etcd.Client(host=((member.host, member.port),))


def test_allow_reconnect_fills_the_cache_from_the_cluster(member):
    other = ("127.0.0.1", 1)  # never contacted: the cache only lists it
    client = etcd.Client(host=((member.host, member.port), other), allow_reconnect=True)
    assert client.base_uri == member.client_url
    assert client._machines_cache == ["http://127.0.0.1:1"]
    with_proxies = etcd.Client(
        host=((member.host, member.port), other), allow_reconnect=True, use_proxies=True
    )
    assert with_proxies._machines_cache == ["http://127.0.0.1:1"]


def test_username_without_password_is_ignored_with_a_warning(member, caplog):
    with caplog.at_level(logging.WARNING, logger="etcd"):
        client = etcd.Client(host=member.host, port=member.port, username="bob")
    assert client.username is None and client.password is None
    assert any("username and password" in r.getMessage() for r in caplog.records)
    assert client._get_headers() == {}


def test_repr_hides_the_password(member):
    client = etcd.Client(host=member.host, port=member.port, username="bob", password="s3cret")
    assert "s3cret" not in repr(client) and "s3cret" not in str(client)
    assert "bob" in repr(client)
    assert client._get_headers()["authorization"].startswith("Basic ")


def test_close_is_idempotent_and_the_client_stays_usable(member, etcd_prefix):
    with etcd.Client(host=member.host, port=member.port) as client:
        client.write(f"{etcd_prefix}/k", "v")
        assert len(client.http.pools) == 1
    assert len(client.http.pools) == 0
    client.close()
    assert client.read(f"{etcd_prefix}/k").value == "v"


def test_read_timeout_zero_means_no_timeout(member, etcd_prefix):
    client = etcd.Client(host=member.host, port=member.port, read_timeout=0)
    assert "timeout" not in client.http.connection_pool_kw
    client.write(f"{etcd_prefix}/k", "v")
    assert client.read(f"{etcd_prefix}/k").value == "v"
    assert client.machines == [member.client_url]


def test_api_execute_checks_before_io(member):
    client = etcd.Client(host=member.host, port=member.port)
    with pytest.raises(ValueError, match="Path does not start with /"):
        client.api_execute("v2/keys/x", "GET")
    with pytest.raises(etcd.EtcdException, match="HTTP method PATCH not supported"):
        client.api_execute("/v2/keys/x", "PATCH")


def test_api_execute_returns_the_loaded_response(member, etcd_prefix):
    client = etcd.Client(host=member.host, port=member.port)
    client.write(f"{etcd_prefix}/k", "v")
    response = client.api_execute(f"/v2/keys{etcd_prefix}/k", "GET")
    assert response.status == 200
    assert b'"value":"v"' in response.data
    result = client._result_from_response(response)
    assert result.value == "v" and result.etcd_index >= 1


def test_api_execute_json_on_the_auth_api(member):
    client = etcd.Client(host=member.host, port=member.port)
    response = client.api_execute_json("/v2/auth/enable", "GET")
    assert response.status == 200
    assert b'"enabled":false' in response.data


def test_server_with_v2_disabled(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=1, enable_v2=False)
    client = cluster.client()
    with pytest.raises(etcd.EtcdV2ApiDisabled, match="--enable-v2=true") as info:
        client.read("/anything")
    assert not isinstance(info.value, etcd.EtcdKeyNotFound)
    with pytest.raises(etcd.EtcdV2ApiDisabled):
        "/anything" in client  # noqa: B015 - must raise, not answer False
