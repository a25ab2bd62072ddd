"""Authentication over the v3 gateway: one token per user, renewed when it expires."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
import urllib3

import etcd

from .helpers import wait_for
from .v3_support import b64, gateway

_pool = urllib3.PoolManager(retries=False)


def _with_token(url: str, endpoint: str, body: Mapping[str, object], token: str) -> int | None:
    """The gRPC code of a raw request made with *token* (None when it succeeded)."""
    response = _pool.request(
        "POST",
        url + endpoint,
        body=json.dumps(body),
        headers={"Content-Type": "application/json", "Authorization": token},
        timeout=10.0,
    )
    code = json.loads(response.data).get("code")
    return int(code) if code else None


@pytest.fixture
def secured(etcd_cluster_factory):
    """A server without v2, auth on: root, and alice who may use the tree /app only."""
    cluster = etcd_cluster_factory(size=1, enable_v2=False, extra_args=["--auth-token-ttl=2"])
    url = cluster.client_urls[0]
    gateway(url, "/v3/auth/user/add", {"name": "root", "password": "rootpw"})
    gateway(url, "/v3/auth/user/grant", {"user": "root", "role": "root"})
    gateway(url, "/v3/auth/role/add", {"name": "app"})
    # from /app itself: writes below /app check that no file /app is in the way
    permission = {"permType": "READWRITE", "key": b64("/app"), "range_end": b64("/app0")}
    gateway(url, "/v3/auth/role/grant", {"name": "app", "perm": permission})
    gateway(url, "/v3/auth/user/add", {"name": "alice", "password": "secret"})
    gateway(url, "/v3/auth/user/grant", {"user": "alice", "role": "app"})
    gateway(url, "/v3/auth/enable", {})
    return cluster


def test_a_user_works_with_a_token_within_its_rights(secured):
    alice = secured.client(api="v3", username="alice", password="secret")
    try:
        alice.write("/app/x", "1")
        assert alice.read("/app", recursive=True).leaves.__next__().value == "1"
        with pytest.raises(etcd.EtcdInsufficientPermissions):
            alice.write("/other", "1")
        with pytest.raises(etcd.EtcdInsufficientPermissions):
            alice.watch("/other", timeout=5)
        assert "secret" not in repr(alice)
    finally:
        alice.close()


def test_missing_or_wrong_credentials_are_refused(secured):
    for kwargs in ({}, {"username": "alice", "password": "wrong"}):
        client = secured.client(api="v3", **kwargs)
        try:
            with pytest.raises(etcd.EtcdInsufficientPermissions):
                client.read("/app/x")
        finally:
            client.close()


def test_an_expired_token_is_renewed_transparently(secured):
    url = secured.client_urls[0]
    alice = secured.client(api="v3", username="alice", password="secret")
    try:
        written = alice.write("/app/x", "1")
        token = alice._get_headers()["authorization"]
        probe = {"key": b64("/app/x")}
        # the server drops a simple token after --auth-token-ttl seconds of idleness
        assert wait_for(
            lambda: _with_token(url, "/v3/kv/range", probe, token) is not None, 15, 2.5
        )
        # a recursive watch opens its stream first: the stream itself renews the token
        event = alice.watch("/app", index=written.modifiedIndex, recursive=True, timeout=10)
        assert event.value == "1"
        assert alice.read("/app/x").value == "1"
        assert alice._get_headers()["authorization"] != token
    finally:
        alice.close()


def test_new_credentials_get_a_new_token_and_a_clone_keeps_its_own(secured):
    alice = secured.client(api="v3", username="alice", password="secret")
    twin = alice.clone()
    try:
        alice.write("/app/x", "1")
        assert twin._get_headers() == alice._get_headers()  # same user: no second login
        alice.username, alice.password = "root", "rootpw"
        alice.write("/other", "root may")  # not with alice's token
        alice.password = "wrong"
        with pytest.raises(etcd.EtcdInsufficientPermissions):
            alice.read("/other")  # not with root's token either
        # the clone kept its user, and a clone given other credentials has its own token
        with pytest.raises(etcd.EtcdInsufficientPermissions):
            twin.read("/other")
        assert twin.read("/app/x").value == "1"
        twin.username, twin.password = "root", "rootpw"
        assert twin.read("/other").value == "root may"
        alice.username, alice.password = "alice", "secret"
        assert alice.read("/app/x").value == "1"
        with pytest.raises(etcd.EtcdInsufficientPermissions):
            alice.read("/other")
        assert twin._get_headers() != alice._get_headers()
    finally:
        alice.close()
        twin.close()


def test_etcd_auth_manages_users_roles_and_the_switch_over_v3(etcd_cluster_factory):
    from etcd import auth

    cluster = etcd_cluster_factory(size=1, enable_v2=False)
    admin = cluster.client(api="v3")
    try:
        assert auth.Auth(admin).active is False
        root = auth.EtcdUser(admin, "root")
        root.password = "rootpw"
        root.roles = {"root"}
        root.write()
        role = auth.EtcdRole(admin, "app")
        role.grant("/app/*", "RW")
        role.grant("/shared/*", "R")
        role.write()
        fresh = auth.EtcdRole(admin, "app")
        fresh.read()
        assert fresh.acls == {"/app/*": "RW", "/shared/*": "R"}
        alice = auth.EtcdUser(admin, "alice")
        alice.password = "secret"
        alice.roles = {"app"}
        alice.write()
        assert sorted(auth.EtcdUser(admin, "x").names) == ["alice", "root"]
        assert "app" in auth.EtcdRole(admin, "x").names  # v3 makes "root" at enable
        with pytest.raises(etcd.EtcdException, match="guest"):
            auth.EtcdRole(admin, "guest").read()
        with pytest.raises(etcd.EtcdKeyNotFound):
            auth.EtcdUser(admin, "nobody").read()

        auth.Auth(admin).active = True
        as_root = cluster.client(api="v3", username="root", password="rootpw")
        as_alice = cluster.client(api="v3", username="alice", password="secret")
        try:
            assert auth.Auth(as_root).active is True
            as_alice.write("/app/x", "1")
            as_root.write("/shared/s", "2")
            assert as_alice.read("/shared/s").value == "2"
            with pytest.raises(etcd.EtcdInsufficientPermissions):
                as_alice.write("/shared/s", "3")  # read only
            fresh.revoke("/shared/*", "R")
            fresh.client = as_root
            fresh.write()
            with pytest.raises(etcd.EtcdInsufficientPermissions):
                as_alice.read("/shared/s")
            alice_again = auth.EtcdUser(as_root, "alice")
            alice_again.read()
            assert alice_again.roles == {"app"}
            alice_again.roles = set()
            alice_again.write()
            with pytest.raises(etcd.EtcdInsufficientPermissions):
                as_alice.read("/app/x")
            auth.EtcdUser(as_root, "alice").delete()
            auth.Auth(as_root).active = False
            assert auth.Auth(admin).active is False
        finally:
            as_root.close()
            as_alice.close()
    finally:
        admin.close()


@pytest.mark.parametrize(
    ("path", "key_range"),
    [
        ("/app/*", ("/app", "/app0")),
        ("/app*", ("/app", "/apq")),
        ("/*", ("/", "0")),
        ("/app", ("/app", None)),
    ],
)
def test_v2_permission_paths_map_to_v3_ranges_and_back(path, key_range):
    from etcd._v3_authadmin import path_of, range_of

    assert range_of(path) == key_range
    assert path_of(*key_range) == path
