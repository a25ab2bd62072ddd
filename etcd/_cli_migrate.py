"""``pyetcdctl migrate``: copy a v2 tree into the v3 layout with :mod:`etcd.migrate`.

``migrate --from URL --to URL [PREFIX]`` copies the v2 tree at *PREFIX* (all
of it by default) from the server at ``--from`` (the global ``--endpoints``
when not given) into the v3 store of the server at ``--to`` (the same server
by default), in the layout that ``--api v3`` and ``etcd.Client(api="v3")``
read. ``--dry-run`` counts what would be written, ``--verify`` compares the
two trees afterwards. Keys that already hold the same value are left alone,
so running it again resumes an interrupted copy.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._cli_tools import Progress, _show_progress

if TYPE_CHECKING:
    from .cli import Context

__all__ = ["add_commands"]


def _client_for(args: argparse.Namespace, url: str | None, api: str) -> Any:
    from .cli import make_client

    options = argparse.Namespace(**vars(args))
    if url:
        options.endpoints = url
    options.api = api
    return make_client(options)


def cmd_migrate(ctx: Context, args: argparse.Namespace) -> int:
    from . import migrate as migration
    from .cli import CommandFailed

    source = _client_for(args, args.source, "v2")
    target = _client_for(args, args.target or args.source, "v3")
    with source, target:
        progress = Progress("migrate", None, _show_progress(args))
        try:

            def step(done: int, total: int) -> None:
                progress.set_total(total)
                progress.update(done - progress.count)

            report = migration.migrate(
                source,
                target,
                args.prefix,
                batch_size=args.batch_size,
                dry_run=args.dry_run,
                progress=step,
            )
        finally:
            progress.close()
        verb = "would write" if report.dry_run else "wrote"
        print(
            f"{report.files} files, {report.directories} directories "
            f"({report.leased} with a TTL): {verb} {report.written}, "
            f"{report.unchanged} already there"
        )
        if not args.verify or report.dry_run:
            return 0
        differences = migration.verify(source, target, args.prefix)
        for difference in differences:
            print(
                f"{difference.problem} {difference.key}: v2 {difference.source!r}, "
                f"v3 {difference.target!r}"
            )
        if differences:
            raise CommandFailed(
                f"Error:  the v3 copy differs from the v2 tree in {len(differences)} places; "
                "run migrate again to resume the copy",
                1,
            )
        print("verified: the v3 copy matches the v2 tree")
    return 0


def add_commands(commands: Any) -> None:
    """Add ``migrate`` to the sub-parsers of ``pyetcdctl``."""
    parser = commands.add_parser(
        "migrate",
        help="copy a v2 tree into the v3 store (etcd.migrate)",
        description="copy the v2 tree at PREFIX into the v3 layout of --api v3",
    )
    parser.set_defaults(handler=cmd_migrate)
    parser.add_argument("prefix", nargs="?", default="/", help="the v2 subtree (default: all)")
    parser.add_argument(
        "--from", dest="source", default="", help="the v2 server's URLs (default: --endpoints)"
    )
    parser.add_argument("--to", dest="target", default="", help="the v3 server (default: --from)")
    parser.add_argument("--dry-run", action="store_true", help="count, write nothing")
    parser.add_argument("--verify", action="store_true", help="compare the trees afterwards")
    parser.add_argument("--batch-size", type=int, default=100, help="keys per transaction")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
