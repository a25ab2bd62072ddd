"""The lean send path (etcd/_wire.py) and where it hands over to urllib3.

Requests on the client's own pool manager are written and parsed by the lean
path; a replaced or patched ``http`` and a proxy manager get every request
through urllib3 as before. These tests pin what the lean path must keep:
keep-alive reuse, ``Connection: close``, chunked bodies, redirects, and the
"sent / not sent" line that decides whether a request may be sent again.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
import urllib3

import etcd

from .fakes import (
    Chunked,
    FakeServer,
    Hangup,
    Raw,
    Reply,
    ReplyThenClose,
    etcd_headers,
)
from .helpers import raised, wait_for
from .helpers import serving as _serving

NODE = {"key": "/a", "value": "1", "modifiedIndex": 5, "createdIndex": 5}
GET_A = {"action": "get", "node": NODE}
SET_A = {"action": "set", "node": NODE}
GOOD = Reply.etcd(GET_A)


# Every request not scripted otherwise gets a good answer.
serving = functools.partial(_serving, default=GOOD)


# --------------------------------------------------------------------------
# Keep-alive


def test_one_connection_carries_every_request(etcd_server):
    member = etcd_server.members[0]
    with etcd.Client(host=member.host, port=member.port) as client:
        before = _connections(client)
        for _ in range(20):
            client.read("/")
        assert _connections(client) - before <= 1


def _connections(client: etcd.Client) -> int:
    pools = [client.http.connection_from_url(client.base_uri)]
    return sum(pool.num_connections for pool in pools)


def test_keep_alive_is_counted_on_the_server_side():
    with serving() as (fake, client):
        for _ in range(5):
            assert client.read("/a").value == "1"
        assert fake.connections == 1
        assert len(fake.requests) == 5


def test_connection_close_is_honoured():
    closing = Reply.etcd(GET_A, headers={"Connection": "close"})
    with serving(closing, closing) as (fake, client):
        client.read("/a")
        client.read("/a")
        client.read("/a")
        assert fake.connections == 3


def test_an_answer_without_length_is_read_to_the_close():
    http10 = Raw(
        b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n"
        b'{"action": "get", "node": {"key": "/a", "value": "1"}}'
    )
    with serving(http10, http10) as (fake, client):
        assert client.read("/a").value == "1"
        assert client.read("/a").value == "1"
        assert fake.connections == 2


def test_a_chunked_body_is_read_and_the_connection_kept():
    body = b'{"action": "get", "node": {"key": "/a", "value": "chunked"}}'
    chunked = Chunked(200, [body[:10], body[10:30], body[30:]], etcd_headers(7))
    with serving(chunked) as (fake, client):
        result = client.read("/a")
        assert result.value == "chunked"
        assert result.etcd_index == 7
        assert client.read("/a").value == "1"
        assert fake.connections == 1


def test_a_dropped_keep_alive_connection_is_replaced_before_sending():
    for reset in (False, True):
        dropped = ReplyThenClose(Reply.etcd(GET_A), reset=reset)
        with serving(dropped) as (fake, client):
            client.read("/a")
            fake.wait_for_requests(1)
            _wait_until_closed(fake)
            # a write is not idempotent: it may only go out once, on a new connection
            assert client.write("/a", "1").value == "1"
            assert fake.connections == 2
            assert [r.method for r in fake.requests] == ["GET", "PUT"]


def _wait_until_closed(fake: FakeServer) -> None:
    assert wait_for(lambda: fake.open_connections == 0)


def test_a_request_that_went_out_is_not_sent_again_on_a_new_connection():
    # The server reads the write and hangs up: the write may have been applied.
    with serving(Reply.etcd(GET_A), Hangup()) as (fake, client):
        client.read("/a")
        error = raised(etcd.EtcdConnectionFailed, client.write, "/a", "2")
        assert "outcome is unknown" in str(error)
        assert [r.method for r in fake.requests] == ["GET", "PUT"]
        assert fake.connections == 1


# --------------------------------------------------------------------------
# What goes on the wire


def test_the_request_asks_for_no_compression_and_carries_the_form():
    with serving(Reply.etcd(SET_A)) as (fake, client):
        client.write("/a b", "x y", ttl=5)
        request = fake.requests[0]
        assert request.method == "PUT"
        assert request.target == "/v2/keys/a%20b"
        assert request.header("Accept-Encoding") == "identity"
        assert request.header("Content-Type") == "application/x-www-form-urlencoded"
        assert request.form == {"value": ["x y"], "ttl": ["5"]}
        assert request.header("Host") == f"127.0.0.1:{fake.port}"


def test_a_path_urllib3_would_normalise_goes_through_urllib3():
    with serving(Reply.etcd(GET_A)) as (fake, client):
        client.api_execute("/v2/keys/a/../b", "GET")
        assert fake.requests[0].target == "/v2/keys/b"  # urllib3 removes dot segments


# --------------------------------------------------------------------------
# Redirects


def test_a_redirect_is_followed_from_the_lean_path():
    moved = Reply(307, headers={"Location": "/v2/keys/b?moved=1"})
    with serving(moved) as (fake, client):
        assert client.write("/a", "1").value == "1"
        assert [(r.method, r.target) for r in fake.requests] == [
            ("PUT", "/v2/keys/a"),
            ("PUT", "/v2/keys/b?moved=1"),
        ]
        assert fake.requests[1].form == {"value": ["1"]}


def test_a_303_turns_the_request_into_a_get_without_body():
    see_other = Reply(303, headers={"Location": "/v2/keys/b"})
    with serving(see_other) as (fake, client):
        client.write("/a", "1")
        second = fake.requests[1]
        assert (second.method, second.body, second.header("Content-Type")) == ("GET", b"", None)


def test_redirects_are_not_followed_when_not_allowed():
    moved = Reply(307, headers={"Location": "/v2/keys/b"})
    with serving(moved, allow_redirect=False) as (fake, client):
        with pytest.raises(etcd.EtcdException):
            client.read("/a")
        assert len(fake.requests) == 1


def test_a_redirect_loop_ends():
    with serving(default=Reply(307, headers={"Location": "/v2/keys/a"})) as (fake, client):
        with pytest.raises(etcd.EtcdException):
            client.read("/a")
        assert len(fake.requests) == 11  # the request and urllib3's 10 redirects


@pytest.mark.parametrize(
    "location",
    ["http://[::1/v2/keys/a", "http://[invalid]:99/", "ftp://example.com/a", "http://:99/a"],
)
def test_a_redirect_to_an_invalid_url_is_a_typed_error(location):
    with serving(Reply(307, headers={"Location": location})) as (_fake, client):
        error = raised(etcd.EtcdBadResponse, client.read, "/a")
        assert "redirect to an invalid URL" in str(error)


# --------------------------------------------------------------------------
# Who sends: the lean path or urllib3


class CountingPoolManager(urllib3.PoolManager):
    """A user's own pool manager, as a subclass of Client might install."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.calls = 0

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> Any:  # type: ignore[override]
        self.calls += 1
        return super().urlopen(method, url, redirect=redirect, **kw)


def test_a_replaced_http_sees_every_request():
    with serving() as (fake, client):
        client.http = CountingPoolManager()
        client.read("/a")
        client.write("/a", "1")
        client.delete("/a")
        assert client.http.calls == 3
        assert len(fake.requests) == 3


def test_a_patched_request_method_sees_the_request():
    with serving() as (_fake, client):
        seen = []
        original = client.http.request

        def spy(method: str, url: str, **kw: Any) -> Any:
            seen.append((method, url))
            return original(method, url, **kw)

        client.http.request = spy  # type: ignore[method-assign,assignment]
        assert client.read("/a", recursive=True).value == "1"
        assert seen == [("GET", f"http://127.0.0.1:{_fake.port}/v2/keys/a")]


def test_a_proxy_manager_gets_the_requests():
    with serving() as (fake, client):
        client.http = urllib3.ProxyManager(fake.url)
        assert client.read("/a").value == "1"
        # A forward proxy is sent the absolute URL; the lean path never does that.
        assert fake.requests[0].target == f"http://127.0.0.1:{fake.port}/v2/keys/a"


def test_a_clone_uses_the_lean_path_too():
    with serving() as (fake, client):
        twin = client.clone()
        for _ in range(3):
            twin.read("/a")
        assert fake.connections == 1
        assert type(twin.http) is type(client.http)
