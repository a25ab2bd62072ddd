"""Uncontended ``etcd.Lock`` cycles beside the bare requests the algorithm needs.

One uncontended ``acquire()`` plus ``release()`` needs three requests at the
least: POST the in-order key, GET the lock directory recursively to see that
the key is first, and DELETE the key. The floor sends exactly those three with
a bare urllib3 pool and decodes the two JSON answers it needs (the key's name,
the directory), so the ratio is the cost of the recipe and the client around
the same wire work.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
import uuid
from collections.abc import Callable

from _common import Benchmark, Context, Row, check_status

import etcd

#: The highest acceptable lock-cycle time over the floor's.
TARGET = 1.3


def _timed(cycle: Callable[[], object], count: int) -> tuple[float, float]:
    """Wall and CPU seconds per call of *cycle* over *count* calls."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        cycle()
    return (time.perf_counter() - wall) / count, (time.process_time() - cpu) / count


def bench_lock(ctx: Context) -> list[Row]:
    """Time uncontended lock cycles and the three-request floor in interleaved rounds."""
    settings = ctx.settings
    cycles = max(1, settings.ops // 2)
    directory = "/bench/lock/raw"
    directory_url = ctx.key_url(directory)
    pool = ctx.raw_pool()
    value = uuid.uuid4().hex

    def raw_cycle() -> object:
        created = pool.request_encode_body(
            "POST",
            directory_url,
            fields={"value": value, "ttl": "3600"},
            encode_multipart=False,
        )
        check_status(created)
        key = json.loads(created.data)["node"]["key"]
        listing = pool.request("GET", directory_url + "?recursive=true")
        check_status(listing)
        nodes = json.loads(listing.data)["node"]["nodes"]
        if min(node["key"] for node in nodes) != key:
            raise RuntimeError("the raw key is not first in an uncontended queue")
        deleted = pool.request("DELETE", ctx.key_url(key))
        check_status(deleted)
        return deleted

    with ctx.cluster.client(per_host_pool_size=10, lock_prefix="/bench/lock") as client:
        lock = etcd.Lock(client, "recipe")

        def lock_cycle() -> object:
            if not lock.acquire():  # the 0.4.5 defaults: blocking, lock_ttl=3600
                raise RuntimeError("an uncontended acquire failed")
            lock.release()
            return lock

        for _ in range(max(1, settings.warmup // 3)):
            lock_cycle()
            raw_cycle()
        lock_wall: list[float] = []
        lock_cpu: list[float] = []
        raw_wall: list[float] = []
        raw_cpu: list[float] = []
        for number in range(settings.rounds):
            order = [(lock_cycle, lock_wall, lock_cpu), (raw_cycle, raw_wall, raw_cpu)]
            if number % 2:
                order.reverse()
            for cycle, walls, cpus in order:
                wall, cpu = _timed(cycle, cycles)
                walls.append(wall)
                cpus.append(cpu)
    pool.clear()

    lock_us, raw_us = statistics.median(lock_wall) * 1e6, statistics.median(raw_wall) * 1e6

    def spread(values: list[float], scale: float) -> str:
        return f"{min(values) * scale:.0f}-{max(values) * scale:.0f}"

    return [
        Row(
            "lock acquire+release (uncontended)",
            "µs/cycle",
            lock_us,
            raw_us,
            target=TARGET,
            note=(
                f"{1e6 / lock_us:,.0f} vs {1e6 / raw_us:,.0f} cycles/s; floor: POST, "
                f"recursive GET, DELETE; rounds: lock {spread(lock_wall, 1e6)}, "
                f"floor {spread(raw_wall, 1e6)} µs"
            ),
        ),
        Row(
            "lock acquire+release: client CPU",
            "CPU µs/cycle",
            statistics.median(lock_cpu) * 1e6,
            statistics.median(raw_cpu) * 1e6,
            note="informational: the server's share of the wall time is not in it",
        ),
    ]


BENCHMARK = Benchmark(
    "lock", "uncontended etcd.Lock acquire + release vs POST + recursive GET + DELETE", bench_lock
)
