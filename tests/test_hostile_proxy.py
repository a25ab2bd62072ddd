"""The client behind a hostile network: a fault-injecting proxy in front of a real etcd.

For every call and every fault, the caller gets the correct result or an
:class:`etcd.EtcdException`, within the call's timeout plus one second (the
deadline of each exchange); a write the server may have applied is not
applied twice; a watcher delivers every event once and in order; and no lock
key is left on the server. What the server holds is checked with a second
client that talks to etcd directly.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import etcd

from .fakes import Fault, FaultProxy
from .helpers import consume_in_thread, wait_for

TIMEOUT = 2.0  # the read_timeout of the client behind the proxy

FAULTS = {
    "latency": Fault("latency", delay=0.3),
    "reset-in-headers": Fault("reset", after=20),
    "reset-in-body": Fault("reset", after=290),
    "drip": Fault("drip", delay=0.02),
    "blackhole": Fault("blackhole"),
    "cut-after-sending": Fault("cut"),
}


@pytest.fixture
def proxy(etcd_server) -> Iterator[FaultProxy]:
    ((host, port),) = etcd_server.hosts
    with FaultProxy(host, port) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def behind(proxy) -> Iterator[etcd.Client]:
    """A client whose every request goes through the proxy."""
    with etcd.Client(host=proxy.host, port=proxy.port, read_timeout=TIMEOUT) as client:
        yield client


def _index(client: etcd.Client) -> int:
    return client.read("/").etcd_index


# Each operation: (prepare on the real server, the call through the proxy,
# check of a successful result, check of the server's state afterwards).
def _read(direct: etcd.Client, behind: etcd.Client, key: str) -> Callable[[], None]:
    direct.write(key, "v0")
    result = behind.read(key)
    assert result.value == "v0"
    return lambda: None


def _write(direct: etcd.Client, behind: etcd.Client, key: str) -> Callable[[], None]:
    direct.write(key, "v0")
    try:
        assert behind.write(key, "v1").value == "v1"
    finally:
        assert direct.read(key).value in ("v0", "v1")
    return lambda: None


def _append(direct: etcd.Client, behind: etcd.Client, key: str) -> Callable[[], None]:
    try:
        created = behind.write(key, "job", append=True)
        assert created.newKey and created.value == "job"
    finally:
        try:
            queued = [n for n in direct.read(key, recursive=True).leaves if not n.dir]
        except etcd.EtcdKeyNotFound:
            queued = []
        assert len(queued) <= 1  # never created twice
    return lambda: None


def _delete(direct: etcd.Client, behind: etcd.Client, key: str) -> Callable[[], None]:
    direct.write(key, "v0")
    try:
        assert behind.delete(key).key == key
    finally:
        try:
            left = direct.read(key).value
        except etcd.EtcdKeyNotFound:
            left = None
        assert left in (None, "v0")  # deleted, or untouched when not applied
    return lambda: None


def _compare_and_swap(direct: etcd.Client, behind: etcd.Client, key: str) -> Callable[[], None]:
    before = direct.write(key, "v0")
    try:
        swapped = behind.write(key, "v1", prevIndex=before.modifiedIndex)
        assert swapped.value == "v1" and swapped._prev_node.value == "v0"
    finally:
        assert direct.read(key).value in ("v0", "v1")
    return lambda: None


OPERATIONS = {
    "read": _read,
    "write": _write,
    "append": _append,
    "delete": _delete,
    "compare-and-swap": _compare_and_swap,
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_a_key_space_call_gives_a_result_or_a_typed_error_in_time(
    etcd_client, etcd_prefix, behind, proxy, operation, fault
):
    key = f"{etcd_prefix}/k"
    behind.read("/")  # connected before the fault, so the fault hits the call's answer
    before = _index(etcd_client)
    proxy.inject(fault, times=None)
    started = time.monotonic()
    try:
        operation(etcd_client, behind, key)
    except AssertionError:
        raise
    except etcd.EtcdException:
        pass  # a typed error: what a caller can catch
    finally:
        elapsed = time.monotonic() - started
        proxy.heal()
    assert elapsed <= TIMEOUT + 1, f"{elapsed:.2f}s"
    # Preparing wrote at most once, and the call at most once more.
    assert _index(etcd_client) - before <= 2
    assert proxy.faults_applied >= 1 or fault.kind == "blackhole"


# --------------------------------------------------------------------------
# Watching: every event once, in order


def _writes(client: etcd.Client, directory: str, count: int, pause: float = 0.02) -> list[int]:
    indexes: list[int] = []
    for i in range(count):
        indexes.append(client.write(f"{directory}/{i:03d}", str(i)).modifiedIndex or 0)
        time.sleep(pause)  # spread the writes over the faults
    return indexes


def _fault_loop(proxy: FaultProxy, done: threading.Event) -> threading.Thread:
    """Break one answer after another, in turn, until *done* is set."""

    def run() -> None:
        kinds = [Fault("reset", after=20), Fault("cut"), Fault("latency", delay=0.2)]
        n = 0
        while not done.is_set():
            proxy.inject(kinds[n % len(kinds)], times=1)
            n += 1
            done.wait(0.15)
        proxy.heal()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_watcher_behind_a_faulty_proxy_delivers_every_event_once(
    etcd_client, etcd_prefix, behind, proxy
):
    directory = f"{etcd_prefix}/w"
    etcd_client.write(directory, None, dir=True)
    start = _index(etcd_client) + 1
    done = threading.Event()
    faults = _fault_loop(proxy, done)
    out: queue.Queue[Any] = queue.Queue()
    with behind.watcher(directory, recursive=True, index=start, poll_timeout=1) as watcher:
        consumer = consume_in_thread(watcher, out)
        written = _writes(etcd_client, directory, 40)
        seen: list[int] = []
        deadline = time.monotonic() + 60
        while len(seen) < len(written) and time.monotonic() < deadline:
            try:
                item = out.get(timeout=1)
            except queue.Empty:
                continue
            assert isinstance(item, etcd.EtcdResult), item
            seen.append(item.modifiedIndex or 0)
        done.set()
        faults.join(10)
    consumer.join(10)
    assert seen == written  # all of them, once each, in order
    assert proxy.faults_applied > 3


def test_eternal_watch_behind_a_faulty_proxy_raises_typed_errors_and_resumes(
    etcd_client, etcd_prefix, behind, proxy
):
    directory = f"{etcd_prefix}/e"
    etcd_client.write(directory, None, dir=True)
    index = _index(etcd_client) + 1
    done = threading.Event()
    faults = _fault_loop(proxy, done)
    results: list[int] = []

    def write_then_stop() -> None:
        results.extend(_writes(etcd_client, directory, 30))
        results.append(etcd_client.write(f"{directory}/stop", "").modifiedIndex or 0)

    writer = threading.Thread(target=write_then_stop, daemon=True)
    writer.start()
    seen: list[int] = []
    errors = 0
    deadline = time.monotonic() + 60
    while not seen or seen[-1] != (results[-1] if len(results) == 31 else None):
        assert time.monotonic() < deadline, f"saw {len(seen)} events"
        try:
            for event in behind.eternal_watch(directory, index=index, recursive=True):
                assert event.modifiedIndex is not None
                seen.append(event.modifiedIndex)
                index = event.modifiedIndex + 1  # where the caller resumes
                if event.key == f"{directory}/stop":
                    break
        except etcd.EtcdConnectionFailed:
            errors += 1  # the contract: eternal_watch raises, the caller watches again
        else:
            break
    done.set()
    faults.join(10)
    writer.join(10)
    assert seen == results
    assert errors >= 1


def test_a_watch_behind_a_blackhole_ends_in_time(behind, proxy, etcd_prefix):
    behind.read("/")
    proxy.inject(Fault("blackhole"), times=None)
    started = time.monotonic()
    with pytest.raises(etcd.EtcdConnectionFailed):
        behind.watch(f"{etcd_prefix}/quiet", timeout=1)
    assert time.monotonic() - started <= 1 + 1


# --------------------------------------------------------------------------
# Locks and keep-alives: nothing left on the server


def _lock_keys(client: etcd.Client, lock: etcd.Lock) -> list[str]:
    try:
        listing = client.read(lock.path, recursive=True)
    except etcd.EtcdKeyNotFound:
        return []
    return [n.key or "" for n in listing.leaves if not n.dir and n.key != lock.path]


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_a_lock_cycle_behind_a_faulty_proxy_leaves_no_key(etcd_client, behind, proxy, fault):
    lock = etcd.Lock(behind, f"proxy-{fault.kind}-{fault.after}")
    behind.read("/")
    proxy.inject(fault, times=2)
    try:
        if lock.acquire(lock_ttl=30, timeout=5):
            lock.release()
    except etcd.EtcdException:
        proxy.heal()
        lock.release()  # the caller's clean-up after an error
    proxy.heal()
    lock.release()
    assert _lock_keys(etcd_client, lock) == []


def _more_faults(proxy: FaultProxy, than: int) -> bool:
    return proxy.faults_applied > than


def test_a_keepalive_survives_broken_refreshes(etcd_client, etcd_prefix, behind, proxy):
    key = f"{etcd_prefix}/alive"
    alive = etcd.KeepAlive(behind, key, "here", ttl=3, interval=0.5)
    alive.start()
    try:
        for fault in (Fault("cut"), Fault("reset", after=20), Fault("latency", delay=0.2)):
            applied = proxy.faults_applied
            proxy.inject(fault, times=1)
            assert wait_for(functools.partial(_more_faults, proxy, applied), timeout=10)
        proxy.heal()
        assert wait_for(lambda: alive.error is not None, timeout=5)
        assert not alive.lost.is_set()
        assert etcd_client.read(key).value == "here"
    finally:
        alive.stop()
    with pytest.raises(etcd.EtcdKeyNotFound):
        etcd_client.read(key)


def test_a_keepalive_cut_off_for_a_ttl_reports_the_loss(etcd_client, etcd_prefix, behind, proxy):
    key = f"{etcd_prefix}/cut-off"
    alive = etcd.KeepAlive(behind, key, "here", ttl=2)
    alive.start()
    proxy.inject(Fault("blackhole"), times=None)
    proxy.drop_connections()
    try:
        assert alive.lost.wait(20)
        assert isinstance(alive.error, etcd.EtcdConnectionFailed)
    finally:
        proxy.heal()
        alive.stop()
    # The server expired it by itself: nothing left.
    assert wait_for(lambda: key not in etcd_client, timeout=10)
