"""Awkward keys, values and options against a real etcd.

Every key must reach exactly the key it names (compat §11 a), every value must
come back as the text that was meant, and every mistake of the caller must be
refused with a typed :class:`etcd.EtcdException` before it changes anything.
"""

from __future__ import annotations

import pytest

import etcd

from .fakes import FakeServer, Reply
from .helpers import raised


def leaf_keys(client: etcd.Client, prefix: str) -> set[str]:
    """Every key below *prefix*, at any depth."""
    try:
        listing = client.read(prefix, recursive=True)
    except etcd.EtcdKeyNotFound:
        return set()
    return {node.key for node in listing.leaves if node.key is not None and node.key != prefix}


# --------------------------------------------------------------------------
# Keys


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("x#1", id="hash"),
        pytest.param("x?a=1", id="question-mark"),
        pytest.param("50%", id="percent"),
        pytest.param("%41", id="percent-escape"),
        pytest.param("a%20b", id="percent-20"),
        pytest.param("a b", id="space"),
        pytest.param("a+b", id="plus"),
        pytest.param("x&y=z;w", id="ampersand-semicolon"),
        pytest.param("é", id="e-acute"),
        pytest.param("日本", id="japanese"),
        pytest.param("q\"'<>`{}|\\^", id="quotes-and-brackets"),
        pytest.param("tab\tand\nnewline", id="control-characters"),
    ],
)
def test_awkward_key_round_trips_and_addresses_only_itself(etcd_client, etcd_prefix, name):
    key = f"{etcd_prefix}/{name}"
    written = etcd_client.write(key, f"value of {name}")
    assert written.key == key
    assert written.newKey is True

    read = etcd_client.read(key)
    assert (read.key, read.value) == (key, f"value of {name}")
    assert leaf_keys(etcd_client, etcd_prefix) == {key}

    deleted = etcd_client.delete(key)
    assert deleted.key == key
    assert leaf_keys(etcd_client, etcd_prefix) == set()


def test_hash_does_not_address_the_key_before_it(etcd_client, etcd_prefix):
    etcd_client.write(f"{etcd_prefix}/x", "plain")
    etcd_client.write(f"{etcd_prefix}/x#1", "hashed")
    assert etcd_client.read(f"{etcd_prefix}/x").value == "plain"
    assert etcd_client.read(f"{etcd_prefix}/x#1").value == "hashed"


def test_question_mark_does_not_address_the_key_before_it(etcd_client, etcd_prefix):
    etcd_client.write(f"{etcd_prefix}/x?a=1", "queried")
    with pytest.raises(etcd.EtcdKeyNotFound):
        etcd_client.read(f"{etcd_prefix}/x")
    assert etcd_client.read(f"{etcd_prefix}/x?a=1").value == "queried"


@pytest.mark.parametrize(
    ("literal", "decoded"),
    [("%41", "A"), ("a%20b", "a b"), ("a+b", "a b"), ("a%2Fb", "a/b")],
)
def test_percent_sequences_stay_literal(etcd_client, etcd_prefix, literal, decoded):
    etcd_client.write(f"{etcd_prefix}/{literal}", "literal")
    etcd_client.write(f"{etcd_prefix}/{decoded}", "decoded")
    assert etcd_client.read(f"{etcd_prefix}/{literal}").value == "literal"
    assert etcd_client.read(f"{etcd_prefix}/{decoded}").value == "decoded"
    assert leaf_keys(etcd_client, etcd_prefix) == {
        f"{etcd_prefix}/{literal}",
        f"{etcd_prefix}/{decoded}",
    }


def test_double_slash_collapses_to_one_key(etcd_client, etcd_prefix):
    # Unnormalised, the server would answer 301 and not apply the PUT.
    written = etcd_client.write(f"{etcd_prefix}//a//b", "v")
    assert (written.action, written.key) == ("set", f"{etcd_prefix}/a/b")
    assert etcd_client.read(f"{etcd_prefix}/a/b").value == "v"
    assert etcd_client.read(f"{etcd_prefix}/a///b").value == "v"
    assert leaf_keys(etcd_client, etcd_prefix) == {f"{etcd_prefix}/a/b"}


def test_trailing_slash_names_the_same_key(etcd_client, etcd_prefix):
    written = etcd_client.write(f"{etcd_prefix}/t/", "v")
    # the server keeps keys without a trailing slash
    assert written.key == f"{etcd_prefix}/t"
    assert etcd_client.read(f"{etcd_prefix}/t").value == "v"
    assert etcd_client.read(f"{etcd_prefix}/t/").value == "v"
    assert leaf_keys(etcd_client, etcd_prefix) == {f"{etcd_prefix}/t"}


@pytest.mark.parametrize("key", ["/", "//", "///", ""])
def test_a_key_of_only_slashes_is_the_root(etcd_client, key):
    root = etcd_client.read(key)
    assert (root.key, root.dir) == (None, True)
    exc = raised(etcd.EtcdRootReadOnly, etcd_client.write, key, "x")
    assert exc.error_code == 107
    raised(etcd.EtcdRootReadOnly, etcd_client.delete, key)


def test_only_slashes_after_a_prefix_name_the_prefix(etcd_client, etcd_prefix):
    etcd_client.write(f"{etcd_prefix}/child", "v")
    assert etcd_client.read(f"{etcd_prefix}///").key == etcd_prefix
    # the prefix is a directory, so a value cannot be written to it
    raised(etcd.EtcdNotFile, etcd_client.write, f"{etcd_prefix}///", "x")
    assert leaf_keys(etcd_client, etcd_prefix) == {f"{etcd_prefix}/child"}


@pytest.mark.parametrize(
    "key", [5, None, b"/bytes", ("a",)], ids=["int", "None", "bytes", "tuple"]
)
@pytest.mark.parametrize("method", ["read", "write", "delete"])
def test_non_str_key_is_a_type_error(etcd_client, etcd_prefix, method, key):
    args = (key, "v") if method == "write" else (key,)
    exc = raised(etcd.EtcdTypeError, getattr(etcd_client, method), *args)
    assert isinstance(exc, TypeError)
    assert "str" in str(exc)
    assert leaf_keys(etcd_client, etcd_prefix) == set()


# --------------------------------------------------------------------------
# Values


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        pytest.param(5, "5", id="int"),
        pytest.param(1.5, "1.5", id="float"),
        pytest.param(True, "True", id="bool-as-0.4.5"),
        pytest.param("héllo 日本 ☃", "héllo 日本 ☃", id="non-ascii"),
        pytest.param("a\nb\t\"c\" 'd' &e=f+g%20", "a\nb\t\"c\" 'd' &e=f+g%20", id="specials"),
        pytest.param("", "", id="empty-string"),
        pytest.param("caf\xe9".encode(), "café", id="utf8-bytes"),
        pytest.param(bytearray(b"plain"), "plain", id="bytearray"),
    ],
)
def test_value_is_stored_as_text(etcd_client, etcd_prefix, value, stored):
    key = f"{etcd_prefix}/v"
    assert etcd_client.write(key, value).value == stored
    assert etcd_client.read(key).value == stored


def test_value_none_stores_an_empty_string(etcd_client, etcd_prefix):
    """``write(key, None)`` sends no value, and etcd stores ``""``."""
    key = f"{etcd_prefix}/v"
    assert etcd_client.write(key, None).value == ""
    read = etcd_client.read(key)
    assert (read.value, read.dir) == ("", False)


def test_one_mebibyte_value_round_trips_exactly(etcd_client, etcd_prefix):
    block = "".join(chr(c) for c in range(32, 127)) + "\n&=+%"
    value = (block * ((1 << 20) // len(block) + 1))[: 1 << 20]
    assert len(value.encode()) == 1 << 20
    key = f"{etcd_prefix}/big"
    etcd_client.write(key, value)
    assert etcd_client.read(key).value == value


@pytest.mark.parametrize("value", [b"\xff\xfe", bytearray(b"ok\x80")], ids=["bytes", "bytearray"])
def test_undecodable_bytes_are_refused_and_nothing_is_written(etcd_client, etcd_prefix, value):
    key = f"{etcd_prefix}/v"
    exc = raised(etcd.EtcdValueError, etcd_client.write, key, value)
    assert "base64" in str(exc)
    with pytest.raises(etcd.EtcdKeyNotFound):
        etcd_client.read(key)


def test_directory_with_a_value_is_refused_before_io(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/d"
    exc = raised(etcd.EtcdException, etcd_client.write, key, "v", dir=True)
    assert str(exc) == "Cannot create a directory with a value"
    with pytest.raises(etcd.EtcdKeyNotFound):
        etcd_client.read(key)


# --------------------------------------------------------------------------
# Misspelled options: never a blind write


def test_misspelled_prev_value_writes_nothing(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/k"
    etcd_client.write(key, "old")
    exc = raised(etcd.EtcdTypeError, etcd_client.write, key, "new", prevvalue="x")
    assert isinstance(exc, TypeError)
    assert "prevvalue" in str(exc)
    assert "did you mean 'prevValue'" in str(exc)
    assert etcd_client.read(key).value == "old"


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        ({"prevexist": False}, "prevExist"),
        ({"previndex": 1}, "prevIndex"),
        ({"ttl": 5, "refersh": True}, "refresh"),
    ],
)
def test_other_misspelled_write_options_write_nothing(etcd_client, etcd_prefix, options, hint):
    key = f"{etcd_prefix}/k"
    etcd_client.write(key, "old")
    exc = raised(etcd.EtcdTypeError, etcd_client.write, key, "new", **options)
    assert f"did you mean {hint!r}" in str(exc)
    read = etcd_client.read(key)
    assert (read.value, read.ttl) == ("old", None)


def test_delete_with_prev_exist_deletes_nothing(etcd_client, etcd_prefix):
    # v2 DELETE has no prevExist condition: accepting it would delete blindly.
    key = f"{etcd_prefix}/k"
    etcd_client.write(key, "old")
    exc = raised(etcd.EtcdTypeError, etcd_client.delete, key, prevExist=True)
    assert isinstance(exc, TypeError)
    assert "prevExist" in str(exc)
    assert etcd_client.read(key).value == "old"


def test_delete_with_misspelled_condition_deletes_nothing(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/k"
    etcd_client.write(key, "old")
    exc = raised(etcd.EtcdTypeError, etcd_client.delete, key, prevvalue="other")
    assert "did you mean 'prevValue'" in str(exc)
    assert etcd_client.read(key).value == "old"


def test_misspelled_read_option_is_refused(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/k"
    etcd_client.write(key, "v")
    exc = raised(etcd.EtcdTypeError, etcd_client.read, key, recursve=True)
    assert isinstance(exc, TypeError)
    assert "did you mean 'recursive'" in str(exc)


@pytest.mark.parametrize(
    ("method", "name", "meant"),
    [
        ("write", "prev_value", "prevValue"),
        ("write", "PrevExist", "prevExist"),
        ("write", "prev-index", "prevIndex"),
        ("write", "prevIndx", "prevIndex"),
        ("write", "refesh", "refresh"),
        ("delete", "prev_index", "prevIndex"),
        ("delete", "prevValeu", "prevValue"),
        ("read", "Recursive", "recursive"),
        ("read", "wait_index", "waitIndex"),
        ("read", "sortd", "sorted"),
        ("read", "quorom", "quorum"),
    ],
)
def test_near_misses_of_option_names_are_refused(etcd_client, etcd_prefix, method, name, meant):
    key = f"{etcd_prefix}/k"
    etcd_client.write(key, "old")
    args = (key, "new") if method == "write" else (key,)
    exc = raised(etcd.EtcdTypeError, getattr(etcd_client, method), *args, **{name: "x"})
    assert f"{name!r} (did you mean {meant!r}?)" in str(exc)
    assert etcd_client.read(key).value == "old"


def test_a_lock_library_write_with_recursive_works_as_in_045(etcd_client, etcd_prefix):
    # A published lock library passes recursive=True to write; 0.4.5 ignored it.
    key = f"{etcd_prefix}/lock"
    created = etcd_client.write(key, "token", prevExist=False, recursive=True, ttl=30)
    assert (created.value, created.ttl, created.newKey) == ("token", 30, True)
    with pytest.raises(etcd.EtcdAlreadyExist):  # the condition was sent
        etcd_client.write(key, "other", prevExist=False, recursive=True, ttl=30)
    assert etcd_client.read(key).value == "token"


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("write", {"sorted": True, "wait": True}),  # exact options of read
        ("write", {"dir_mode": 0o755, "owner": "me"}),  # unrelated extras
        ("read", {"dir": True, "ttl": 5, "prevValue": "zz"}),  # options of write
        ("delete", {"ttl": 5, "sorted": True, "refresh": True}),
    ],
)
def test_other_unknown_keywords_are_ignored_as_in_045(etcd_client, etcd_prefix, method, extra):
    key = f"{etcd_prefix}/k"
    etcd_client.write(key, "old")
    args = (key, "new") if method == "write" else (key,)
    result = getattr(etcd_client, method)(*args, **extra)
    assert result.key == key
    if method == "write":
        assert (etcd_client.read(key).value, etcd_client.read(key).ttl) == ("new", None)
    elif method == "delete":
        assert key not in etcd_client


# --------------------------------------------------------------------------
# Server-side validation


@pytest.mark.parametrize(
    ("value", "options", "code", "words"),
    [
        pytest.param("v", {"ttl": "abc"}, 202, "TTL", id="ttl-not-a-number"),
        pytest.param("v", {"prevIndex": "abc"}, 203, "index", id="prev-index-not-a-number"),
        pytest.param("v", {"prevValue": ""}, 201, "PrevValue", id="empty-prev-value"),
        pytest.param(
            "v", {"ttl": 5, "refresh": True, "prevExist": True}, 211, "refresh", id="refresh-value"
        ),
        pytest.param(None, {"refresh": True, "prevExist": True}, 212, "TTL", id="refresh-no-ttl"),
        pytest.param("v", {"prevExist": "maybe"}, 209, "Invalid field", id="prev-exist-maybe"),
    ],
)
def test_server_validation_errors_are_value_errors(
    etcd_client, etcd_prefix, value, options, code, words
):
    key = f"{etcd_prefix}/k"
    etcd_client.write(key, "old")
    exc = raised(etcd.EtcdValueError, etcd_client.write, key, value, **options)
    assert exc.payload["errorCode"] == code
    assert exc.error_code == code
    assert exc.payload["status"] == 400
    assert words in str(exc)
    read = etcd_client.read(key)
    assert (read.value, read.ttl) == ("old", None)


def test_invalid_read_fields_are_value_errors(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/k"
    etcd_client.write(key, "old")
    for options, code in (
        ({"recursive": "maybe"}, 209),
        ({"waitIndex": "abc", "wait": True}, 203),
    ):
        exc = raised(etcd.EtcdValueError, etcd_client.read, key, **options)
        assert exc.error_code == code


def test_delete_with_a_non_numeric_prev_index_is_a_value_error(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/k"
    etcd_client.write(key, "old")
    exc = raised(etcd.EtcdValueError, etcd_client.delete, key, prevIndex="abc")
    assert exc.error_code == 203
    assert etcd_client.read(key).value == "old"


# --------------------------------------------------------------------------
# Constructor


@pytest.mark.parametrize(
    ("kwargs", "expected", "words"),
    [
        pytest.param({"host": ["a"]}, etcd.EtcdTypeError, "host", id="host-list"),
        pytest.param({"port": "2379"}, etcd.EtcdTypeError, "port", id="port-str"),
        pytest.param({"port": 0}, etcd.EtcdValueError, "port", id="port-zero"),
        pytest.param({"protocol": "ftp"}, etcd.EtcdValueError, "protocol", id="protocol-ftp"),
        pytest.param({"read_timeout": -1}, etcd.EtcdValueError, "read_timeout", id="timeout"),
    ],
)
def test_bad_constructor_input_is_refused(kwargs, expected, words):
    exc = raised(expected, etcd.Client, **kwargs)
    assert words in str(exc)


def machines_answer(fake: FakeServer) -> Reply:
    return Reply.text(fake.url)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"port": "2379"}, id="port-str"),
        pytest.param({"protocol": "ftp"}, id="protocol-ftp"),
        pytest.param({"read_timeout": -1}, id="timeout"),
        pytest.param({"per_host_pool_size": 0}, id="pool-size"),
    ],
)
def test_bad_constructor_input_is_refused_before_any_io(kwargs):
    # With allow_reconnect, a valid constructor asks its host for the members.
    with FakeServer() as fake:
        fake.default = machines_answer(fake)
        hosts = (("127.0.0.1", fake.port),)
        with pytest.raises(etcd.EtcdException):
            etcd.Client(host=hosts, allow_reconnect=True, **kwargs)
        assert fake.connections == 0
        assert fake.requests == []

        with etcd.Client(host=hosts, allow_reconnect=True):
            pass
        assert [r.path for r in fake.requests] == ["/v2/machines"]


@pytest.mark.parametrize(
    ("host", "advice"),
    [
        ("http://127.0.0.1:2379", "Use host='127.0.0.1', port=2379, protocol='http'."),
        ("https://etcd.example.com", "Use host='etcd.example.com', port=4001, protocol='https'."),
        ("127.0.0.1:2379", "Use host='127.0.0.1', port=2379."),
        ("[::1]:2379", "Use host='::1', port=2379."),
        ("etcd.example.com/v2", ""),
        ("etcd.example.com:\u00b2", "Use host='etcd.example.com', port=4001."),  # not a port
        ("", ""),
    ],
)
def test_a_host_given_as_a_url_or_host_port_is_refused_with_the_accepted_forms(host, advice):
    with pytest.raises(etcd.EtcdTypeError) as info:
        etcd.Client(host=host)
    message = str(info.value)
    assert "host must be a host name or an IP address" in message
    assert "port=" in message and "(host, port) pairs" in message
    assert message.endswith(advice)
    # python-etcd 0.4.5 took such a host and failed each request with EtcdConnectionFailed
    assert isinstance(info.value, etcd.EtcdConnectionFailed)


def test_a_host_port_string_in_a_tuple_is_refused():
    with pytest.raises(etcd.EtcdTypeError, match=r"Use the pair \('a', 2379\)"):
        etcd.Client(host=(("a:2379", 4001), ("b", 2379)), allow_reconnect=True)


@pytest.mark.parametrize(
    ("host", "base"),
    [
        ("127.0.0.1", "http://127.0.0.1:2379"),
        ("localhost", "http://localhost:2379"),
        ("etcd-1.example.com", "http://etcd-1.example.com:2379"),
        ("::1", "http://[::1]:2379"),
        ("[::1]", "http://[::1]:2379"),
        ("fe80::1", "http://[fe80::1]:2379"),
    ],
)
def test_the_host_forms_of_045_keep_working(host, base):
    with etcd.Client(host=host, port=2379) as client:
        assert client.base_uri == base


def test_a_tuple_of_hosts_keeps_working(etcd_server):
    member = etcd_server.members[0]
    hosts = ((member.host, member.port), ("localhost", member.port))
    with etcd.Client(host=hosts, allow_reconnect=True, use_proxies=True) as client:
        assert client.base_uri == f"http://{member.host}:{member.port}"
        assert client.read("/").dir


# --------------------------------------------------------------------------
# update() and TTLs


@pytest.mark.parametrize(
    "obj", ["/k", None, {"key": "/k", "value": "v"}], ids=["str", "None", "dict"]
)
def test_update_of_anything_but_a_result_is_a_type_error(etcd_client, etcd_prefix, obj):
    key = f"{etcd_prefix}/k"
    etcd_client.write(key, "old")
    with pytest.raises(etcd.EtcdTypeError, match="update\\(\\) takes an EtcdResult") as info:
        etcd_client.update(obj)
    assert isinstance(info.value, AttributeError)  # what python-etcd 0.4.5 raised
    assert etcd_client.read(key).value == "old"


def test_update_of_a_result_still_works(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/k"
    etcd_client.write(key, "old")
    result = etcd_client.read(key)
    result.value = "new"
    assert etcd_client.update(result).value == "new"


@pytest.mark.parametrize(
    "ttl", [-5, 1.5, 5.0, -0.5, True, "-5", "1.5"], ids=lambda ttl: f"{type(ttl).__name__}{ttl}"
)
def test_a_negative_or_fractional_ttl_is_a_value_error_naming_it(etcd_client, etcd_prefix, ttl):
    key = f"{etcd_prefix}/k"
    for call in (
        lambda: etcd_client.write(key, "v", ttl=ttl),
        lambda: etcd_client.set(key, "v", ttl),
        lambda: etcd_client.refresh(key, ttl),
    ):
        # EtcdValueError is also what 0.4.5 raised, from the server's error 202
        exc = raised(etcd.EtcdValueError, call)
        assert f"not {ttl!r}" in str(exc) or f"negative {ttl!r}" in str(exc)
        assert "is not a number" not in str(exc)
    assert key not in etcd_client


@pytest.mark.parametrize("ttl", [0, 30, "30"], ids=["zero", "int", "digits"])
def test_whole_ttls_are_sent(etcd_client, etcd_prefix, ttl):
    key = f"{etcd_prefix}/k"
    result = etcd_client.write(key, "v", ttl=ttl)
    assert result.value == "v"
    if ttl:
        assert 0 < etcd_client.read(key).ttl <= 30


# --------------------------------------------------------------------------
# Keys mean what they say (issue 13 item 5)


@pytest.mark.parametrize("segment", [".", ".."])
@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c, k: c.write(k, "v"), id="write"),
        pytest.param(lambda c, k: c.write(k, "v", append=True), id="append"),
        pytest.param(lambda c, k: c.read(k, recursive=True), id="read"),
        pytest.param(lambda c, k: c.delete(k, recursive=True), id="delete"),
        pytest.param(lambda c, k: c.pop(k, recursive=True), id="pop"),
        pytest.param(lambda c, k: c.refresh(k, 30), id="refresh"),
        pytest.param(lambda c, k: c.test_and_set(k, "v", "old"), id="test-and-set"),
        pytest.param(lambda c, k: c.watch(k, timeout=1), id="watch"),
        pytest.param(lambda c, k: next(c.eternal_watch(k)), id="eternal-watch"),
        pytest.param(lambda c, k: k in c, id="contains"),
    ],
)
def test_a_dot_segment_is_refused_before_any_request(etcd_client, etcd_prefix, segment, call):
    # etcd cleans paths: /p/t/x/.. is /p/t, so this would reach the parent
    etcd_client.write(f"{etcd_prefix}/t/keep", "v")
    key = f"{etcd_prefix}/t/x/{segment}"
    exc = raised(etcd.EtcdValueError, call, etcd_client, key)
    assert f"{segment!r} segment" in str(exc)
    assert isinstance(exc, ValueError)
    assert leaf_keys(etcd_client, etcd_prefix) == {f"{etcd_prefix}/t/keep"}
    assert etcd_client.read(f"{etcd_prefix}/t/keep").value == "v"


@pytest.mark.parametrize("name", ["a.b", ".hidden", "..x", "x..", "...", "a/.b/c"])
def test_dots_inside_a_segment_are_ordinary_keys(etcd_client, etcd_prefix, name):
    key = f"{etcd_prefix}/{name}"
    assert etcd_client.write(key, "v").key == key
    assert etcd_client.read(key).value == "v"
    assert leaf_keys(etcd_client, etcd_prefix) == {key}


def test_contains_is_false_below_a_file(etcd_client, etcd_prefix):
    etcd_client.write(f"{etcd_prefix}/a", "x")
    with pytest.raises(etcd.EtcdNotDir):  # what the server answers, still raised by read
        etcd_client.read(f"{etcd_prefix}/a/b")
    assert f"{etcd_prefix}/a/b" not in etcd_client
    assert f"{etcd_prefix}/a/b/c" not in etcd_client
    assert f"{etcd_prefix}/a" in etcd_client


@pytest.mark.parametrize(
    ("call", "what"),
    [
        pytest.param(lambda c, p: c.write(f"{p}/s", "\ud800"), "value", id="value"),
        pytest.param(lambda c, p: c.write(f"{p}/s", "ok \udcff"), "value", id="value-low"),
        pytest.param(lambda c, p: c.write(f"{p}/\ud800", "v"), "key", id="key-write"),
        pytest.param(lambda c, p: c.read(f"{p}/\ud800"), "key", id="key-read"),
        pytest.param(lambda c, p: c.delete(f"{p}/\ud800"), "key", id="key-delete"),
        pytest.param(lambda c, p: c.test_and_set(f"{p}/s", "v", "\ud800"), "text", id="prev"),
        pytest.param(lambda c, p: c.delete(f"{p}/s", prevValue="\ud800"), "text", id="del-prev"),
    ],
)
def test_a_lone_surrogate_is_a_value_error(etcd_client, etcd_prefix, call, what):
    etcd_client.write(f"{etcd_prefix}/s", "old")
    exc = raised(etcd.EtcdValueError, call, etcd_client, etcd_prefix)
    assert f"The {what} " in str(exc)
    assert "lone surrogate" in str(exc)
    assert etcd_client.read(f"{etcd_prefix}/s").value == "old"
    assert leaf_keys(etcd_client, etcd_prefix) == {f"{etcd_prefix}/s"}


def test_pop_without_a_previous_node_says_so():
    # A real etcd always sends prevNode on a DELETE; a proxy or another server may not.
    answer = Reply.etcd({"action": "delete", "node": {"key": "/a", "modifiedIndex": 7}})
    with (
        FakeServer(answer) as fake,
        etcd.Client(port=fake.port) as client,
        pytest.raises(etcd.EtcdException) as info,
    ):
        client.pop("/a")
    assert isinstance(info.value, AttributeError)  # what python-etcd 0.4.5 raised
    assert "sent no previous node" in str(info.value)
    assert "'/a'" in str(info.value)


def test_pop_returns_the_previous_node(etcd_client, etcd_prefix):
    etcd_client.write(f"{etcd_prefix}/a", "old")
    popped = etcd_client.pop(f"{etcd_prefix}/a")
    assert (popped.key, popped.value, popped.action) == (f"{etcd_prefix}/a", "old", None)
