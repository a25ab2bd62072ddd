"""Write one key: ``client.write(key, value)`` against a urllib3 form PUT + ``json.loads``."""

from __future__ import annotations

import json

from _common import PREFIX, Benchmark, Context, Row, check_status, compare_cpu


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
            check_status(response)
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


BENCHMARK = Benchmark(
    "write",
    "client.write(key, value) vs urllib3 form PUT + json.loads, client CPU",
    bench_write,
)
