"""Helpers of the command-line tests: run pyetcdctl in-process, run the real etcdctl."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from etcd.cli import main

ETCDCTL = shutil.which("etcdctl")

needs_etcdctl = pytest.mark.skipif(
    ETCDCTL is None,
    reason="etcdctl is not installed (apt-get install etcd-client); CI installs it",
)


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def url(etcd_server: Any) -> str:
    """The client URL of the shared test server."""
    return str(etcd_server.client_urls[0])


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], url: str) -> Callable[..., Run]:
    """``run(*argv)``: :func:`run_py` against the shared test server."""
    return lambda *argv: run_py(capsys, url, *argv)


def clean_env() -> dict[str, str]:
    """The environment without ETCDCTL_* variables, in v2 mode for etcdctl."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["ETCDCTL_API"] = "2"
    return env


def run_py(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> Run:
    """``main(["--endpoints", url, *argv])`` in this process, with its output."""
    capsys.readouterr()
    code = main(["--endpoints", url, *argv])
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def run_etcdctl(url: str, *argv: str, timeout: float = 30, input: str | None = None) -> Run:
    """The real ``ETCDCTL_API=2 etcdctl --endpoints url ...``, reading *input* if given."""
    assert ETCDCTL is not None
    proc = subprocess.run(
        [ETCDCTL, "--endpoints", url, *argv],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=timeout,
        **({"stdin": subprocess.DEVNULL} if input is None else {"input": input}),
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def py_command() -> list[str]:
    """How to start pyetcdctl in a child process."""
    return [sys.executable, "-m", "etcd"]


_INDEXES = [
    (re.compile(r"(Created-Index|Modified-Index|Index): \d+"), r"\1: N"),
    (re.compile(r'"(createdIndex|modifiedIndex)":\d+'), r'"\1":N'),
    (re.compile(r'"expiration":"[^"]*"'), '"expiration":"T"'),
    (re.compile(r'"ttl":\d+'), '"ttl":T'),
    (re.compile(r"TTL: \d+"), "TTL: T"),
    (re.compile(r"\[\d+\]$", re.M), "[N]"),
    (re.compile(r"\[(\d+) != \d+\]"), r"[\1 != N]"),
    (re.compile(r"/\d{20}\b"), "/SEQ"),
    (re.compile(r"\b[0-9a-f]{16}\b"), "MEMBERID"),
    (re.compile(r"\b(ETCD_WATCH_MODIFIED_INDEX|idx)=\d+"), r"\1=N"),
]


def normalise(text: str, prefix: str) -> str:
    """*text* with *prefix* and the numbers that advance between two runs replaced."""
    text = text.replace(prefix, "<P>")
    for pattern, replacement in _INDEXES:
        text = pattern.sub(replacement, text)
    return text


def collect_lines(proc: subprocess.Popen[str]) -> list[str]:
    """Read the lines of *proc*'s stdout into a list, in a daemon thread, as they come."""
    lines: list[str] = []
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.extend(stdout), daemon=True).start()
    return lines


def read_line(proc: subprocess.Popen[str]) -> str:
    """The next line of *proc*'s stdout."""
    assert proc.stdout is not None
    return proc.stdout.readline()
