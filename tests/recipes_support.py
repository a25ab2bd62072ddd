"""Helpers for the tests of the recipes: locks, keep-alive and elections."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import textwrap
import threading
from typing import Any, cast

import etcd


class PublicOnly:
    """A client stand-in that fails the test when a recipe touches a private attribute."""

    def __init__(self, client: etcd.Client) -> None:
        self.wrapped = client

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AssertionError(f"recipe reached into Client.{name}")
        return getattr(self.wrapped, name)


class Counting(PublicOnly):
    """:class:`PublicOnly` that also counts the calls of each public method."""

    def __init__(self, client: etcd.Client) -> None:
        super().__init__(client)
        self.calls: collections.Counter[str] = collections.Counter()
        self._count_lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = super().__getattr__(name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._count_lock:
                self.calls[name] += 1
            return attribute(*args, **kwargs)

        return counted


def public_only(client: etcd.Client) -> etcd.Client:
    """*client* behind :class:`PublicOnly`, typed as a client for the recipes."""
    return cast(etcd.Client, PublicOnly(client))


def counting(client: etcd.Client) -> tuple[etcd.Client, collections.Counter[str]]:
    """*client* behind :class:`Counting`, typed as a client, and its call counter."""
    wrapper = Counting(client)
    return cast(etcd.Client, wrapper), wrapper.calls


def leaves(client: etcd.Client, directory: str) -> list[etcd.EtcdResult]:
    """The files directly or indirectly below *directory*, sorted by key; none if it is missing."""
    try:
        listing = client.read(directory, recursive=True, sorted=True)
    except etcd.EtcdKeyNotFound:
        return []
    return [node for node in listing.leaves if not node.dir]


def child_client(member: Any, like: etcd.Client) -> str:
    """Python source making ``client``: a client of *member* speaking as *like* does.

    The child gets *like*'s protocol, namespace and lock prefix, so the keys it
    writes are the keys the test's ``etcd_client`` reads, over v2 or v3.
    """
    options = f"lock_prefix={like.lock_prefix!r}"
    if like.api != "v2":
        options += f", api={like.api!r}, namespace={like.namespace!r}"
    return f"client = etcd.Client(host={member.host!r}, port={member.port}, {options})\n"


def python_process(member: Any, like: etcd.Client, body: str) -> subprocess.Popen[bytes]:
    """Start ``python -c`` with ``client`` connected to *member*, then *body*.

    The child's client speaks as *like* does (see :func:`child_client`).
    """
    script = "import sys, time\nimport etcd\n" + child_client(member, like) + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", script])


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL *proc* (stopped or not) and reap it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
