"""Every call against misbehaving servers: a typed error, in time.

A server (or a broken proxy) that sends interim answers forever, drips its
headers or its body, answers with a compressed bomb, truncated, deeply
nested or wrongly typed JSON, or redirects to an invalid URL: each call gets
an :class:`etcd.EtcdException` (never a bare ``ValueError``, ``TypeError``,
``RecursionError`` or http.client error), and a single call ends within its
timeout plus one second, the deadline of one exchange.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

import etcd

from .fakes import Drip, EndlessContinue, FakeServer, Reply, Responder, etcd_headers

TIMEOUT = 1.0

_GOOD = json.dumps(
    {"action": "get", "node": {"key": "/a", "value": "1", "modifiedIndex": 5, "createdIndex": 5}}
).encode()
_HEAD = "".join(f"{k}: {v}\r\n" for k, v in etcd_headers(5).items())

SERVERS: dict[str, Responder] = {
    "endless-100-continue": EndlessContinue(),
    "header-drip": Drip(f"HTTP/1.1 200 OK\r\n{_HEAD}".encode() + b"X-Pad: x\r\n" * 200),
    "body-drip": Drip(
        f"HTTP/1.1 200 OK\r\n{_HEAD}Content-Length: {len(_GOOD)}\r\n\r\n".encode() + _GOOD
    ),
    "gzip-bomb": Reply(
        200,
        gzip.compress(b" " * 20_000_000),
        {**etcd_headers(5), "Content-Encoding": "gzip"},
    ),
    "truncated-json": Reply(200, _GOOD[:-9], etcd_headers(5)),
    "deeply-nested": Reply(200, b'{"node":' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    "wrong-types": Reply.etcd({"action": "get", "node": {"key": ["/a"], "modifiedIndex": "5"}}),
    "invalid-redirect": Reply(307, b"", {"Location": "http://[::1/v2/keys/a"}),
}

CALLS: dict[str, Callable[[etcd.Client], Any]] = {
    "read": lambda c: c.read("/a"),
    "write": lambda c: c.write("/a", "1"),
    "append": lambda c: c.write("/q", "1", append=True),
    "delete": lambda c: c.delete("/a"),
    "compare-and-swap": lambda c: c.write("/a", "2", prevValue="1"),
    "watch": lambda c: c.watch("/a", timeout=TIMEOUT),
    "keepalive-start": lambda c: etcd.KeepAlive(c, "/a", "1", ttl=5).start(),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.parametrize("server", SERVERS.values(), ids=SERVERS.keys())
def test_a_call_gets_a_typed_error_in_time(server, call):
    with (
        FakeServer(default=server) as fake,
        etcd.Client(port=fake.port, read_timeout=TIMEOUT) as c,
    ):
        started = time.monotonic()
        with pytest.raises(etcd.EtcdException):
            call(c)
        elapsed = time.monotonic() - started
    assert elapsed <= TIMEOUT + 1, f"{elapsed:.2f}s"


@pytest.mark.parametrize("server", SERVERS.values(), ids=SERVERS.keys())
def test_a_lock_gets_a_typed_error_and_gives_up(server):
    with (
        FakeServer(default=server) as fake,
        etcd.Client(port=fake.port, read_timeout=TIMEOUT) as c,
    ):
        lock = etcd.Lock(c, "hostile")
        with pytest.raises(etcd.EtcdException):
            lock.acquire(lock_ttl=10, timeout=3)
        assert not lock.is_taken
