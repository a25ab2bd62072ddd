"""Reads per second of 1, 4 and 16 threads sharing one client against one urllib3 pool."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import logging
import statistics
import threading
import time
from collections.abc import Callable

import urllib3
from _common import POOL_SIZE, PREFIX, Benchmark, Context, Row, check_status

import etcd.testing

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
                check_status(response)
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


BENCHMARK = Benchmark(
    "threads",
    "reads/s of 1, 4, 16 threads sharing one client vs one urllib3 pool, 3-member cluster",
    bench_threads,
)
