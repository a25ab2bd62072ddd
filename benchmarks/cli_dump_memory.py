"""Peak memory of ``pyetcdctl dump`` for 10,000 and 100,000 keys: does it stream?

Run from the root of a checkout (it starts a throwaway etcd; filling 110,000
keys takes a minute or two)::

    PYTHONPATH=. python benchmarks/cli_dump_memory.py [--per-dir 1000] [--sizes 10000,100000]

Each dump runs in a fresh child process that writes to /dev/null with
``--no-progress``, and reports two figures: the peak of Python allocations
(``tracemalloc``) during the dump, and, in a second run without tracemalloc,
the process's peak resident set size (``VmHWM`` of ``/proc/self/status``:
Linux only; interpreter and imports included). The keys are spread over
directories of ``--per-dir`` keys, since ``dump`` lists one directory at a
time: its memory follows the largest directory, not the tree. ``--per-dir 0``
puts every key in one directory, to show that limit.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time

from etcd.testing import etcd_server

# tracemalloc's own bookkeeping grows the process, so the peak of Python
# allocations and the resident set size are measured in two separate runs.
CHILD = r"""
import json, sys, tracemalloc
from etcd.cli import main
traced = sys.argv[3] == "traced"
if traced:
    tracemalloc.start()
code = main(["--endpoints", sys.argv[1], "--timeout", "60s", "--total-timeout", "60s",
             "dump", sys.argv[2], "--file", "/dev/null", "--no-progress"])
if traced:
    print(json.dumps({"code": code, "peak": tracemalloc.get_traced_memory()[1]}))
else:
    # VmHWM: the peak RSS of this program (ru_maxrss would include the parent's
    # peak, which Linux carries over fork and exec)
    with open("/proc/self/status") as status:
        hwm = [line for line in status if line.startswith("VmHWM:")][0]
    print(json.dumps({"code": code, "rss_kib": int(hwm.split()[1])}))
"""


def fill(client: object, prefix: str, count: int, per_dir: int) -> None:
    def write(i: int) -> None:
        directory = f"{prefix}/d{i // per_dir:05d}" if per_dir else prefix
        client.write(f"{directory}/k{i:07d}", f"value-{i}")  # type: ignore[attr-defined]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(count)))


def dump_memory(url: str, prefix: str) -> dict[str, float]:
    result: dict[str, float] = {}
    for mode in ("plain", "traced"):
        started = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, url, prefix, mode],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        result.update(json.loads(out.stdout))
        if mode == "plain":
            result["seconds"] = round(time.monotonic() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-dir", type=int, default=1000, help="keys per directory; 0: one")
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated key counts")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with etcd_server() as server:
        url = server.client_urls[0]
        with server.client(read_timeout=60) as client:
            results = {}
            for size in sizes:
                prefix = f"/bench{size}"
                print(f"writing {size} keys ...", file=sys.stderr, flush=True)
                fill(client, prefix, size, args.per_dir)
                results[size] = dump_memory(url, prefix)
                print(size, results[size], flush=True)
    base = results[sizes[0]]
    for size in sizes[1:]:
        r = results[size]
        print(
            f"{size} vs {sizes[0]} keys ({args.per_dir or 'one directory'} per dir): "
            f"tracemalloc peak {r['peak'] / base['peak']:.2f}x "
            f"({base['peak'] / 2**20:.1f} -> {r['peak'] / 2**20:.1f} MiB), "
            f"max RSS {r['rss_kib'] / base['rss_kib']:.2f}x "
            f"({base['rss_kib'] / 1024:.1f} -> {r['rss_kib'] / 1024:.1f} MiB)"
        )


if __name__ == "__main__":
    main()
