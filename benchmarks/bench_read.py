"""Read one key: ``client.read(key)`` against urllib3 GET + ``json.loads``, client CPU."""

from __future__ import annotations

import json

from _common import PREFIX, Benchmark, Context, Row, check_status, compare_cpu


def bench_read(ctx: Context) -> list[Row]:
    key = f"{PREFIX}/read/key"
    url = ctx.key_url(key)
    pool = ctx.raw_pool()
    with ctx.client() as client:
        client.write(key, "x" * 32)

        def raw_read() -> object:
            response = pool.urlopen("GET", url)
            check_status(response)
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


BENCHMARK = Benchmark(
    "read", "client.read(key) vs urllib3 GET + json.loads, client CPU per request", bench_read
)
