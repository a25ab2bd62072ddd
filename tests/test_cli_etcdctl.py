"""pyetcdctl side by side with the real ``ETCDCTL_API=2 etcdctl`` on the same server.

Each scenario runs once with etcdctl below ``PREFIX/ctl`` and once with
``main()`` below ``PREFIX/py``; every step must give the same exit code,
stdout and stderr once the prefix and the numbers that advance between the
two runs (indexes, TTL countdowns, member ids) are normalised.
"""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.cli_support import (
    ETCDCTL,
    clean_env,
    collect_lines,
    needs_etcdctl,
    normalise,
    py_command,
    run_etcdctl,
    run_py,
)
from tests.helpers import wait_for

pytestmark = needs_etcdctl

KEY_STEPS = [
    "set {p}/a 1",
    "get {p}/a",
    "get {p}/nope",
    "-o extended get {p}/a",
    "-o json get {p}/a",
    "-o json get {p}/nope",
    "set --swap-with-value 1 {p}/a 2",
    "set {p}/a 3 --swap-with-value 1",
    "set --swap-with-index 1 {p}/a 3",
    "set --ttl 100 {p}/t x",
    "-o extended get {p}/t",
    "-o json get {p}/t",
    "mk {p}/a 1",
    "mk {p}/m 1",
    "-o extended mk {p}/m2 1",
    "mk --in-order {p}/q v1",
    "mk --in-order {p}/q v2",
    "-o extended mk --in-order --ttl 50 {p}/q v3",
    "-o json mk --in-order {p}/q v4",
    "mkdir {p}/d",
    "mkdir {p}/d",
    "-o extended mkdir {p}/e",
    "-o json mkdir --ttl 30 {p}/e2",
    "setdir {p}/d",
    "-o json setdir {p}/e3",
    "setdir --ttl 40 {p}/e4",
    "update {p}/nope x",
    "update {p}/a 9",
    "-o json update --ttl 20 {p}/a 10",
    "-o extended update {p}/a 11",
    "updatedir {p}/nope",
    "updatedir {p}/a",
    "ls --sort {p}",
    "ls --sort {p}/q",
    "ls --sort -r {p}",
    "ls --sort -p {p}",
    "ls --sort -r -p {p}",
    "ls {p}/a",
    "ls {p}/nope",
    "ls {p}/nope/deeper",
    "-o extended ls --sort {p}/q",
    "-o json ls --sort -r {p}",
    "-o json ls {p}/a",
    "get {p}/d",
    "-o json get {p}/d",
    "get --sort --quorum {p}/a",
    "ls --quorum {p}/d",
    "set {p}/html <&>é",
    "-o json get {p}/html",
    "rm {p}/a",
    "set {p}/a v",
    "-o extended rm {p}/a",
    "set {p}/a v",
    "-o json rm {p}/a",
    "rm {p}/d",
    "rm --dir {p}/d",
    "-o extended rm --dir {p}/e",
    "-o json rmdir {p}/e3",
    "rm {p}/q",
    "rm -r {p}/q",
    "set {p}/f v",
    "rm --with-value x {p}/f",
    "rm --with-value v {p}/f",
    "set {p}/f v",
    "rm --with-index 1 {p}/f",
    "rmdir {p}/e2",
    "mkdir {p}/e5/x",
    "rmdir {p}/e5",
    "set {p}/g v",
    "rmdir {p}/g",
    "rm {p}/nope",
    "rm -r {p}/nope",
    "set {p}/k v surplus",
    "set {p}/late --ttl 50 v",
    "-o extended get {p}/late",
    "ls {p} --sort -p",
    "get {p}/k",
    "set",
    "set {p}/k",
    "mk",
    "mk {p}/k",
    "mkdir",
    "setdir",
    "update",
    "update {p}/k",
    "updatedir",
    "rm",
    "rmdir",
    "watch",
    "exec-watch",
    "exec-watch {p}/k",
    "--output yaml get {p}/k",
    "-o yaml set {p}/k v2",
    "-o yaml mkdir {p}/yaml",
    "-o yaml ls {p}/k",
    "-o yaml ls --sort {p}",
    "bogus",
]


def _compare(capsys, url, prefix, steps, *, stderr=True, sep="/"):
    differences = []
    for template in steps:
        results = []
        for tool in ("ctl", "py"):
            base = f"{prefix}{sep}{tool}"
            argv = [part.format(p=base) for part in template.split(" ")]
            run = run_etcdctl(url, *argv) if tool == "ctl" else run_py(capsys, url, *argv)
            results.append(
                (run.code, normalise(run.out, base), normalise(run.err, base) if stderr else "")
            )
        if results[0] != results[1]:
            differences.append((template, results[0], results[1]))
    assert not differences, "\n".join(
        f"{t}\n  etcdctl:   {a}\n  pyetcdctl: {b}" for t, a, b in differences
    )


def test_key_commands_match_etcdctl(etcd_server, etcd_prefix, capsys):
    _compare(capsys, etcd_server.client_urls[0], etcd_prefix, KEY_STEPS)


def test_watch_after_index_matches_etcdctl(etcd_server, etcd_client, etcd_prefix, capsys):
    url = etcd_server.client_urls[0]
    start = {}
    for tool in ("ctl", "py"):
        base = f"{etcd_prefix}/{tool}"
        start[tool] = etcd_client.write(f"{base}/w/a", "0").modifiedIndex
        etcd_client.write(f"{base}/w/a", "1")
        etcd_client.write(f"{base}/w/d", None, dir=True)
        etcd_client.delete(f"{base}/w/a")
        etcd_client.write(f"{base}/w/a", "2", ttl=100)
    steps = []
    for output in ("simple", "extended", "json"):
        for recursive in ("", "-r "):
            steps.append(f"-o {output} watch {recursive}--after-index {{i}} {{p}}/w/a")
            steps.append(f"-o {output} watch {recursive}--after-index {{i}} {{p}}/w")
    differences = []
    for template in steps:
        results = []
        for tool in ("ctl", "py"):
            base = f"{etcd_prefix}/{tool}"
            argv = template.format(p=base, i=start[tool]).split(" ")
            if "-r" not in argv and argv[-1].endswith("/w"):
                # a plain watch of a directory waits for a change of the directory itself
                argv = [*argv[:-1], f"{argv[-1]}/a"]
            run = run_etcdctl(url, *argv) if tool == "ctl" else run_py(capsys, url, *argv)
            results.append((run.code, normalise(run.out, base), run.err))
        if results[0] != results[1]:
            differences.append((template, results[0], results[1]))
    assert not differences, differences


@pytest.mark.parametrize(
    "command",
    [
        ["watch", "--forever", "-r", "{p}"],
        ["-o", "json", "watch", "-f", "{p}/a"],
        ["-o", "extended", "watch", "-f", "{p}/a"],
        [
            "exec-watch",
            "-r",
            "{p}",
            "--",
            "sh",
            "-c",
            'echo "$ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE '
            'idx=$ETCD_WATCH_MODIFIED_INDEX"',
        ],
    ],
    ids=["watch-forever", "watch-forever-json", "watch-forever-extended", "exec-watch"],
)
def test_endless_watches_match_etcdctl(etcd_server, etcd_client, etcd_prefix, command):
    """Both run as processes, see the same changes, and end on SIGINT with exit code 0."""
    url = etcd_server.client_urls[0]
    outputs = []
    for tool, program in (("ctl", [ETCDCTL]), ("py", py_command())):
        base = f"{etcd_prefix}/{tool}"
        after = etcd_client.write(f"{base}/start", "s").modifiedIndex
        etcd_client.write(f"{base}/a", "1")
        etcd_client.write(f"{base}/dir", None, dir=True)
        etcd_client.delete(f"{base}/a")
        etcd_client.write(f"{base}/a", "<2>")
        etcd_client.write(f"{base}/a", "LAST")
        argv = [*program, "--endpoints", url, *(part.format(p=base) for part in command)]
        at = next(i for i, arg in enumerate(argv) if arg in ("watch", "exec-watch")) + 1
        argv[at:at] = ["--after-index", str(after)]
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=clean_env()
        ) as proc:
            lines = collect_lines(proc)
            try:
                _wait_for_all(lines, exec_watch=command[0] == "exec-watch")
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=20)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        got = normalise("".join(lines), base).splitlines()
        if command[0] == "exec-watch":
            got.sort()  # etcdctl starts the commands without waiting: their order varies
        outputs.append((proc.returncode, got))
    assert outputs[0] == outputs[1]
    assert outputs[1][0] == 0


def _wait_for_all(lines: list[str], *, exec_watch: bool) -> None:
    assert wait_for(lambda: any("LAST" in line for line in lines), timeout=20), lines
    if exec_watch:  # etcdctl runs its commands concurrently: "LAST" may come first
        assert wait_for(lambda: len(lines) >= 4, timeout=20), lines


def test_member_and_health_commands_match_etcdctl(etcd_server, capsys):
    url = etcd_server.client_urls[0]
    steps = [
        "member list",
        "-o json member list",
        "cluster-health",
        "member add",
        "member add n9",
        "member remove",
        "member remove nope",
        "member update",
        "member update x",
        "member update 1234 http://127.0.0.1:9",
        "member bogus",
    ]
    _compare(capsys, url, "unused", steps)


def test_unreachable_cluster_gives_etcdctl_exit_codes(capsys):
    """stdout and exit code match; the reason on stderr is worded differently (Go's dialer)."""
    dead = "http://127.0.0.1:1"
    for argv in (["get", "/a"], ["--no-sync", "get", "/a"], ["cluster-health"]):
        ctl = run_etcdctl(dead, *argv)
        py = run_py(capsys, dead, *argv)
        assert (py.code, py.out) == (ctl.code, ctl.out), argv
        assert py.err.startswith("Error:  client: etcd cluster is unavailable or misconfigured")
        assert "Traceback" not in py.err


def test_auth_commands_match_etcdctl(etcd_cluster_factory, capsys):
    cluster = etcd_cluster_factory(size=1)
    url = cluster.client_urls[0]
    steps = [
        "user list",
        "user add {p}u:pw",
        "user add {p}u:pw",
        "user get {p}u",
        "user get {p}nobody",
        "role add {p}r",
        "role add {p}r",
        "role get {p}r",
        "role grant {p}r --path /app/* --rw",
        "role grant {p}r --path /ro/* --read",
        "role grant {p}r --path /wo/* --write",
        "role get {p}r",
        "role revoke {p}r --path /ro/* --read",
        "role get {p}r",
        "role grant {p}r",
        "role grant {p}r --path /x",
        "role grant {p}r --path /x --read --write",
        "role revoke {p}nobody --path /a --read",
        "user grant {p}u --roles {p}r",
        "user get {p}u",
        "user grant {p}u",
        "user revoke {p}u --roles {p}r",
        "user get {p}u",
        "user revoke {p}u --roles {p}r",
        "user add",
        "user get",
        "user remove",
        "user passwd",
        "role add",
        "role get",
        "role remove",
        "role revoke",
        "auth disable",
        "user remove {p}u",
        "user remove {p}u",
        "role remove {p}r",
        "role remove {p}r",
        "role get {p}r",
        "role remove root",
        "role list",
    ]
    _compare(capsys, url, "zz", steps, sep="_")
    # auth on and off, in one run each (the switch is global)
    for tool in ("ctl", "py"):
        run = (
            (lambda *a: run_etcdctl(url, *a))
            if tool == "ctl"
            else (lambda *a: run_py(capsys, url, *a))
        )
        assert run("user", "add", "root:rootpw").code == 0
        enabled = run("auth", "enable")
        assert (enabled.code, enabled.out) == (0, "Authentication Enabled\n"), tool
        again = run("auth", "enable")
        assert (again.code, again.out, again.err) == (1, "", "Insufficient credentials\n"), tool
        denied = run("user", "list")
        assert (denied.code, denied.err) == (1, "Insufficient credentials\n"), tool
        listed = run("-u", "root:rootpw", "user", "list")
        assert (listed.code, listed.out) == (0, "root\n"), tool
        off = run("-u", "root:rootpw", "auth", "disable")
        assert (off.code, off.out) == (0, "Authentication Disabled\n"), tool
        already = run("auth", "disable")
        assert (already.code, already.err) == (1, "auth: already disabled\n"), tool
        assert run("user", "remove", "root").code == 0


def test_tls_flags_and_variables_match_etcdctl(tmp_path, capsys, monkeypatch):
    from etcd.testing import EtcdCluster
    from tests.certs import make_certificates

    certs = make_certificates(tmp_path)
    server = EtcdCluster(
        1,
        client_scheme="https",
        extra_args=[
            f"--cert-file={certs.server_cert}",
            f"--key-file={certs.server_key}",
            "--client-cert-auth",
            f"--trusted-ca-file={certs.ca}",
        ],
        ca_cert=certs.ca,
        cert=certs.client_cert,
        key=certs.client_key,
    )
    with server:
        url = server.client_urls[0]
        tls = ["--ca-file", certs.ca, "--cert-file", certs.client_cert]
        tls += ["--key-file", certs.client_key]
        for argv in (["set", "/tls", "yes"], ["get", "/tls"], ["member", "list"]):
            ctl, py = run_etcdctl(url, *tls, *argv), run_py(capsys, url, *tls, *argv)
            assert (py.code, py.out) == (ctl.code, ctl.out) == (0, py.out), argv
        assert run_py(capsys, url, "get", "/tls").code != 0  # no certificate: refused
        monkeypatch.setenv("ETCDCTL_CA_FILE", certs.ca)
        monkeypatch.setenv("ETCDCTL_CERT_FILE", certs.client_cert)
        monkeypatch.setenv("ETCDCTL_KEY_FILE", certs.client_key)
        assert run_py(capsys, url, "get", "/tls").out == "yes\n"


def test_password_from_stdin_matches_etcdctl(etcd_cluster_factory, capsys, monkeypatch):
    import io
    import sys

    url = etcd_cluster_factory(size=1).client_urls[0]
    ctl = run_etcdctl(url, "user", "add", "ctl", input="pw1\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("pw1\n"))
    py = run_py(capsys, url, "user", "add", "py")
    assert (py.code, py.out) == (ctl.code, ctl.out.replace("ctl", "py"))
    monkeypatch.setattr(sys, "stdin", io.StringIO("pw2\n"))
    py = run_py(capsys, url, "user", "passwd", "py")
    ctl = run_etcdctl(url, "user", "passwd", "ctl", input="pw2\n")
    assert (py.code, py.out) == (ctl.code, ctl.out) == (0, "New password: \nPassword updated\n")
    # the new password works: switch auth on as root and use the user
    for name in ("root:r",):
        assert run_py(capsys, url, "user", "add", name).code == 0
    assert run_py(capsys, url, "auth", "enable").code == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("r\n"))
    got = run_py(capsys, url, "-u", "root", "user", "get", "py").out
    assert got == "Password: \nUser: py\nRoles: \n"  # the prompt on stdout, as etcdctl
    assert run_py(capsys, url, "-u", "root:r", "auth", "disable").code == 0
