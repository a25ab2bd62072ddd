"""The one parser of gateway answers, the key layout and the tree builder (no server).

The 3.4 and 3.5 bodies below were recorded from real servers (etcd 3.4.23 and
3.5.1, the gateway answering with grpc-gateway v1). The 3.6+ bodies are built
as grpc-gateway v2 writes them (protojson, ``code`` and ``message`` and
``details``, no ``error`` field): no such server was available to record from.
"""

from __future__ import annotations

import json

import pytest

import etcd
from etcd._v3_codec import (
    Layout,
    decode_answer,
    decode_stream_line,
    split_lines,
)
from etcd._v3_tree import dir_node

from .v3_support import b64

# (HTTP status, body) as recorded
RECORDED_34 = {
    "bad_base64": (
        400,
        b'{"error":"illegal base64 data at input byte 1",'
        b'"message":"illegal base64 data at input byte 1","code":3}',
    ),
    "auth_off": (
        412,
        b'{"error":"etcdserver: authentication is not enabled",'
        b'"message":"etcdserver: authentication is not enabled","code":9}',
    ),
    "no_lease": (
        404,
        b'{"error":"etcdserver: requested lease not found",'
        b'"message":"etcdserver: requested lease not found","code":5}',
    ),
    "compacted": (
        400,
        b'{"error":"etcdserver: mvcc: required revision has been compacted",'
        b'"message":"etcdserver: mvcc: required revision has been compacted","code":11}',
    ),
}
RECORDED_35 = {
    "bad_base64": (
        400,
        b'{"error":"illegal base64 data at input byte 1","code":3,'
        b'"message":"illegal base64 data at input byte 1"}',
    ),
    "auth_off": (  # 400 here, 412 on 3.4: the status is never used
        400,
        b'{"error":"etcdserver: authentication is not enabled","code":9,'
        b'"message":"etcdserver: authentication is not enabled"}',
    ),
    "no_lease": (
        404,
        b'{"error":"etcdserver: requested lease not found","code":5,'
        b'"message":"etcdserver: requested lease not found"}',
    ),
    "compacted": (
        400,
        b'{"error":"etcdserver: mvcc: required revision has been compacted","code":11,'
        b'"message":"etcdserver: mvcc: required revision has been compacted"}',
    ),
}


def _v36(status: int, code: int, message: str) -> tuple[int, bytes]:
    """A grpc-gateway v2 error body (etcd 3.6+), per its protojson Status."""
    return status, json.dumps({"code": code, "message": message, "details": []}).encode()


CONSTRUCTED_36 = {
    "bad_base64": _v36(400, 3, "illegal base64 data at input byte 1"),
    "auth_off": _v36(400, 9, "etcdserver: authentication is not enabled"),
    "no_lease": _v36(404, 5, "etcdserver: requested lease not found"),
    "compacted": _v36(400, 11, "etcdserver: mvcc: required revision has been compacted"),
}

EXPECTED = {
    "bad_base64": etcd.EtcdValueError,
    "auth_off": etcd.EtcdException,
    "no_lease": etcd.EtcdKeyNotFound,
    "compacted": etcd.EtcdEventIndexCleared,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize(
    "bodies", [RECORDED_34, RECORDED_35, CONSTRUCTED_36], ids=["3.4", "3.5", "3.6+"]
)
def test_every_error_form_gives_the_same_exception(bodies, name):
    status, body = bodies[name]
    with pytest.raises(EXPECTED[name]) as info:
        decode_answer(status, body)
    assert type(info.value) is EXPECTED[name]
    assert info.value.payload["grpcCode"] == json.loads(body)["code"]
    assert json.loads(body)["message"] in str(info.value)


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 412, 500])
def test_the_http_status_never_decides(status):
    body = b'{"code":7,"message":"etcdserver: permission denied"}'
    with pytest.raises(etcd.EtcdInsufficientPermissions):
        decode_answer(status, body)


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (16, "etcdserver: invalid auth token", etcd.EtcdInsufficientPermissions),
        (3, "etcdserver: user name is empty", etcd.EtcdInsufficientPermissions),
        (14, "etcdserver: leader changed", etcd.EtcdRaftInternalError),
        (4, "etcdserver: request timed out", etcd.EtcdRaftInternalError),
        (3, "etcdserver: too many operations in txn request", etcd.EtcdValueError),
        (11, "etcdserver: mvcc: required revision is a future revision", etcd.EtcdException),
    ],
)
def test_grpc_codes_map_to_etcd_exceptions(code, message, expected):
    for body in (
        {"error": message, "code": code, "message": message},
        {"code": code, "message": message, "details": []},
    ):
        with pytest.raises(expected) as info:
            decode_answer(400, json.dumps(body).encode())
        assert type(info.value) is expected


def test_a_patched_error_table_applies_to_v3_errors(monkeypatch):
    class Mine(etcd.EtcdException):
        pass

    monkeypatch.setitem(etcd.EtcdError.error_exceptions, 300, Mine)
    with pytest.raises(Mine):
        decode_answer(503, b'{"code":14,"message":"etcdserver: no leader"}')


def test_a_successful_answer_is_returned_even_with_a_zero_code_or_an_error_field():
    # LeaseGrantResponse has an "error" string field of its own
    body = b'{"header":{"revision":"3"},"ID":"7","TTL":"5","error":""}'
    assert decode_answer(200, body)["ID"] == "7"
    assert decode_answer(200, b'{"code":0,"message":""}') == {"code": 0, "message": ""}


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (404, b"404 page not found\n", "v3 JSON gateway"),
        (405, b"Method Not Allowed", "v3 JSON gateway"),
        (502, b"<html>bad gateway</html>", "HTTP 502"),
        (200, b"[1, 2]", "HTTP 200"),
        (503, b'{"message": "failure to get a peer from the ring-balancer"}', "HTTP 503"),
        (500, b'{"code": 0, "message": ""}', "HTTP 500"),
        (200, b"[" * 100_000 + b"]" * 100_000, "HTTP 200"),
    ],
)
def test_bodies_that_are_not_gateway_json(status, body, match):
    with pytest.raises(etcd.EtcdException, match=match):
        decode_answer(status, body)


def test_stream_lines_of_both_gateway_versions():
    created = b'{"result":{"header":{"revision":"3"},"created":true}}'
    assert decode_stream_line(created)["created"] is True
    v1_error = b'{"error":{"grpc_code":7,"http_code":403,"message":"permission denied"}}'
    v2_error = b'{"error":{"code":7,"message":"permission denied","details":[]}}'
    bare = b'{"code":7,"message":"permission denied"}'
    for line in (v1_error, v2_error, bare):
        with pytest.raises(etcd.EtcdInsufficientPermissions):
            decode_stream_line(line)
    with pytest.raises(etcd.EtcdException, match="stream line"):
        decode_stream_line(b"{not json")


def test_lines_are_cut_at_newlines_whatever_the_chunking():
    stream = (
        b'{"result":{"created":true}}\n\n'
        b'{"result":{"events":[{"kv":{"key":"L2E="}}]}}\n'
        b'{"result":{"canceled":true}}'
    )
    expected = [line for line in stream.split(b"\n") if line]
    for size in (1, 2, 7, 64, len(stream)):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert list(split_lines(chunks)) == expected


def test_layout_maps_paths_to_keys():
    plain = Layout("")
    assert (plain.file("/a/b"), plain.marker("/a/b"), plain.end("/a/b")) == (
        "/a/b",
        "/a/b/",
        "/a/b0",
    )
    assert (plain.marker(""), plain.end("")) == ("/", "0")
    ns = Layout("v2/")
    assert ns.namespace == "/v2"
    assert ns.file("/a") == "/v2/a" and ns.v2_key("/v2/a/") == "/a/"
    with pytest.raises(etcd.EtcdTypeError):
        Layout(b"/x")  # type: ignore[arg-type]


def _kv(key: str, value: str = "", create: int = 1, mod: int = 1) -> dict[str, str]:
    kv = {"key": b64(key), "create_revision": str(create), "mod_revision": str(mod)}
    if value:
        kv["value"] = b64(value)
    return kv


def test_tree_from_flat_keys_markers_and_hidden_keys():
    kvs = [
        _kv("/d/", create=2, mod=2),
        _kv("/d/a", "1", 3, 3),
        _kv("/d/b/c", "2", 5, 6),  # an implicit directory /d/b
        _kv("/d/b-x", "3", 4, 4),  # sorts between /d/b and /d/b/
        _kv("/d/_hidden", "h", 7, 7),
        _kv("/d/e/", create=8, mod=8),  # an empty directory
    ]
    node = dir_node(Layout(), "/d", kvs, recursive=True)
    assert node == {
        "key": "/d",
        "dir": True,
        "modifiedIndex": 2,
        "createdIndex": 2,
        "nodes": [
            {"key": "/d/a", "value": "1", "modifiedIndex": 3, "createdIndex": 3},
            {
                "key": "/d/b",
                "dir": True,
                "modifiedIndex": 6,
                "createdIndex": 5,
                "nodes": [{"key": "/d/b/c", "value": "2", "modifiedIndex": 6, "createdIndex": 5}],
            },
            {"key": "/d/b-x", "value": "3", "modifiedIndex": 4, "createdIndex": 4},
            {"key": "/d/e", "dir": True, "modifiedIndex": 8, "createdIndex": 8},
        ],
    }
    flat = dir_node(Layout(), "/d", kvs, recursive=False)
    assert flat is not None
    assert [n["key"] for n in flat["nodes"]] == ["/d/a", "/d/b", "/d/b-x", "/d/e"]
    assert "nodes" not in flat["nodes"][1]
    assert dir_node(Layout(), "/d", [], recursive=True) is None


def test_a_file_wins_over_a_directory_of_the_same_name():
    kvs = [_kv("/d/x", "file", 2, 2), _kv("/d/x/y", "below", 3, 3)]
    node = dir_node(Layout(), "/d", kvs, recursive=True)
    assert node is not None
    assert node["nodes"] == [
        {"key": "/d/x", "value": "file", "modifiedIndex": 2, "createdIndex": 2}
    ]
