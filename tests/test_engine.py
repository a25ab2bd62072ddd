"""The request engine: one failover path, the locked endpoint state, Backoff, the protocol seam."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import urllib3

import etcd
from etcd._endpoints import Endpoints
from etcd._engine import UNSET, Backoff, KeyCall, Request, send

from .helpers import call_in_thread

A, B, C = "http://a:1", "http://b:2", "http://c:3"


# --- the endpoint state ---------------------------------------------------


def test_fail_over_takes_the_last_untried_member_and_keeps_the_failed_one():
    endpoints = Endpoints((A, B, C), (B, C))
    assert endpoints.fail_over({A: OSError()}) == (A, C)
    assert endpoints.snapshot() == (C, (B, A))


def test_fail_over_after_another_thread_moved_on_keeps_its_choice():
    endpoints = Endpoints((A, B, C), (B, C))
    endpoints.fail_over({A: OSError()})  # the other thread
    assert endpoints.fail_over({A: OSError()}) == (None, C)
    assert endpoints.base == C


def test_fail_over_reseeds_then_gives_up():
    endpoints = Endpoints((A, B), ())
    assert endpoints.fail_over({A: OSError()}) == (A, B)
    with pytest.raises(LookupError):
        endpoints.fail_over({A: OSError(), B: OSError()})


def test_a_failed_reseed_keeps_the_learned_members():
    endpoints = Endpoints((A,), ())
    endpoints.learn([A, B, C])
    with pytest.raises(LookupError):
        endpoints.fail_over({A: OSError(), B: OSError(), C: OSError()})
    # the seeds offered no other member: the members learned from the cluster stay known
    assert endpoints.snapshot() == (A, (B, C))


def test_learning_a_member_list_never_moves_the_current_member():
    endpoints = Endpoints((A, B, C), (B, C))
    endpoints.fail_over({A: OSError()})
    endpoints.learn([A, B, C])
    assert endpoints.snapshot() == (C, (A, B))
    endpoints.learn([])  # an empty answer teaches nothing
    assert endpoints.snapshot() == (C, (A, B))


def test_lists_handed_out_are_never_changed_afterwards():
    endpoints = Endpoints((A, B, C), (B, C))
    others = endpoints.others
    endpoints.fail_over({A: OSError()})
    endpoints.step()
    endpoints.learn([A])
    assert others == [B, C]


# --- Backoff -------------------------------------------------------------


def test_backoff_is_an_immutable_value_that_grows_to_its_maximum():
    backoff = Backoff(first=0.1, maximum=0.5)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert backoff.delay(0) == 0.0
    delays = backoff.delays()
    assert [next(delays) for _ in range(3)] == [0.1, 0.2, 0.4]
    with pytest.raises(AttributeError):
        backoff.first = 1.0  # type: ignore[misc]


# --- the protocol seam ---------------------------------------------------


class Recording:
    """A protocol that notes each call and hands it to the v2 one."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[KeyCall] = []

    def execute(self, client: etcd.Client, call: KeyCall) -> etcd.EtcdResult:
        self.calls.append(call)
        result: etcd.EtcdResult = self.inner.execute(client, call)
        return result


def test_key_space_methods_describe_each_call_once(etcd_client, etcd_prefix):
    protocol = Recording(etcd_client._key_protocol)
    etcd_client._key_protocol = protocol
    etcd_client.write(f"{etcd_prefix}//a", "1", ttl=30, prevExist=False, idempotent=True)
    etcd_client.read(f"{etcd_prefix}/a", recursive=True, sorted=None)
    etcd_client.delete(f"{etcd_prefix}/a", prevValue="1", timeout=5)
    write, read, delete = protocol.calls
    assert (write.op, write.method, write.key, write.value, write.ttl) == (
        "write",
        "PUT",
        f"{etcd_prefix}/a",
        "1",
        30,
    )
    assert dict(write.options) == {"prevExist": False}
    assert write.idempotent and write.timeout is UNSET
    assert (read.op, read.method, dict(read.options), read.timeout) == (
        "read",
        "GET",
        {"recursive": True},
        None,
    )
    assert (delete.method, dict(delete.options), delete.timeout, delete.idempotent) == (
        "DELETE",
        {"prevValue": "1"},
        5,
        False,
    )
    with pytest.raises(AttributeError):
        write.key = "/other"  # type: ignore[misc]


# --- clones --------------------------------------------------------------


def test_a_clone_tells_a_failed_connect_from_a_lost_answer(etcd_server):
    """https to a plain-http port fails in the TLS handshake: nothing was sent, so
    the error must not claim that the write's outcome is unknown."""
    member = etcd_server.members[0]
    client = etcd.Client(host=member.host, port=member.port, protocol="https")
    with client, client.clone() as twin:
        for each in (client, twin):
            with pytest.raises(etcd.EtcdConnectionFailed) as info:
                each.write("/engine-clone", "v")
            assert "outcome is unknown" not in str(info.value)
            assert str(info.value).startswith("Connection to etcd failed")


# --- the member-list refresh race -----------------------------------------


@pytest.mark.slow
def test_a_member_list_refresh_does_not_undo_another_threads_failover(etcd_cluster_factory):
    """Thread 1 fails over from a to b and asks b for the member list; while that
    question is out, b dies and thread 2 fails over to c. Thread 1's question
    then fails, and that must leave the client on c, not put b back."""
    cluster = etcd_cluster_factory(size=3)
    a, b, c = cluster.members
    asking = threading.Event()
    release = threading.Event()
    chosen_by_first: list[str] = []

    class AsksTheMemberItWasCalledFor(etcd.Client):
        hold_next = False

        @property
        def machines(self) -> list[str]:
            if not self.hold_next:
                return super().machines
            self.hold_next = False
            member = self._base_uri
            asking.set()
            assert release.wait(30)
            response = self.http.request("GET", member + "/v2/machines", retries=False)
            return [url.strip() for url in response.data.decode().split(",")]

        def _next_server(self, cause: BaseException | None = None, **kw: Any) -> str:
            chosen = super()._next_server(cause, **kw)
            if threading.current_thread() is not threading.main_thread():
                chosen_by_first.append(chosen)
            return chosen

    hosts = tuple((m.host, m.port) for m in (a, b, c))
    client = AsksTheMemberItWasCalledFor(host=hosts, allow_reconnect=True, read_timeout=5)
    with client:
        client._machines_cache = [c.client_url, b.client_url]  # so that a fails over to b
        a.kill()
        client.hold_next = True
        first, outcome = call_in_thread(client.read, "/")
        assert asking.wait(30)
        assert client.base_uri == b.client_url
        b.kill()
        assert client.read("/").dir  # thread 2: fails over from b, ends on c
        assert client.base_uri == c.client_url
        release.set()
        first.join(30)
        assert outcome["result"].dir, outcome
        # The failed question left the member thread 2 chose; b was never put back.
        assert chosen_by_first == [c.client_url]
        assert client.base_uri == c.client_url
        assert b.client_url in client._machines_cache


def test_a_replaced_http_sees_the_refresh_questions(etcd_server):
    """The refresh after a failover goes through the overridable http pool."""
    member = etcd_server.members[0]
    seen: list[str] = []

    class Pool(urllib3.PoolManager):
        def request(self, method: str, url: str, *args: Any, **kw: Any) -> Any:
            seen.append(url)
            return super().request(method, url, *args, **kw)

    client = etcd.Client(host=(("127.0.0.1", 1), (member.host, member.port)), allow_reconnect=True)
    client.http = Pool(**client.http.connection_pool_kw)
    client._base_uri = "http://127.0.0.1:1"
    client._machines_cache = [member.client_url]
    assert client.read("/").dir
    assert client.base_uri == member.client_url
    assert member.client_url + "/v2/machines" in seen


def test_a_raw_request_returns_the_answer_whatever_its_status(etcd_server):
    """The seam a protocol that reads errors from the body (v3) sends through."""
    member = etcd_server.members[0]
    with etcd.Client(host=member.host, port=member.port) as client:
        response = send(client, Request("GET", "/v2/keys/engine-raw-missing", raw=True))
        assert response.status == 404
        with pytest.raises(etcd.EtcdKeyNotFound):
            send(client, Request("GET", "/v2/keys/engine-raw-missing"))
