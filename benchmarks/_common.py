"""What every benchmark shares: report rows, settings, the context, timing helpers.

The runner (``run.py``) builds a :class:`Context` around a throwaway etcd and
calls each benchmark module's ``BENCHMARK``; a benchmark returns :class:`Row`
objects. Nothing here imports a benchmark module, so there is no import cycle.
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import urllib3

import etcd
import etcd.testing

#: Connections kept per host, the same for the client and for the raw floor.
POOL_SIZE = 10
#: The directory every benchmark writes below (the server is a fresh one).
PREFIX = "/bench"


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the report.

    :param operation: what was measured.
    :param unit: the unit of *client* and *floor*.
    :param client: the figure for :class:`etcd.Client`.
    :param floor: the figure for the bare urllib3/json equivalent; ``None``
        when there is nothing to compare with.
    :param target: the highest acceptable ``client / floor`` (the lowest with
        *higher_is_better*); ``None`` makes the row informational.
    :param note: a short remark printed after the row (spread, sizes ...).
    :param higher_is_better: the figures are rates, so the client passes when
        ``client / floor`` is at least *target* rather than at most.
    """

    operation: str
    unit: str
    client: float
    floor: float | None = None
    target: float | None = None
    note: str = ""
    higher_is_better: bool = False

    @property
    def ratio(self) -> float | None:
        if self.floor is None or self.floor <= 0:
            return None
        return self.client / self.floor

    @property
    def passed(self) -> bool | None:
        ratio = self.ratio
        if self.target is None or ratio is None:
            return None
        return ratio >= self.target if self.higher_is_better else ratio <= self.target


@dataclasses.dataclass(frozen=True)
class Settings:
    """How hard the benchmarks work.

    :param rounds: interleaved client/floor rounds of the request benchmarks.
    :param ops: requests per side and round.
    :param warmup: requests per side before the first round.
    :param tree_leaves: leaves of the synthesized recursive-read body.
    :param tree_dirs: directories the leaves are spread over.
    :param seed_keys: real keys written to learn the server's JSON shape.
    :param parse_runs: interleaved rounds of the parse benchmark; best and median count.
    :param watch_rounds: interleaved watcher/raw rounds of the latency benchmark.
    :param watch_events: events per side and round of the latency benchmark.
    :param watch_warmup: events per side before the first latency round.
    :param flood_events: keys the flat-out writer writes per run.
    :param flood_runs: flat-out runs per side (alternating); the best counts.
    :param history_events: events written before the catch-up runs (below the
        server's 1,000-event history).
    :param history_runs: catch-up runs per side (alternating); the best counts.
    :param threads_rounds: interleaved client/raw rounds of the threads benchmark.
    :param threads_seconds: how long one side reads at one thread count in a round.
    :param threads_warmup: seconds each side reads with the most threads first.
    :param peer_rounds: alternating rounds of the peers benchmark (each contender
        does *ops* reads, then *ops* writes, per round).
    :param peer_threads_rounds: alternating rounds of the peers' thread comparison.
    :param peer_threads_seconds: how long one side reads flat out in such a round.
    """

    rounds: int = 5
    ops: int = 2000
    warmup: int = 300
    tree_leaves: int = 100_000
    tree_dirs: int = 100
    seed_keys: int = 1000
    parse_runs: int = 11
    watch_rounds: int = 4
    watch_events: int = 250
    watch_warmup: int = 50
    flood_events: int = 5000
    flood_runs: int = 2
    history_events: int = 900
    history_runs: int = 5
    threads_rounds: int = 5
    threads_seconds: float = 1.0
    threads_warmup: float = 0.5
    peer_rounds: int = 8
    peer_threads_rounds: int = 7
    peer_threads_seconds: float = 1.0

    @classmethod
    def quick(cls) -> Settings:
        return cls(
            rounds=3,
            ops=500,
            warmup=100,
            seed_keys=200,
            parse_runs=3,
            watch_events=50,
            watch_warmup=20,
            flood_events=1000,
            flood_runs=1,
            history_events=500,
            history_runs=2,
            threads_rounds=3,
            threads_seconds=0.3,
            threads_warmup=0.2,
            peer_rounds=3,
            peer_threads_rounds=2,
            peer_threads_seconds=0.3,
        )


@dataclasses.dataclass
class Context:
    """What a benchmark gets: the running server, the settings, the peers' folder.

    :param peers_dir: where the peers benchmark keeps the virtual environments
        of the clients it compares with (created on first use, then reused).
    """

    cluster: etcd.testing.EtcdCluster
    settings: Settings
    peers_dir: Path = dataclasses.field(
        default_factory=lambda: Path(__file__).resolve().parent / ".peers"
    )

    @property
    def base_url(self) -> str:
        return self.cluster.members[0].client_url

    def client(self) -> etcd.Client:
        """A new client of the server; close it when done."""
        return self.cluster.client(per_host_pool_size=POOL_SIZE)

    def raw_pool(self) -> urllib3.PoolManager:
        """A bare pool with the client's pool size and its default timeout.

        Keep-alive is urllib3's default. The timeout matters: a socket with a
        timeout costs CPython a poll() and two GIL hand-offs per send and
        receive, about 10 µs of CPU per request, and every client request has
        one (``read_timeout``, 60 s by default). A floor without any timeout
        would measure that, not the client.
        """
        return urllib3.PoolManager(num_pools=10, maxsize=POOL_SIZE, timeout=60.0)

    def key_url(self, key: str) -> str:
        """The URL of *key*, which must need no quoting."""
        return f"{self.base_url}/v2/keys{key}"


BenchmarkFunc = Callable[[Context], list[Row]]


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """A benchmark: its ``--only`` name, a one-line description and its function."""

    name: str
    description: str
    func: BenchmarkFunc


def cpu_per_op(op: Callable[[], object], count: int) -> float:
    """Client-side CPU seconds per call of *op* over *count* calls."""
    gc.collect()
    start = time.process_time()
    for _ in range(count):
        op()
    return (time.process_time() - start) / count


@dataclasses.dataclass(frozen=True)
class CpuComparison:
    client_rounds: list[float]
    floor_rounds: list[float]

    @property
    def client(self) -> float:
        return statistics.median(self.client_rounds)

    @property
    def floor(self) -> float:
        return statistics.median(self.floor_rounds)

    def note(self) -> str:
        def spread(values: list[float]) -> str:
            return f"{min(values) * 1e6:.0f}-{max(values) * 1e6:.0f}"

        return f"rounds: client {spread(self.client_rounds)}, floor {spread(self.floor_rounds)} µs"


def compare_cpu(
    client_op: Callable[[], object], floor_op: Callable[[], object], settings: Settings
) -> CpuComparison:
    """Time both operations in interleaved rounds, alternating which goes first."""
    for _ in range(settings.warmup):
        client_op()
        floor_op()
    client_rounds: list[float] = []
    floor_rounds: list[float] = []
    for number in range(settings.rounds):
        if number % 2 == 0:
            client_rounds.append(cpu_per_op(client_op, settings.ops))
            floor_rounds.append(cpu_per_op(floor_op, settings.ops))
        else:
            floor_rounds.append(cpu_per_op(floor_op, settings.ops))
            client_rounds.append(cpu_per_op(client_op, settings.ops))
    return CpuComparison(client_rounds, floor_rounds)


def best_time(
    work: Callable[[], Callable[[], object]], runs: int, *, pause_gc: bool = False
) -> float:
    """The shortest of *runs* CPU timings of a piece of single-threaded work.

    The clock is ``time.process_time``: for work that never waits, it equals
    the wall time on a quiet machine, and on a shared one it leaves out the
    time the process spent waiting for a core. *work* prepares one run and
    returns the callable to time, so that the preparation and the freeing of
    what the timed call built stay untimed. With *pause_gc* the cyclic garbage
    collector is off while the call runs, which shows how much of its time
    goes to collections.
    """
    best = float("inf")
    for _ in range(runs):
        timed = work()
        gc.collect()
        if pause_gc:
            gc.disable()
        try:
            start = time.process_time()
            kept = timed()
            elapsed = time.process_time() - start
        finally:
            gc.enable()
        del kept
        best = min(best, elapsed)
    return best


def check_status(response: urllib3.BaseHTTPResponse) -> None:
    """Raise unless etcd answered 200 or 201."""
    if response.status not in (200, 201):
        raise RuntimeError(f"etcd answered {response.status}: {response.data[:200]!r}")
