"""Fixtures and helpers for the tests of the v3 protocol (``api="v3"``).

Every v3 test gets its own namespace, so its keys never meet another test's,
and the whole namespace is deleted afterwards through the raw gateway.
"""

from __future__ import annotations

import base64
import functools
import inspect
import json
import re
import uuid
from collections.abc import Callable, Collection, Iterator, MutableMapping
from types import ModuleType
from typing import Any

import pytest
import urllib3

import etcd
from etcd.testing import EtcdCluster

_pool = urllib3.PoolManager(retries=False)


def collect_again(
    module: ModuleType,
    into: MutableMapping[str, Any],
    different: dict[str, str],
    skipped: dict[str, str] | None = None,
    prefix: str = "",
    only: Collection[str] | None = None,
) -> None:
    """Collect every test of *module* that takes ``etcd_client`` again, into *into*.

    *into* is the ``globals()`` of a test module whose ``etcd_client`` fixture
    gives a v3 client. A test named in *different* is a strict xfail with that
    reason (a row of docs/v3.rst), so it fails the run once it starts to pass;
    one named in *skipped* is not run, for that reason (names as collected
    here, with *prefix*). Tests without an
    ``etcd_client`` argument would run unchanged over v2 and are left out.
    Each is collected as ``test_`` + *prefix* + the rest of its name. With
    *only*, just the tests of *module* named there (original names) are,
    whatever fixtures they take.
    """
    if only is not None:
        missing = [name for name in only if not callable(getattr(module, name, None))]
        assert not missing, f"{module.__name__} has no {missing}"
    for name in dir(module):
        test = getattr(module, name)
        if only is not None:
            if name not in only:
                continue
        elif not name.startswith("test_") or "etcd_client" not in takes(test):
            continue
        again = _again(test)  # keeps the marks of *test*, such as parametrize
        again_name = "test_" + prefix + name[len("test_") :]
        if again_name in different:
            again = pytest.mark.xfail(reason=different[again_name], strict=True)(again)
        if skipped and again_name in skipped:
            again = pytest.mark.skip(reason=skipped[again_name])(again)
        assert again_name not in into, f"{again_name} is collected twice"
        into[again_name] = again


def takes(test: Callable[..., Any]) -> set[str]:
    """The names of the fixtures *test* asks for."""
    return set(inspect.signature(test).parameters)


def _again(test: Callable[..., Any]) -> Callable[..., Any]:
    """A new function running *test*: marking it leaves the original unmarked."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        return test(*args, **kwargs)

    return run


class RecordingPool(urllib3.PoolManager):
    """A replacement for ``client.http`` that notes every URL it is asked for."""

    def __init__(self, seen: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen = seen

    def urlopen(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(url)
        return super().urlopen(method, url, *args, **kwargs)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def gateway(url: str, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    """One raw request to the v3 gateway at *url*, bypassing :class:`etcd.Client`."""
    response = _pool.request(
        "POST",
        url + endpoint,
        body=json.dumps(body),
        headers={"Content-Type": "application/json"},
        timeout=10.0,
    )
    answer: dict[str, Any] = json.loads(response.data)
    assert response.status == 200, answer
    return answer


def raw_put(url: str, key: str, value: str) -> int:
    """Put *key* with a plain v3 request; return the revision it made."""
    answer = gateway(url, "/v3/kv/put", {"key": b64(key), "value": b64(value)})
    return int(answer["header"]["revision"])


def raw_keys(url: str, prefix: str) -> dict[str, str]:
    """Every v3 key below *prefix* (inclusive) and its value."""
    answer = gateway(
        url,
        "/v3/kv/range",
        {"key": b64(prefix), "range_end": b64(prefix[:-1] + chr(ord(prefix[-1]) + 1))},
    )
    return {
        base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode()
        for kv in answer.get("kvs", [])
    }


def unique_namespace(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.")[:50] or "test"
    return f"/pytest-v3/{safe}-{uuid.uuid4().hex[:8]}"


def wipe(url: str, namespace: str) -> None:
    gateway(
        url, "/v3/kv/deleterange", {"key": b64(namespace), "range_end": b64(namespace + "\x7f")}
    )


@pytest.fixture(scope="module")
def v3_only_server() -> Iterator[EtcdCluster]:
    """A server without the v2 API, as etcd 3.6 and later are."""
    with EtcdCluster(1, enable_v2=False) as cluster:
        yield cluster


@pytest.fixture
def v3_namespace(request: pytest.FixtureRequest, etcd_server: EtcdCluster) -> Iterator[str]:
    """A fresh namespace on the shared server, deleted afterwards."""
    namespace = unique_namespace(request.node.name)
    yield namespace
    wipe(etcd_server.client_urls[0], namespace)


@pytest.fixture
def v3_client(etcd_server: EtcdCluster, v3_namespace: str) -> Iterator[etcd.Client]:
    """A v3 client of the shared server (which also serves v2), in its own namespace."""
    client = etcd_server.client(api="v3", namespace=v3_namespace, lock_prefix="/_locks")
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(name="etcd_client")
def v3_parity_client(
    request: pytest.FixtureRequest, etcd_server: EtcdCluster, etcd_prefix: str
) -> Iterator[etcd.Client]:
    """``etcd_client`` as a v3 client, for v2 tests collected again over v3.

    The test's keys live below ``etcd_prefix`` in a namespace of the test's own,
    which is deleted afterwards.
    """
    namespace = unique_namespace(request.node.name)
    client = etcd_server.client(api="v3", namespace=namespace, lock_prefix=f"{etcd_prefix}/_locks")
    try:
        yield client
    finally:
        client.close()
        wipe(etcd_server.client_urls[0], namespace)


@pytest.fixture
def v3_only_client(
    request: pytest.FixtureRequest, v3_only_server: EtcdCluster
) -> Iterator[etcd.Client]:
    """A v3 client of the server without v2, in its own namespace."""
    namespace = unique_namespace(request.node.name)
    client = v3_only_server.client(api="v3", namespace=namespace, lock_prefix="/_locks")
    try:
        yield client
    finally:
        client.close()
        wipe(v3_only_server.client_urls[0], namespace)
