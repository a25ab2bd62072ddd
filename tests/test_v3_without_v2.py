"""The key space and the recipes over ``api="v3"`` on a server without the v2 API,
as etcd 3.6 is.

``tests/test_v3_parity.py`` and ``test_v3_parity_recipes.py`` run the v2 tests
over v3 against the shared server, which serves v2 as well. Here the tests of
``test_keys.py`` (but two slow ones) and a cheap subset covering each recipe
(``Lock`` with its context manager, ``KeepAlive``, ``Election``, ``watch``,
``eternal_watch`` and ``Watcher``) are collected again with ``etcd_server``,
``etcd_prefix`` and ``etcd_client`` taken from a server started with
``--enable-v2=false``: nothing in them may need v2.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import etcd
from etcd.testing import EtcdCluster

from . import test_election, test_keepalive, test_keys, test_lock, test_v3_parity, test_watch
from .v3_support import collect_again, unique_namespace, v3_only_server, wipe

__all__ = ["v3_only_server"]

# Each over a second, and run over v3 by test_v3_parity.py.
_SLOW_KEYS = {"test_watch_of_cleared_history", "test_ttl_zero_is_sent_and_expires_the_key"}

_ONLY = {
    test_keys: {name for name in dir(test_keys) if name.startswith("test_")} - _SLOW_KEYS,
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
