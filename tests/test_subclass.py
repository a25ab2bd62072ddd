"""What subclasses of Client rely on (compat §10.1), shaped after Patroni's etcd v2 backend."""

from __future__ import annotations

from typing import Any

import urllib3

import etcd

from .fakes import FakeServer, Reply


class RecordingPool(urllib3.PoolManager):
    """A real PoolManager that notes which of its entry points each request used."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.entry_points: list[tuple[str, str]] = []

    def request(self, method: str, url: str, *args: Any, **kw: Any) -> Any:
        self.entry_points.append(("request", method))
        return super().request(method, url, *args, **kw)

    def request_encode_body(self, method: str, url: str, *args: Any, **kw: Any) -> Any:
        self.entry_points.append(("request_encode_body", method))
        return super().request_encode_body(method, url, *args, **kw)


class PatroniLike(etcd.Client):
    """Sets private attributes before the base constructor and overrides the seams."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._cluster_id = "theirs"
        self._raft_term = 7
        self._dns_resolver = "their resolver"
        self._machines_cache_ttl = 300
        self._machines_cache_updated = 12
        self.calls: list[tuple[str, str, dict[str, Any], Any]] = []
        self.retries_seen: list[Any] = []
        super().__init__(*args, **kwargs)

    def api_execute(self, path, method, params=None, timeout=None):
        params = dict(params or {})
        if "retry" in params:
            self.retries_seen.append(params.pop("retry"))
        self.calls.append((path, method, params, timeout))
        return super().api_execute(path, method, params=params, timeout=timeout)

    def _get_headers(self) -> dict[str, str]:
        headers = super()._get_headers()
        headers["x-patroni"] = "1"
        return headers


def test_reserved_attributes_are_left_alone(etcd_server):
    member = etcd_server.members[0]
    client = PatroniLike(host=member.host, port=member.port)
    assert client._cluster_id == "theirs"
    assert client._raft_term == 7
    assert client._dns_resolver == "their resolver"
    assert client._machines_cache_ttl == 300
    assert client._machines_cache_updated == 12


def test_key_space_calls_go_through_api_execute_as_0_4_5_made_them(etcd_server, etcd_prefix):
    member = etcd_server.members[0]
    client = PatroniLike(host=member.host, port=member.port)
    client.write(f"{etcd_prefix}/newdir", None, dir=True)
    client.write(f"{etcd_prefix}/k", "v", ttl=30, prevExist=False)
    client.read(f"{etcd_prefix}/k", recursive=True)
    first_index = client.read(f"{etcd_prefix}/k").modifiedIndex or 0
    client.write(f"{etcd_prefix}/k", "w")
    client.watch(f"{etcd_prefix}/k", index=first_index + 1, timeout=5)
    client.delete(f"{etcd_prefix}/k", prevValue="w")
    keys = f"/v2/keys{etcd_prefix}"
    assert client.calls == [
        (f"{keys}/newdir", "PUT", {"dir": "true"}, None),
        (f"{keys}/k", "PUT", {"value": "v", "ttl": 30, "prevExist": "false"}, None),
        (f"{keys}/k", "GET", {"recursive": "true"}, None),
        (f"{keys}/k", "GET", {}, None),
        (f"{keys}/k", "PUT", {"value": "w"}, None),
        (
            f"{keys}/k",
            "GET",
            {"wait": "true", "waitIndex": first_index + 1},
            5,
        ),
        (f"{keys}/k", "DELETE", {"prevValue": "w"}, None),
    ]


def test_option_sets_can_be_extended(etcd_server, etcd_prefix, monkeypatch):
    monkeypatch.setattr(etcd.Client, "_read_options", etcd.Client._read_options | {"retry"})
    monkeypatch.setattr(
        etcd.Client, "_comparison_conditions", etcd.Client._comparison_conditions | {"retry"}
    )
    member = etcd_server.members[0]
    client = PatroniLike(host=member.host, port=member.port)
    policy = object()  # any object, not only a string
    client.write(f"{etcd_prefix}/k", "v", retry=policy)
    assert client.read(f"{etcd_prefix}/k", retry=policy).value == "v"
    assert client.retries_seen == [policy, policy]


def test_headers_come_from_the_overridable_seam():
    event = {"action": "get", "node": {"key": "/a", "value": "1"}}
    with FakeServer(Reply.etcd(event)) as fake:
        client = PatroniLike(host=fake.host, port=fake.port, username="u", password="p")
        client.read("/a")
        request = fake.requests[0]
    assert request.header("x-patroni") == "1"
    assert (request.header("authorization") or "").startswith("Basic ")


def test_http_entry_points_are_those_of_the_contract(etcd_server, etcd_prefix):
    member = etcd_server.members[0]
    client = etcd.Client(host=member.host, port=member.port)
    client.http = RecordingPool(**client.http.connection_pool_kw)
    client.write(f"{etcd_prefix}/k", "v")
    client.read(f"{etcd_prefix}/k")
    client.delete(f"{etcd_prefix}/k")
    assert client.http.entry_points == [
        ("request_encode_body", "PUT"),
        ("request", "GET"),
        ("request", "DELETE"),
    ]


def test_next_server_called_as_0_4_5_did_moves_on():
    client = etcd.Client(
        host=(("127.0.0.1", 1), ("127.0.0.1", 2)), allow_reconnect=True, use_proxies=True
    )
    assert client.base_uri == "http://127.0.0.1:1"
    client._base_uri = client._next_server(cause=OSError("down"))
    assert client.base_uri == "http://127.0.0.1:2"
    assert "http://127.0.0.1:2" not in client._machines_cache


def test_failover_asks_the_overridden_machines(etcd_cluster_factory):
    asked = []

    class Counting(etcd.Client):
        @property
        def machines(self) -> list[str]:
            asked.append(self.base_uri)
            return super().machines

    cluster = etcd_cluster_factory(size=2)
    a, b = cluster.members
    client = Counting(host=((a.host, a.port), (b.host, b.port)), allow_reconnect=True)
    assert asked == [a.client_url]  # the constructor's own question
    a.kill()
    assert client.read("/").dir  # a plain read is served without a leader
    assert client.base_uri == b.client_url
    assert b.client_url in asked[1:]
