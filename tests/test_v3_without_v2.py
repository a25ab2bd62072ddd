"""The key space, watches, recipes and cluster calls over ``api="v3"`` on a
server without the v2 API, as etcd 3.6 is.

The parity modules (``test_v3_parity*.py``) and most ``test_v3_*.py`` tests run
over v3 against the shared server, which serves v2 as well. Here they are
collected again with ``etcd_server``, ``etcd_prefix``, ``etcd_client``,
``v3_namespace`` and ``v3_client`` taken from a server started with
``--enable-v2=false``, so nothing in them may need v2: every test of
``test_keys.py``; a cheap subset covering each recipe (``Lock`` with its context
manager, ``KeepAlive``, ``Election``, ``watch``, ``eternal_watch`` and
``Watcher``); and the v3 tests that need no v2 oracle. Tests over a second run
only against the shared server; those of ``etcd_cluster_factory`` clusters
(membership, failover, auth, TLS) start theirs without v2 already.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

import etcd
from etcd.testing import EtcdCluster

from . import (
    test_election,
    test_keepalive,
    test_keys,
    test_lock,
    test_v3_cluster,
    test_v3_keys,
    test_v3_parity,
    test_v3_recipes,
    test_v3_watch,
    test_v3_watch_last_change,
    test_watch,
)
from .v3_support import collect_again, takes, unique_namespace, v3_only_server, wipe

__all__ = ["v3_only_server"]

# Each over a second, and run over v3 by test_v3_parity.py or against the shared server.
_SLOW = {
    "test_watch_of_cleared_history",
    "test_ttl_zero_is_sent_and_expires_the_key",
    "test_a_lease_expires_the_key_within_ttl_plus_one_second",
    "test_a_directory_ttl_leaves_the_keys_below_it",
    "test_ttl_zero_expires_the_key_after_the_minimum_lease",
    "test_an_expiry_is_reported_as_a_delete",
    "test_5000_changes_reach_a_slow_watcher_once_each",
    "test_a_keepalive_key_outlives_its_ttl",
}


def _tests(module: ModuleType, *fixtures: str) -> set[str]:
    """The tests of *module* taking one of *fixtures*, but not the v2 oracle, and not slow."""
    found = set()
    for name in dir(module):
        if not name.startswith("test_"):
            continue
        wants = takes(getattr(module, name))
        if wants & set(fixtures) and ("etcd_client" in fixtures or "etcd_client" not in wants):
            found.add(name)
    return found - _SLOW


_ONLY = {
    test_keys: _tests(test_keys, "etcd_client"),
    # the v3-only tests that need no v2 oracle
    test_v3_keys: _tests(test_v3_keys, "v3_client"),
    test_v3_watch: _tests(test_v3_watch, "v3_client"),
    test_v3_watch_last_change: _tests(test_v3_watch_last_change, "v3_client"),
    test_v3_recipes: _tests(test_v3_recipes, "v3_client"),
    test_v3_cluster: _tests(test_v3_cluster, "v3_client", "v3_namespace"),
    test_watch: {
        "test_events_come_once_and_in_order",
        "test_eternal_watch_keeps_its_results",
        "test_watcher_outlives_its_long_poll_bound",
    },
    test_lock: {
        "test_the_python_etcd_045_api",
        "test_the_context_manager",
        "test_a_failed_non_blocking_acquire_leaves_no_key",
        "test_fencing_tokens_increase_from_holder_to_holder",
    },
    test_keepalive: {
        "test_a_lost_key_is_reported_not_recreated",
        "test_recreate_writes_the_key_again",
    },
    test_election: {
        "test_leadership_passes_on_when_the_leader_resigns",
        "test_the_context_manager_campaigns_and_resigns",
    },
}


@pytest.fixture(name="etcd_server", scope="module")
def v3_only_etcd_server(v3_only_server: EtcdCluster) -> EtcdCluster:
    """The server without v2, for every test here that asks for ``etcd_server``."""
    return v3_only_server


@pytest.fixture(name="etcd_prefix")
def v3_only_prefix(request: pytest.FixtureRequest) -> str:
    """The test's key prefix; its keys go away with the client's namespace."""
    return unique_namespace(request.node.name)


@pytest.fixture(name="v3_namespace")
def v3_only_namespace(
    request: pytest.FixtureRequest, v3_only_server: EtcdCluster
) -> Iterator[str]:
    """A fresh namespace on the server without v2, deleted afterwards."""
    namespace = unique_namespace(request.node.name)
    yield namespace
    wipe(v3_only_server.client_urls[0], namespace)


@pytest.fixture(name="v3_client")
def v3_only_v3_client(v3_only_server: EtcdCluster, v3_namespace: str) -> Iterator[etcd.Client]:
    """``v3_client`` of the v3 tests, on the server without v2."""
    client = v3_only_server.client(api="v3", namespace=v3_namespace, lock_prefix="/_locks")
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(name="etcd_client")
def v3_only_etcd_client(
    request: pytest.FixtureRequest, v3_only_server: EtcdCluster, etcd_prefix: str
) -> Iterator[etcd.Client]:
    """A v3 client of the server without v2, in a namespace of its own."""
    namespace = unique_namespace(request.node.name)
    client = v3_only_server.client(
        api="v3", namespace=namespace, lock_prefix=f"{etcd_prefix}/_locks"
    )
    try:
        yield client
    finally:
        client.close()
        wipe(v3_only_server.client_urls[0], namespace)


def test_the_server_has_no_v2(etcd_server, etcd_client):
    with etcd_server.client() as v2, pytest.raises(etcd.EtcdV2ApiDisabled):
        v2.read("/")
    assert etcd_client.api == "v3" and etcd_client.base_uri == etcd_server.client_urls[0]


# the same differences as against a server with v2 (docs/v3.rst rows)
_DIFFERENT = {"test_keys_" + name[5:]: why for name, why in test_v3_parity.DIFFERENT.items()}

for _module, _names in _ONLY.items():
    _prefix = _module.__name__.rsplit(".test_", 1)[1] + "_"
    collect_again(_module, globals(), _DIFFERENT, prefix=_prefix, only=_names)
