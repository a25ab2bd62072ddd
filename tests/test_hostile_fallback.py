"""The deadline, the body limit and typed errors when urllib3 sends the request.

The lean path leaves some requests to urllib3: all of them once ``client.http``
is replaced by a pool manager of the caller's (a proxy manager, say), and
the unusual ones with the client's own (here a path urllib3 rewrites). The
client's rules hold there too: with its own pool manager every part of the
exchange counts against one deadline (``timeout + 1 s`` at most); with a
caller's, the body does; a body past ``max_response_size`` is refused
whether or not its length was announced; ``machines`` goes the same way.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import urllib3

import etcd

from .fakes import Chunked, FakeServer, Raw, Reply, Responder, Stall, Trickle, etcd_headers
from .helpers import serving, wait_for
from .test_deadline import DRIPS

TIMEOUT = 1.0
NODE = {"key": "/a", "value": "1", "modifiedIndex": 5, "createdIndex": 5}
#: A path the lean path leaves to urllib3 (which percent-encodes the brackets).
ODD_PATH = "/v2/keys/a[1]"


def _elapsed_error(call: Callable[[], Any]) -> tuple[float, etcd.EtcdException]:
    started = time.monotonic()
    with pytest.raises(etcd.EtcdException) as info:
        call()
    return time.monotonic() - started, info.value


@pytest.mark.parametrize("drip", DRIPS.values(), ids=DRIPS.keys())
def test_the_deadline_holds_when_the_clients_own_pool_sends_through_urllib3(drip):
    with serving(default=drip, read_timeout=TIMEOUT) as (fake, client):
        elapsed, error = _elapsed_error(lambda: client.api_execute(ODD_PATH, client._MGET))
        assert fake.requests[0].target.startswith("/v2/keys/a%5B1%5D")  # urllib3 sent it
    assert elapsed < TIMEOUT + 1, f"the call took {elapsed:.2f} s: {error}"
    assert isinstance(error, etcd.EtcdConnectionFailed)
    assert "timed out" in str(error)


@pytest.mark.parametrize("drip", ["a body at 20 bytes/s", "a chunked body at 20 bytes/s"])
def test_a_dripping_body_is_bounded_with_a_pool_manager_of_the_callers(drip):
    with serving(default=DRIPS[drip], read_timeout=TIMEOUT) as (_fake, client):
        client.http = urllib3.PoolManager()
        elapsed, error = _elapsed_error(lambda: client.read("/a"))
    assert elapsed < TIMEOUT + 1, f"the call took {elapsed:.2f} s: {error}"
    assert isinstance(error, etcd.EtcdConnectionFailed)


def test_a_watch_that_drips_on_the_fallback_path_times_out_with_its_index():
    head = b"HTTP/1.1 200 OK\r\nX-Etcd-Index: 9\r\nTransfer-Encoding: chunked\r\n\r\n"
    drip = Trickle(head, b"1\r\n \r\n", repeat=True)
    with serving(default=drip) as (_fake, client):
        client.http = urllib3.PoolManager()
        elapsed, error = _elapsed_error(lambda: client.watch("/a", timeout=TIMEOUT))
    assert elapsed < TIMEOUT + 1, f"the call took {elapsed:.2f} s: {error}"
    assert isinstance(error, etcd.EtcdWatchTimedOut)
    assert error.etcd_index == 9


BIG = json.dumps({"action": "get", "node": {"key": "/a", "value": "x" * 5000}}).encode()
HUGE = json.dumps({"action": "get", "node": {"key": "/a", "value": "x" * 500_000}}).encode()
UNANNOUNCED: dict[str, Responder] = {
    "chunked": Chunked(200, [HUGE[i : i + 8192] for i in range(0, len(HUGE), 8192)]),
    "to the close": Raw(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + HUGE),
}


@pytest.mark.parametrize("answer", UNANNOUNCED.values(), ids=UNANNOUNCED.keys())
@pytest.mark.parametrize("own", [True, False], ids=["own pool", "callers pool"])
def test_a_body_without_a_length_is_refused_past_the_limit_on_the_fallback_path(answer, own):
    with serving(default=answer, max_response_size=4096) as (fake, client):
        if not own:
            client.http = urllib3.PoolManager()
        with pytest.raises(etcd.EtcdBadResponse) as info:
            client.api_execute(ODD_PATH if own else "/v2/keys/a", client._MGET)
        assert "max_response_size of 4096" in str(info.value)
        # the rest of the body was never read: the connection was closed, not pooled
        assert wait_for(lambda: fake.open_connections == 0)


def test_the_fallback_path_still_reads_a_body_within_the_limit():
    with serving(default=Chunked(200, [BIG[:3000], BIG[3000:]], etcd_headers())) as (_f, client):
        client.http = urllib3.PoolManager()
        assert client.read("/a").value == "x" * 5000
        response = client.api_execute("/v2/keys/a", client._MGET)
        assert isinstance(response, urllib3.HTTPResponse)
        assert response.data == BIG


MACHINES = b"http://127.0.0.1:2379, " + b"http://127.0.0.1:2380, " * 20


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "urllib3"])
def test_machines_refuses_a_body_past_the_limit(lean):
    with serving(default=Reply(200, MACHINES), max_response_size=100) as (_fake, client):
        if not lean:
            client.http = urllib3.PoolManager()
        with pytest.raises(etcd.EtcdBadResponse, match="max_response_size of 100"):
            client.machines  # noqa: B018


def test_machines_gets_a_typed_error_for_an_invalid_redirect_when_urllib3_sends():
    invalid = Reply(307, headers={"Location": "http://[::1/v2/machines"})
    with serving(default=invalid) as (_fake, client):
        client.http = urllib3.PoolManager()
        with pytest.raises(etcd.EtcdBadResponse, match="Invalid IPv6 URL"):
            client.machines  # noqa: B018


def test_machines_is_bounded_by_the_deadline_when_urllib3_sends():
    with serving(default=DRIPS["a body at 20 bytes/s"], read_timeout=TIMEOUT) as (_f, client):
        client.http = urllib3.PoolManager()
        elapsed, error = _elapsed_error(lambda: client.machines)
    assert elapsed < TIMEOUT + 1, f"the call took {elapsed:.2f} s: {error}"


V3_MEMBERS = {
    "header": {"cluster_id": "1", "member_id": "2", "revision": "3", "raft_term": "4"},
    "members": [
        {"ID": str(n), "name": f"m{n}", "clientURLs": [f"http://127.0.0.1:{2379 + n}"]}
        for n in range(20)
    ],
}


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "urllib3"])
def test_v3_machines_refuses_a_body_past_the_limit(lean):
    members = Reply.json(V3_MEMBERS)
    with serving(default=members, api="v3", max_response_size=200) as (fake, client):
        if not lean:
            client.http = urllib3.PoolManager()
        with pytest.raises(etcd.EtcdBadResponse, match="max_response_size of 200"):
            client.machines  # noqa: B018
        assert fake.requests[0].target == "/v3/cluster/member/list"


def test_v3_machines_is_bounded_by_the_deadline():
    drip = DRIPS["headers that never end"]
    with serving(default=drip, api="v3", read_timeout=TIMEOUT) as (_fake, client):
        elapsed, error = _elapsed_error(lambda: client.machines)
    assert elapsed < TIMEOUT + 1, f"the call took {elapsed:.2f} s: {error}"


def test_the_deadline_watchdog_leaves_no_thread_behind():
    # One thread serves every deadline of the requests urllib3 sends; it ends once idle.
    with serving(default=Reply.etcd({"action": "get", "node": NODE})) as (_fake, client):
        client.http = urllib3.PoolManager()
        for _ in range(5):
            assert client.read("/a").value == "1"
        assert sum(t.name == "etcd-deadline" for t in threading.enumerate()) <= 1
    assert wait_for(lambda: all(t.name != "etcd-deadline" for t in threading.enumerate()))


def test_a_deadline_never_shuts_a_connection_back_in_the_pool():
    # A call's redirect drains its first connection back into the pool, where
    # another thread's read takes it; the first call's deadline, passing
    # meanwhile, must leave that connection to the read that now owns it.
    answer = Reply.etcd({"action": "get", "node": NODE})

    def slow(_request: Any) -> Reply:
        time.sleep(1.5)  # the fault: a member slower than the first call's deadline
        return answer

    with FakeServer(default=Stall()) as elsewhere:
        redirect = Reply(307, headers={"Location": elsewhere.url + "/v2/keys/a"})
        with serving(redirect, slow, read_timeout=TIMEOUT) as (fake, client):
            first: list[BaseException] = []

            def redirected() -> None:
                try:
                    client.api_execute(ODD_PATH, client._MGET)
                except BaseException as exc:  # handed to the test
                    first.append(exc)

            thread = threading.Thread(target=redirected)
            thread.start()
            elsewhere.wait_for_requests(1)  # the first connection is back in the pool
            assert client.read("/a", timeout=10).value == "1"
            thread.join()
            assert fake.connections == 1  # the read did reuse the drained connection
    assert len(first) == 1 and isinstance(first[0], etcd.EtcdConnectionFailed)


def test_a_request_goes_on_without_the_deadline_thread_when_none_can_start(monkeypatch, caplog):
    start = threading.Thread.start

    def refuse(thread: threading.Thread) -> None:
        if thread.name == "etcd-deadline":
            raise RuntimeError("can't start new thread")
        start(thread)

    answer = Reply.etcd({"action": "get", "node": NODE})
    with serving(default=answer, read_timeout=0.1) as (fake, client):
        client.http = urllib3.PoolManager()
        monkeypatch.setattr(threading.Thread, "start", refuse)
        assert client.read("/a").value == "1"
        assert "only each socket wait is bounded" in caplog.text
        monkeypatch.undo()
        time.sleep(0.2)  # the failed call's deadline is over: nothing of it may linger
        with etcd.Client(host="127.0.0.1", port=fake.port) as lean:
            assert lean.read("/a").value == "1"  # connects, in the same thread
    drip = DRIPS["a body at 20 bytes/s"]
    with serving(default=drip, read_timeout=TIMEOUT) as (_fake, client):
        client.http = urllib3.PoolManager()
        elapsed, error = _elapsed_error(lambda: client.read("/a"))  # a thread starts again
    assert elapsed < TIMEOUT + 1, f"the call took {elapsed:.2f} s: {error}"
