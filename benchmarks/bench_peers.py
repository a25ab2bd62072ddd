"""This package against its peers and two floors, in alternating rounds on one etcd.

The contenders are this package, python-etcd 0.4.5 (the library it replaces),
k3etcd (another v2 client on PyPI, with HTTP code of its own), urllib3's
``HTTPConnectionPool.urlopen`` + ``json.loads`` and one reused
``http.client.HTTPConnection`` + ``json.loads``. The two peers are installed
from PyPI into virtual environments of their own below ``Context.peers_dir``
(``benchmarks/.peers/`` by default, git-ignored), created with ``python -m
venv`` and pip on first use and reused afterwards. Their code only runs in
worker processes (``_peer_worker.py``); nothing of it is imported here.

Every contender runs in a process of its own with the same interpreter, the
same urllib3 (pinned in python-etcd 0.4.5's environment) and the same 60 s
socket timeout; each reports its own ``time.process_time`` per operation. The
processes take turns, one at a time, so they do not compete for the CPU, and
the first one to go rotates from round to round.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import shutil
import statistics
import subprocess
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import urllib3
from _common import PREFIX, Benchmark, Context, Row, check_status

import etcd
import etcd.testing

#: The worker script every contender runs.
WORKER = Path(__file__).resolve().parent / "_peer_worker.py"
#: Client CPU of this package per read or write, over python-etcd 0.4.5's.
TARGET_045 = 0.6
#: The stretch goal for the same ratio.
STRETCH_045 = 0.5
#: Client CPU of this package per read or write, over k3etcd's.
TARGET_K3ETCD = 0.9
#: Threads in the thread comparison.
THREADS = 16
#: Reads/s of THREADS threads sharing one client of this package, over THREADS
#: threads with one python-etcd 0.4.5 client each (higher is better).
TARGET_THREADS = 1.4


@dataclasses.dataclass(frozen=True)
class Peer:
    """A client from PyPI that runs in a virtual environment of its own.

    :param name: the folder below the peers directory.
    :param requirements: what pip installs there.
    """

    name: str
    requirements: tuple[str, ...]


def _peers() -> tuple[Peer, Peer]:
    # python-etcd 0.4.5 runs on urllib3: the same release as this package, so
    # that the comparison is of the clients, not of two urllib3 releases.
    urllib3_version = importlib.metadata.version("urllib3")
    return (
        Peer("python-etcd-0.4.5", ("python-etcd==0.4.5", f"urllib3=={urllib3_version}")),
        Peer("k3etcd-0.2.3", ("k3etcd==0.2.3",)),
    )


def _run_quietly(command: Sequence[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise RuntimeError(
            f"{what} failed with status {done.returncode} (is PyPI reachable?):\n"
            + "\n".join(output)
        )


def peer_python(peers_dir: Path, peer: Peer) -> Path:
    """The Python of *peer*'s virtual environment, created and installed if needed.

    A stamp file records what was installed with which interpreter; when it
    does not match, the environment is built anew.
    """
    env = peers_dir / peer.name
    python = env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    stamp = env / "installed.json"
    wanted = {"requirements": list(peer.requirements), "python": sys.version}
    if python.exists() and stamp.exists():
        try:
            if json.loads(stamp.read_text()) == wanted:
                return python
        except ValueError:
            pass
    shutil.rmtree(env, ignore_errors=True)
    print(f"  peers: installing {' '.join(peer.requirements)} into {env}", file=sys.stderr)
    env.parent.mkdir(parents=True, exist_ok=True)
    _run_quietly([sys.executable, "-m", "venv", str(env)], f"creating the venv {env}")
    _run_quietly(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *peer.requirements,
        ],
        f"pip install {' '.join(peer.requirements)}",
    )
    stamp.write_text(json.dumps(wanted))
    return python


class Worker:
    """A contender's process: sends it commands and reads its answers."""

    def __init__(self, label: str, python: Path | str, kind: str, *extra: str) -> None:
        self.label = label
        # -I: no PYTHONPATH, no user site and not the script's folder, so the
        # worker imports exactly what its environment (or --path) holds.
        self.process = subprocess.Popen(
            [str(python), "-I", str(WORKER), kind, f"{PREFIX}/peers/key", "y" * 32, *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.imported: dict[str, str] = self._answer()

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:  # pragma: no cover - Popen was given PIPE
            raise RuntimeError("the worker has no pipes")
        return stdin, stdout

    def _answer(self) -> dict[str, Any]:
        line = self._pipes()[1].readline()
        if not line:
            raise RuntimeError(
                f"the worker of {self.label} exited with status {self.process.wait()} "
                "(its error is above)"
            )
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, **command: Any) -> dict[str, Any]:
        stdin = self._pipes()[0]
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()
        return self._answer()

    def close(self) -> None:
        stdin = self.process.stdin
        if stdin is not None:
            stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _host_port(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise RuntimeError(f"cannot tell the host and port of {url}")
    return parts.hostname, parts.port


def _checked(worker: Worker, inside: Path, version: str | None = None) -> Worker:
    """*worker*, after checking that it imported its client from below *inside*."""
    module = Path(worker.imported["module"]).resolve()
    if inside.resolve() not in module.parents:
        worker.close()
        raise RuntimeError(f"the worker of {worker.label} imported {module}, not below {inside}")
    if version is not None and worker.imported["version"] != version:
        worker.close()
        raise RuntimeError(
            f"the worker of {worker.label} imported version {worker.imported['version']}"
        )
    return worker


def _start_workers(ctx: Context, kinds: Sequence[str]) -> dict[str, Worker]:
    """Start the workers named in *kinds*: "this", "0.4.5", "k3etcd", "urllib3", "http.client"."""
    old, k3 = _peers()
    package = Path(etcd.__file__).resolve().parent
    workers: dict[str, Worker] = {}
    try:
        for kind in kinds:
            if kind == "this":
                worker = Worker(
                    "this package", sys.executable, "etcd", "--path", str(package.parent)
                )
                workers[kind] = _checked(worker, package, etcd.__version__)
            elif kind == "0.4.5":
                python = peer_python(ctx.peers_dir, old)
                worker = Worker("python-etcd 0.4.5", python, "etcd")
                workers[kind] = _checked(worker, python.parent.parent, "0.4.5")
            elif kind == "k3etcd":
                python = peer_python(ctx.peers_dir, k3)
                worker = Worker("k3etcd 0.2.3", python, "k3etcd")
                workers[kind] = _checked(worker, python.parent.parent, "0.2.3")
            elif kind == "urllib3":
                workers[kind] = Worker("urllib3 urlopen + json.loads", sys.executable, "urllib3")
            elif kind == "http.client":
                workers[kind] = Worker("http.client + json.loads", sys.executable, "http.client")
            else:
                raise ValueError(kind)
    except BaseException:
        for worker in workers.values():
            worker.close()
        raise
    return workers


@dataclasses.dataclass(frozen=True)
class Figures:
    """The rounds of one contender and one measure."""

    rounds: list[float]

    @property
    def min(self) -> float:
        return min(self.rounds)

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)


def _cpu_rounds(ctx: Context, workers: dict[str, Worker]) -> dict[tuple[str, str], Figures]:
    """Client CPU seconds per operation, per (contender, "get" or "put")."""
    settings = ctx.settings
    host, port = _host_port(ctx.base_url)
    names = list(workers)
    for op in ("put", "get"):
        for name in names:
            workers[name].ask(op=op, host=host, port=port, count=settings.warmup)
    rounds: dict[tuple[str, str], list[float]] = {
        (n, op): [] for n in names for op in ("get", "put")
    }
    for number in range(settings.peer_rounds):
        shift = number % len(names)
        order = names[shift:] + names[:shift]
        for op in ("get", "put"):
            for name in order:
                answer = workers[name].ask(op=op, host=host, port=port, count=settings.ops)
                rounds[name, op].append(answer["cpu"] / settings.ops)
    return {key: Figures(values) for key, values in rounds.items()}


def _threads_rounds(ctx: Context) -> tuple[dict[str, Figures], dict[str, Figures], str]:
    """Reads/s and CPU/read of this package (one shared client) and 0.4.5 (own clients)."""
    settings = ctx.settings
    key = f"{PREFIX}/peers/key"
    rates: dict[str, list[float]] = {"this": [], "0.4.5": []}
    cpus: dict[str, list[float]] = {"this": [], "0.4.5": []}
    with etcd.testing.EtcdCluster(3, binary=ctx.cluster.binary) as cluster:
        hosts = [list(_host_port(url)) for url in cluster.client_urls]
        pool = urllib3.PoolManager()
        try:
            response = pool.request_encode_body(
                "PUT",
                f"{cluster.client_urls[0]}/v2/keys{key}",
                fields={"value": "y" * 32},
                encode_multipart=False,
            )
            check_status(response)
        finally:
            pool.clear()
        workers = _start_workers(ctx, ["this", "0.4.5"])
        try:
            shared = {"this": True, "0.4.5": False}

            def run(name: str, seconds: float) -> dict[str, Any]:
                return workers[name].ask(
                    op="threads",
                    hosts=hosts,
                    threads=THREADS,
                    seconds=seconds,
                    shared=shared[name],
                )

            for name in workers:
                run(name, settings.threads_warmup)
            for number in range(settings.peer_threads_rounds):
                order = ["this", "0.4.5"] if number % 2 == 0 else ["0.4.5", "this"]
                for name in order:
                    answer = run(name, settings.peer_threads_seconds)
                    rates[name].append(answer["reads"] / answer["elapsed"])
                    cpus[name].append(answer["cpu"] / answer["reads"])
            leader = cluster.leader()
            member = "the leader" if leader.client_url == cluster.client_urls[0] else "a follower"
        finally:
            for worker in workers.values():
                worker.close()
    return (
        {name: Figures(values) for name, values in rates.items()},
        {name: Figures(values) for name, values in cpus.items()},
        member,
    )


def _us(figures: Figures) -> str:
    return f"min {figures.min * 1e6:.0f}, median {figures.median * 1e6:.0f}"


def bench_peers(ctx: Context) -> list[Row]:
    """Client CPU per read and write of every contender, and the 16-thread comparison."""
    settings = ctx.settings
    kinds = ["this", "0.4.5", "k3etcd", "urllib3", "http.client"]
    workers = _start_workers(ctx, kinds)
    try:
        labels = {kind: worker.label for kind, worker in workers.items()}
        figures = _cpu_rounds(ctx, workers)
    finally:
        for worker in workers.values():
            worker.close()
    rows: list[Row] = []
    rounds = f"{settings.peer_rounds} rounds x {settings.ops:,}"
    for op, what in (("get", "read"), ("put", "write")):
        for kind in kinds:
            mine = figures[kind, op]
            rows.append(
                Row(
                    f"peers {what}: {labels[kind]}",
                    "CPU µs/op",
                    mine.median * 1e6,
                    note=f"informational; {rounds}: {_us(mine)}, max {max(mine.rounds) * 1e6:.0f}",
                )
            )
        this = figures["this", op]
        for kind, target in (
            ("0.4.5", TARGET_045),
            ("k3etcd", TARGET_K3ETCD),
            ("urllib3", None),
            ("http.client", None),
        ):
            other = figures[kind, op]
            min_ratio = this.min / other.min
            note = f"median of rounds; min/min {min_ratio:.3f}x"
            if kind == "0.4.5":
                median_ratio = this.median / other.median
                met = "met" if max(median_ratio, min_ratio) <= STRETCH_045 else "not met"
                note += f"; stretch ≤{STRETCH_045:.2f}x {met}"
            rows.append(
                Row(
                    f"peers {what}: this package / {labels[kind]}",
                    "CPU µs/op",
                    this.median * 1e6,
                    other.median * 1e6,
                    target=target,
                    note=note if target is not None else "informational, the floor; " + note,
                )
            )
    rates, cpus, member = _threads_rounds(ctx)
    this_rate, old_rate = rates["this"], rates["0.4.5"]
    rows.append(
        Row(
            f"peers: {THREADS} threads, one shared client / one 0.4.5 client each",
            "reads/s",
            this_rate.median,
            old_rate.median,
            target=TARGET_THREADS,
            higher_is_better=True,
            note=(
                f"higher is better; median of {settings.peer_threads_rounds} x "
                f"{settings.peer_threads_seconds:g} s, 3-member cluster, reading from {member}; "
                f"min/min {this_rate.min / old_rate.min:.3f}x; rounds: this "
                f"{this_rate.min:.0f}-{max(this_rate.rounds):.0f}, 0.4.5 "
                f"{old_rate.min:.0f}-{max(old_rate.rounds):.0f}; process CPU/read: this "
                f"{cpus['this'].median * 1e6:.0f}, 0.4.5 {cpus['0.4.5'].median * 1e6:.0f} µs"
            ),
        )
    )
    return rows


BENCHMARK = Benchmark(
    "peers",
    "this package vs python-etcd 0.4.5, k3etcd, urllib3 urlopen and http.client, in processes",
    bench_peers,
)
