"""The fake server of tests/fakes.py itself."""

from __future__ import annotations

import socket

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
@pytest.mark.timeout(20)
def test_fake_server_close_ends_stalled_answers_promptly(answer):
    fake = FakeServer(answer).start()
    # The socket's timeout makes a connection that close() left open an error.
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as sock:
        sock.sendall(b"GET /v2/keys/a?wait=true HTTP/1.1\r\nHost: x\r\n\r\n")
        (request,) = fake.wait_for_requests(1)
        assert request.params == {"wait": ["true"]}
        fake.close()
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert received == b"" or received.startswith(b"HTTP/1.1 200 OK\r\n")
