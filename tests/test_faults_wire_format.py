"""What goes on the wire: methods, paths, query strings, bodies and auth headers.

The faults come from the fake server in tests/fakes.py.
"""

from __future__ import annotations

import base64
import re

import pytest

from .fakes import (
    Reply,
)
from .faults_support import GET_A, NODE, SET_A, serving


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
