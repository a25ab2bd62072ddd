"""Faults a real etcd cannot be made to produce, from the fake server in tests/fakes.py.

Every failure must reach the caller as the precise :class:`etcd.EtcdException`
subclass, never as a bare ``ValueError``, ``KeyError``, ``TypeError`` or
``json.JSONDecodeError``; the wire format of requests is pinned here too.
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import time
import types
from collections.abc import Iterator
from typing import Any

import pytest

import etcd

from .fakes import (
    FakeServer,
    Hangup,
    HeadersThenStall,
    Reply,
    Responder,
    Stall,
    Truncated,
    dropped_watch,
    etcd_headers,
    refusing_port,
)
from .helpers import raised as raises_exactly

NODE = {"key": "/a", "value": "1", "modifiedIndex": 5, "createdIndex": 5}
GET_A = {"action": "get", "node": NODE}
SET_A = {"action": "set", "node": NODE}


@contextlib.contextmanager
def serving(*answers: Responder, **client_kwargs: Any) -> Iterator[tuple[FakeServer, etcd.Client]]:
    """A fake server scripted with *answers* and a real client pointed at it."""
    with (
        FakeServer(*answers) as fake,
        etcd.Client(host="127.0.0.1", port=fake.port, **client_kwargs) as client,
    ):
        yield fake, client


def raised(expected: type[etcd.EtcdException], call: Any, *answers: Responder) -> Any:
    """Run ``call(client)`` against a fake answering *answers*; return the exception.

    The exception must be exactly *expected*, not a subclass or a sibling.
    """
    with serving(*answers) as (_fake, client):
        return raises_exactly(expected, call, client)


def read_a(client: etcd.Client) -> Any:
    return client.read("/a")


# --------------------------------------------------------------------------
# Bodies that are not what etcd sends


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Reply.text("hello, I am not etcd\n"), id="plain-text"),
        pytest.param(
            Reply(200, b'{"action":"get","node":{"key":"/a"', etcd_headers()), id="truncated-json"
        ),
        pytest.param(Reply(200, b"", etcd_headers()), id="empty-body"),
        pytest.param(Reply(200, b"\xff\xfe{", etcd_headers()), id="not-utf8"),
    ],
)
def test_200_without_valid_json_is_an_etcd_exception(answer):
    exc = raised(etcd.EtcdException, read_a, answer)
    assert str(exc).startswith("Server response was not valid JSON")


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"action": "get"}, id="no-node"),
        pytest.param([1, 2], id="json-array"),
        pytest.param("a string", id="json-string"),
        pytest.param(None, id="json-null"),
        pytest.param({"action": "get", "node": "x"}, id="node-is-a-string"),
    ],
)
def test_200_json_that_is_not_a_result_is_an_etcd_exception(payload):
    exc = raised(etcd.EtcdException, read_a, Reply.etcd(payload))
    assert str(exc).startswith("Unable to decode server response")


def test_a_non_integer_index_header_is_an_etcd_exception():
    answer = Reply.etcd(GET_A, headers={"X-Etcd-Index": "abc"})
    exc = raised(etcd.EtcdException, read_a, answer)
    assert str(exc).startswith("Unable to decode server response")


@pytest.mark.parametrize(
    "nodes",
    [
        pytest.param("oops", id="nodes-is-a-string"),
        pytest.param([1], id="child-is-a-number"),
        pytest.param([{"key": "/a/b", "dir": True, "nodes": 5}], id="grandchildren-a-number"),
    ],
)
def test_malformed_children_are_an_etcd_exception(nodes):
    # Children are parsed lazily; wherever the client notices, it must say so
    # with an EtcdException rather than leak an AttributeError or TypeError.
    answer = Reply.etcd({"action": "get", "node": {"key": "/a", "dir": True, "nodes": nodes}})
    with serving(answer) as (_fake, client), pytest.raises(etcd.EtcdException):
        list(client.read("/a", recursive=True).get_subtree())


def test_html_502_from_a_proxy():
    html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    answer = Reply(502, html.encode(), {"Content-Type": "text/html"})
    exc = raised(etcd.EtcdException, read_a, answer)
    assert str(exc) == f"Bad response : {html}"
    assert exc.payload == {"message": "Bad response", "cause": html}
    assert exc.error_code is None


def test_json_array_error_body_is_a_bad_response():
    exc = raised(etcd.EtcdException, read_a, Reply.json([1, 2], 400))
    assert str(exc) == "Bad response : [1, 2]"


def test_plain_text_404_means_the_v2_api_is_disabled():
    exc = raised(etcd.EtcdV2ApiDisabled, read_a, Reply.text("404 page not found\n", 404))
    assert not isinstance(exc, etcd.EtcdKeyNotFound)
    assert "--enable-v2" in str(exc)
    assert "v2 API" in str(exc)
    assert exc.payload["status"] == 404
    assert exc.payload["cause"] == "404 page not found\n"


def test_plain_text_404_is_not_taken_for_a_missing_key():
    with (
        serving(Reply.text("404 page not found\n", 404)) as (_fake, client),
        pytest.raises(etcd.EtcdV2ApiDisabled),
    ):
        "/a" in client  # noqa: B015 - the check is the call


def test_json_404_is_a_missing_key():
    body = {"errorCode": 100, "message": "Key not found", "cause": "/a", "index": 5}
    exc = raised(etcd.EtcdKeyNotFound, read_a, Reply.etcd(body, 404))
    assert str(exc) == "Key not found : /a"
    assert exc.error_code == 100


def test_unknown_error_code_is_a_plain_etcd_exception_with_its_payload():
    body = {"errorCode": 999, "message": "Something new", "cause": "/a", "index": 3}
    exc = raised(etcd.EtcdException, read_a, Reply.etcd(body, 400))
    assert str(exc) == "Something new : /a"
    assert exc.error_code == 999
    assert exc.payload == {**body, "status": 400}


def test_string_error_code_is_a_plain_etcd_exception():
    body = {"errorCode": "101", "message": "Compare failed", "cause": "[x != y]", "index": 3}
    exc = raised(etcd.EtcdException, read_a, Reply.etcd(body, 412))
    assert str(exc) == "Compare failed : [x != y]"
    assert exc.error_code is None
    assert exc.payload["errorCode"] == "101"


def test_500_with_code_300_is_a_raft_internal_error():
    body = {
        "errorCode": 300,
        "message": "Raft Internal Error",
        "cause": "etcdserver: request timed out",
        "index": 0,
    }
    exc = raised(etcd.EtcdRaftInternalError, read_a, Reply.etcd(body, 500, index=0))
    assert str(exc) == "Raft Internal Error : etcdserver: request timed out"
    assert exc.error_code == 300
    assert exc.payload["status"] == 500


# --------------------------------------------------------------------------
# Connections that break


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_connection_closed_without_an_answer_on_a_read(reset):
    with serving(Hangup(reset=reset)) as (fake, client):
        with pytest.raises(etcd.EtcdException) as info:
            client.read("/a")
        assert len(fake.requests) == 1
    exc = info.value
    assert type(exc) is etcd.EtcdConnectionFailed
    assert str(exc).startswith("Connection to etcd failed")
    assert exc.cause is not None
    assert exc.__cause__ is exc.cause


def test_body_cut_short_on_a_read():
    answer = Truncated(200, b'{"action":"get","node":{"key":"/a"', etcd_headers())
    exc = raised(etcd.EtcdConnectionFailed, read_a, answer)
    assert "IncompleteRead" in str(exc)
    assert exc.cause is not None


def test_body_cut_short_on_a_write_says_the_outcome_is_unknown():
    answer = Truncated(201, b'{"action":"set"', etcd_headers())
    with serving(answer) as (fake, client):
        with pytest.raises(etcd.EtcdException) as info:
            client.write("/a", "1")
        assert len(fake.requests) == 1
    assert type(info.value) is etcd.EtcdConnectionFailed
    assert "outcome is unknown" in str(info.value)
    assert info.value.cause is not None


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.write("/queue", "job", append=True), id="append"),
        pytest.param(lambda c: c.write("/a", "1", prevValue="0"), id="compare-and-swap"),
        pytest.param(lambda c: c.delete("/a"), id="delete"),
    ],
)
def test_a_write_that_may_have_arrived_is_sent_exactly_once(call):
    # urllib3's own retries are off: a write that reached the server is never
    # re-sent behind the caller's back (compat §11 d, f).
    with serving(Hangup()) as (fake, client):
        with pytest.raises(etcd.EtcdException) as info:
            call(client)
        assert len(fake.requests) == 1
        assert fake.connections == 1
    assert type(info.value) is etcd.EtcdConnectionFailed
    assert "outcome is unknown" in str(info.value)
    assert fake.requests[0].method in ("POST", "PUT", "DELETE")


def test_a_failed_read_is_not_retried_without_allow_reconnect():
    with serving(Hangup()) as (fake, client):
        with pytest.raises(etcd.EtcdConnectionFailed):
            client.read("/a")
        assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(read_a, id="read"),
        pytest.param(lambda c: c.write("/a", "1"), id="write"),
    ],
)
def test_refused_connection(call):
    with (
        refusing_port() as port,
        etcd.Client(host="127.0.0.1", port=port) as client,
        pytest.raises(etcd.EtcdException) as info,
    ):
        call(client)
    exc = info.value
    assert type(exc) is etcd.EtcdConnectionFailed
    assert exc.cause is not None
    assert exc.__cause__ is exc.cause
    assert "refused" in str(exc).lower()
    # nothing was sent, so nothing is uncertain
    assert "outcome is unknown" not in str(exc)


# --------------------------------------------------------------------------
# Watches


def test_watch_without_headers_times_out_promptly():
    with serving(Stall()) as (fake, client):
        start = time.monotonic()
        with pytest.raises(etcd.EtcdException) as info:
            client.watch("/a", timeout=1)
        elapsed = time.monotonic() - start
        # exactly one attempt: no silent urllib3 retry (python-etcd issue #81)
        assert len(fake.requests) == 1
    assert type(info.value) is etcd.EtcdWatchTimedOut
    assert str(info.value).startswith("Watch timed out")
    assert info.value.cause is not None
    assert elapsed < 2, f"the watch took {elapsed:.1f}s to time out"


def test_watch_with_headers_but_no_event_times_out_promptly():
    with serving(HeadersThenStall(200, etcd_headers())) as (fake, client):
        start = time.monotonic()
        with pytest.raises(etcd.EtcdException) as info:
            client.watch("/a", timeout=1)
        elapsed = time.monotonic() - start
        assert len(fake.requests) == 1
    assert type(info.value) is etcd.EtcdWatchTimedOut
    assert info.value.cause is not None
    assert elapsed < 2, f"the watch took {elapsed:.1f}s to time out"


def test_watch_interrupted_by_a_closed_connection_is_not_a_timeout():
    with serving(Hangup()) as (fake, client):
        with pytest.raises(etcd.EtcdException) as info:
            client.watch("/a", timeout=5)
        assert len(fake.requests) == 1
    assert type(info.value) is etcd.EtcdConnectionFailed
    assert "outcome is unknown" in str(info.value)


def test_empty_chunked_200_on_a_watch_is_watcher_cleared():
    exc = raised(etcd.EtcdWatcherCleared, lambda c: c.watch("/a", index=7), dropped_watch())
    assert "watch again" in str(exc)
    assert exc.error_code == 400


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(dropped_watch(index=6), id="empty-body"),
        pytest.param(
            Reply.etcd(
                {"errorCode": 400, "message": "watcher is cleared due to etcd recovery"}, 400
            ),
            id="error-400",
        ),
    ],
)
def test_eternal_watch_retries_a_dropped_watcher_from_the_same_index(first):
    event = {
        "action": "set",
        "node": {"key": "/w", "value": "new", "modifiedIndex": 7, "createdIndex": 7},
    }
    with serving(first, Reply.etcd(event, index=6)) as (fake, client):
        events = client.eternal_watch("/w", index=7)
        assert isinstance(events, types.GeneratorType)
        result = next(events)
        events.close()
        requests = fake.requests
    assert (result.action, result.key, result.value, result.modifiedIndex) == (
        "set",
        "/w",
        "new",
        7,
    )
    assert len(requests) == 2
    for request in requests:
        assert request.path == "/v2/keys/w"
        assert request.params["wait"] == ["true"]
        assert request.params["waitIndex"] == ["7"]
        assert request.params.get("recursive", ["false"]) == ["false"]


def test_eternal_watch_lets_an_index_cleared_error_through():
    body = {
        "errorCode": 401,
        "message": "The event in requested index is outdated and cleared",
        "cause": "the requested history has been cleared [1140/7]",
        "index": 2139,
    }
    with serving(Reply.etcd(body, 400, index=2139)) as (fake, client):
        with pytest.raises(etcd.EtcdException) as info:
            next(client.eternal_watch("/w", index=7))
        assert len(fake.requests) == 1
    assert type(info.value) is etcd.EtcdEventIndexCleared
    assert info.value.resume_index == 2139


# --------------------------------------------------------------------------
# Cluster id


def test_cluster_id_change_is_raised_once():
    answers = [Reply.etcd(GET_A, cluster_id=cid) for cid in ("aaaa", "bbbb", "bbbb")]
    with serving(*answers) as (fake, client):
        assert client.read("/a").value == "1"
        assert client.expected_cluster_id == "aaaa"
        with pytest.raises(etcd.EtcdException) as info:
            client.read("/a")
        assert type(info.value) is etcd.EtcdClusterIdChanged
        assert str(info.value) == "The UUID of the cluster changed from aaaa to bbbb."
        assert client.expected_cluster_id == "bbbb"
        assert client.read("/a").value == "1"
        assert len(fake.requests) == 3


def test_expected_cluster_id_is_checked_on_the_first_answer():
    with (
        serving(Reply.etcd(GET_A, cluster_id="bbbb"), expected_cluster_id="aaaa") as (_, client),
        pytest.raises(etcd.EtcdClusterIdChanged, match=r"from aaaa to bbbb\.$"),
    ):
        client.read("/a")


def test_an_answer_without_a_cluster_id_is_not_checked():
    answers = [Reply.etcd(GET_A, cluster_id="aaaa"), Reply.etcd(GET_A, cluster_id=None)]
    with serving(*answers) as (_fake, client):
        client.read("/a")
        assert client.read("/a").value == "1"
        assert client.expected_cluster_id == "aaaa"


def test_a_watch_notices_a_new_cluster_from_the_headers():
    # compat §4.6: the check runs on the headers, before the body, so a watch
    # on a replaced cluster fails at once instead of waiting for an event.
    answers: list[Responder] = [
        Reply.etcd(GET_A, cluster_id="aaaa"),
        HeadersThenStall(200, etcd_headers(cluster_id="bbbb")),
    ]
    with serving(*answers) as (_fake, client):
        client.read("/a")
        start = time.monotonic()
        with pytest.raises(etcd.EtcdClusterIdChanged):
            client.watch("/a", timeout=10)
        elapsed = time.monotonic() - start
    assert elapsed < 3, f"the cluster change took {elapsed:.1f}s to be noticed"


# --------------------------------------------------------------------------
# What goes on the wire


def test_write_wire_format():
    with serving(Reply.etcd(SET_A, 201)) as (fake, client):
        result = client.write("/a b", "x+y&z=1", ttl=5, prevExist=False, prevIndex=3)
        (request,) = fake.requests
    assert result.newKey is True
    assert request.method == "PUT"
    assert request.target == "/v2/keys/a%20b"
    assert request.body == b"value=x%2By%26z%3D1&ttl=5&prevExist=false&prevIndex=3"
    content_type = request.header("Content-Type") or ""
    assert content_type.split(";")[0] == "application/x-www-form-urlencoded"


def test_read_parameters_go_in_the_query_string():
    with serving(Reply.etcd(GET_A)) as (fake, client):
        client.read("/k", recursive=True, sorted=True)
        (request,) = fake.requests
    assert request.method == "GET"
    assert request.target == "/v2/keys/k?recursive=true&sorted=true"
    assert request.body == b""


def test_delete_parameters_go_in_the_query_string():
    with serving(Reply.etcd({"action": "delete", "node": NODE})) as (fake, client):
        client.delete("/k", recursive=True, prevValue="v w")
        (request,) = fake.requests
    assert request.method == "DELETE"
    assert request.path == "/v2/keys/k"
    assert request.params == {"recursive": ["true"], "prevValue": ["v w"]}
    assert request.body == b""


def test_append_is_a_post_to_the_directory():
    with serving(Reply.etcd({"action": "create", "node": NODE}, 201)) as (fake, client):
        client.write("/queue", "job 1", append=True)
        (request,) = fake.requests
    assert (request.method, request.target, request.body) == (
        "POST",
        "/v2/keys/queue",
        b"value=job+1",
    )


def test_refresh_wire_format():
    with serving(Reply.etcd({"action": "update", "node": NODE})) as (fake, client):
        client.refresh("/a", ttl=20)
        (request,) = fake.requests
    assert (request.method, request.body) == ("PUT", b"ttl=20&refresh=true&prevExist=true")


def test_mkdir_wire_format():
    with serving(Reply.etcd(SET_A, 201)) as (fake, client):
        client.write("/newdir", None, dir=True)
        (request,) = fake.requests
    assert (request.method, request.target, request.body) == (
        "PUT",
        "/v2/keys/newdir",
        b"dir=true",
    )


def test_watch_wire_format():
    with serving(Reply.etcd(SET_A)) as (fake, client):
        client.watch("/d", index=7, recursive=True)
        (request,) = fake.requests
    assert request.path == "/v2/keys/d"
    assert request.params == {"wait": ["true"], "waitIndex": ["7"], "recursive": ["true"]}


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("/a b", "/v2/keys/a%20b"),
        ("x#1", "/v2/keys/x%231"),
        ("/é", "/v2/keys/%C3%A9"),
        ("/q?a=1", "/v2/keys/q%3Fa%3D1"),
        ("/%41", "/v2/keys/%2541"),
        ("/a//b", "/v2/keys/a/b"),
        ("/dir/", "/v2/keys/dir/"),
        ("plain-key_0.~", "/v2/keys/plain-key_0.~"),
    ],
)
def test_keys_are_percent_quoted(key, path):
    with serving(Reply.etcd(GET_A)) as (fake, client):
        client.read(key)
        (request,) = fake.requests
    assert request.target == path


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("pa:ss word", id="ascii"),
        pytest.param("pässwörd", id="latin-1"),
        pytest.param("日本語", id="beyond-latin-1"),
    ],
)
def test_basic_auth_header_is_sent_with_username_and_password(password):
    # etcd stores passwords as the UTF-8 text of its JSON API and compares the
    # raw bytes of the basic credentials to it, so they must be UTF-8 (RFC 7617).
    with serving(Reply.etcd(GET_A), username="root", password=password) as (fake, client):
        client.read("/a")
        (request,) = fake.requests
    token = base64.b64encode(f"root:{password}".encode()).decode("ascii")
    assert request.header("Authorization") == f"Basic {token}"


@pytest.mark.parametrize(
    "credentials",
    [{}, {"username": "root"}, {"password": "secret"}],
    ids=["none", "username-only", "password-only"],
)
def test_no_authorization_header_without_both_credentials(credentials):
    with serving(Reply.etcd(GET_A), **credentials) as (fake, client):
        client.read("/a")
        (request,) = fake.requests
    assert request.header("Authorization") is None


def test_password_is_not_in_the_repr():
    with serving(username="root", password="s3cret") as (_fake, client):
        assert "s3cret" not in repr(client)
        assert re.search(r"user='root'", repr(client))


# --------------------------------------------------------------------------
# The fake server itself


@pytest.mark.parametrize(
    "answer", [Stall(), HeadersThenStall(200, etcd_headers())], ids=["stall", "headers"]
)
def test_fake_server_close_ends_stalled_answers_promptly(answer):
    fake = FakeServer(answer).start()
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as sock:
        sock.sendall(b"GET /v2/keys/a?wait=true HTTP/1.1\r\nHost: x\r\n\r\n")
        (request,) = fake.wait_for_requests(1)
        assert request.params == {"wait": ["true"]}
        start = time.monotonic()
        fake.close()
        elapsed = time.monotonic() - start
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert elapsed < 2, f"closing the fake took {elapsed:.1f}s"
    assert received == b"" or received.startswith(b"HTTP/1.1 200 OK\r\n")
