"""Bodies that are not what etcd sends: each reaches the caller as the precise
:class:`etcd.EtcdException` subclass, never as a bare ``ValueError``, ``KeyError``,
``TypeError`` or ``json.JSONDecodeError``.

The faults come from the fake server in tests/fakes.py.
"""

from __future__ import annotations

import pytest

import etcd

from .fakes import (
    Reply,
    etcd_headers,
)
from .faults_support import GET_A, raised, read_a, serving


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
