"""The commands of ``pyetcdctl`` that etcdctl lacks: dump, load, lock, elect and serve.

The dump format
---------------

``dump PREFIX`` writes JSON lines. The first is a header::

    {"format": "pyetcdctl-dump", "version": 1, "prefix": "/app"}

and each further line is one node, parents before children::

    {"key": "/app/conf", "dir": true, "ttl": null, "createdIndex": 5, "modifiedIndex": 5}
    {"key": "/app/conf/a", "dir": false, "value": "1", "ttl": 30,
     "expiration": "2026-01-01T00:00:00.5Z", "createdIndex": 6, "modifiedIndex": 9}

``ttl`` is the time the node had left when it was dumped (``null``: none);
``load`` gives it that TTL again. In-order keys are ordinary keys with
numeric names, and are loaded under the same names.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

from ._exceptions import EtcdAlreadyExist, EtcdException, EtcdKeyNotFound, EtcdNotFile
from ._result import EtcdResult

if TYPE_CHECKING:
    from .cli import Context

__all__ = ["DUMP_FORMAT", "add_commands", "iter_tree"]

DUMP_FORMAT = "pyetcdctl-dump"
_PROGRESS_EVERY = 2.0


class Progress:
    """Counts on stderr while long work runs: a tqdm bar, or a plain line every 2 s.

    Shows nothing when *enabled* is false (stderr is not a terminal, or
    ``--no-progress``).
    """

    def __init__(self, what: str, total: int | None, enabled: bool) -> None:
        self.what = what
        self.total = total
        self.count = 0
        self._bar: Any = None
        self._enabled = enabled
        self._started = self._last = time.monotonic()
        if enabled:
            try:
                tqdm = importlib.import_module("tqdm").tqdm
            except ImportError:
                return
            self._bar = tqdm(total=total, desc=what, unit=" keys", file=sys.stderr)

    def set_total(self, total: int) -> None:
        """Learn the total once it is known (for the estimated time left)."""
        if total != self.total:
            self.total = total
            if self._bar is not None:
                self._bar.total = total
                self._bar.refresh()

    def update(self, n: int = 1) -> None:
        self.count += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._enabled:
            now = time.monotonic()
            if now - self._last >= _PROGRESS_EVERY:
                self._last = now
                print(self._line(now), file=sys.stderr, flush=True)

    def _line(self, now: float) -> str:
        rate = self.count / max(now - self._started, 1e-9)
        line = f"{self.what}: {self.count}"
        if self.total:
            eta = (self.total - self.count) / rate if rate else 0.0
            line += f"/{self.total} keys, {rate:.0f} keys/s, about {eta:.0f} s left"
        else:
            line += f" keys, {rate:.0f} keys/s"
        return line

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._enabled:
            print(self._line(time.monotonic()), file=sys.stderr, flush=True)


def _show_progress(args: argparse.Namespace) -> bool:
    return not args.no_progress and sys.stderr.isatty()


def iter_tree(client: Any, prefix: str, *, read_files: bool = False) -> Iterator[EtcdResult]:
    """Every node at and below *prefix*, each directory before its children.

    Directories are listed one at a time (sorted, not recursive), and only the
    names of those still to visit are kept, so memory does not grow with the
    size of the tree, only with the largest single directory.

    :param read_files: read every file on its own, for the TTL that listings
        over the v3 protocol leave out (one more request per file).
    """
    top = client.read(prefix, sorted=True)
    if not top.dir:
        yield top
        return
    if top.key:
        yield top
    listing: EtcdResult | None = top
    pending: list[str] = []
    while True:
        if listing is not None:
            subdirs = []
            for node in listing.get_subtree():
                if node.key == listing.key:
                    continue
                if read_files and not node.dir:
                    try:
                        node = client.read(node.key)
                    except EtcdKeyNotFound:
                        continue  # deleted (or expired) since the listing
                yield node
                if node.dir:
                    subdirs.append(str(node.key))
            pending.extend(reversed(subdirs))
            listing = None
        if not pending:
            return
        try:
            listing = client.read(pending.pop(), sorted=True)
        except EtcdKeyNotFound:
            continue  # removed (or expired) since its parent was listed


def _record(node: EtcdResult) -> dict[str, Any]:
    record: dict[str, Any] = {"key": node.key, "dir": bool(node.dir)}
    if not node.dir:
        record["value"] = node.value
    record["ttl"] = node.ttl
    if node.expiration:
        record["expiration"] = node.expiration
    record["createdIndex"] = node.createdIndex
    record["modifiedIndex"] = node.modifiedIndex
    return record


def cmd_dump(ctx: Context, args: argparse.Namespace) -> int:
    prefix = "/" + args.prefix.strip("/")
    out: IO[str]
    with contextlib.ExitStack() as stack:
        if args.file in (None, "-"):
            out = sys.stdout
        else:
            out = stack.enter_context(open(args.file, "w", encoding="utf-8"))
        progress = Progress("dump", None, _show_progress(args))
        stack.callback(progress.close)
        header = {"format": DUMP_FORMAT, "version": 1, "prefix": prefix}
        out.write(json.dumps(header) + "\n")
        read_files = args.api == "v3"  # v3 listings carry no TTLs
        for node in iter_tree(ctx.client, prefix, read_files=read_files):
            out.write(json.dumps(_record(node)) + "\n")
            progress.update()
        out.flush()
    return 0


def _count_lines(path: str) -> int | None:
    try:
        with open(path, "rb") as f:
            return max(
                sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b"")) - 1, 0
            )
    except OSError:
        return None


def _relocate(key: str, old: str, new: str | None) -> str:
    if new is None:
        return key
    new = "/" + new.strip("/")
    if old == "/":
        rest = key
    elif key == old or key.startswith(old + "/"):
        rest = key[len(old) :]
    else:
        raise ValueError(f"key {key!r} is not below the dump's prefix {old!r}")
    return (new.rstrip("/") + rest) or "/"


def _load_node(client: Any, key: str, record: dict[str, Any]) -> None:
    ttl = record.get("ttl") or None
    if record.get("dir"):
        if key == "/":
            return
        with contextlib.suppress(EtcdAlreadyExist):  # loaded before: nothing to do
            client.write(key, None, dir=True, ttl=ttl, prevExist=False)
        return
    value = record.get("value")
    try:
        client.write(key, "" if value is None else value, ttl=ttl)
    except EtcdNotFile as exc:
        raise EtcdException(f"Cannot load {key}: it is a directory on the server") from exc


def cmd_load(ctx: Context, args: argparse.Namespace) -> int:
    from .cli import CommandFailed

    source: IO[str]
    total = None
    with contextlib.ExitStack() as stack:
        if args.file in (None, "-"):
            source = sys.stdin
        else:
            source = stack.enter_context(open(args.file, encoding="utf-8"))
            if _show_progress(args):
                total = _count_lines(args.file)
        first = source.readline()
        try:
            header = json.loads(first)
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("format") != DUMP_FORMAT:
            raise CommandFailed(
                "Error:  the input is not a pyetcdctl dump (its first line must be the "
                f'header {{"format": "{DUMP_FORMAT}", ...}})',
                1,
            )
        old_prefix = str(header.get("prefix") or "/")
        progress = Progress("load", total, _show_progress(args))
        stack.callback(progress.close)
        client = ctx.client
        for number, line in enumerate(source, start=2):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = _relocate(record["key"], old_prefix, args.prefix)
            except (ValueError, KeyError, TypeError) as exc:
                raise CommandFailed(f"Error:  line {number} of the dump: {exc}", 1) from exc
            _load_node(client, key, record)
            progress.update()
    return 0


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_lock(ctx: Context, args: argparse.Namespace) -> int:
    from . import lock as lock_module
    from .cli import EXIT_INTERRUPTED, UsageError

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("Error:  lock NAME -- COMMAND [ARGS...]: the command is missing")
    lost = threading.Event()
    lock = lock_module.Lock(
        ctx.client, args.name, ttl=args.ttl, auto_renew=True, on_lost=lambda _: lost.set()
    )
    with _signals_raise():
        try:
            lock.acquire(lock_ttl=args.ttl, timeout=args.wait or 0)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        try:
            child = subprocess.Popen(command)
        except OSError as exc:
            lock.release()
            print(f"Error:  cannot run {command[0]}: {exc}", file=sys.stderr)
            return 127
        try:
            code = child.wait()
        except KeyboardInterrupt:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
            code = child.wait()
        finally:
            lock.release()
    if lost.is_set():
        print(f"Error:  the lock {args.name} was lost while the command ran", file=sys.stderr)
    return code if code >= 0 else 128 - code


_OUTPUT_LOCK = threading.Lock()


def _say(line: str) -> None:
    """Print one whole line, even while another thread prints too."""
    with _OUTPUT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def cmd_elect(ctx: Context, args: argparse.Namespace) -> int:
    from .election import Election

    client = ctx.client
    election = Election(client, args.name, value=args.value or f"pid {os.getpid()}", ttl=args.ttl)
    observer = election.observe()
    printed = threading.Event()

    def follow() -> None:
        for leader in observer:
            _say(f"leader: {leader if leader is not None else '(none)'}")
            printed.set()

    thread = threading.Thread(target=follow, name="pyetcdctl-elect", daemon=True)

    with _signals_raise():
        try:
            thread.start()
            election.campaign()
            _say(f"elected: {election.value}")
            if args.once:
                return 0
            while not election.lost.wait(1.0):
                pass
            print("leadership lost", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            observer.stop()
            with contextlib.suppress(EtcdException):
                election.resign()
            thread.join(timeout=5)


def cmd_serve(ctx: Context, args: argparse.Namespace) -> int:
    from . import testing

    return testing.serve(port=args.port, enable_v2=not args.no_v2)


def add_commands(commands: Any) -> None:
    """Add dump, load, lock, elect and serve to the sub-parsers of ``pyetcdctl``."""
    dump = commands.add_parser(
        "dump", help="write a subtree as JSON lines", description="write a subtree as JSON lines"
    )
    dump.set_defaults(handler=cmd_dump)
    dump.add_argument("prefix", nargs="?", default="/", help="the subtree (default: all)")
    dump.add_argument("--file", "-f", help="write here instead of stdout")
    dump.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    load = commands.add_parser(
        "load", help="write a dump back (idempotent)", description="write a dump back"
    )
    load.set_defaults(handler=cmd_load)
    load.add_argument("file", nargs="?", help="the dump (default: stdin)")
    load.add_argument("--prefix", help="load below this prefix instead of the dump's")
    load.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    lock = commands.add_parser(
        "lock",
        help="run a command while holding a lock",
        description="run a command while holding an etcd.Lock; exit with its exit code",
    )
    lock.set_defaults(handler=cmd_lock)
    lock.add_argument("name")
    lock.add_argument("command", nargs=argparse.REMAINDER)
    lock.add_argument("--ttl", type=int, default=30, help="lock TTL, renewed (default: 30)")
    lock.add_argument("--wait", type=float, default=0, help="give up after so many seconds")
    lock.add_argument("--lock-prefix", default="", help="the locks' directory (default: /_locks)")

    elect = commands.add_parser(
        "elect", help="campaign and print leadership changes", description="campaign for NAME"
    )
    elect.set_defaults(handler=cmd_elect)
    elect.add_argument("name")
    elect.add_argument("value", nargs="?", help="what this candidate publishes")
    elect.add_argument("--ttl", type=int, default=10, help="candidate key TTL (default: 10)")
    elect.add_argument("--once", action="store_true", help="exit once elected")
    elect.add_argument(
        "--lock-prefix", default="", help="the elections' directory is below it (default: /_locks)"
    )

    serve = commands.add_parser(
        "serve",
        help="run a throwaway etcd server",
        description="run a throwaway etcd (etcd.testing.serve) until Ctrl-C or SIGTERM",
    )
    serve.set_defaults(handler=cmd_serve)
    serve.add_argument("--port", type=int, default=2379, help="client port; 0: a free one")
    serve.add_argument("--no-v2", action="store_true", help="without the v2 API")
