"""The fake server of tests/fakes.py itself."""

from __future__ import annotations

import socket
import time

import pytest

from .fakes import (
    FakeServer,
    HeadersThenStall,
    Stall,
    etcd_headers,
)


@pytest.mark.parametrize(
    "answer", [Stall(), HeadersThenStall(200, etcd_headers())], ids=["stall", "headers"]
)
def test_fake_server_close_ends_stalled_answers_promptly(answer):
    fake = FakeServer(answer).start()
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as sock:
        sock.sendall(b"GET /v2/keys/a?wait=true HTTP/1.1\r\nHost: x\r\n\r\n")
        (request,) = fake.wait_for_requests(1)
        assert request.params == {"wait": ["true"]}
        start = time.monotonic()
        fake.close()
        elapsed = time.monotonic() - start
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert elapsed < 2, f"closing the fake took {elapsed:.1f}s"
    assert received == b"" or received.startswith(b"HTTP/1.1 200 OK\r\n")
