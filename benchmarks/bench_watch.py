"""A watcher against a bare urllib3 long-poll loop: latency, flat-out rate, catch-up."""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import json
import queue
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import urllib3
from _common import PREFIX, Benchmark, Context, Row, check_status

import etcd
import etcd.watch

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
            check_status(response)
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
    check_status(response)
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
        check_status(response)
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
            check_status(response)
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


def bench_watch(ctx: Context) -> list[Row]:
    return _watch_latency(ctx) + _watch_flood(ctx) + _watch_catch_up(ctx)


BENCHMARK = Benchmark(
    "watch",
    "write-to-delivery latency and flat-out events/s, watcher vs raw long poll",
    bench_watch,
)
