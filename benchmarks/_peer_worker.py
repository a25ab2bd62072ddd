"""One contender of the peers benchmark, run in a process of its own.

``bench_peers.py`` starts this script once per contender, with the Python of
the contender's environment (python-etcd 0.4.5 and k3etcd live in side
virtual environments, so their code is only ever run here, never imported by
the benchmark or the package). It imports nothing from the benchmarks: beside
the standard library it imports only the contender's client.

Usage::

    python _peer_worker.py KIND KEY VALUE [--path DIR]

KIND is ``etcd`` (whichever ``etcd`` package the interpreter finds: the
checkout's with ``--path``, python-etcd 0.4.5 in its side environment),
``k3etcd``, ``urllib3`` (``HTTPConnectionPool.urlopen`` + ``json.loads``) or
``http.client`` (one reused ``HTTPConnection`` + ``json.loads``). The worker
prints one JSON line saying what it imported, then answers one JSON line per
command read from standard input:

``{"op": "get" | "put", "host": H, "port": P, "count": N}``
    N reads (or writes of VALUE) of KEY; answers ``{"cpu": s, "wall": s}``,
    the process CPU time (``time.process_time``) and the wall time of the N.
``{"op": "threads", "hosts": [[H, P], ...], "threads": T, "seconds": S, "shared": B}``
    T threads read KEY as fast as they can for S seconds, through one shared
    client (B true) or one client each (B false); answers
    ``{"reads": n, "elapsed": s, "cpu": s}``. Clients are kept for the next
    command with the same arguments, so only the first one connects.
"""

from __future__ import annotations

import contextlib
import gc
import http.client
import importlib.metadata
import json
import logging
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

#: The socket timeout every contender gets: python-etcd's default read_timeout.
TIMEOUT = 60.0
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _check(status: int, body: bytes) -> Any:
    if status not in (200, 201):
        raise RuntimeError(f"etcd answered {status}: {body[:200]!r}")
    return json.loads(body)


class Contender:
    """Builds the read and write calls of one kind of client."""

    def __init__(self, kind: str, key: str, value: str) -> None:
        self.kind = kind
        self.key = key
        self.value = value
        self.path = "/v2/keys" + key
        self.form = urllib.parse.urlencode({"value": value})
        self._calls: dict[tuple[str, int], tuple[Callable[[], object], Callable[[], object]]] = {}

    def describe(self) -> dict[str, str]:
        """What this worker imported, for the benchmark to check."""
        if self.kind == "etcd":
            import etcd

            version = getattr(etcd, "__version__", None)
            if version is None:
                version = importlib.metadata.version("python-etcd")
            return {"module": etcd.__file__ or "", "version": str(version)}
        if self.kind == "k3etcd":
            import k3etcd  # type: ignore[import-not-found]

            return {
                "module": k3etcd.__file__ or "",
                "version": importlib.metadata.version("k3etcd"),
            }
        if self.kind == "urllib3":
            import urllib3

            return {
                "module": urllib3.__file__ or "",
                "version": importlib.metadata.version("urllib3"),
            }
        if self.kind == "http.client":
            return {"module": http.client.__file__ or "", "version": sys.version.split()[0]}
        raise SystemExit(f"unknown kind {self.kind!r}")

    def etcd_client(self, hosts: list[tuple[str, int]], pool: int = 10) -> Any:
        """A client of the ``etcd`` or ``k3etcd`` API over *hosts*.

        *pool* is the ``per_host_pool_size`` of an ``etcd`` client (10 is the
        default of python-etcd).
        """
        if self.kind == "etcd":
            import etcd

            if len(hosts) == 1:
                return etcd.Client(
                    host=hosts[0][0],
                    port=hosts[0][1],
                    read_timeout=TIMEOUT,
                    per_host_pool_size=pool,
                )
            return etcd.Client(
                host=tuple(hosts),
                allow_reconnect=True,
                read_timeout=TIMEOUT,
                per_host_pool_size=pool,
            )
        if self.kind == "k3etcd":
            import k3etcd

            if len(hosts) == 1:
                return k3etcd.Client(host=hosts[0][0], port=hosts[0][1], read_timeout=TIMEOUT)
            return k3etcd.Client(host=tuple(hosts), read_timeout=TIMEOUT)
        raise SystemExit(f"{self.kind} has no client API for threads")

    def calls(self, host: str, port: int) -> tuple[Callable[[], object], Callable[[], object]]:
        """The (read, write) pair against *host*:*port*, built once."""
        if (host, port) in self._calls:
            return self._calls[host, port]
        key, value, path, form = self.key, self.value, self.path, self.form
        read: Callable[[], object]
        write: Callable[[], object]
        if self.kind in ("etcd", "k3etcd"):
            client = self.etcd_client([(host, port)])

            def read() -> object:
                return client.read(key)

            def write() -> object:
                return client.write(key, value)

            write()
            if client.read(key).value != value:
                raise RuntimeError(f"{self.kind} read back the wrong value")
        elif self.kind == "urllib3":
            import urllib3

            pool = urllib3.HTTPConnectionPool(
                host, port, maxsize=1, timeout=TIMEOUT, retries=False
            )

            def read() -> object:
                response = pool.urlopen("GET", path)
                return _check(response.status, response.data)

            def write() -> object:
                response = pool.urlopen("PUT", path, body=form, headers=FORM)
                return _check(response.status, response.data)

        elif self.kind == "http.client":
            connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)

            def read() -> object:
                connection.request("GET", path)
                response = connection.getresponse()
                return _check(response.status, response.read())

            def write() -> object:
                connection.request("PUT", path, body=form, headers=FORM)
                response = connection.getresponse()
                return _check(response.status, response.read())

        else:
            raise SystemExit(f"unknown kind {self.kind!r}")
        self._calls[host, port] = (read, write)
        return read, write


def timed(op: Callable[[], object], count: int, value: str) -> dict[str, float]:
    """Time *count* calls of *op*; the last one's answer must hold *value*."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        last = op()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    # A result object (etcd, k3etcd) or the decoded JSON (the floors).
    got = last["node"]["value"] if isinstance(last, dict) else getattr(last, "value", None)
    if got != value:
        raise RuntimeError(f"the last answer holds {got!r}, not the value written")
    return {"cpu": cpu, "wall": wall}


class Threads:
    """Threads reading flat out through shared or own clients, kept between commands."""

    def __init__(self, contender: Contender) -> None:
        self.contender = contender
        self.clients: dict[str, list[Any]] = {}

    def run(
        self, hosts: list[tuple[str, int]], threads: int, seconds: float, shared: bool
    ) -> dict[str, float]:
        memo = json.dumps([hosts, threads, shared])
        if memo not in self.clients:
            if shared:
                # One connection per thread, as the threads with a client each have.
                one = self.contender.etcd_client(hosts, pool=max(10, threads))
                self.clients[memo] = [one] * threads
            else:
                self.clients[memo] = [self.contender.etcd_client(hosts) for _ in range(threads)]
        clients = self.clients[memo]
        key, value = self.contender.key, self.contender.value
        ready = threading.Barrier(threads + 1)
        counts = [0] * threads
        errors: list[BaseException] = []
        deadline = 0.0

        def worker(slot: int) -> None:
            client = clients[slot]
            done = 0
            try:
                ready.wait()
                last = None
                while time.perf_counter() < deadline:
                    last = client.read(key)
                    done += 1
                if last is not None and last.value != value:
                    raise RuntimeError(f"read {last.value!r}, not the value written")
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)
                ready.abort()
            counts[slot] = done

        workers = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
        for thread in workers:
            thread.start()
        gc.collect()
        cpu = time.process_time()
        started = time.perf_counter()
        deadline = started + seconds
        with contextlib.suppress(threading.BrokenBarrierError):
            ready.wait()
        for thread in workers:
            thread.join()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        if errors:
            raise RuntimeError(f"a reading thread failed: {errors[0]!r}") from errors[0]
        return {"reads": sum(counts), "elapsed": elapsed, "cpu": cpu}


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[-2] == "--path":
        sys.path.insert(0, argv[-1])
        argv = argv[:-2]
    if len(argv) != 3:
        sys.exit(__doc__)
    kind, key, value = argv
    # With more threads than pooled connections urllib3 warns on every
    # discarded connection; every contender is treated alike.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    contender = Contender(kind, key, value)
    threads = Threads(contender)
    print(json.dumps(contender.describe()), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op in ("get", "put"):
            read, write = contender.calls(command["host"], command["port"])
            answer = timed(read if op == "get" else write, command["count"], contender.value)
        elif op == "threads":
            hosts = [(host, port) for host, port in command["hosts"]]
            answer = threads.run(hosts, command["threads"], command["seconds"], command["shared"])
        else:
            raise SystemExit(f"unknown command {op!r}")
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
