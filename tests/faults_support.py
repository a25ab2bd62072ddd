"""Helpers shared by the tests/test_faults_*.py files: a fake server and a client on it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import etcd

from .fakes import FakeServer, Responder
from .helpers import raised as raises_exactly

NODE = {"key": "/a", "value": "1", "modifiedIndex": 5, "createdIndex": 5}
GET_A = {"action": "get", "node": NODE}
SET_A = {"action": "set", "node": NODE}


@contextlib.contextmanager
def serving(*answers: Responder, **client_kwargs: Any) -> Iterator[tuple[FakeServer, etcd.Client]]:
    """A fake server scripted with *answers* and a real client pointed at it."""
    with (
        FakeServer(*answers) as fake,
        etcd.Client(host="127.0.0.1", port=fake.port, **client_kwargs) as client,
    ):
        yield fake, client


def raised(expected: type[etcd.EtcdException], call: Any, *answers: Responder) -> Any:
    """Run ``call(client)`` against a fake answering *answers*; return the exception.

    The exception must be exactly *expected*, not a subclass or a sibling.
    """
    with serving(*answers) as (_fake, client):
        return raises_exactly(expected, call, client)


def read_a(client: etcd.Client) -> Any:
    return client.read("/a")
