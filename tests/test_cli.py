"""pyetcdctl in-process (``main(argv)``) against the harness: every command and flag."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys

import etcd
from etcd import cli
from tests.cli_support import clean_env, collect_lines, py_command, run, run_py, url
from tests.helpers import wait_for

__all__ = ["run", "url"]  # fixtures


def test_module_entry_point_and_console_script(url, etcd_client, etcd_prefix):
    etcd_client.write(f"{etcd_prefix}/a", "from python")
    proc = subprocess.run(
        [*py_command(), "--endpoints", url, "get", f"{etcd_prefix}/a"],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (0, "from python\n")
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "pyetcdctl"]
    assert script.value == "etcd.cli:main"


def test_set_get_and_their_flags(run, etcd_client, etcd_prefix):
    p = etcd_prefix
    assert run("set", "--ttl", "100", f"{p}/a", "1").out == "1\n"
    assert 95 <= etcd_client.read(f"{p}/a").ttl <= 100
    assert run("set", "--swap-with-value", "1", f"{p}/a", "2").code == 0
    assert etcd_client.read(f"{p}/a").value == "2"
    failed = run("set", "--swap-with-value", "1", f"{p}/a", "3")
    assert failed.code == cli.EXIT_SERVER_ERROR
    assert failed.err.startswith("Error:  101: Compare failed ([1 != 2])")
    index = etcd_client.read(f"{p}/a").modifiedIndex
    assert run("set", "--swap-with-index", str(index), f"{p}/a", "4").code == 0
    assert run("set", "--swap-with-index", str(index), f"{p}/a", "5").code == 4
    assert etcd_client.read(f"{p}/a").value == "4"
    assert run("set", "--", f"{p}/neg", "-5").out == "-5\n"
    assert run("get", "--sort", "--quorum", f"{p}/a").out == "4\n"
    missing = run("get", f"{p}/nope")
    assert missing.code == 4
    assert missing.err == f"Error:  100: Key not found ({p}/nope) [{missing.err.split('[')[1]}"
    assert "Traceback" not in missing.err


def test_output_formats(run, etcd_prefix):
    p = etcd_prefix
    run("set", f"{p}/j", "<x>")
    extended = run("-o", "extended", "get", f"{p}/j").out.splitlines()
    assert extended[0] == f"Key: {p}/j" and extended[-2:] == ["", "<x>"]
    assert extended[3] == "TTL: 0" and extended[4].startswith("Index: ")
    doc = json.loads(run("--output", "json", "get", f"{p}/j").out)
    assert doc["action"] == "get" and doc["node"]["value"] == "<x>" and doc["prevNode"] is None
    assert "\\u003cx\\u003e" in run("-o", "json", "get", f"{p}/j").out  # as Go writes it
    unsupported = run("-o", "yaml", "get", f"{p}/j")
    assert (unsupported.code, unsupported.out) == (0, "")
    assert unsupported.err == "Unsupported output format: yaml\n"


def test_mk_mkdir_setdir_update_updatedir(run, etcd_client, etcd_prefix):
    p = etcd_prefix
    assert run("mk", f"{p}/m", "1").out == "1\n"
    assert run("mk", f"{p}/m", "2").code == 4
    assert run("mk", "--ttl", "50", f"{p}/mt", "1").code == 0
    assert etcd_client.read(f"{p}/mt").ttl is not None
    assert run("mk", "--in-order", f"{p}/q", "first").out == "first\n"
    run("mk", "--in-order", "--ttl", "60", f"{p}/q", "second")
    queue = etcd_client.read(f"{p}/q", sorted=True)
    assert [n.value for n in queue.leaves] == ["first", "second"]
    assert [n.key.rsplit("/", 1)[1].isdigit() for n in queue.leaves] == [True, True]
    assert (run("mkdir", f"{p}/d").out, run("mkdir", f"{p}/d").code) == ("", 4)
    assert run("mkdir", "--ttl", "30", f"{p}/dt").code == 0
    assert etcd_client.read(f"{p}/dt").ttl is not None
    assert run("setdir", f"{p}/sd").code == 0 and etcd_client.read(f"{p}/sd").dir
    assert run("setdir", "--ttl", "30", f"{p}/sd2").code == 0
    assert run("update", f"{p}/nope", "x").code == 4
    assert run("update", "--ttl", "40", f"{p}/m", "9").out == "9\n"
    assert etcd_client.read(f"{p}/m").ttl is not None
    assert run("updatedir", f"{p}/nope").code == 4


def test_updatedir_ttl(run, etcd_client, etcd_prefix, etcd_server):
    p = etcd_prefix
    run("mkdir", f"{p}/d")
    result = run("updatedir", "--ttl", "50", f"{p}/d")
    if etcd_server.version.startswith("3.5"):
        # etcd 3.5 cannot update directories over v2: the same error as etcdctl gets
        assert result.code == 4 and result.err.startswith("Error:  300:")
    else:
        assert result.code == 0
        assert etcd_client.read(f"{p}/d").ttl is not None


def test_rm_and_rmdir(run, etcd_client, etcd_prefix):
    p = etcd_prefix
    run("set", f"{p}/a", "v")
    assert run("rm", f"{p}/a").out == "PrevNode.Value: v\n"
    run("mkdir", f"{p}/d")
    assert run("rm", f"{p}/d").code == 4
    assert (run("rm", "--dir", f"{p}/d").out, f"{p}/d" in etcd_client) == ("", False)
    run("set", f"{p}/t/x", "1")
    assert run("rm", f"{p}/t").code == 4
    assert run("rm", "-r", f"{p}/t").code == 0 and f"{p}/t" not in etcd_client
    run("set", f"{p}/t/x", "1")
    assert run("rm", "--recursive", f"{p}/t").code == 0
    run("set", f"{p}/f", "v")
    assert run("rm", "--with-value", "x", f"{p}/f").code == 4
    assert run("rm", "--with-value", "v", f"{p}/f").code == 0
    index = etcd_client.write(f"{p}/f", "v").modifiedIndex
    assert run("rm", "--with-index", str(index + 1), f"{p}/f").code == 4
    assert run("rm", "--with-index", str(index), f"{p}/f").code == 0
    run("mkdir", f"{p}/e/x")
    assert run("rmdir", f"{p}/e").code == 4
    assert run("rmdir", f"{p}/e/x").code == 0
    assert run("rmdir", f"{p}/e").code == 0 and f"{p}/e" not in etcd_client


def test_ls(run, etcd_prefix):
    p = etcd_prefix
    for key in ("b", "a", "c/x", "c/y/z"):
        run("set", f"{p}/{key}", "1")
    assert run("ls", "--sort", p).out.splitlines() == [f"{p}/a", f"{p}/b", f"{p}/c"]
    assert run("ls", "--sort", "-p", p).out.splitlines() == [f"{p}/a", f"{p}/b", f"{p}/c/"]
    assert run("ls", "--sort", "-r", "-p", "--quorum", p).out.splitlines() == [
        f"{p}/a",
        f"{p}/b",
        f"{p}/c/",
        f"{p}/c/x",
        f"{p}/c/y/",
        f"{p}/c/y/z",
    ]
    assert run("ls", f"{p}/a").out == f"{p}/a\n"
    doc = json.loads(run("-o", "json", "ls", "--sort", "--recursive", p).out)
    assert [n["key"] for n in doc["node"]["nodes"]] == [f"{p}/a", f"{p}/b", f"{p}/c"]
    assert doc["node"]["nodes"][2]["nodes"][1]["nodes"][0]["key"] == f"{p}/c/y/z"
    assert run("ls").code == 0  # the root


def test_watch_once_from_an_index(run, etcd_client, etcd_prefix):
    p = etcd_prefix
    start = etcd_client.write(f"{p}/w", "0").modifiedIndex
    etcd_client.write(f"{p}/w", "1")
    assert run("watch", "--after-index", str(start), f"{p}/w").out == "1\n"
    etcd_client.write(f"{p}/dir/k", "2")
    got = run("watch", "-r", "--after-index", str(start + 1), p)
    assert got.out == f"[set] {p}/dir/k\n2\n"


def test_missing_arguments_and_unknown_commands(run):
    assert (run("get").code, run("get").err) == (1, "Error:  key required\n")
    assert run("set", "/x").err == "Error:  value required\n"
    assert run("exec-watch", "/x").err == "Error:  key and command to exec required\n"
    bogus = run("bogus")
    assert (bogus.code, bogus.err) == (cli.EXIT_UNKNOWN_COMMAND, "No help topic for 'bogus'\n")
    bad = run("set", "--ttl", "abc", "/x", "1")
    assert bad.code == 1 and bad.err.startswith("Incorrect Usage:")
    assert run("get", "--nope", "/x").code == 1


def test_version_and_help(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"pyetcdctl version {etcd.__version__}\n"
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("get", "exec-watch", "cluster-health", "dump", "load", "migrate", "elect"):
        assert command in out
    assert cli.main([]) == 0
    capsys.readouterr()
    assert cli.main(["member"]) == 0
    assert "list" in capsys.readouterr().out


def test_endpoints_from_the_environment(capsys, url, etcd_client, etcd_prefix, monkeypatch):
    etcd_client.write(f"{etcd_prefix}/e", "env")
    for variable in ("ETCDCTL_ENDPOINTS", "ETCDCTL_ENDPOINT", "ETCDCTL_PEERS"):
        monkeypatch.setenv(variable, url)
        assert cli.main(["get", f"{etcd_prefix}/e"]) == 0, variable
        assert capsys.readouterr().out == "env\n"
        monkeypatch.delenv(variable)
    for flag in ("--endpoint", "--peers", "-C"):
        assert cli.main([flag, url, "get", f"{etcd_prefix}/e"]) == 0, flag
        assert capsys.readouterr().out == "env\n"


def test_several_endpoints_fail_over(capsys, url, etcd_client, etcd_prefix):
    etcd_client.write(f"{etcd_prefix}/e", "v")
    endpoints = f"http://127.0.0.1:1,{url}"
    assert cli.main(["--no-sync", "--endpoints", endpoints, "get", f"{etcd_prefix}/e"]) == 0
    assert capsys.readouterr().out == "v\n"
    assert cli.main(["--endpoints", endpoints, "get", f"{etcd_prefix}/e"]) == 0


def test_unreachable_cluster_exit_codes_and_debug(capsys):
    dead = "http://127.0.0.1:1"
    assert cli.main(["--endpoints", dead, "get", "/a"]) == cli.EXIT_BAD_CONNECTION
    err = capsys.readouterr().err
    assert err.startswith("Error:  client: etcd cluster is unavailable or misconfigured")
    assert "Traceback" not in err
    assert cli.main(["--no-sync", "--endpoints", dead, "get", "/a"]) == cli.EXIT_SERVER_ERROR
    assert "Traceback" not in capsys.readouterr().err
    assert cli.main(["--debug", "--no-sync", "--endpoints", dead, "get", "/a"]) == 4
    assert "Traceback" in capsys.readouterr().err


def test_timeouts_are_go_durations(run, etcd_prefix):
    run("mkdir", etcd_prefix)
    assert run("--timeout", "1500ms", "--total-timeout", "1m", "ls", etcd_prefix).code == 0
    assert cli.go_duration("1m30s") == 90 and cli.go_duration("250ms") == 0.25
    bad = run("--timeout", "1x", "ls")
    assert bad.code == 1 and "invalid value" in bad.err


def test_discovery_srv_failure_is_a_connection_error(capsys, monkeypatch):
    monkeypatch.setenv("ETCDCTL_DISCOVERY_SRV", "no-such-domain.invalid")
    code = cli.main(["get", "/a"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_BAD_CONNECTION and "Traceback" not in err
    assert "no-such-domain.invalid" in err
    assert cli.main(["--discovery-srv", "no-such-domain.invalid", "get", "/a"]) == 2


def test_api_v3_runs_the_same_commands(run, etcd_prefix, etcd_server):
    p = etcd_prefix
    assert run("--api", "v3", "set", f"{p}/v3/a", "1").out == "1\n"
    assert run("--api", "v3", "get", f"{p}/v3/a").out == "1\n"
    assert run("--api", "v3", "mk", "--in-order", f"{p}/v3/q", "x").code == 0
    assert run("--api", "v3", "ls", "--sort", f"{p}/v3").out.splitlines() == [
        f"{p}/v3/a",
        f"{p}/v3/q",
    ]
    assert run("--api", "v3", "rm", "-r", f"{p}/v3").code == 0
    assert run("--api", "v3", "get", f"{p}/v3/a").code == 4


def test_password_prompt_reads_stdin_when_not_a_terminal(run, monkeypatch, url):
    monkeypatch.setattr(sys, "stdin", io.StringIO("secret\n"))
    from etcd._cli_admin import ask_password

    assert ask_password("Password: ") == "secret"


def test_member_add_update_remove(etcd_cluster_factory, capsys):
    cluster = etcd_cluster_factory(size=3)
    url = cluster.client_urls[0]
    free = "http://127.0.0.1:1"  # never started: the cluster keeps its quorum of 3 of 4
    listed = run_py(capsys, url, "member", "list").out.splitlines()
    assert len(listed) == 3 and sum("isLeader=true" in line for line in listed) == 1
    added = None

    def add() -> bool:
        nonlocal added
        added = run_py(capsys, url, "member", "add", "n9", free)
        return added.code == 0  # etcd refuses until its members are connected for 5 s

    assert wait_for(add, timeout=30, interval=0.5), added
    assert added is not None
    lines = added.out.splitlines()
    assert lines[0].startswith("Added member named n9 with ID ")
    new_id = lines[0].split()[-3]
    assert lines[2] == 'ETCD_NAME="n9"'
    assert f"n9={free}" in lines[3] and lines[4] == 'ETCD_INITIAL_CLUSTER_STATE="existing"'
    unstarted = run_py(capsys, url, "member", "list").out
    assert f"{new_id}[unstarted]: peerURLs={free}" in unstarted
    moved = "http://127.0.0.1:2"
    updated = run_py(capsys, url, "member", "update", new_id, moved)
    assert (updated.code, updated.out) == (0, f"Updated member with ID {new_id} in cluster\n")
    assert f"peerURLs={moved}" in run_py(capsys, url, "member", "list").out
    removed = run_py(capsys, url, "member", "remove", new_id)
    assert (removed.code, removed.out) == (0, f"Removed member {new_id} from cluster\n")
    by_name = run_py(capsys, url, "member", "remove", "n1")
    assert by_name.code == 1 and "Found a member named n1" in by_name.err
    assert len(run_py(capsys, url, "member", "list").out.splitlines()) == 3


def test_cluster_health_degraded_and_forever(etcd_cluster_factory, capsys):
    cluster = etcd_cluster_factory(size=3)
    url = cluster.client_urls[0]
    healthy = run_py(capsys, url, "cluster-health")
    assert healthy.code == 0 and healthy.out.endswith("cluster is healthy\n")
    cluster.members[2].kill()
    degraded = healthy

    def two_healthy() -> bool:
        # right after the kill, the others may hold an election and say "unhealthy"
        nonlocal degraded
        degraded = run_py(capsys, url, "cluster-health")
        return degraded.out.count("is healthy") == 2

    assert wait_for(two_healthy, timeout=30, interval=0.5), degraded
    assert degraded.code == cli.EXIT_CLUSTER_NOT_HEALTHY
    assert degraded.out.endswith("cluster is degraded\n")
    argv = [*py_command(), "--endpoints", url, "cluster-health", "--forever"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=clean_env()) as proc:
        lines = collect_lines(proc)
        assert wait_for(lambda: "next check after 10 second...\n" in lines, timeout=30), lines
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == cli.EXIT_INTERRUPTED
    assert "cluster is degraded\n" in lines


def test_api_v3_watch_and_json(run, etcd_prefix):
    p = f"{etcd_prefix}/v3w"
    first = run("--api", "v3", "-o", "extended", "set", f"{p}/a", "1").out
    index = next(line.split()[1] for line in first.splitlines() if line.startswith("Modified"))
    run("--api", "v3", "set", f"{p}/a", "2")
    assert run("--api", "v3", "watch", "--after-index", index, f"{p}/a").out == "2\n"
    got = run("--api", "v3", "-o", "json", "watch", "-r", "--after-index", index, p).out
    head, doc = got.splitlines()
    assert head == f"[set] {p}/a"
    assert json.loads(doc)["prevNode"]["value"] == "1"
    assert run("--api", "v3", "rm", "-r", p).code == 0


def test_insecure_discovery_is_accepted(run, etcd_prefix):
    run("mkdir", etcd_prefix)
    assert run("--insecure-discovery", "ls", etcd_prefix).code == 0


def test_flags_after_arguments_and_double_dash(run, etcd_client, etcd_prefix):
    p = etcd_prefix
    assert run("set", f"{p}/late", "--ttl", "50", "v").out == "v\n"
    assert etcd_client.read(f"{p}/late").ttl is not None
    assert run("ls", p, "--sort", "-p").out == f"{p}/late\n"
    assert run("set", "--", f"{p}/dash", "--ttl").out == "--ttl\n"
