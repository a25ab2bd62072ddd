"""Answers of the wrong shape, from a misbehaving server: a typed error that says what was wrong.

A server or proxy that sends JSON whose types are not etcd's (an index as a
string or NaN, a node that is a list, children that are an object, a key that
is a number, JSON nested deeper than Python can decode) must give the caller
an :class:`etcd.EtcdException` naming the field, on every call, never a
``TypeError``, ``AttributeError``, ``ValueError`` or ``RecursionError``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

import etcd
from etcd._result import decode_v2_answer

from .fakes import FakeServer, Reply, Request
from .helpers import raised

PREFIX = "Unable to decode server response: the answer is not the JSON etcd sends: "
LEAF = {"key": "/a", "value": "1", "modifiedIndex": 5, "createdIndex": 5}


def answer(node: Any, action: Any = "get", **extra: Any) -> dict[str, Any]:
    return {"action": action, "node": node, **extra}


def listing(*children: Any) -> dict[str, Any]:
    return answer({"key": "/d", "dir": True, "nodes": list(children)})


# (body, what the message must say)
WRONG_TYPES = [
    pytest.param(
        answer({**LEAF, "modifiedIndex": "12"}),
        "modifiedIndex of the node '/a' is a string ('12'), not an integer",
        id="modifiedIndex-string",
    ),
    pytest.param(
        answer({**LEAF, "modifiedIndex": float("nan")}),
        "modifiedIndex of the node '/a' is NaN, not an integer",
        id="modifiedIndex-NaN",
    ),
    pytest.param(
        answer({**LEAF, "createdIndex": 2.5}),
        "createdIndex of the node '/a' is a number (2.5), not an integer",
        id="createdIndex-float",
    ),
    pytest.param(answer([LEAF]), "node is an array, not an object", id="node-list"),
    pytest.param(
        answer({"key": "/d", "dir": True, "nodes": {"a": LEAF}}),
        "nodes of the node '/d' is an object, not an array",
        id="nodes-dict",
    ),
    pytest.param(
        answer({**LEAF, "key": 7}), "key of node is an integer (7), not a string", id="key-number"
    ),
    pytest.param(
        listing({**LEAF, "key": 7}),
        "key of a child node is an integer (7), not a string",
        id="child-key-number",
    ),
    pytest.param(
        listing({"key": "/d/s", "dir": True, "nodes": [{**LEAF, "ttl": "9"}]}),
        "ttl of the node '/a' is a string ('9'), not an integer",
        id="grandchild-ttl-string",
    ),
    pytest.param(
        listing({**LEAF, "value": ["x"]}),
        "value of the node '/a' is an array, not a string",
        id="child-value-list",
    ),
    pytest.param(
        answer({**LEAF, "dir": "false"}),
        "dir of the node '/a' is a string ('false'), not true or false",
        id="dir-string",
    ),
    pytest.param(
        answer(LEAF, prevNode={**LEAF, "modifiedIndex": None, "createdIndex": "4"}),
        "createdIndex of the node '/a' is a string ('4'), not an integer",
        id="prevNode-index-string",
    ),
    pytest.param(listing(None), "a child node is null, not an object", id="child-null"),
    pytest.param(answer(LEAF, action=3), "action is an integer (3), not a string", id="action"),
    pytest.param([LEAF], "it is an array, not an object", id="answer-list"),
    pytest.param({"action": "get"}, "it has no node", id="no-node"),
]


def _body(payload: Any) -> bytes:
    return json.dumps(payload).encode()  # NaN is written as NaN, as a broken server might


@pytest.mark.parametrize(("payload", "message"), WRONG_TYPES)
def test_decoding_names_the_field_and_what_it_held(payload, message):
    exc = raised(etcd.EtcdException, decode_v2_answer, _body(payload))
    assert str(exc) == PREFIX + message


def _call(name: str, client: etcd.Client) -> Any:
    if name == "read":
        return client.read("/a")
    if name == "recursive read":
        return list(client.read("/a", recursive=True).leaves)
    if name == "write":
        return client.write("/a", "1")
    if name == "append":
        return client.write("/a", "1", append=True)
    if name == "compare-and-swap":
        return client.write("/a", "2", prevValue="1")
    if name == "delete":
        return client.delete("/a")
    if name == "pop":
        return client.pop("/a")
    if name == "watch":
        return client.watch("/a", timeout=5)
    if name == "eternal_watch":
        return next(client.eternal_watch("/a"))
    if name == "watcher":
        with client.watcher("/a") as watcher:
            return next(watcher)
    raise AssertionError(name)


CALLS = [
    "read",
    "recursive read",
    "write",
    "append",
    "compare-and-swap",
    "delete",
    "pop",
    "watch",
    "eternal_watch",
    "watcher",
]


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(("payload", "message"), WRONG_TYPES)
def test_every_call_raises_a_typed_error(call, payload, message):
    with (
        FakeServer(default=Reply.etcd(payload)) as fake,
        etcd.Client(port=fake.port) as client,
    ):
        exc = raised(etcd.EtcdException, _call, call, client)
    assert str(exc) == PREFIX + message
    assert exc.__cause__ is None  # our own finding, not a leaked error


def test_json_nested_deeper_than_python_decodes():
    depth = 100_000
    body = b'{"action":"get","node":' + b"[" * depth + b"]" * depth + b"}"
    with (
        FakeServer(default=Reply(200, body, {"Content-Type": "application/json"})) as fake,
        etcd.Client(port=fake.port) as client,
    ):
        exc = raised(etcd.EtcdException, client.read, "/a")
    assert str(exc) == "Server response was not valid JSON: it is nested too deeply to decode"


def test_a_lock_whose_key_comes_back_as_a_number_raises_a_typed_error():
    # 0.4.5 and earlier versions of this client leaked AttributeError here.
    def respond(request: Request) -> Reply:
        if request.method == "POST":
            return Reply.etcd(answer({**LEAF, "key": 41}, "create"), 201)
        return Reply.etcd(listing(), index=9)

    with FakeServer(default=respond) as fake, etcd.Client(port=fake.port) as client:
        exc = raised(etcd.EtcdException, etcd.Lock(client, "n").acquire, lock_ttl=10)
    assert str(exc).startswith(PREFIX + "key of node is an integer (41)")


def test_a_lock_queue_with_a_number_for_a_key_raises_a_typed_error():
    created = {"key": "/_locks/n/00000000000000000041", "value": "u", "createdIndex": 41}
    created["modifiedIndex"] = 41

    def respond(request: Request) -> Reply:
        if request.method == "POST":
            return Reply.etcd(answer(created, "create"), 201)
        if request.method == "DELETE":
            return Reply.etcd(answer(created, "delete"))
        return Reply.etcd(listing({**LEAF, "key": 40}, created), index=41)

    with FakeServer(default=respond) as fake, etcd.Client(port=fake.port) as client:
        exc = raised(etcd.EtcdException, etcd.Lock(client, "n").acquire, lock_ttl=10)
    assert str(exc) == PREFIX + "key of a child node is an integer (40), not a string"


# --------------------------------------------------------------------------
# What a real server sends still decodes, and walks as before


REAL_LISTING: dict[str, Any] = {
    "action": "get",
    "node": {
        "key": "/d",
        "dir": True,
        "nodes": [
            {"key": "/d/a", "value": "1", "modifiedIndex": 5, "createdIndex": 5},
            {
                "key": "/d/t",
                "value": "",
                "expiration": "2026-11-26T20:00:00.5Z",
                "ttl": 9,
                "modifiedIndex": 7,
                "createdIndex": 7,
            },
            {
                "key": "/d/s",
                "dir": True,
                "nodes": [
                    {"key": "/d/s/x", "value": "2", "modifiedIndex": 6, "createdIndex": 6},
                    {"key": "/d/s/y", "value": "3", "modifiedIndex": 8, "createdIndex": 8},
                ],
                "modifiedIndex": 6,
                "createdIndex": 6,
            },
            {"key": "/d/e", "dir": True, "modifiedIndex": 9, "createdIndex": 9},
            {"key": "/d/u", "value": "4", "future": [1], "modifiedIndex": 10, "createdIndex": 10},
            {"key": "/d/n", "value": None, "modifiedIndex": 11, "createdIndex": 11},
        ],
        "modifiedIndex": 5,
        "createdIndex": 5,
    },
}


def _walk(result: etcd.EtcdResult) -> list[dict[str, Any]]:
    return [
        {name: getattr(node, name) for name in etcd.EtcdResult._node_props}
        for node in result.get_subtree()
    ]


def test_a_decoded_answer_walks_exactly_as_a_hand_built_one():
    decoded = etcd.EtcdResult(**decode_v2_answer(json.dumps(REAL_LISTING).encode()))
    by_hand = etcd.EtcdResult(**copy.deepcopy(REAL_LISTING))
    assert _walk(decoded) == _walk(by_hand)
    assert [n.key for n in decoded.leaves] == [n.key for n in by_hand.leaves]
    subdir = next(n for n in decoded.get_subtree() if n.key == "/d/s")
    assert [n.key for n in subdir.leaves] == ["/d/s/x", "/d/s/y"]
    assert not hasattr(next(n for n in decoded.leaves if n.key == "/d/u"), "future")


def test_a_leaf_edited_with_another_type_does_not_break_a_later_walk():
    # The types are checked once, when decoded; what the caller does later is theirs.
    decoded = etcd.EtcdResult(**decode_v2_answer(json.dumps(REAL_LISTING).encode()))
    keys = [leaf.key for leaf in decoded.leaves]
    for leaf in decoded.leaves:
        leaf.value = 42  # type: ignore[assignment]
        leaf.modifiedIndex = "edited"  # type: ignore[assignment]
    walked: list[Any] = list(decoded.leaves)  # a plain leaf shares its state with its node
    assert [leaf.key for leaf in walked] == keys
    assert walked[0].value == 42 and walked[0].modifiedIndex == "edited"


def test_results_built_by_hand_are_not_checked():
    # compat §10.1: users' test doubles build results with whatever they like.
    result = etcd.EtcdResult("get", {"key": "/a", "value": 5, "modifiedIndex": "7"})
    assert (result.value, result.modifiedIndex) == (5, "7")  # type: ignore[comparison-overlap]
