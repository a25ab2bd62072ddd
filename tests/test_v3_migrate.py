"""etcd.migrate: a v2 tree copied into the v3 layout, verified, and copied again."""

from __future__ import annotations

import pytest

import etcd
import etcd.migrate

from .v3_support import raw_keys, v3_client, v3_namespace

__all__ = ["v3_client", "v3_namespace"]


def _tree(client: etcd.Client, prefix: str) -> list[tuple[str, str | None, bool]]:
    return [
        (n.key or "", n.value, n.dir) for n in client.read(prefix, recursive=True).get_subtree()
    ]


def test_a_tree_is_copied_verified_and_copied_again(
    etcd_client, etcd_prefix, etcd_server, v3_client, v3_namespace
):
    p = etcd_prefix
    etcd_client.write(f"{p}/cfg/a", "1")
    etcd_client.write(f"{p}/cfg/deep/b", "two words")
    etcd_client.write(f"{p}/empty", None, dir=True)
    jobs = [etcd_client.write(f"{p}/jobs", f"job{i}", append=True).key for i in range(3)]
    etcd_client.write(f"{p}/session", "s", ttl=300)

    planned = etcd.migrate.migrate(etcd_client, v3_client, p, dry_run=True)
    assert planned == etcd.migrate.MigrationReport(
        files=6, directories=5, leased=1, written=11, unchanged=0, dry_run=True
    )
    assert raw_keys(etcd_server.client_urls[0], v3_namespace + "/") == {}

    seen: list[tuple[int, int]] = []
    done = etcd.migrate.migrate(
        etcd_client, v3_client, p, batch_size=4, progress=lambda *a: seen.append(a)
    )
    assert done.written == 11 and not done.dry_run
    assert seen == [(4, 11), (8, 11), (11, 11)]
    assert etcd.migrate.verify(etcd_client, v3_client, p) == []
    assert sorted(_tree(v3_client, p)) == sorted(_tree(etcd_client, p))
    assert [n.key for n in v3_client.read(f"{p}/jobs").leaves] == jobs  # in-order names kept
    session = v3_client.read(f"{p}/session")
    assert session.ttl is not None and 0 < session.ttl <= 300

    again = etcd.migrate.migrate(etcd_client, v3_client, p)
    assert (again.written, again.unchanged) == (0, 11)

    v3_client.write(f"{p}/cfg/a", "changed")
    v3_client.write(f"{p}/extra", "x")
    v3_client.delete(f"{p}/empty", dir=True)
    assert etcd.migrate.verify(etcd_client, v3_client, p) == [
        etcd.migrate.Difference(f"{p}/cfg/a", "value", "1", "changed"),
        etcd.migrate.Difference(f"{p}/empty", "missing", "<dir>", None),
        etcd.migrate.Difference(f"{p}/extra", "extra", None, "x"),
    ]
    repaired = etcd.migrate.migrate(etcd_client, v3_client, p)
    assert repaired.written == 2
    assert [d.problem for d in etcd.migrate.verify(etcd_client, v3_client, p)] == ["extra"]


def test_the_clients_must_speak_the_right_apis(etcd_client, v3_client):
    with pytest.raises(etcd.EtcdTypeError, match="source"):
        etcd.migrate.migrate(v3_client, v3_client)
    with pytest.raises(etcd.EtcdTypeError, match="target"):
        etcd.migrate.verify(etcd_client, etcd_client)
    with pytest.raises(etcd.EtcdValueError, match="batch_size"):
        etcd.migrate.migrate(etcd_client, v3_client, batch_size=500)
