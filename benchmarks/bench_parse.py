"""A 100,000-leaf recursive read parsed and walked, against ``json.loads`` of the same body."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from typing import Any

import urllib3
from _common import PREFIX, Benchmark, Context, Row, best_time, check_status
from urllib3.response import HTTPResponse

import etcd
from etcd import _result


def _decoder_name() -> str:
    """Which decoder the client uses: msgspec (the speedups extra) or json."""
    if _result._FAST_DECODE is None:
        return "json (no speedups extra)"
    import msgspec

    return f"msgspec {msgspec.__version__} (speedups extra)"


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
            check_status(response)
    response = pool.request("GET", ctx.key_url(root), fields={"recursive": "true"})
    check_status(response)
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


def _interleaved(
    works: dict[str, tuple[Callable[[], Callable[[], object]], bool]], runs: int
) -> dict[str, list[float]]:
    """CPU seconds of *runs* timings of each work, interleaved.

    Each round times every work once, in an order reversed every other round,
    so that a machine whose speed drifts (the page faults of a large parse
    cost a virtual machine more at some times than at others) weighs on the
    client and the floor alike. A work is ``(prepare, pause_gc)``, as for
    :func:`best_time`.
    """
    times: dict[str, list[float]] = {name: [] for name in works}
    names = list(works)
    for number in range(runs):
        for name in names if number % 2 == 0 else reversed(names):
            prepare, pause_gc = works[name]
            times[name].append(best_time(prepare, 1, pause_gc=pause_gc))
    return times


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

        def walking(
            decode: Callable[[HTTPResponse], etcd.EtcdResult],
        ) -> Callable[[], Callable[[], object]]:
            """Parse with *decode*, then read ``key`` and ``value`` of every leaf."""

            def prepare() -> Callable[[], object]:
                resp = response()

                def timed() -> object:
                    result = decode(resp)
                    seen = 0
                    for leaf in result.leaves:
                        if leaf.key and leaf.value is not None:
                            seen += 1
                    if seen != expected:
                        raise RuntimeError(f"walked {seen} leaves, expected {expected}")
                    return result

                return timed

            return prepare

        def json_only(resp: HTTPResponse) -> etcd.EtcdResult:
            # The same work without the speedups extra: json and the checks in Python.
            result = etcd.EtcdResult(**_result._decode_with_json(resp.data))
            result.parse_headers(resp)
            return result

        parse_and_walk = walking(client._result_from_response)
        parse_and_walk_json = walking(json_only)

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

        works: dict[str, tuple[Callable[[], Callable[[], object]], bool]] = {
            "floor": (floor_work, False),
            "walk": (parse_and_walk, False),
            "parse": (parse_only, False),
            "keep": (parse_and_keep, False),
            "keep_no_gc": (parse_and_keep, True),
        }
        if _result._FAST_DECODE is not None:
            works["walk_json"] = (parse_and_walk_json, False)
        times = _interleaved(works, settings.parse_runs)

    size = f"{expected:,} leaves in {settings.tree_dirs} dirs, {len(body) / 1e6:.1f} MB"
    floor = times.pop("floor")

    def row(name: str, operation: str, note: str, target: float | None = None) -> Row:
        runs = times[name]
        median = statistics.median(runs) / statistics.median(floor)
        return Row(
            operation,
            "CPU ms (best)",
            min(runs) * 1e3,
            min(floor) * 1e3,
            target=target,
            note=f"median {median:.3f}x; {note}",
        )

    rows = [
        row(
            "walk",
            "recursive read: parse + iterate leaves",
            f"{size}, decoded by {_decoder_name()}",
            target=1.5,
        )
    ]
    if "walk_json" in times:
        rows.append(
            row(
                "walk_json",
                "recursive read: parse + iterate, json only",
                "the same without the speedups extra; its target guards against regressions",
                target=2.5,
            )
        )
    rows += [
        row(
            "keep",
            "recursive read: parse + list(leaves)",
            "informational: every leaf object kept alive at once",
        ),
        row(
            "keep_no_gc",
            "recursive read: parse + list(leaves), GC paused",
            "informational: the rest of the gap above is cyclic GC",
        ),
        row(
            "parse",
            "recursive read: parse only",
            "informational: _result_from_response without iterating",
        ),
    ]
    return rows


BENCHMARK = Benchmark(
    "parse", "recursive-read body to EtcdResult + all leaves vs json.loads alone", bench_parse
)
