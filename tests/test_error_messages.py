"""Errors a person can act on: which member, what happened, what to change.

Connection failures come from real sockets: a port that is bound but not
listening (refused), a name under ``.invalid`` (which never resolves, RFC
6761) and an in-process server that never answers. A server without the v2
API is a real etcd started with ``enable_v2=False``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import urllib3

import etcd

from .fakes import FakeServer, Reply, Stall, refusing_port

#: Texts of urllib3's wrapping that no message may show.
URLLIB3_NOISE = ("Max retries exceeded", "MaxRetryError", "NewConnectionError", "object at 0x")


def assert_plain(message: str) -> None:
    for noise in URLLIB3_NOISE:
        assert noise not in message, message
    assert "Pool(" not in message and "Connection(host=" not in message, message


def connection_error(call, *args, **kwargs) -> etcd.EtcdConnectionFailed:
    with pytest.raises(etcd.EtcdConnectionFailed) as info:
        call(*args, **kwargs)
    error = info.value
    assert_plain(str(error))
    # the urllib3 error stays available, as __cause__ and as 0.4.5's .cause
    assert isinstance(error.__cause__, urllib3.exceptions.HTTPError)
    assert error.cause is error.__cause__
    return error


@pytest.fixture
def legacy_port() -> Iterator[int]:
    """Port 4001 (0.4.5's default) bound without listening, so connects are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", 4001))
        except OSError:
            pytest.skip("port 4001 is in use on this machine")
        yield 4001


def test_a_refused_connection_names_the_member_and_says_refused():
    with refusing_port() as port, etcd.Client(port=port) as client:
        error = connection_error(client.read, "/k")
    assert str(error) == (
        f"Connection to etcd failed due to http://127.0.0.1:{port}: connection refused."
    )
    assert "2379" not in str(error)


def test_nothing_on_the_default_port_suggests_2379(legacy_port):
    with etcd.Client() as client:  # 0.4.5's default port, 4001
        error = connection_error(client.read, "/k")
    message = str(error)
    assert message.startswith(
        "Connection to etcd failed due to http://127.0.0.1:4001: connection refused."
    )
    assert "etcd's standard client port is 2379" in message
    assert "port=2379" in message


def test_the_machines_lookup_of_the_constructor_suggests_2379(legacy_port):
    with pytest.raises(etcd.EtcdException) as info:
        etcd.Client(allow_reconnect=True)
    message = str(info.value)
    # 0.4.5's message first, then what happened
    assert message.startswith(
        "Could not get the list of servers, maybe you provided the wrong host(s) to "
        "connect to? http://127.0.0.1:4001: connection refused."
    )
    assert "etcd's standard client port is 2379" in message
    assert_plain(message)
    assert isinstance(info.value.__cause__, urllib3.exceptions.HTTPError)


def test_a_name_that_does_not_resolve_says_so():
    with etcd.Client(host="etcd.invalid", port=2379) as client:
        error = connection_error(client.write, "/k", "v")
    assert str(error) == (
        "Connection to etcd failed due to http://etcd.invalid:2379: "
        "the name 'etcd.invalid' does not resolve."
    )


def test_a_read_timeout_says_how_long_it_waited():
    with FakeServer(Stall()) as fake, etcd.Client(port=fake.port, read_timeout=1) as client:
        error = connection_error(client.read, "/k")
    assert str(error) == (
        f"Connection to etcd failed due to http://127.0.0.1:{fake.port}: "
        "timed out after 1 s waiting for the answer."
    )


def test_a_write_whose_outcome_is_unknown_says_what_happened():
    with FakeServer(Stall()) as fake, etcd.Client(port=fake.port) as client:
        error = connection_error(client.write, "/k", "v", timeout=1)
    message = str(error)
    assert f"reached http://127.0.0.1:{fake.port}" in message
    assert "(timed out after 1 s waiting for the answer)" in message
    assert "outcome is unknown" in message


def test_a_watch_timeout_says_which_member_and_how_long():
    with (
        FakeServer(Stall()) as fake,
        etcd.Client(port=fake.port) as client,
        pytest.raises(etcd.EtcdWatchTimedOut) as info,
    ):
        client.watch("/k", timeout=1)
    assert str(info.value) == (
        f"Watch timed out: http://127.0.0.1:{fake.port} reported no change within 1 s"
    )
    assert isinstance(info.value.cause, urllib3.exceptions.HTTPError)


def test_failover_lists_every_member_and_what_happened():
    with refusing_port() as first, refusing_port() as second:
        hosts = (("127.0.0.1", first), ("127.0.0.1", second))
        with etcd.Client(host=hosts, allow_reconnect=True, use_proxies=True) as client:
            error = connection_error(client.read, "/k")
    message = str(error)
    assert message.startswith("All etcd members failed: ")
    assert f"http://127.0.0.1:{first}: connection refused" in message
    assert f"http://127.0.0.1:{second}: connection refused" in message


def test_members_and_leader_keep_the_045_message_and_add_what_happened():
    with refusing_port() as port, etcd.Client(port=port) as client:
        with pytest.raises(etcd.EtcdException) as info:
            client.members  # noqa: B018
        message = str(info.value)
        assert message.startswith(
            "Could not get the members list, maybe the cluster has gone away? "
            f"Connection to etcd failed due to http://127.0.0.1:{port}: connection refused."
        )
        assert isinstance(info.value.__cause__, etcd.EtcdConnectionFailed)
        with pytest.raises(etcd.EtcdException) as info:
            client.leader  # noqa: B018
        assert str(info.value).startswith("Cannot get leader data: Connection to etcd failed")
        assert_plain(str(info.value))


def test_other_failures_of_members_keep_exactly_the_045_message():
    with (
        FakeServer(Reply.text("not json")) as fake,
        etcd.Client(port=fake.port) as client,
        pytest.raises(etcd.EtcdException) as info,
    ):
        client.members  # noqa: B018
    assert str(info.value) == "Could not get the members list, maybe the cluster has gone away?"


def test_cluster_information_raises_v2_api_disabled_itself(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=1, enable_v2=False)
    with cluster.client() as client:
        for name in ("members", "leader", "machines"):
            with pytest.raises(etcd.EtcdV2ApiDisabled, match="--enable-v2=true"):
                getattr(client, name)
        # which callers of 0.4.5 caught as the generic error
        with pytest.raises(etcd.EtcdException):
            client.members  # noqa: B018
    with pytest.raises(etcd.EtcdV2ApiDisabled):
        member = cluster.members[0]
        etcd.Client(host=member.host, port=member.port, allow_reconnect=True)
