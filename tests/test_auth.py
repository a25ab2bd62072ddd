"""Authentication and ``etcd.auth`` against a real etcd with auth switched on.

The module starts its own server (auth state lives in the data directory and
must never touch the shared one), creates ``root``, switches auth on and
revokes the rights of the ``guest`` role, so anonymous requests are refused.
All of it goes through :mod:`etcd.auth` on a client that may use only public
attributes.

Every log record of the module, at DEBUG level and from every logger
(urllib3's included), and every exception the tests provoke, is checked for
the passwords and their ``Authorization`` tokens.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

import etcd
from etcd import auth
from etcd.testing import EtcdCluster

from .fakes import FakeServer, Reply
from .recipes_support import public_only

ROOT_PASSWORD = "root-Pw-7f3a9c1e"
ALICE_PASSWORD = "alice-пароль-42d1"  # non-ASCII: sent as UTF-8
BOB_PASSWORD = "bob-Pw-0b9e6a55"
BOB_NEW_PASSWORD = "bob-NewPw-c4d2e8f3"
WRONG_PASSWORD = "wrong-Pw-5e5e5e5e"
PASSWORDS = (ROOT_PASSWORD, ALICE_PASSWORD, BOB_PASSWORD, BOB_NEW_PASSWORD, WRONG_PASSWORD)


def _token(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


SECRETS = (
    *PASSWORDS,
    *(
        _token(user, password)
        for user in ("root", "alice", "bob", "nobody")
        for password in PASSWORDS
    ),
)


# --------------------------------------------------------------------------
# Hygiene: what the module logs and raises


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_PROVOKED: list[BaseException] = []


def provoke(expected: type[BaseException], call: Callable[[], object]) -> Any:
    """Run *call*, which must raise *expected*; keep the exception for the hygiene check."""
    with pytest.raises(expected) as info:
        call()
    _PROVOKED.append(info.value)
    return info.value


def _texts_of(exc: BaseException) -> Iterator[str]:
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        payload = getattr(current, "payload", None)
        if payload is not None:
            yield repr(payload)
        for linked in (current.__cause__, current.__context__, getattr(current, "cause", None)):
            if isinstance(linked, BaseException):
                pending.append(linked)


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.fixture(scope="module")
def debug_log() -> Iterator[_Recorder]:
    """Every log record of the module, at DEBUG, from every logger."""
    recorder = _Recorder()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    try:
        yield recorder
    finally:
        root.removeHandler(recorder)
        root.setLevel(old_level)


@pytest.fixture(autouse=True)
def no_secrets_leak(debug_log: _Recorder) -> Iterator[None]:
    yield
    for record in debug_log.records:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        assert not _leaks(text), f"a log record of {record.name} holds a secret: {text!r}"
    for exc in _PROVOKED:
        for text in _texts_of(exc):
            assert not _leaks(text), f"an exception holds a secret: {text!r}"


# --------------------------------------------------------------------------
# The server


class AuthServer:
    def __init__(self, cluster: EtcdCluster) -> None:
        self.cluster = cluster
        self.clients: list[etcd.Client] = []

    def client(self, username: str | None = None, password: str | None = None) -> etcd.Client:
        member = self.cluster.members[0]
        client = etcd.Client(
            host=member.host, port=member.port, username=username, password=password
        )
        self.clients.append(client)
        return client

    def root(self) -> etcd.Client:
        return public_only(self.client("root", ROOT_PASSWORD))

    def close(self) -> None:
        for client in self.clients:
            client.close()


@pytest.fixture(scope="module")
def server(debug_log: _Recorder) -> Iterator[AuthServer]:
    with EtcdCluster(1) as cluster:
        srv = AuthServer(cluster)
        anonymous = public_only(srv.client())
        root_user = auth.EtcdUser(anonymous, "root")
        root_user.password = ROOT_PASSWORD
        root_user.write()
        auth.Auth(anonymous).active = True
        root = srv.root()
        guest = auth.EtcdRole(root, "guest")
        guest.read()
        guest.acls = {}
        guest.write()

        app = auth.EtcdRole(root, "app")
        app.grant("/app/*", "RW")
        app.write()
        alice = auth.EtcdUser(root, "alice")
        alice.password = ALICE_PASSWORD
        alice.roles = {"app"}
        alice.write()
        try:
            yield srv
        finally:
            srv.close()


# --------------------------------------------------------------------------
# Access control through basic auth


def test_a_user_reads_and_writes_below_its_role_only(server):
    alice = server.client("alice", ALICE_PASSWORD)
    alice.write("/app/config", "v1")
    assert alice.read("/app/config").value == "v1"
    assert server.root().read("/app/config").value == "v1"
    provoke(etcd.EtcdInsufficientPermissions, lambda: alice.write("/other/config", "v1"))
    provoke(etcd.EtcdInsufficientPermissions, lambda: alice.read("/other/config"))
    provoke(etcd.EtcdInsufficientPermissions, lambda: alice.read("/", recursive=True))
    alice.delete("/app/config")


def test_wrong_password_unknown_user_and_no_credentials_are_refused(server):
    server.root().write("/app/secret", "42")
    for client in (
        server.client("alice", WRONG_PASSWORD),
        server.client("nobody", WRONG_PASSWORD),
        server.client(),
    ):
        error = provoke(etcd.EtcdInsufficientPermissions, partial(client.read, "/app/secret"))
        assert error.error_code == 110
    server.root().delete("/app/secret")


def test_only_root_administers(server):
    alice = public_only(server.client("alice", ALICE_PASSWORD))
    provoke(etcd.EtcdInsufficientPermissions, lambda: auth.EtcdUser(alice, "root").names)
    provoke(etcd.EtcdInsufficientPermissions, lambda: auth.EtcdUser(alice, "alice").read())
    mallory = auth.EtcdUser(alice, "mallory")
    mallory.password = WRONG_PASSWORD
    provoke(etcd.EtcdInsufficientPermissions, mallory.write)
    provoke(etcd.EtcdInsufficientPermissions, lambda: auth.EtcdRole(alice, "app").delete())
    provoke(etcd.EtcdInsufficientPermissions, lambda: setattr(auth.Auth(alice), "active", False))
    assert auth.Auth(alice).active is True


def test_the_password_can_change_and_applies_to_the_next_request(server):
    client = server.client("alice", WRONG_PASSWORD)
    provoke(etcd.EtcdInsufficientPermissions, lambda: client.read("/app", recursive=True))
    client.password = ALICE_PASSWORD
    client.write("/app/changed", "1")
    client.delete("/app/changed")


# --------------------------------------------------------------------------
# etcd.auth: users and roles


def test_users_and_roles_are_created_granted_revoked_listed_and_deleted(server):
    root = server.root()
    root.write("/reports/r1", "numbers")

    role = auth.EtcdRole(root, "reports")
    role.grant("/reports/*", "R")
    role.write()
    assert "reports" in role.names
    fresh = auth.EtcdRole(root, "reports")
    fresh.read()
    assert fresh.acls == {"/reports/*": "R"}

    bob = auth.EtcdUser(root, "bob")
    bob.password = BOB_PASSWORD
    bob.roles = {"reports"}
    bob.write()
    assert bob.password is None
    assert "bob" in bob.names
    fresh_bob = auth.EtcdUser(root, "bob")
    fresh_bob.read()
    assert fresh_bob.roles == {"reports"}

    as_bob = server.client("bob", BOB_PASSWORD)
    assert as_bob.read("/reports/r1").value == "numbers"
    provoke(etcd.EtcdInsufficientPermissions, lambda: as_bob.write("/reports/r2", "x"))

    role.grant("/reports/*", "w")
    role.write()
    assert role.acls == {"/reports/*": "RW"}
    as_bob.write("/reports/r2", "x")

    role.revoke("/reports/*", "W")
    role.write()
    provoke(etcd.EtcdInsufficientPermissions, lambda: as_bob.write("/reports/r3", "x"))

    bob.password = BOB_NEW_PASSWORD
    bob.write()
    provoke(etcd.EtcdInsufficientPermissions, lambda: as_bob.read("/reports/r1"))
    as_bob.password = BOB_NEW_PASSWORD
    assert as_bob.read("/reports/r1").value == "numbers"

    bob.roles = set()
    bob.write()
    provoke(etcd.EtcdInsufficientPermissions, lambda: as_bob.read("/reports/r1"))

    bob.delete()
    assert "bob" not in bob.names
    provoke(etcd.EtcdKeyNotFound, auth.EtcdUser(root, "bob").read)
    provoke(etcd.EtcdKeyNotFound, bob.delete)
    role.delete()
    assert "reports" not in role.names
    provoke(etcd.EtcdKeyNotFound, auth.EtcdRole(root, "reports").read)
    root.delete("/reports", recursive=True)


def test_a_user_is_granted_and_revoked_roles_one_by_one(server):
    root = server.root()
    for name in ("ro", "extra"):
        role = auth.EtcdRole(root, name)
        role.acls = {f"/{name}/*": "R"}
        role.write()
    carol = auth.EtcdUser(root, "carol")
    carol.password = WRONG_PASSWORD
    carol.write()
    assert carol.roles == set()  # the server answers "roles": null
    carol.roles.add("ro")
    carol.roles.add("extra")
    carol.write()
    assert carol.roles == {"ro", "extra"}
    carol.roles = ["extra"]
    carol.write()
    fresh = auth.EtcdUser(root, "carol")
    fresh.read()
    assert fresh.roles == {"extra"}
    carol.delete()
    for name in ("ro", "extra"):
        auth.EtcdRole(root, name).delete()


def test_writing_a_user_without_a_password_reports_the_server_reason(server):
    nopass = auth.EtcdUser(server.root(), "nopass")
    error = provoke(etcd.EtcdException, nopass.write)
    assert str(error).startswith("Could not write user 'nopass': ")
    assert "empty password" in str(error)


def test_deleting_root_while_auth_is_on_fails_clearly(server):
    root = server.root()
    error = provoke(etcd.EtcdException, auth.EtcdUser(root, "root").delete)
    assert type(error) is etcd.EtcdException
    # The message is python-etcd 0.4.5's; the server's reason is the cause and the payload.
    assert str(error) == "Could not delete user 'root'"
    assert error.payload["message"] == "auth: Cannot delete root user while auth is enabled."
    assert "Cannot delete root user" in str(error.__cause__)
    error = provoke(etcd.EtcdException, auth.EtcdRole(root, "root").delete)
    assert str(error) == "Could not delete role 'root'"
    assert "is root role" in error.payload["message"]
    assert "root" in auth.EtcdUser(root, "root").names
    assert root.read("/").dir


def test_auth_active_switches_authentication_off_and_on(server):
    root = server.root()
    anonymous = server.client()
    switch = auth.Auth(root)
    assert switch.active is True
    provoke(etcd.EtcdInsufficientPermissions, lambda: anonymous.read("/"))
    switch.active = False
    try:
        assert switch.active is False
        assert auth.Auth(public_only(anonymous)).active is False
        assert anonymous.read("/").dir
        switch.active = False  # no change: nothing is sent
    finally:
        switch.active = True
    assert switch.active is True
    provoke(etcd.EtcdInsufficientPermissions, lambda: anonymous.read("/"))


def test_a_fresh_server_has_no_users_and_auth_needs_root(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=1)
    with cluster.client() as plain:
        client = public_only(plain)
        assert auth.EtcdUser(client, "x").names == []  # {"users": null}
        assert auth.EtcdRole(client, "x").names == ["root"]
        assert auth.EtcdUser(client, "x").legacy_api is False
        switch = auth.Auth(client)
        assert switch.active is False
        error = provoke(etcd.EtcdException, lambda: setattr(switch, "active", True))
        assert "root user" in str(error)
        assert switch.active is False


# --------------------------------------------------------------------------
# etcd.auth objects without a server (the client is never asked)


@pytest.fixture
def offline() -> Iterator[etcd.Client]:
    with etcd.Client(host="127.0.0.1", port=1) as client:
        yield client


def test_module_is_reachable_as_documented():
    import etcd.auth as module

    assert module is auth
    assert set(module.__all__) == {"EtcdAuthBase", "EtcdUser", "EtcdRole", "Auth"}
    assert issubclass(auth.EtcdUser, auth.EtcdAuthBase)
    assert issubclass(auth.EtcdRole, auth.EtcdAuthBase)


def test_user_str_repr_and_password_show_no_secret_and_consume_nothing(offline):
    user = auth.EtcdUser(offline, "dave")
    user.password = BOB_PASSWORD
    user.roles = ["b", "a"]
    assert json.loads(str(user)) == {"user": "dave", "password": None, "roles": ["a", "b"]}
    assert BOB_PASSWORD not in repr(user)
    assert user.password is None
    # str() consumed nothing: the first payload still carries the password.
    payloads = user._to_net(None)
    assert payloads == [{"user": "dave", "password": BOB_PASSWORD, "roles": ["a", "b"]}]
    assert user._to_net(None)[0]["password"] is None  # sent once


def test_user_updates_are_password_then_grant_then_revoke(offline):
    before = auth.EtcdUser.new(offline, {"user": "dave", "roles": ["a", "b"]})
    after = auth.EtcdUser(offline, "dave")
    after.password = BOB_PASSWORD
    after.roles = {"b", "c"}
    assert after._to_net(before) == [
        {"user": "dave", "password": BOB_PASSWORD},
        {"user": "dave", "grant": ["c"]},
        {"user": "dave", "revoke": ["a"]},
    ]


def test_role_updates_are_revoke_then_grant(offline):
    before = auth.EtcdRole.new(
        offline,
        b'{"role": "r", "permissions": {"kv": {"read": ["/a/*", "/b"], "write": ["/a/*"]}}}',
    )
    assert before.acls == {"/a/*": "RW", "/b": "R"}
    after = auth.EtcdRole.new(offline, json.dumps({"role": "r", "permissions": {"kv": {}}}))
    after.acls = {"/a/*": "R", "/c": "rw"}
    assert after._to_net(before) == [
        {"role": "r", "revoke": {"kv": {"read": ["/b"], "write": ["/a/*"]}}},
        {"role": "r", "grant": {"kv": {"read": ["/c"], "write": ["/c"]}}},
    ]
    assert json.loads(str(after)) == {"role": "r", "acls": {"/a/*": "R", "/c": "RW"}}
    assert after._to_net(None) == [
        {"role": "r", "permissions": {"kv": {"read": ["/a/*", "/c"], "write": ["/c"]}}}
    ]


def test_null_lists_count_as_empty(offline):
    user = auth.EtcdUser.new(offline, {"user": "eve", "roles": None})
    assert user.roles == set()
    role = auth.EtcdRole.new(offline, {"role": "r", "permissions": {"kv": {"read": None}}})
    assert role.acls == {}
    assert auth.EtcdRole.new(offline, {"role": "r", "permissions": None}).acls == {}


def test_role_objects_need_the_current_api(offline):
    data = {"user": "eve", "roles": [{"role": "r", "permissions": {}}]}
    user = auth.EtcdUser(offline, "eve")
    user._legacy_api = False
    user._from_net(data)
    assert user.roles == {"r"}
    legacy = auth.EtcdUser(offline, "eve")
    legacy._legacy_api = True
    provoke(etcd.EtcdException, lambda: legacy._from_net(data))


def test_bad_input_is_refused(offline):
    role = auth.EtcdRole(offline, "r")
    provoke(etcd.EtcdValueError, lambda: role.grant("/a", "X"))
    provoke(etcd.EtcdValueError, lambda: role.revoke("/a", ""))
    provoke(etcd.EtcdTypeError, lambda: setattr(auth.EtcdUser(offline, "u"), "roles", "admin"))
    provoke(etcd.EtcdException, lambda: auth.EtcdUser.new(offline, {"name": "u"}))
    provoke(etcd.EtcdException, lambda: auth.EtcdUser.new(offline, b"not json"))
    error = provoke(
        etcd.EtcdException,
        lambda: auth.EtcdUser.new(offline, {"username": "u", "password": WRONG_PASSWORD}),
    )
    assert "password" in str(error)  # the field is named, its value is not


# --------------------------------------------------------------------------
# Credentials stay with their host


def test_credentials_are_not_sent_to_another_host_after_a_redirect():
    answer = {"action": "get", "node": {"key": "/a", "value": "1", "modifiedIndex": 1}}
    expected = "Basic " + _token("alice", ALICE_PASSWORD)
    for target_host in ("localhost", "127.0.0.1"):
        with FakeServer(default=Reply.etcd(answer)) as elsewhere:
            location = f"http://{target_host}:{elsewhere.port}/v2/keys/a"
            with (
                FakeServer(Reply(307, headers={"Location": location})) as first,
                etcd.Client(
                    host="127.0.0.1", port=first.port, username="alice", password=ALICE_PASSWORD
                ) as client,
            ):
                assert client.read("/a").value == "1"
            assert first.requests[0].header("Authorization") == expected
            assert len(elsewhere.requests) == 1
            assert elsewhere.requests[0].header("Authorization") is None


def test_credentials_follow_a_redirect_on_the_same_server():
    answer = {"action": "get", "node": {"key": "/a", "value": "1", "modifiedIndex": 1}}
    with FakeServer(default=Reply.etcd(answer)) as fake:
        fake.script(Reply(307, headers={"Location": f"{fake.url}/v2/keys/a?moved=1"}))
        with etcd.Client(
            host="127.0.0.1", port=fake.port, username="alice", password=ALICE_PASSWORD
        ) as client:
            assert client.read("/a").value == "1"
        assert [r.header("Authorization") for r in fake.requests] == [
            "Basic " + _token("alice", ALICE_PASSWORD)
        ] * 2


# --------------------------------------------------------------------------
# The password in reprs, logs and errors


def test_password_is_absent_from_client_repr_and_str(server):
    client = server.client("alice", ALICE_PASSWORD)
    for text in (repr(client), str(client)):
        assert "alice" in text
        assert not _leaks(text)


def test_the_debug_log_was_recorded_and_is_clean(server, debug_log):
    # Provoke a few more refusals, so this test also stands alone.
    provoke(
        etcd.EtcdInsufficientPermissions,
        lambda: server.client("alice", WRONG_PASSWORD).read("/app"),
    )
    provoke(
        etcd.EtcdInsufficientPermissions,
        lambda: auth.EtcdUser(public_only(server.client("alice", ALICE_PASSWORD)), "x").names,
    )
    # The check is not vacuous: urllib3 logged every request at DEBUG.
    assert any(
        r.name.startswith("urllib3") and r.levelno == logging.DEBUG for r in debug_log.records
    )
    assert _PROVOKED
    # no_secrets_leak checks every record and exception after this test.
