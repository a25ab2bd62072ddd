"""The two decoders of keys-API answers agree: msgspec's (the ``speedups`` extra) and json's.

:func:`etcd._result.decode_v2_answer` decodes with msgspec when it is
installed and hands whatever msgspec refuses to
:func:`etcd._result._decode_with_json`. For every body, real or hostile, the
caller must get the same answer or the same error either way; the only
difference allowed is that fields etcd does not send are dropped from the raw
dicts (an :class:`etcd.EtcdResult` leaves them out in both cases); an answer
whose ``prevNode`` would be left empty by that goes to json, so that it still
counts as a previous node.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import etcd
from etcd import _result

msgspec = pytest.importorskip("msgspec", reason="the speedups extra is not installed")

Decoder = Callable[[bytes], dict[str, Any]]


def outcome(decode: Decoder, body: bytes) -> tuple[str, Any]:
    """What a caller gets from *decode*: the answer, or the typed error's text."""
    try:
        return "answer", decode(body)
    except etcd.EtcdException as exc:
        return "error", str(exc)


def walk(answer: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every node of the answer's result, as a tuple of its attributes, in walk order."""
    result = etcd.EtcdResult(**answer)
    props = etcd.EtcdResult._node_props
    nodes = [tuple(getattr(node, name) for name in props) for node in result.get_subtree()]
    prev = getattr(result, "_prev_node", None)
    if prev is not None:
        nodes += [tuple(getattr(prev, name) for name in props)]
    return nodes


NODE_FIELDS = _result._FIELD_TYPES.keys() | {"nodes"}


def known(node: Any, fields: set[str] | Any = NODE_FIELDS) -> Any:
    """*node* without the fields etcd does not send, at every level."""
    if not isinstance(node, dict):
        return node
    kept = {name: value for name, value in node.items() if name in fields}
    for name in ("node", "prevNode"):
        if name in kept:
            kept[name] = known(kept[name])
    if isinstance(kept.get("nodes"), list):
        kept["nodes"] = [known(child) for child in kept["nodes"]]
    return kept


def assert_same_outcome(body: bytes, *, unknown_fields: bool = False) -> None:
    """Both decoders give *body* the same answer or error, and the same results.

    With *unknown_fields*, the raw answers are compared without the fields
    etcd does not send, which msgspec drops and json keeps; the results built
    from them must be the same all the same.
    """
    fast = outcome(_result.decode_v2_answer, body)
    plain = outcome(_result._decode_with_json, body)
    if fast[0] == plain[0] == "answer":
        assert walk(fast[1]) == walk(plain[1])
        if unknown_fields:
            top = {"action", "node", "prevNode"}
            fast, plain = ("answer", known(fast[1], top)), ("answer", known(plain[1], top))
    assert fast == plain


def test_the_installed_msgspec_is_used_and_checks_types():
    # Without this, a schema msgspec refused would quietly leave every call on the slow path.
    assert _result._FAST_DECODE is not None
    with pytest.raises(msgspec.ValidationError, match=r"\$\.node\.ttl"):
        _result._FAST_DECODE(b'{"action":"get","node":{"key":"/a","ttl":"5"}}')


def test_the_schema_declares_the_types_the_json_checks_accept():
    hints = typing.get_type_hints(_result._NodeSchema)
    assert hints.keys() == _result._FIELD_TYPES.keys() | {"nodes"}
    assert typing.get_args(hints["nodes"]) == (list[_result._NodeSchema], type(None))
    for name, allowed in _result._FIELD_TYPES.items():
        assert set(typing.get_args(hints[name]) or (hints[name],)) == set(allowed), name


def test_answers_of_a_real_server_decode_alike(etcd_client, etcd_prefix):
    client = etcd_client
    client.write(f"{etcd_prefix}/a", "1")
    client.write(f"{etcd_prefix}/t", "", ttl=300)
    client.write(f"{etcd_prefix}/s/x", 'naïve ☃ \x00 "quoted" \\')
    client.write(f"{etcd_prefix}/s/deeper/y", "2")
    client.write(f"{etcd_prefix}/e", None, dir=True)
    client.write(f"{etcd_prefix}/a", "3", prevValue="1")
    keys = f"{client.base_uri}/v2/keys{etcd_prefix}"
    bodies = [
        client.http.request("GET", keys + path).data
        for path in ("?recursive=true", "?recursive=true&sorted=true", "", "/a", "/t", "/s")
    ]
    bodies.append(client.http.request("PUT", keys + "/a", fields={"value": "4"}).data)  # prevNode
    assert _result._FAST_DECODE is not None
    for body in bodies:
        answer = _result.decode_v2_answer(body)
        # msgspec's own: its keys are the schema's interned names (json's are not), which
        # keeps a leaf's attribute reads on CPython's fast path.
        assert all(name is sys.intern(name) for name in answer["node"]), body
        assert_same_outcome(body)
    listing = _result.decode_v2_answer(bodies[0])["node"]["nodes"]
    subdir = next(node for node in listing if node["key"].endswith("/s"))
    assert type(subdir["nodes"]) is not _result._Leaves  # it holds a directory
    assert any(node["key"].endswith("/x") for node in subdir["nodes"])  # non-ASCII value
    deeper = next(node for node in subdir["nodes"] if node["key"].endswith("/deeper"))
    assert type(deeper["nodes"]) is _result._Leaves


def test_a_listing_of_leaves_walks_alike_and_shares_state_with_its_nodes():
    leaves = [
        {"key": f"/d/k{i}", "value": str(i), "modifiedIndex": i, "createdIndex": i}
        for i in range(5)
    ]
    body = json.dumps({"action": "get", "node": {"key": "/d", "dir": True, "nodes": leaves}})
    answer = _result.decode_v2_answer(body.encode())
    assert type(answer["node"]["nodes"]) is _result._Leaves
    result = etcd.EtcdResult(**answer)
    first = next(result.leaves)
    first.value = "edited"
    assert next(result.leaves).value == "edited"
    assert [leaf.key for leaf in result.leaves] == [leaf["key"] for leaf in leaves]


def test_fields_etcd_does_not_send_are_dropped_from_raw_dicts_only():
    node = {"key": "/d", "dir": True, "nodes": [{"key": "/d/u", "value": "4", "future": [1]}]}
    body = json.dumps({"action": "get", "node": node, "other": 1}).encode()
    fast, plain = _result.decode_v2_answer(body), _result._decode_with_json(body)
    assert fast["node"]["nodes"] == [{"key": "/d/u", "value": "4"}]
    assert plain["node"]["nodes"][0]["future"] == [1]
    assert walk(fast) == walk(plain)


def test_a_previous_node_of_unknown_fields_only_still_counts_as_there():
    # msgspec would leave {} (no previous node at all); the json module decides.
    body = b'{"action":"delete","node":{"key":"/a"},"prevNode":{"future":1}}'
    result = etcd.EtcdResult(**_result.decode_v2_answer(body))
    assert result._prev_node.key is None
    assert_same_outcome(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"action":"get","node":{"key":"\\ud800","value":"\\udfff x"}}',  # lone surrogates
        b'\xef\xbb\xbf{"action":"get","node":{"key":"/a"}}',  # a byte-order mark
        '{"action":"get","node":{"key":"/é"}}'.encode("utf-16"),
        b'{"action":"get","node":{"key":"/a","value":"\xff"}}',  # not UTF-8
        b'{"action":"get","node":{"key":"/a","future":"\xff"}}',  # nor here, where msgspec skips
        '{"action":"get","node":{"key":"/a"}}',  # text, from a test double
        '{"action":"get","node":{"key":"/\u00e9"}}',
        b'{"action":"get","node":{"key":"/a","ttl":5.0}}',
        b'{"action":"get","node":{"key":"/a","ttl":1e3}}',
        b'{"action":"get","node":{"key":"/a","ttl":true}}',
        b'{"action":"get","node":{"key":"/a","modifiedIndex":NaN}}',
        b'{"action":"get","node":{"key":"/a","modifiedIndex":18446744073709551616}}',
        b'{"action":"get","node":{"key":"/a","key":7}}',  # the last of two wins
        b'{"action":"get","node":{"key":"/a"}} trailing',
        b'{"action":"get","node":{"key":"/a","nodes":[null]}}',
        b'{"action":"get"}',
        b'{"action":"get","node":null}',
        b'{"action":"get","node":{},"prevNode":{"dir":null}}',
        b'{"action":"get","node":' + b'{"nodes":[' * 3000 + b"]}" * 3000 + b"}",
        b"",
        b"[]",
    ],
)
def test_awkward_bodies_get_the_same_answer_or_error(body):
    assert_same_outcome(body)


# Any JSON value, to put where etcd would send something else.
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)


def field_strategy(allowed: tuple[type, ...]) -> st.SearchStrategy[Any]:
    """Values of a field: mostly of the types etcd sends (*allowed*), now and then any other."""
    right: st.SearchStrategy[Any]
    if allowed == (bool,):
        right = st.booleans()
    elif str in allowed:
        right = st.one_of(st.text(max_size=8), st.none())
    else:
        right = st.one_of(st.integers(), st.none())
    return st.one_of(right, right, right, ANY_JSON)


def node_strategy() -> st.SearchStrategy[dict[str, Any]]:
    """Nodes with any of etcd's fields, children included."""
    fields = {name: field_strategy(allowed) for name, allowed in _result._FIELD_TYPES.items()}
    return st.deferred(
        lambda: st.fixed_dictionaries(
            {},
            optional={
                **fields,
                "nodes": st.lists(NODES, max_size=4) | st.none() | ANY_JSON,
            },
        )
    )


NODES = node_strategy()
ANSWERS = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["get", "set", "delete"]) | ANY_JSON,
        "node": NODES | ANY_JSON,
        "prevNode": NODES | st.none() | ANY_JSON,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANSWERS)
def test_any_answer_gets_the_same_outcome_from_both_decoders(answer):
    assert_same_outcome(json.dumps(answer).encode(), unknown_fields=True)


@settings(max_examples=200, deadline=None)
@given(ANSWERS, st.data())
def test_a_damaged_body_gets_the_same_outcome_from_both_decoders(answer, data):
    body = json.dumps(answer).encode()
    at = data.draw(st.integers(0, len(body)))
    cut = data.draw(st.integers(0, 3))
    junk = data.draw(st.binary(max_size=3))
    assert_same_outcome(body[:at] + junk + body[at + cut :], unknown_fields=True)


CHECK_JSON_DECODES = (
    "from etcd import _result\n"
    "assert _result._FAST_DECODE is None\n"
    'answer = _result.decode_v2_answer(b\'{"action":"get","node":{"key":"/a"}}\')\n'
    "print(answer['node']['key'])\n"
)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )


def test_without_msgspec_the_json_module_decodes():
    done = run_python("import sys; sys.modules['msgspec'] = None\n" + CHECK_JSON_DECODES)
    assert (done.returncode, done.stdout, done.stderr) == (0, "/a\n", "")


def test_a_broken_msgspec_leaves_the_json_module_to_decode(tmp_path):
    (tmp_path / "msgspec").mkdir()
    (tmp_path / "msgspec" / "__init__.py").write_text("raise RuntimeError('a broken build')\n")
    done = run_python(CHECK_JSON_DECODES, PYTHONPATH=str(tmp_path))
    assert (done.returncode, done.stdout) == (0, "/a\n")
    assert "msgspec cannot decode etcd's answers (RuntimeError('a broken build'))" in done.stderr
