"""pyetcdctl's own commands: dump, load, lock, elect, serve, and the progress display."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys

import pytest

import etcd
from etcd import _cli_tools, cli
from tests.cli_support import clean_env, collect_lines, py_command, read_line, run, url
from tests.helpers import wait_for

__all__ = ["run", "url"]  # fixtures


def _tree(client, prefix):
    """{relative key: (dir, value)} of everything below *prefix*."""
    result = client.read(prefix, recursive=True, sorted=True)
    return {
        node.key[len(prefix) :]: (node.dir, None if node.dir else node.value)
        for node in result.get_subtree()
        if node.key != prefix
    }


def _fill(client, p):
    client.write(f"{p}/src/a", "1")
    client.write(f"{p}/src/t", "x", ttl=300)
    client.write(f"{p}/src/empty", None, dir=True)
    client.write(f"{p}/src/tdir", None, dir=True, ttl=300)
    client.write(f"{p}/src/q", "one", append=True)
    client.write(f"{p}/src/q", "two", append=True)
    client.write(f"{p}/src/sub/deep/k", 'é"\n\\u0000')


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_dump_load_round_trip(api, etcd_server, etcd_prefix, capsys, tmp_path):
    p = etcd_prefix
    url = etcd_server.client_urls[0]
    with etcd_server.client(api=api) if api == "v3" else etcd_server.client() as client:
        _fill(client, p)
        dump = tmp_path / "dump.jsonl"
        assert (
            cli.main(["--endpoints", url, "--api", api, "dump", f"{p}/src", "-f", str(dump)]) == 0
        )
        assert capsys.readouterr().err == ""  # not a terminal: no progress
        lines = [json.loads(line) for line in dump.read_text().splitlines()]
        assert lines[0] == {"format": "pyetcdctl-dump", "version": 1, "prefix": f"{p}/src"}
        keys = [line["key"] for line in lines[1:]]
        assert keys[0] == f"{p}/src"
        for key in keys[1:]:  # parents first
            parent = key.rsplit("/", 1)[0]
            assert parent == f"{p}/src" or keys.index(parent) < keys.index(key)
        ttl = next(line for line in lines[1:] if line["key"] == f"{p}/src/t")
        assert 0 < ttl["ttl"] <= 300 and ttl["expiration"]
        for _ in range(2):  # loading twice changes nothing
            argv = ["--endpoints", url, "--api", api, "load", "--prefix", f"{p}/copy", str(dump)]
            assert cli.main(argv) == 0
            assert _tree(client, f"{p}/copy") == _tree(client, f"{p}/src")
        # from stdin, to the dump's own prefix
        client.delete(f"{p}/src", recursive=True)
        capsys.readouterr()
        sys_stdin = sys.stdin
        try:
            sys.stdin = io.StringIO(dump.read_text())
            assert cli.main(["--endpoints", url, "--api", api, "load"]) == 0
        finally:
            sys.stdin = sys_stdin
        assert _tree(client, f"{p}/src") == _tree(client, f"{p}/copy")
        assert _tree(client, f"{p}/src")["/q"] == (True, None)
        assert client.read(f"{p}/src/t").ttl is not None
        if api == "v2":  # the v3 protocol has no TTL on directories
            assert client.read(f"{p}/src/tdir").ttl is not None
        client.delete(p, recursive=True)


def test_dump_to_stdout_and_bad_input(run, etcd_client, etcd_prefix, tmp_path):
    etcd_client.write(f"{etcd_prefix}/a", "1")
    out = run("dump", etcd_prefix).out.splitlines()
    assert json.loads(out[-1])["value"] == "1"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"not": "a dump"}\n')
    result = run("load", str(bad))
    assert result.code == 1 and "not a pyetcdctl dump" in result.err
    bad.write_text(json.dumps({"format": "pyetcdctl-dump", "prefix": "/x"}) + "\n{oops\n")
    result = run("load", str(bad))
    assert result.code == 1 and "line 2" in result.err and "Traceback" not in result.err
    assert run("dump", f"{etcd_prefix}/nope").code == cli.EXIT_SERVER_ERROR


def test_dump_of_one_key(run, etcd_client, etcd_prefix):
    etcd_client.write(f"{etcd_prefix}/only", "v")
    lines = run("dump", f"{etcd_prefix}/only").out.splitlines()
    assert [json.loads(line)["key"] for line in lines[1:]] == [f"{etcd_prefix}/only"]


def test_progress_shows_counts_only_when_enabled(capsys, monkeypatch):
    progress = _cli_tools.Progress("dump", None, enabled=False)
    progress.update(5)
    progress.close()
    assert capsys.readouterr().err == ""
    monkeypatch.setitem(sys.modules, "tqdm", None)  # the plain fallback
    progress = _cli_tools.Progress("load", 10, enabled=True)
    progress.update(4)
    progress.close()
    assert "load: 4/10 keys" in capsys.readouterr().err


def test_progress_bar_with_tqdm(capsys):
    pytest.importorskip("tqdm")
    progress = _cli_tools.Progress("dump", None, enabled=True)
    progress.update(3)
    progress.close()
    err = capsys.readouterr().err
    assert "dump" in err and "3" in err and "keys" in err


def test_no_progress_flag(run, etcd_client, etcd_prefix, monkeypatch):
    etcd_client.write(f"{etcd_prefix}/a", "1")
    monkeypatch.setattr(_cli_tools, "_show_progress", lambda args: not args.no_progress)
    assert run("dump", "--no-progress", etcd_prefix).err == ""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    assert "dump: 2 keys" in run("dump", etcd_prefix).err


def test_lock_runs_the_command_holding_the_lock(run, etcd_client, etcd_prefix, url, tmp_path):
    locks = f"{etcd_prefix}/locks"
    report = tmp_path / "report"
    check = (
        "import etcd, sys; "
        f"c = etcd.Client(host='127.0.0.1', port={url.rsplit(':', 1)[1]}); "
        f"held = list(c.read('{locks}/job', recursive=True).leaves); "
        f"open({str(report)!r}, 'w').write(f'{{len(held)}} {{held[0].ttl is not None}}'); "
        "sys.exit(7)"
    )
    command = [sys.executable, "-c", check]
    result = run("lock", "--lock-prefix", locks, "--ttl", "10", "job", "--", *command)
    assert result.code == 7
    assert report.read_text() == "1 True"
    (left,) = etcd_client.read(f"{locks}/job", recursive=True).leaves
    assert left.key == f"{locks}/job"
    missing = run("lock", "job")
    assert missing.code == 1 and "command is missing" in missing.err
    nothing = run("lock", "--lock-prefix", locks, "job", "--", "/no/such/program")
    assert nothing.code == 127 and "cannot run" in nothing.err


def test_lock_is_released_on_sigterm(etcd_client, etcd_prefix, url):
    locks = f"{etcd_prefix}/locks"
    argv = [*py_command(), "--endpoints", url, "lock", "--lock-prefix", locks, "job", "--"]
    argv += [sys.executable, "-c", "import time; print('in', flush=True); time.sleep(60)"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=clean_env()) as proc:
        assert read_line(proc) == "in\n"
        holders = list(etcd_client.read(f"{locks}/job", recursive=True).leaves)
        assert len(holders) == 1 and holders[0].key != f"{locks}/job"
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code == 128 + signal.SIGTERM or code == -signal.SIGTERM or code == 143
    leaves = list(etcd_client.read(f"{locks}/job", recursive=True).leaves)
    assert [leaf.key for leaf in leaves] == [f"{locks}/job"]  # only the empty directory


def _spawn(argv):
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env()
    )


def _reap(*procs):
    for proc in procs:
        if proc is None:
            continue
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_elect_once_and_leadership_changes(etcd_prefix, url):
    elections = f"{etcd_prefix}/el"
    base = [*py_command(), "--endpoints", url, "elect", "--lock-prefix", elections, "job"]
    leader = _spawn([*base, "a"])
    other = None
    try:
        lines = collect_lines(leader)
        assert wait_for(lambda: "elected: a\n" in lines, timeout=30), lines
        other = _spawn([*base, "--once", "b"])
        first = read_line(other)
        assert first == "leader: a\n", (first, other.poll())
        leader.send_signal(signal.SIGINT)
        assert leader.wait(timeout=30) == 0
        out, err = other.communicate(timeout=30)
        assert other.returncode == 0, err
        assert "elected: b" in out
        assert "leader: a\n" in lines
    finally:
        _reap(leader, other)


def test_serve_runs_a_throwaway_server():
    argv = [*py_command(), "serve", "--port", "0"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=clean_env()) as proc:
        try:
            first = read_line(proc)  # "etcd 3.5.1 serving on http://127.0.0.1:N (v2 API on)"
            assert "(v2 API on)" in first
            server_url = next(word for word in first.split() if word.startswith("http://"))
            assert server_url.startswith("http://127.0.0.1:")
            host, port = server_url[len("http://") :].rsplit(":", 1)
            with etcd.Client(host=host, port=int(port)) as client:
                client.write("/served", "yes")
                assert client.read("/served").value == "yes"
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    with pytest.raises(etcd.EtcdConnectionFailed), etcd.Client(host=host, port=int(port)) as c:
        c.read("/served", timeout=2)
