"""The key-space commands of ``pyetcdctl``: get, set, mk, ls, rm, watch ... as etcdctl v2 has them.

Output follows etcdctl 3.4's ``printResponseKey`` byte for byte, including
its JSON (Go's encoder: no spaces, ``<``, ``>`` and ``&`` escaped, ``"nodes":null``).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._exceptions import EtcdWatcherCleared
from ._result import EtcdResult

if TYPE_CHECKING:
    from .cli import Context

__all__ = ["add_commands", "format_response", "go_json_string"]

_GO_ESCAPES = re.compile('[\\x00-\\x1f"\\\\<>&\u2028\u2029]')
_SIMPLE_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    return _SIMPLE_ESCAPES.get(char) or f"\\u{ord(char):04x}"


def go_json_string(text: str) -> str:
    """*text* as Go's ``encoding/json`` writes a string (HTML characters escaped)."""
    return '"' + _GO_ESCAPES.sub(_escape, text) + '"'


def _node_json(node: EtcdResult, children: list[str] | None) -> str:
    parts = [f'"key":{go_json_string(node.key or "")}']
    if node.dir:
        parts.append('"dir":true')
    parts.append(f'"value":{go_json_string(node.value or "")}')
    parts.append('"nodes":' + ("[" + ",".join(children) + "]" if children else "null"))
    parts.append(f'"createdIndex":{node.createdIndex or 0}')
    parts.append(f'"modifiedIndex":{node.modifiedIndex or 0}')
    if node.expiration:
        parts.append(f'"expiration":{go_json_string(node.expiration)}')
    if node.ttl:
        parts.append(f'"ttl":{node.ttl}')
    return "{" + ",".join(parts) + "}"


def _tree_json(result: EtcdResult) -> str:
    """The node and everything below it, nested as the server sent it."""
    # get_subtree() walks depth first; a stack of open directories rebuilds the nesting.
    nodes = iter(result.get_subtree())
    root = next(nodes)
    stack: list[tuple[EtcdResult, list[str]]] = [(root, [])]
    for node in nodes:
        key = node.key or ""
        while len(stack) > 1 and not key.startswith((stack[-1][0].key or "") + "/"):
            done, children = stack.pop()
            stack[-1][1].append(_node_json(done, children))
        if node.dir:
            stack.append((node, []))
        else:
            stack[-1][1].append(_node_json(node, None))
    while len(stack) > 1:
        done, children = stack.pop()
        stack[-1][1].append(_node_json(done, children))
    return _node_json(root, stack[0][1])


def _prev(result: EtcdResult) -> EtcdResult | None:
    return getattr(result, "_prev_node", None)


def format_response(result: EtcdResult, output: str) -> str | None:
    """What etcdctl prints for one response, without the final newline.

    :returns: ``None`` for an unknown *output* (etcdctl then prints only a warning).
    """
    prev = _prev(result)
    if output == "simple":
        if result.action != "delete":
            return result.value or ""
        return f"PrevNode.Value: {prev.value or '' if prev is not None else ''}"
    if output == "extended":
        lines = [
            f"Key: {result.key or ''}",
            f"Created-Index: {result.createdIndex or 0}",
            f"Modified-Index: {result.modifiedIndex or 0}",
        ]
        if prev is not None:
            lines.append(f"PrevNode.Value: {prev.value or ''}")
        lines.append(f"TTL: {result.ttl or 0}")
        lines.append(f"Index: {getattr(result, 'etcd_index', 0)}")
        if result.action != "delete":
            lines.extend(("", result.value or ""))
        return "\n".join(lines)
    if output == "json":
        prev_json = _tree_json(prev) if prev is not None else "null"
        return (
            f'{{"action":{go_json_string(result.action or "")},"node":{_tree_json(result)},'
            f'"prevNode":{prev_json}}}'
        )
    return None


def print_response(ctx: Context, result: EtcdResult) -> None:
    """Print *result* in the ``--output`` format, as etcdctl's ``printResponseKey``."""
    text = format_response(result, ctx.output)
    if text is None:
        print(f"Unsupported output format: {ctx.output}", file=sys.stderr)
    else:
        print(text, flush=True)


def _need(value: Any, message: str) -> Any:
    from .cli import UsageError

    if value is None:
        raise UsageError(f"Error:  {message}")
    return value


def _ttl(args: argparse.Namespace) -> int | None:
    return args.ttl or None


# -- commands -------------------------------------------------------------------------------


def cmd_get(ctx: Context, args: argparse.Namespace) -> int:
    key = _need(args.key, "key required")
    result = ctx.client.read(key, sorted=args.sort, quorum=args.quorum)
    if result.dir:
        print(f"{result.key}: is a directory", file=sys.stderr)
        return 1
    print_response(ctx, result)
    return 0


def _write(ctx: Context, args: argparse.Namespace, **options: Any) -> EtcdResult:
    key = _need(args.key, "key required")
    return ctx.client.write(key, options.pop("value", None), ttl=_ttl(args), **options)


def cmd_set(ctx: Context, args: argparse.Namespace) -> int:
    _need(args.key, "key required")
    value = _need(args.value, "value required")
    conditions: dict[str, Any] = {}
    if args.swap_with_value:
        conditions["prevValue"] = args.swap_with_value
    if args.swap_with_index:
        conditions["prevIndex"] = args.swap_with_index
    print_response(ctx, _write(ctx, args, value=value, **conditions))
    return 0


def cmd_mk(ctx: Context, args: argparse.Namespace) -> int:
    _need(args.key, "key required")
    value = _need(args.value, "value required")
    if args.in_order:
        result = _write(ctx, args, value=value, append=True)
    else:
        result = _write(ctx, args, value=value, prevExist=False)
    print_response(ctx, result)
    return 0


def cmd_update(ctx: Context, args: argparse.Namespace) -> int:
    _need(args.key, "key required")
    value = _need(args.value, "value required")
    print_response(ctx, _write(ctx, args, value=value, prevExist=True))
    return 0


def _dir_command(**options: Any) -> Any:
    def command(ctx: Context, args: argparse.Namespace) -> int:
        result = _write(ctx, args, dir=True, **options)
        if ctx.output != "simple":
            print_response(ctx, result)
        return 0

    return command


def _delete(ctx: Context, key: str, **options: Any) -> int:
    result = ctx.client.delete(key, **options)
    if not result.dir or ctx.output != "simple":
        print_response(ctx, result)
    return 0


def cmd_rm(ctx: Context, args: argparse.Namespace) -> int:
    key = _need(args.key, "key required")
    options: dict[str, Any] = {}
    if args.recursive:
        options["recursive"] = True
    if args.dir:
        options["dir"] = True
    if args.with_value:
        options["prevValue"] = args.with_value
    if args.with_index:
        options["prevIndex"] = args.with_index
    return _delete(ctx, key, **options)


def cmd_rmdir(ctx: Context, args: argparse.Namespace) -> int:
    return _delete(ctx, _need(args.key, "key required"), dir=True)


def _ls_lines(result: EtcdResult, slash: bool) -> Iterator[str]:
    nodes = iter(result.get_subtree())
    root = next(nodes)
    if not root.dir:
        yield root.key or ""
    for node in nodes:
        yield f"{node.key}/" if node.dir and slash else node.key or ""


def cmd_ls(ctx: Context, args: argparse.Namespace) -> int:
    result = ctx.client.read(
        args.key or "/", recursive=args.recursive, sorted=args.sort, quorum=args.quorum
    )
    if ctx.output != "simple":
        print_response(ctx, result)
        return 0
    for line in _ls_lines(result, args.p):
        print(line)
    return 0


def _events(ctx: Context, key: str, args: argparse.Namespace) -> Iterator[EtcdResult]:
    """Every change of *key* from ``--after-index`` on, as etcdctl's watcher yields them."""
    index = args.after_index + 1 if args.after_index else None
    client = ctx.client
    while True:
        try:
            event = client.watch(key, index=index, timeout=0, recursive=args.recursive or None)
        except EtcdWatcherCleared:
            continue
        if event.modifiedIndex is not None:
            index = event.modifiedIndex + 1
        yield event


def cmd_watch(ctx: Context, args: argparse.Namespace) -> int:
    key = _need(args.key, "key required")
    try:
        for event in _events(ctx, key, args):
            if event.dir:
                continue
            if args.recursive:
                print(f"[{event.action}] {event.key}", flush=True)
            print_response(ctx, event)
            if not args.forever:
                return 0
    except KeyboardInterrupt:
        if args.forever:
            return 0
        raise
    return 0  # pragma: no cover - the loop never ends by itself


def cmd_exec_watch(ctx: Context, args: argparse.Namespace) -> int:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if args.key is None or not command:
        _need(None, "key and command to exec required")
    try:
        for event in _events(ctx, args.key, args):
            if event.dir:
                print(f"Ignored dir {event.key} change", file=sys.stderr, flush=True)
                continue
            env = dict(os.environ)
            env.update(
                ETCD_WATCH_ACTION=event.action or "",
                ETCD_WATCH_KEY=event.key or "",
                ETCD_WATCH_VALUE=event.value or "",
                ETCD_WATCH_MODIFIED_INDEX=str(event.modifiedIndex or 0),
            )
            sys.stdout.flush()
            try:
                subprocess.run(command, env=env, check=False)
            except OSError as exc:
                print(exc, file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        return 0
    return 0  # pragma: no cover


def add_commands(commands: Any) -> None:
    """Add the key-space commands to the sub-parsers of ``pyetcdctl``."""

    def command(name: str, handler: Any, help: str, key: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help, description=help)
        parser.set_defaults(handler=handler)
        if key:
            parser.add_argument("key", nargs="?")
        return parser

    def ttl(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--ttl", type=int, default=0, help="time to live in seconds")

    get = command("get", cmd_get, "retrieve the value of a key")
    get.add_argument("--sort", action="store_true", help="sorted order")
    get.add_argument("--quorum", "-q", action="store_true", help="read through the leader")

    for name, handler, help in (
        ("set", cmd_set, "set the value of a key"),
        ("mk", cmd_mk, "make a new key with a given value"),
        ("update", cmd_update, "update an existing key with a given value"),
    ):
        parser = command(name, handler, help)
        parser.add_argument("value", nargs="?")
        ttl(parser)
        if name == "set":
            parser.add_argument("--swap-with-value", default="", help="previous value")
            parser.add_argument("--swap-with-index", type=int, default=0, help="previous index")
        if name == "mk":
            parser.add_argument(
                "--in-order", action="store_true", help="create an in-order key under KEY"
            )

    for name, handler, help in (
        ("mkdir", _dir_command(prevExist=False), "make a new directory"),
        ("setdir", _dir_command(), "create a directory or update its TTL"),
        ("updatedir", _dir_command(prevExist=True), "update an existing directory"),
    ):
        parser = command(name, handler, help)
        if name == "updatedir":
            parser.add_argument("value", nargs="?", help="ignored, as by etcdctl")
        ttl(parser)

    rm = command("rm", cmd_rm, "remove a key or a directory")
    rm.add_argument("--dir", action="store_true", help="also an empty directory")
    rm.add_argument("--recursive", "-r", action="store_true", help="a directory and its keys")
    rm.add_argument("--with-value", default="", help="previous value")
    rm.add_argument("--with-index", type=int, default=0, help="previous index")
    command("rmdir", cmd_rmdir, "remove an empty directory or a key")

    ls = command("ls", cmd_ls, "retrieve a directory")
    ls.add_argument("--sort", action="store_true", help="sorted order")
    ls.add_argument("--recursive", "-r", action="store_true", help="all keys below")
    ls.add_argument("-p", action="store_true", help="append / to directories")
    ls.add_argument("--quorum", "-q", action="store_true", help="read through the leader")

    watch = command("watch", cmd_watch, "watch a key for changes")
    watch.add_argument("--forever", "-f", action="store_true", help="until Ctrl-C")
    watch.add_argument("--after-index", type=int, default=0, help="watch after this index")
    watch.add_argument("--recursive", "-r", action="store_true", help="and the keys below")

    exec_watch = command(
        "exec-watch", cmd_exec_watch, "watch a key for changes and run a command on each"
    )
    exec_watch.add_argument("command", nargs=argparse.REMAINDER)
    exec_watch.add_argument("--after-index", type=int, default=0, help="watch after this index")
    exec_watch.add_argument("--recursive", "-r", action="store_true", help="and the keys below")
