"""One deadline per call, bounded memory, and typed errors for broken HTTP.

A server (or a proxy) that sends a byte now and then must not keep a call
going past its timeout: connecting, sending, interim ``100 Continue``
answers, the headers and the body all count against one deadline. The
bounds asserted here are the ones the client documents: ``timeout + 1 s``.
"""

from __future__ import annotations

import functools
import gc
import gzip
import json
import time
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import urllib3

import etcd

from .fakes import Chunked, Raw, Reply, Responder, Trickle, etcd_headers
from .helpers import serving

TIMEOUT = 1.0
NODE = {"key": "/a", "value": "1", "modifiedIndex": 5, "createdIndex": 5}
GET_A = {"action": "get", "node": NODE}

_HEAD_OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"X-Etcd-Index: 5\r\nContent-Length: 10000\r\n\r\n"
)

#: Hostile answers that would each keep a call going for minutes.
DRIPS = {
    "headers that never end": Trickle(b"HTTP/1.1 200 OK\r\n", b"X-Drip: 1\r\n", repeat=True),
    "endless 100 Continue": Trickle(
        b"", b"HTTP/1.1 100 Continue\r\n\r\n", interval=0.01, step=5, repeat=True
    ),
    "a body at 20 bytes/s": Trickle(_HEAD_OK, b'{"action": "get", ' + b" " * 9982),
    "a chunked body at 20 bytes/s": Trickle(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1\r\nx\r\n", repeat=True
    ),
}

CALLS: dict[str, Callable[[etcd.Client], Any]] = {
    "read": lambda client: client.read("/a"),
    "write": lambda client: client.write("/a", "1"),
    "delete": lambda client: client.delete("/a"),
    "machines": lambda client: client.machines,
    "version": lambda client: client.version,
}


def _ends_in_time(call: Callable[[], Any], limit: float) -> etcd.EtcdException:
    started = time.monotonic()
    with pytest.raises(etcd.EtcdException) as info:
        call()
    elapsed = time.monotonic() - started
    assert elapsed < limit, f"the call took {elapsed:.2f} s: {info.value}"
    return info.value


@pytest.mark.parametrize("drip", DRIPS.values(), ids=DRIPS.keys())
@pytest.mark.parametrize("name", CALLS.keys())
def test_a_dripping_server_cannot_stretch_a_call(name, drip):
    with serving(default=drip, read_timeout=TIMEOUT) as (_fake, client):
        _ends_in_time(lambda: CALLS[name](client), TIMEOUT + 1)


@pytest.mark.parametrize("drip", DRIPS.values(), ids=DRIPS.keys())
def test_a_call_timeout_bounds_the_whole_exchange(drip):
    with serving(default=drip) as (_fake, client):
        _ends_in_time(lambda: client.read("/a", timeout=TIMEOUT), TIMEOUT + 1)


def test_a_watch_wait_is_bounded_by_its_timeout_whatever_drips():
    # headers at once, then a body that never completes: no event, a timeout
    watch_head = b"HTTP/1.1 200 OK\r\nX-Etcd-Index: 9\r\nTransfer-Encoding: chunked\r\n\r\n"
    drip = Trickle(watch_head, b"1\r\n \r\n", repeat=True)
    with serving(default=drip) as (_fake, client):
        error = _ends_in_time(lambda: client.watch("/a", timeout=TIMEOUT), TIMEOUT + 1)
    assert isinstance(error, etcd.EtcdWatchTimedOut)
    assert error.etcd_index == 9


# --------------------------------------------------------------------------
# Bounded memory


@functools.cache
def _bomb(size: int = 50 * 1024 * 1024) -> bytes:
    """50 MiB of spaces, gzipped to about 50 KiB."""
    return gzip.compress(b" " * size, compresslevel=9)


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize("lean", [True, False], ids=["lean", "urllib3"])
def test_a_gzip_bomb_is_refused_unread(chunked, lean):
    headers = {**etcd_headers(), "Content-Encoding": "gzip"}
    bomb = _bomb()
    if chunked:
        pieces = [bomb[i : i + 65536] for i in range(0, len(bomb), 65536)]
        answer: Responder = Chunked(200, pieces, headers)
    else:
        answer = Reply(200, bomb, headers)
    with serving(default=answer) as (_fake, client):
        if not lean:
            client.http = urllib3.PoolManager()
        tracemalloc.start()
        tracemalloc.reset_peak()
        try:
            error = _raises(etcd.EtcdBadResponse, client.read, "/a")
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert "compressed" in str(error)
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes"


def _raises(expected: type[etcd.EtcdException], call: Callable[..., Any], *args: Any) -> Any:
    with pytest.raises(expected) as info:
        call(*args)
    return info.value


BIG = json.dumps({"action": "get", "node": {"key": "/a", "value": "x" * 5000}}).encode()


@pytest.mark.parametrize(
    "answer",
    [
        Reply(200, BIG, etcd_headers()),
        Chunked(200, [BIG[:3000], BIG[3000:]], etcd_headers()),
        Raw(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + BIG),
    ],
    ids=["length", "chunked", "to the close"],
)
def test_a_body_over_the_limit_is_refused(answer):
    with serving(default=answer, max_response_size=4096) as (_fake, client):
        error = _raises(etcd.EtcdBadResponse, client.read, "/a")
    assert "max_response_size of 4096" in str(error)


def test_the_limit_also_holds_when_urllib3_sends():
    with serving(default=Reply(200, BIG, etcd_headers()), max_response_size=4096) as (_f, client):
        client.http = urllib3.PoolManager()
        _raises(etcd.EtcdBadResponse, client.read, "/a")


def test_the_default_limit_takes_a_large_answer():
    big = json.dumps({"action": "get", "node": {"key": "/a", "value": "x" * 20_000_000}}).encode()
    with serving(default=Reply(200, big, etcd_headers())) as (_fake, client):
        value = client.read("/a").value
        assert value is not None and len(value) == 20_000_000


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", True])
def test_the_limit_is_checked(bad):
    with pytest.raises((etcd.EtcdValueError, etcd.EtcdTypeError)):
        etcd.Client(max_response_size=bad)


# --------------------------------------------------------------------------
# Broken HTTP is a typed error that says what was wrong


BROKEN = {
    "negative chunk size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
        "invalid chunk size",
    ),
    "chunk size not hex": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        "invalid chunk size",
    ),
    "not HTTP": (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not HTTP/1.x"),
    "bad status": (b"HTTP/1.1 2x0 OK\r\n\r\n", "not HTTP/1.x"),
    "bad header line": (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header"),
    "bad length": (b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", "Content-Length"),
    "two lengths": (b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd", "Content-Length"),
    "short body": (b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n{}", "cut off"),
}


@pytest.mark.parametrize("raw, words", BROKEN.values(), ids=BROKEN.keys())
def test_broken_http_is_a_connection_failure_that_says_what_was_wrong(raw, words):
    for call in (lambda c: c.read("/a"), lambda c: c.write("/a", "1")):
        with serving(default=Raw(raw)) as (_fake, client):
            error = _raises(etcd.EtcdConnectionFailed, call, client)
        assert words in str(error)


@pytest.mark.parametrize("raw", [raw for raw, _ in BROKEN.values()], ids=BROKEN.keys())
def test_broken_http_is_typed_when_urllib3_sends_too(raw):
    with serving(default=Raw(raw)) as (_fake, client):
        client.http = urllib3.PoolManager()
        _raises(etcd.EtcdException, client.read, "/a")
    _collect_urllib3_leaks()


def test_headers_that_never_end_are_refused_at_64_kib():
    flood = b"HTTP/1.1 200 OK\r\n" + b"X-Flood: " + b"y" * 100_000
    with serving(default=Raw(flood)) as (_fake, client):
        error = _raises(etcd.EtcdConnectionFailed, client.read, "/a")
    assert "headers are longer than 65536 bytes" in str(error)


def test_a_redirect_to_an_invalid_url_is_typed_when_urllib3_sends():
    invalid = Reply(307, headers={"Location": "http://[::1/v2/keys/a"})
    with serving(default=invalid) as (_fake, client):
        client.http = urllib3.PoolManager()
        error = _raises(etcd.EtcdBadResponse, client.read, "/a")
    assert "Invalid IPv6 URL" in str(error)
    _collect_urllib3_leaks()


def _collect_urllib3_leaks() -> None:
    """Collect the sockets urllib3 drops unclosed on some broken answers.

    It drops a redirect's response when the ``Location`` is invalid, and an
    answer whose ``Content-Length`` values differ, without closing their
    connections; the lean path has neither leak.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
