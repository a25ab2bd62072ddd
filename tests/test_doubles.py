"""Real users' code and test doubles (compat §10.2).

Projects built on python-etcd 0.4.5 test their own code with doubles of this
client, and their suites must keep passing. Here mocking *is* the behaviour
under test, so this is the one file that uses :mod:`unittest.mock`: each
double is built exactly as those suites build it.

* a ``mock.create_autospec(urllib3.response.HTTPResponse)()`` whose
  ``.status``, ``.data`` and ``getheader.return_value`` are set (it has no
  ``.headers``), returned from a mocked ``client.api_execute``;
* the same response returned from a mocked ``client.http.request`` (and
  ``request_encode_body`` for PUT and POST);
* a hand-written response with only ``.status`` and ``.data``;
* ``etcd.Client`` patched with ``autospec=True``, which checks signatures.

The bodies are copied from a real etcd 3.5's answers.
"""

from __future__ import annotations

import inspect
import json
import logging
import uuid
from typing import Any
from unittest import mock

import pytest
import urllib3

import etcd

CLUSTER_ID = "1639d0dd41fdeabd"
MEMBER_ID = "304295ed3ff31466"

SET: dict[str, Any] = {
    "action": "set",
    "node": {
        "key": "/app/k",
        "value": "v1",
        "expiration": "2026-11-30T10:29:15.4452674Z",
        "ttl": 30,
        "modifiedIndex": 4,
        "createdIndex": 4,
    },
}
GET: dict[str, Any] = {**SET, "action": "get"}
CAS: dict[str, Any] = {
    "action": "compareAndSwap",
    "node": {"key": "/app/k", "value": "v2", "modifiedIndex": 5, "createdIndex": 4},
    "prevNode": SET["node"],
}
DELETE: dict[str, Any] = {
    "action": "delete",
    "node": {"key": "/app/k", "modifiedIndex": 7, "createdIndex": 4},
    "prevNode": {"key": "/app/k", "value": "v2", "modifiedIndex": 5, "createdIndex": 4},
}
REFRESH: dict[str, Any] = {
    "action": "update",
    "node": {
        "key": "/app/w",
        "value": "x",
        "expiration": "2026-11-30T10:29:15.453777243Z",
        "ttl": 30,
        "modifiedIndex": 9,
        "createdIndex": 8,
    },
    "prevNode": {"key": "/app/w", "value": "x", "modifiedIndex": 8, "createdIndex": 8},
}
WATCH: dict[str, Any] = {
    "action": "set",
    "node": {"key": "/app/w", "value": "x", "modifiedIndex": 8, "createdIndex": 8},
}
LISTING: dict[str, Any] = {
    "action": "get",
    "node": {
        "key": "/app",
        "dir": True,
        "nodes": [{"key": "/app/k", "value": "v2", "modifiedIndex": 5, "createdIndex": 4}],
        "modifiedIndex": 4,
        "createdIndex": 4,
    },
}
NOT_FOUND: dict[str, Any] = {
    "errorCode": 100,
    "message": "Key not found",
    "cause": "/app/k",
    "index": 7,
}
MACHINES = "http://127.0.0.1:54593, http://127.0.0.1:54595"
MEMBERS: dict[str, Any] = {
    "members": [
        {
            "id": MEMBER_ID,
            "name": "n1",
            "peerURLs": ["http://127.0.0.1:53697"],
            "clientURLs": ["http://127.0.0.1:54593"],
        }
    ]
}
STATS_SELF: dict[str, Any] = {
    "name": "n1",
    "id": MEMBER_ID,
    "state": "StateLeader",
    "startTime": "2026-11-30T10:28:45.264726993Z",
    "leaderInfo": {
        "leader": MEMBER_ID,
        "uptime": "9.438484ms",
        "startTime": "2026-11-30T10:28:45.441477815Z",
    },
    "recvAppendRequestCnt": 0,
    "sendAppendRequestCnt": 0,
}
STATS_LEADER: dict[str, Any] = {"leader": MEMBER_ID, "followers": {}}
STATS_STORE: dict[str, Any] = {
    "getsSuccess": 5,
    "getsFail": 12,
    "setsSuccess": 3,
    "setsFail": 0,
    "deleteSuccess": 1,
    "deleteFail": 0,
    "updateSuccess": 0,
    "updateFail": 0,
    "createSuccess": 2,
    "createFail": 0,
    "compareAndSwapSuccess": 1,
    "compareAndSwapFail": 1,
    "compareAndDeleteSuccess": 0,
    "compareAndDeleteFail": 0,
    "expireCount": 0,
    "watchers": 0,
}
VERSION: dict[str, Any] = {"etcdserver": "3.5.1", "etcdcluster": "3.5.0"}


def autospec_response(status: int, body: Any, cluster_id: str = CLUSTER_ID) -> Any:
    """The response double of 0.4.5-era suites: an autospec of urllib3's response."""
    response = mock.create_autospec(urllib3.response.HTTPResponse)()
    response.status = status
    response.data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
    response.getheader.return_value = cluster_id
    return response


class HandMadeResponse:
    """A fake response written by hand: a status and a body, nothing else."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")


@pytest.fixture
def client():
    # Nothing listens on the default port: a call that escapes the double fails.
    with etcd.Client() as client:
        yield client


def mock_api(client: etcd.Client, *answers: Any) -> mock.MagicMock:
    """Replace ``client.api_execute`` as 0.4.5-era suites do."""
    if len(answers) == 1:
        api = mock.MagicMock(return_value=answers[0])
    else:
        api = mock.MagicMock(side_effect=list(answers))
    client.api_execute = api  # type: ignore[method-assign]
    return api


def mock_http(client: etcd.Client, response: Any) -> tuple[mock.MagicMock, mock.MagicMock]:
    """Replace ``client.http.request`` and ``request_encode_body`` with autospecs."""
    for name in ("request", "request_encode_body"):
        vars(client.http).pop(name, None)  # a mock from an earlier step of the test
    request = mock.create_autospec(client.http.request, return_value=response)
    encode_body = mock.create_autospec(client.http.request_encode_body, return_value=response)
    client.http.request = request  # type: ignore[method-assign]
    client.http.request_encode_body = encode_body  # type: ignore[method-assign]
    return request, encode_body


# --------------------------------------------------------------------------
# etcd._log and extra keywords


def test_etcd_log_is_the_etcd_logger():
    assert etcd._log is logging.getLogger("etcd")
    level = etcd._log.level
    try:
        etcd._log.setLevel(logging.ERROR)  # what a cache module does at import time
        assert logging.getLogger("etcd").level == logging.ERROR
        assert logging.getLogger("etcd.client").getEffectiveLevel() == logging.ERROR
    finally:
        etcd._log.setLevel(level)


def test_extra_keywords_of_a_lock_library_are_ignored_and_logged_once(client, caplog):
    api = mock_api(client, autospec_response(201, SET))
    extra = f"harmless_{uuid.uuid4().hex}"
    with caplog.at_level(logging.DEBUG, logger="etcd.client"):
        result = client.write("/app/k", "v1", prevExist=False, recursive=True, ttl=30)
        client.write("/app/k", "v1", prevExist=False, ttl=30, **{extra: 1})
        client.write("/app/k", "v1", prevExist=False, ttl=30, **{extra: 2})
    assert result.value == "v1"
    sent = {"value": "v1", "ttl": 30, "prevExist": "false"}
    assert api.call_args_list == [mock.call("/v2/keys/app/k", "PUT", params=sent)] * 3
    logged = [r for r in caplog.records if r.name == "etcd.client" and extra in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].levelno == logging.DEBUG


# --------------------------------------------------------------------------
# api_execute replaced by a mock returning an autospec response


def test_key_space_methods_on_a_mocked_api_execute(client):
    api = mock_api(client, autospec_response(201, SET))
    written = client.write("/app/k", "v1", ttl=30)
    assert (written.key, written.value, written.ttl, written.newKey) == ("/app/k", "v1", 30, True)
    assert written.etcd_index == 1  # the double's headers say nothing usable
    api.assert_called_with("/v2/keys/app/k", "PUT", params={"value": "v1", "ttl": 30})

    client.set("/app/k", "v1", 30)
    api.assert_called_with("/v2/keys/app/k", "PUT", params={"value": "v1", "ttl": 30})

    api = mock_api(client, autospec_response(201, {**SET, "action": "create"}))
    created = client.write("/app", "v1", append=True)
    assert created.action == "create"
    api.assert_called_with("/v2/keys/app", "POST", params={"value": "v1"})

    api = mock_api(client, autospec_response(200, CAS))
    swapped = client.test_and_set("/app/k", "v2", "v1")
    assert (swapped.action, swapped.value, swapped._prev_node.value) == (
        "compareAndSwap",
        "v2",
        "v1",
    )
    api.assert_called_with("/v2/keys/app/k", "PUT", params={"value": "v2", "prevValue": "v1"})

    api = mock_api(client, autospec_response(200, GET))
    assert client.read("/app/k").value == "v1"
    api.assert_called_with("/v2/keys/app/k", "GET", params={}, timeout=None)
    assert client.get("/app/k").modifiedIndex == 4
    assert "/app/k" in client

    api = mock_api(client, autospec_response(200, LISTING))
    listing = client.read("/app", recursive=True, sorted=True)
    assert [leaf.key for leaf in listing.leaves] == ["/app/k"]
    api.assert_called_with(
        "/v2/keys/app", "GET", params={"recursive": "true", "sorted": "true"}, timeout=None
    )

    api = mock_api(client, autospec_response(200, DELETE))
    assert client.delete("/app/k").action == "delete"
    api.assert_called_with("/v2/keys/app/k", "DELETE", params={})
    popped = client.pop("/app/k")
    assert (popped.key, popped.value, popped.action) == ("/app/k", "v2", None)

    api = mock_api(client, autospec_response(200, REFRESH))
    refreshed = client.refresh("/app/w", 30)
    assert (refreshed.action, refreshed.ttl) == ("update", 30)
    api.assert_called_with(
        "/v2/keys/app/w", "PUT", params={"ttl": 30, "refresh": "true", "prevExist": "true"}
    )

    original = etcd.EtcdResult(**GET)
    original.value = "v2"
    api = mock_api(client, autospec_response(200, CAS))
    assert client.update(original).value == "v2"
    api.assert_called_with(
        "/v2/keys/app/k",
        "PUT",
        params={"value": "v2", "ttl": 30, "prevExist": "true", "prevIndex": 4},
    )


def test_errors_raised_by_a_mocked_api_execute_keep_their_meaning(client):
    api = mock_api(client, None)
    api.side_effect = etcd.EtcdKeyNotFound("Key not found : /app/k")
    assert "/app/k" not in client
    with pytest.raises(etcd.EtcdKeyNotFound):
        client.read("/app/k")
    api.side_effect = etcd.EtcdConnectionFailed("down")
    with pytest.raises(etcd.EtcdConnectionFailed):
        client.write("/app/k", "v")


def test_watch_and_the_first_step_of_eternal_watch_on_a_mocked_api_execute(client):
    api = mock_api(client, autospec_response(200, WATCH))
    event = client.watch("/app/w", index=8, timeout=5)
    assert (event.key, event.value, event.modifiedIndex) == ("/app/w", "x", 8)
    api.assert_called_with(
        "/v2/keys/app/w", "GET", params={"wait": "true", "waitIndex": 8}, timeout=5
    )

    events = client.eternal_watch("/app", index=8, recursive=True)
    first = next(events)
    assert (first.key, first.modifiedIndex) == ("/app/w", 8)
    api.assert_called_with(
        "/v2/keys/app",
        "GET",
        params={"wait": "true", "waitIndex": 8, "recursive": "true"},
        timeout=0,
    )
    next(events)  # the next step watches from the index after the event
    assert api.call_args.kwargs["params"]["waitIndex"] == 9


def test_cluster_information_on_a_mocked_api_execute(client):
    api = mock_api(client, autospec_response(200, MEMBERS))
    assert client.members[MEMBER_ID]["name"] == "n1"
    api.assert_called_with("/v2/members", "GET")

    mock_api(client, autospec_response(200, STATS_SELF))
    assert client.stats["state"] == "StateLeader"
    mock_api(client, autospec_response(200, STATS_LEADER))
    assert client.leader_stats["leader"] == MEMBER_ID
    mock_api(client, autospec_response(200, STATS_STORE))
    assert client.store_stats["getsSuccess"] == 5

    api = mock_api(client, autospec_response(200, STATS_SELF), autospec_response(200, MEMBERS))
    assert client.leader["clientURLs"] == ["http://127.0.0.1:54593"]
    assert [c.args[0] for c in api.call_args_list] == ["/v2/stats/self", "/v2/members"]

    api = mock_api(client, autospec_response(200, VERSION))
    assert (client.version, client.cluster_version) == ("3.5.1", "3.5.0")
    api.assert_called_once_with("/version", "GET")


def lock_answers(lock: etcd.Lock, *, holder: str | None = None) -> list[Any]:
    """The answers of a real etcd to an acquire: the create, then the listing."""
    key = f"/_locks/{lock.name}/00000000000000000006"
    node = {"key": key, "value": lock.uuid, "ttl": 60, "modifiedIndex": 6, "createdIndex": 6}
    nodes = [node]
    if holder is not None:
        first = {**node, "key": f"/_locks/{lock.name}/00000000000000000005", "value": holder}
        nodes = [{**first, "modifiedIndex": 5, "createdIndex": 5}, node]
    listing = {
        "action": "get",
        "node": {"key": f"/_locks/{lock.name}", "dir": True, "nodes": nodes},
    }
    return [
        autospec_response(201, {"action": "create", "node": node}),
        autospec_response(200, listing),
    ]


def test_lock_on_a_mocked_api_execute(client):
    lock = etcd.Lock(client, "job")
    create, listing = lock_answers(lock)
    deleted = {"action": "delete", "node": {"key": "/_locks/job/00000000000000000006"}}
    api = mock_api(
        client, create, listing, autospec_response(200, GET), autospec_response(200, deleted)
    )
    assert lock.acquire(lock_ttl=60) is True
    assert lock.is_acquired
    assert lock.lock_key == "/_locks/job/00000000000000000006"
    lock.release()
    assert [c.args[:2] for c in api.call_args_list] == [
        ("/v2/keys/_locks/job", "POST"),
        ("/v2/keys/_locks/job", "GET"),
        ("/v2/keys/_locks/job/00000000000000000006", "GET"),
        ("/v2/keys/_locks/job/00000000000000000006", "DELETE"),
    ]
    assert not lock.is_acquired


def test_a_contended_lock_on_a_mocked_api_execute_gives_up_and_leaves_the_queue(client):
    lock = etcd.Lock(client, "job")
    create, listing = lock_answers(lock, holder="someone-else")
    deleted = {"action": "delete", "node": {"key": "/_locks/job/00000000000000000006"}}
    api = mock_api(client, create, listing, autospec_response(200, deleted))
    assert lock.acquire(blocking=False, lock_ttl=60) is False
    assert api.call_args_list[-1].args == ("/v2/keys/_locks/job/00000000000000000006", "DELETE")


# --------------------------------------------------------------------------
# client.http.request replaced by a mock returning the same response


def test_cluster_information_on_a_mocked_http_request(client):
    request, _ = mock_http(client, autospec_response(200, MACHINES, cluster_id=""))
    assert client.machines == ["http://127.0.0.1:54593", "http://127.0.0.1:54595"]
    assert request.call_args.args == ("GET", "http://127.0.0.1:4001/v2/machines")

    request, _ = mock_http(client, autospec_response(200, MEMBERS))
    assert list(client.members) == [MEMBER_ID]
    assert request.call_args.args == ("GET", "http://127.0.0.1:4001/v2/members")
    assert client.expected_cluster_id == CLUSTER_ID  # learned through getheader()

    for prop, body, field, path in (
        ("stats", STATS_SELF, "name", "/v2/stats/self"),
        ("leader_stats", STATS_LEADER, "leader", "/v2/stats/leader"),
        ("store_stats", STATS_STORE, "watchers", "/v2/stats/store"),
    ):
        request, _ = mock_http(client, autospec_response(200, body))
        assert getattr(client, prop)[field] == body[field]
        assert request.call_args.args == ("GET", "http://127.0.0.1:4001" + path)

    request, _ = mock_http(client, autospec_response(200, STATS_SELF))
    request.side_effect = [autospec_response(200, STATS_SELF), autospec_response(200, MEMBERS)]
    assert client.leader["name"] == "n1"


def test_key_space_methods_on_a_mocked_http_request(client):
    request, encode_body = mock_http(client, autospec_response(201, SET))
    assert client.write("/app/k", "v1", ttl=30).newKey is True
    method, url = encode_body.call_args.args
    assert (method, url) == ("PUT", "http://127.0.0.1:4001/v2/keys/app/k")
    assert encode_body.call_args.kwargs["fields"] == {"value": "v1", "ttl": 30}
    request.assert_not_called()

    request, _ = mock_http(client, autospec_response(200, LISTING))
    assert [leaf.value for leaf in client.read("/app", recursive=True).leaves] == ["v2"]
    assert request.call_args.kwargs["fields"] == {"recursive": "true"}

    request, _ = mock_http(client, autospec_response(200, DELETE))
    assert client.pop("/app/k").value == "v2"
    assert request.call_args.args[0] == "DELETE"

    mock_http(client, autospec_response(200, WATCH))
    assert next(client.eternal_watch("/app/w")).value == "x"

    mock_http(client, autospec_response(404, NOT_FOUND))
    with pytest.raises(etcd.EtcdKeyNotFound) as info:
        client.read("/app/k")
    assert str(info.value) == "Key not found : /app/k"
    assert "/app/k" not in client


def test_a_changed_cluster_id_in_getheader_is_noticed(client):
    mock_http(client, autospec_response(200, GET, cluster_id="aaaa"))
    client.read("/app/k")
    mock_http(client, autospec_response(200, GET, cluster_id="bbbb"))
    with pytest.raises(etcd.EtcdClusterIdChanged, match="from aaaa to bbbb"):
        client.read("/app/k")
    assert client.read("/app/k").value == "v1"


def test_lock_on_a_mocked_http_request(client):
    lock = etcd.Lock(client, "job")
    create, listing = lock_answers(lock)
    request, encode_body = mock_http(client, create)
    request.side_effect = [listing, autospec_response(200, DELETE)]
    assert lock.acquire(lock_ttl=60) is True
    lock.release()
    assert encode_body.call_args.args == ("POST", "http://127.0.0.1:4001/v2/keys/_locks/job")
    assert [c.args[0] for c in request.call_args_list] == ["GET", "DELETE"]


# --------------------------------------------------------------------------
# A hand-written response: only .status and .data


def test_a_hand_made_response_has_no_headers(client):
    request, encode_body = mock_http(client, HandMadeResponse(200, GET))
    read = client.read("/app/k")
    assert (read.value, read.etcd_index, read.raft_index) == ("v1", 1, 1)
    assert client.expected_cluster_id is None

    encode_body.return_value = HandMadeResponse(201, SET)
    assert client.write("/app/k", "v1").newKey is True

    request.return_value = HandMadeResponse(200, MACHINES)
    assert client.machines == ["http://127.0.0.1:54593", "http://127.0.0.1:54595"]
    request.return_value = HandMadeResponse(200, MEMBERS)
    assert client.members[MEMBER_ID]["peerURLs"] == ["http://127.0.0.1:53697"]
    request.return_value = HandMadeResponse(200, STATS_STORE)
    assert client.store_stats["setsSuccess"] == 3

    request.return_value = HandMadeResponse(404, NOT_FOUND)
    with pytest.raises(etcd.EtcdKeyNotFound):
        client.read("/app/k")


# --------------------------------------------------------------------------
# etcd.Client patched with autospec=True

#: python-etcd 0.4.5's public signatures, which mock checks calls against.
SIGNATURES_045 = {
    "__init__": (
        "self, host, port, srv_domain, version_prefix, read_timeout, allow_redirect, "
        "protocol, cert, ca_cert, username, password, allow_reconnect, use_proxies, "
        "expected_cluster_id, per_host_pool_size, lock_prefix"
    ),
    "write": "self, key, value, ttl, dir, append, **kwdargs",
    "read": "self, key, **kwdargs",
    "get": "self, key",
    "delete": "self, key, recursive, dir, **kwdargs",
    "pop": "self, key, recursive, dir, **kwdargs",
    "set": "self, key, value, ttl",
    "test_and_set": "self, key, value, prev_value, ttl",
    "update": "self, obj",
    "refresh": "self, key, ttl, **kwdargs",
    "watch": "self, key, index, timeout, recursive",
    "eternal_watch": "self, key, index, recursive",
    "api_execute": "self, path, method, params, timeout",
    "api_execute_json": "self, path, method, params, timeout",
    "get_lock": "self, *args, **kwargs",
}


def positional_part(function: Any) -> str:
    parts = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY:
            continue  # new in 0.5.0, after the 0.4.5 ones
        marks: dict[Any, str] = {parameter.VAR_POSITIONAL: "*", parameter.VAR_KEYWORD: "**"}
        prefix = marks.get(parameter.kind, "")
        parts.append(prefix + parameter.name)
    return ", ".join(parts)


@pytest.mark.parametrize("name", sorted(SIGNATURES_045))
def test_public_signatures_are_those_of_045(name):
    assert positional_part(getattr(etcd.Client, name)) == SIGNATURES_045[name]


def test_an_autospec_of_client_accepts_045_calls_and_refuses_others():
    with mock.patch("etcd.Client", autospec=True) as client_class:
        make: Any = etcd.Client
        client = make("10.0.0.1", 2379, None, "/v2", 5, True, "http", None, None)
        client_class.assert_called_once()
        client = make(host=(("a", 2379), ("b", 2379)), allow_reconnect=True)
        client.write("/k", "v", 30, False, False, prevExist=False, recursive=True)
        client.write("/k", "v", ttl=30, prevValue="old")
        client.read("/k", recursive=True, wait=True, waitIndex=3, timeout=5)
        client.delete("/k", True, False, prevIndex=3)
        client.pop("/k", recursive=True)
        client.set("/k", "v", 30)
        client.test_and_set("/k", "v", "old", 30)
        client.refresh("/k", 30)
        client.watch("/k", 3, 5, True)
        client.eternal_watch("/k", index=3, recursive=True)
        client.update(etcd.EtcdResult(**GET))
        client.api_execute("/v2/keys/k", "GET", params={}, timeout=1)
        assert client.write.call_args_list[0] == mock.call(
            "/k", "v", 30, False, False, prevExist=False, recursive=True
        )
        for wrong in (
            lambda: client.write("/k"),
            lambda: client.get("/k", recursive=True),
            lambda: client.watch("/k", idx=3),
            lambda: client.set("/k", "v", 30, True),
            lambda: client.test_and_set("/k", "v"),
            lambda: make(hosts="a"),
        ):
            with pytest.raises(TypeError):
                wrong()
