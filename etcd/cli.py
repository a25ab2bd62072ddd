"""``pyetcdctl``: etcdctl's v2 command line, written on the public API of :mod:`etcd`.

Run it as ``pyetcdctl`` (the console script) or ``python -m etcd``. The
commands, flags, output and exit codes are those of ``ETCDCTL_API=2 etcdctl``
3.4, so scripts written for it keep working; ``dump``, ``load``, ``lock``,
``elect``, ``serve`` and ``migrate`` are new.

Exit codes, one per class of error (the first six are etcdctl's):

===  ==================================================================
0    success
1    bad arguments or usage; a command refused (``get`` of a directory,
     a user or role command the server turned down)
2    the cluster could not be reached while syncing its member list
3    an unknown command
4    etcd answered with an error (``Error:  100: Key not found ...``),
     or could not be reached by the command itself (``--no-sync``)
5    ``cluster-health``: the cluster is not healthy
130  interrupted (Ctrl-C) outside ``watch --forever``
===  ==================================================================

``lock NAME -- COMMAND`` exits with the command's exit code.

No error of etcd or of the connection prints a traceback; ``--debug`` does.

.. versionadded:: 0.5.0
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import traceback
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ._exceptions import EtcdConnectionFailed, EtcdException, EtcdTypeError, EtcdValueError
from .client import Client

__all__ = [
    "EXIT_BAD_ARGS",
    "EXIT_BAD_CONNECTION",
    "EXIT_CLUSTER_NOT_HEALTHY",
    "EXIT_INTERRUPTED",
    "EXIT_SERVER_ERROR",
    "EXIT_SUCCESS",
    "EXIT_UNKNOWN_COMMAND",
    "main",
]

EXIT_SUCCESS = 0
EXIT_BAD_ARGS = 1
EXIT_BAD_CONNECTION = 2
EXIT_UNKNOWN_COMMAND = 3
EXIT_SERVER_ERROR = 4
EXIT_CLUSTER_NOT_HEALTHY = 5
EXIT_INTERRUPTED = 130

DEFAULT_ENDPOINTS = "http://127.0.0.1:2379,http://127.0.0.1:4001"

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


class UsageError(Exception):
    """A command line that cannot be run; ``main`` prints it and exits with *code*."""

    def __init__(self, message: str, code: int = EXIT_BAD_ARGS) -> None:
        super().__init__(message)
        self.code = code


class CommandFailed(Exception):
    """A command failed in a way it already explained: print *message*, exit *code*."""

    def __init__(self, message: str | None, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def go_duration(text: str) -> float:
    """Parse a Go duration such as ``2s``, ``500ms`` or ``1m30s`` into seconds.

    :raises argparse.ArgumentTypeError: *text* is not a duration.
    """
    if text in ("0", "+0", "-0"):
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise argparse.ArgumentTypeError(f'invalid value "{text}": parse error')
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not text:
        raise argparse.ArgumentTypeError('invalid value "": parse error')
    return total


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports errors as etcdctl does, instead of exiting."""

    def error(self, message: str) -> NoReturn:
        match = re.match(r"argument \w+: invalid choice: '([^']*)'", message)
        if match:
            raise UsageError(f"No help topic for '{match.group(1)}'", EXIT_UNKNOWN_COMMAND)
        raise UsageError(f"Incorrect Usage: {message}\n\n{self.format_usage().rstrip()}")


class Context:
    """What a command needs: the parsed arguments and, on first use, a client."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.output: str = args.output
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        """The client for ``--endpoints`` (made, and synced, on first use).

        .. note:: The first access may make requests (etcdctl's member sync).
        """
        if self._client is None:
            self._client = make_client(self.args)
        return self._client

    def close(self) -> None:
        """Close the client, if one was made."""
        if self._client is not None:
            self._client.close()
            self._client = None


def _endpoints(args: argparse.Namespace) -> list[str]:
    text = (
        args.endpoints
        or os.environ.get("ETCDCTL_ENDPOINTS")
        or args.endpoint
        or os.environ.get("ETCDCTL_ENDPOINT")
        or args.peers
        or os.environ.get("ETCDCTL_PEERS")
        or DEFAULT_ENDPOINTS
    )
    return [part.strip() for part in text.split(",") if part.strip()]


def _split_endpoint(url: str) -> tuple[str, str, int]:
    if "://" not in url:
        url = "http://" + url
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(f"Error:  endpoint {url!r} is not a URL such as http://127.0.0.1:2379")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError as exc:
        raise UsageError(f"Error:  endpoint {url!r} has a bad port: {exc}") from exc
    return parsed.scheme, parsed.hostname, port


def _credentials(args: argparse.Namespace) -> tuple[str | None, str | None]:
    user = args.username or os.environ.get("ETCDCTL_USERNAME") or ""
    if not user:
        return None, None
    name, sep, password = user.partition(":")
    if not sep:
        from ._cli_admin import ask_password

        password = ask_password("Password: ")
    return name, password


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`etcd.Client` arguments that the global flags ask for."""
    options: dict[str, Any] = {"read_timeout": min(args.timeout, args.total_timeout)}
    if getattr(args, "lock_prefix", None):
        options["lock_prefix"] = args.lock_prefix
    if args.api != "v2":
        options["api"] = args.api
    cert = args.cert_file or os.environ.get("ETCDCTL_CERT_FILE")
    key = args.key_file or os.environ.get("ETCDCTL_KEY_FILE")
    ca = args.ca_file or os.environ.get("ETCDCTL_CA_FILE")
    if cert:
        options["cert"] = (cert, key) if key else cert
    if ca:
        options["ca_cert"] = ca
    options["username"], options["password"] = _credentials(args)
    srv = args.discovery_srv or os.environ.get("ETCDCTL_DISCOVERY_SRV")
    if srv:
        options.update(srv_domain=srv, allow_reconnect=True, use_proxies=args.no_sync)
        return options
    parsed = [_split_endpoint(url) for url in _endpoints(args)]
    schemes = {scheme for scheme, _, _ in parsed}
    if len(schemes) > 1:
        raise UsageError("Error:  endpoints must all use http or all use https")
    options["protocol"] = schemes.pop()
    if len(parsed) == 1 and args.no_sync:
        options.update(host=parsed[0][1], port=parsed[0][2])
    else:
        options.update(
            host=tuple((host, port) for _, host, port in parsed),
            allow_reconnect=True,
            use_proxies=args.no_sync,
        )
    return options


def make_client(args: argparse.Namespace) -> Client:
    """A client for the global flags; unless ``--no-sync``, it learns the members first.

    :raises CommandFailed: the cluster could not be reached while syncing (exit 2).
    """
    options = client_options(args)
    try:
        return Client(**options)
    except (EtcdTypeError, EtcdValueError) as exc:
        raise CommandFailed(f"Error:  {exc}", EXIT_BAD_ARGS) from exc
    except EtcdException as exc:
        if args.debug:
            traceback.print_exc()
        raise CommandFailed(
            f"Error:  client: etcd cluster is unavailable or misconfigured; {exc}",
            EXIT_SERVER_ERROR if args.no_sync else EXIT_BAD_CONNECTION,
        ) from exc


def error_line(exc: EtcdException) -> str:
    """The line etcdctl prints for an error: ``Error:  100: Key not found (/a) [7]``."""
    payload = exc.payload
    if isinstance(payload, dict) and isinstance(payload.get("errorCode"), int):
        return (
            f"Error:  {payload['errorCode']}: {payload.get('message', '')} "
            f"({payload.get('cause', '')}) [{payload.get('index', 0)}]"
        )
    if isinstance(exc, EtcdConnectionFailed):
        return f"Error:  client: etcd cluster is unavailable or misconfigured; {exc}"
    return f"Error:  {exc}"


def server_message(exc: EtcdException) -> str:
    """The server's own message for an auth or member error, else the exception's text."""
    payload = exc.payload
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return str(payload["message"])
    cause = exc.__cause__
    if isinstance(cause, EtcdException):
        return server_message(cause)
    return str(exc)


def _global_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--debug", action="store_true", help="print tracebacks of errors")
    add("--no-sync", action="store_true", help="do not learn the cluster's members first")
    add(
        "--output",
        "-o",
        default="simple",
        metavar="FORMAT",
        help="simple, extended or json (default: simple)",
    )
    add(
        "--discovery-srv", "-D", default="", help="find the endpoints in this domain's SRV records"
    )
    add("--insecure-discovery", action="store_true", help="accepted for etcdctl compatibility")
    add("--peers", "-C", default="", help=argparse.SUPPRESS)
    add("--endpoint", default="", help=argparse.SUPPRESS)
    add("--endpoints", default="", help=f"comma-separated URLs (default: {DEFAULT_ENDPOINTS})")
    add("--cert-file", default="", help="client certificate (PEM) for HTTPS")
    add("--key-file", default="", help="key of --cert-file")
    add("--ca-file", default="", help="CA bundle to verify the servers with")
    add("--username", "-u", default="", help="USER[:PASSWORD]; prompts when no password")
    add("--timeout", type=go_duration, default=2.0, help="per request (default: 2s)")
    add(
        "--total-timeout",
        type=go_duration,
        default=5.0,
        help="for the command, except watches (default: 5s)",
    )
    add("--api", choices=("v2", "v3"), default="v2", help="the protocol (default: v2)")
    add("--version", "-v", action="store_true", help="print the version")


#: Commands whose trailing arguments are another command line, kept as given.
_VERBATIM = frozenset({"exec-watch", "lock"})


def _takes_value(parser: argparse.ArgumentParser, arg: str) -> bool:
    action = parser._option_string_actions.get(arg)
    return action is not None and action.nargs != 0 and "=" not in arg


def _flags_first(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """Move a command's flags before its arguments, as etcdctl's parser does.

    ``set /k --ttl 5 v`` then means ``set --ttl 5 /k v``; everything after
    ``--`` stays an argument.
    """
    at = 0
    while at < len(argv) and argv[at].startswith("-") and argv[at] not in ("-", "--"):
        at += 2 if _takes_value(parser, argv[at]) else 1
    command: argparse.ArgumentParser | None = parser
    while command is not None and at < len(argv):
        commands = command.get_default("_commands")
        if commands is None or argv[at] not in commands.choices:
            break
        if argv[at] in _VERBATIM:
            return argv
        command = commands.choices[argv[at]]
        at += 1
    if command is None or command is parser:
        return argv
    flags: list[str] = []
    rest: list[str] = []
    index = at
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            rest.extend(argv[index:])
            break
        if arg.startswith("-") and arg != "-":
            flags.append(arg)
            if _takes_value(command, arg) and index + 1 < len(argv):
                flags.append(argv[index + 1])
                index += 1
        else:
            rest.append(arg)
        index += 1
    return argv[:at] + flags + rest


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: global flags, then one sub-parser per command."""
    from . import _cli_admin, _cli_keys, _cli_migrate, _cli_tools

    parser = _Parser(
        prog="pyetcdctl",
        description="A command line for etcd: etcdctl v2's commands, plus dump, load, "
        "lock, elect, serve and migrate.",
    )
    _global_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parser.set_defaults(_commands=commands)
    _cli_keys.add_commands(commands)
    _cli_admin.add_commands(commands)
    _cli_tools.add_commands(commands)
    _cli_migrate.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line and return its exit code (see the module docstring).

    :param argv: the arguments, without the program name; ``sys.argv[1:]`` if ``None``.
    """
    parser = build_parser()
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        args, extras = parser.parse_known_args(_flags_first(parser, argv))
        # etcdctl ignores surplus arguments, but not unknown flags
        unknown = [arg for arg in extras if arg.startswith("-") and arg != "-"]
        if unknown:
            raise UsageError(f"Incorrect Usage: flag provided but not defined: {unknown[0]}")
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return exc.code
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_ARGS
    if args.version:
        from . import __version__

        print(f"pyetcdctl version {__version__}")
        return EXIT_SUCCESS
    handler: Callable[[Context, argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_SUCCESS
    ctx = Context(args)
    try:
        return handler(ctx, args)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return exc.code
    except CommandFailed as exc:
        if exc.message:
            print(exc.message, file=sys.stderr)
        return exc.code
    except EtcdException as exc:
        if args.debug:
            traceback.print_exc()
        print(error_line(exc), file=sys.stderr)
        return EXIT_SERVER_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # "pyetcdctl ls | head": the reader has gone, as SIGPIPE would
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13
    finally:
        ctx.close()
