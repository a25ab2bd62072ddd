"""Range answers decoded by msgspec (the ``speedups`` extra) read exactly as the json module's.

:func:`etcd._v3_codec.decode_range_answer` gives the ``key`` and ``value`` of
each pair already decoded, as bytes; :func:`etcd._v3_codec.unb64` and the
listing code (:func:`etcd._v3_tree.dir_node`) take both forms. Whatever the
body, a listing, a file or an error must come out the same as from
:func:`etcd._v3_codec.decode_answer`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import urllib3
from hypothesis import given, settings
from hypothesis import strategies as st

import etcd
from etcd import _v3_codec
from etcd._v3_codec import (
    Layout,
    decode_answer,
    decode_range_answer,
    int_field,
    responses,
    unb64,
)
from etcd._v3_errors import _kvs
from etcd._v3_tree import dir_node, file_node

from .v3_support import b64, gateway, wipe

msgspec = pytest.importorskip("msgspec", reason="the speedups extra is not installed")

# What a read uses of a pair (decode_range_answer leaves out the rest, such as version).
PAIR_FIELDS = ("key", "value", "create_revision", "mod_revision", "lease")


def pairs(answer: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The pairs of each range of *answer* (one range, or the ranges of a txn), as read."""
    if "responses" in answer:
        return [_kvs(inner) for inner in responses(answer)]
    return [_kvs(answer)]


def reading(answer: dict[str, Any], layout: Layout, path: str) -> Any:
    """What the client makes of *answer*: each pair's fields, the listings and the files."""
    ranges = pairs(answer)
    fields = [
        [(unb64(kv.get("key")), unb64(kv.get("value"))) for kv in kvs]
        + [tuple(int_field(kv, name) for name in PAIR_FIELDS[2:]) for kv in kvs]
        for kvs in ranges
    ]
    listings = [
        (dir_node(layout, path, kvs, recursive=True), dir_node(layout, path, kvs, recursive=False))
        for kvs in ranges
    ]
    files = [[file_node(layout, kv) for kv in kvs] for kvs in ranges]
    return fields, listings, files, _v3_codec.int_field(answer.get("header", {}), "revision")


def outcome(status: int, body: bytes, decode: Any, path: str = "/t") -> tuple[str, Any]:
    try:
        return "read", reading(decode(status, body), Layout(""), path)
    except etcd.EtcdException as exc:
        return "error", (type(exc), str(exc))


def assert_read_alike(status: int, body: bytes, path: str = "/t") -> None:
    assert outcome(status, body, decode_range_answer, path) == outcome(
        status, body, decode_answer, path
    )


def test_the_installed_msgspec_decodes_pairs_to_bytes():
    answer = decode_range_answer(200, b'{"header":{"revision":"3"},"kvs":[{"key":"L2E="}]}')
    assert answer["kvs"] == [{"key": b"/a"}]


def test_answers_of_a_real_server_read_alike(etcd_server, etcd_prefix):
    url = etcd_server.client_urls[0]
    ns = "/pytest-v3" + etcd_prefix
    client = etcd_server.client(api="v3", namespace=ns)
    try:
        client.write("/t/a", "1")
        client.write("/t/ttl", "", ttl=300)
        client.write("/t/d/x", 'naïve ☃ "q" \\')
        client.write("/t/d/deeper/y", "2")
        client.write("/t/e", None, dir=True)
        client.write("/t/_hidden", "h")
        for raw_key, value in (
            (f"{ns}/t/raw".encode() + b"\xff", b"\xfe\x00"),
            (f"{ns}/t/a//b".encode(), b"x"),
        ):
            request = {
                "key": base64.b64encode(raw_key).decode(),
                "value": base64.b64encode(value).decode(),
            }
            gateway(url, "/v3/kv/put", request)
        gateway(url, "/v3/kv/put", {"key": b64(f"{ns}/t/implicit/z"), "value": b64("3")})
        bodies = []
        for key, end in ((f"{ns}/t/", f"{ns}/t0"), (f"{ns}/t/a", None), (f"{ns}/t/ttl", None)):
            request = {"key": b64(key), **({"range_end": b64(end)} if end else {})}
            bodies.append(_post(url, "/v3/kv/range", request))
        txn = {
            "compare": [],
            "success": [
                {"request_range": {"key": b64(f"{ns}/t/d")}},
                {"request_range": {"key": b64(f"{ns}/t/d/"), "range_end": b64(f"{ns}/t/d0")}},
            ],
        }
        bodies.append(_post(url, "/v3/kv/txn", txn))
        for body in bodies:
            assert isinstance(pairs(decode_range_answer(200, body))[-1][0]["key"], bytes)
            for path in (f"{ns}/t", f"{ns}/t/d"):
                assert_read_alike(200, body, path)
    finally:
        client.close()
        wipe(url, ns)


def _post(url: str, endpoint: str, body: dict[str, Any]) -> bytes:
    with urllib3.PoolManager() as pool:
        response = pool.request("POST", url + endpoint, body=json.dumps(body), timeout=10.0)
    assert response.status == 200
    return bytes(response.data)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b'{"header":{"revision":"3"},"kvs":[{"key":"!!!!"}]}'),  # not base64
        (200, b'{"header":{"revision":"3"},"kvs":[{"key":"L2E=","mod_revision":7}]}'),
        (200, b'{"header":{"revision":"3"},"kvs":[{"key":"L2E=","mod_revision":"x"}]}'),
        (200, b'{"header":{"revision":"3"},"kvs":[{"key":"L3Qv/w=="}]}'),  # not UTF-8
        (200, b'{"header":{"revision":"3"},"kvs":[{"key":"L3QvYQ==","value":"/w=="}]}'),
        (200, b'{"header":{"revision":"3"},"kvs":[{"key":"L3QvYQ==","future":"\xff"}]}'),
        (200, b'{"header":{"revision":"3"},"kvs":null}'),
        (200, b'{"kvs":[{"key":"L2E="}]}'),  # no header
        (200, b'{"error":"boom","code":2,"message":"boom"}'),
        (200, b'{"header":{},"code":14,"message":"etcdserver: no leader"}'),
        (400, b'{"error":"illegal base64 data","code":3,"message":"illegal base64 data"}'),
        (503, b'{"message":"no healthy upstream"}'),
        (200, b"not json"),
        (200, b""),
    ],
)
def test_awkward_answers_read_alike(status, body):
    assert_read_alike(status, body)


KEY_PARTS = st.sampled_from([b"a", b"b", b"d", b"_h", b"", "é".encode(), b"\xff", b"sub"])
KEYS = st.lists(KEY_PARTS, min_size=1, max_size=4).map(lambda parts: b"/t/" + b"/".join(parts))


PAIRS = st.fixed_dictionaries(
    {"key": KEYS.map(lambda key: base64.b64encode(key).decode())},
    optional={
        "value": st.binary(max_size=6).map(lambda raw: base64.b64encode(raw).decode())
        | st.sampled_from(["", "!", 5]),
        "create_revision": st.integers(1, 9).map(str) | st.sampled_from(["", "x", 3, None]),
        "mod_revision": st.integers(1, 9).map(str) | st.sampled_from(["0", "-1", 4.5]),
        "version": st.sampled_from(["1", "2"]),
        "lease": st.sampled_from(["0", "7587", 12]),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(PAIRS, max_size=8), st.booleans())
def test_any_range_answer_reads_alike(kvs, as_txn):
    answer: dict[str, Any] = {"header": {"revision": "9"}, "kvs": kvs, "count": str(len(kvs))}
    if as_txn:
        answer = {"header": answer.pop("header"), "responses": [{"response_range": answer}]}
    assert_read_alike(200, json.dumps(sorted_pairs(answer)).encode())


def sorted_pairs(answer: dict[str, Any]) -> dict[str, Any]:
    """*answer* with its pairs in key order, as etcd sends them."""
    for kvs in pairs(answer):
        kvs.sort(key=lambda kv: base64.b64decode(kv["key"]))
    return answer
