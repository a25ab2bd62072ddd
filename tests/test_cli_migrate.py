"""``pyetcdctl migrate``: a v2 tree copied into the v3 layout, dry run, verify, resume."""

from __future__ import annotations

import pytest

import etcd
from etcd import _cli_tools
from tests.cli_support import run_py


@pytest.fixture
def v3_client(etcd_server):
    with etcd_server.client(api="v3") as client:
        yield client


def test_migrate_dry_run_copy_verify_and_resume(
    etcd_server, etcd_client, etcd_prefix, v3_client, capsys
):
    url = etcd_server.client_urls[0]
    p = etcd_prefix
    etcd_client.write(f"{p}/m/a", "1")
    etcd_client.write(f"{p}/m/t", "x", ttl=300)
    etcd_client.write(f"{p}/m/empty", None, dir=True)
    etcd_client.write(f"{p}/m/q", "first", append=True)
    dead = "http://127.0.0.1:1"  # --from and --to are used, not --endpoints
    argv = ["--no-sync", "migrate", "--from", url, "--to", url, f"{p}/m"]
    dry = run_py(capsys, dead, *argv, "--dry-run")
    assert dry.code == 0, dry.err
    assert dry.out == "3 files, 3 directories (1 with a TTL): would write 6, 0 already there\n"
    with pytest.raises(etcd.EtcdKeyNotFound):
        v3_client.read(f"{p}/m/a")
    copied = run_py(capsys, dead, *argv, "--verify")
    assert copied.code == 0, copied.err
    assert copied.out.endswith("verified: the v3 copy matches the v2 tree\n")
    assert v3_client.read(f"{p}/m/a").value == "1"
    assert v3_client.read(f"{p}/m/t").ttl is not None
    assert v3_client.read(f"{p}/m/empty").dir
    again = run_py(capsys, dead, *argv)
    assert again.out == "3 files, 3 directories (1 with a TTL): wrote 0, 6 already there\n"
    v3_client.write(f"{p}/m/extra", "only in v3")
    differs = run_py(capsys, dead, *argv, "--verify")
    assert differs.code == 1
    assert f"extra {p}/m/extra: v2 None, v3 'only in v3'" in differs.out
    assert "run migrate again" in differs.err and "Traceback" not in differs.err
    v3_client.delete(f"{p}/m", recursive=True)


def test_migrate_defaults_to_the_global_endpoints(etcd_server, etcd_client, etcd_prefix, capsys):
    etcd_client.write(f"{etcd_prefix}/one", "1")
    result = run_py(capsys, etcd_server.client_urls[0], "migrate", f"{etcd_prefix}/one")
    assert (result.code, result.out) == (
        0,
        "1 files, 0 directories (0 with a TTL): wrote 1, 0 already there\n",
    )
    with etcd_server.client(api="v3") as v3:
        assert v3.read(f"{etcd_prefix}/one").value == "1"
        v3.delete(f"{etcd_prefix}/one")


def test_progress_learns_its_total(capsys):
    pytest.importorskip("tqdm")
    progress = _cli_tools.Progress("migrate", None, enabled=True)
    progress.set_total(4)
    progress.update(4)
    progress.close()
    assert "4/4" in capsys.readouterr().err
