"""The cluster and access commands of ``pyetcdctl``: member, cluster-health, user, role, auth.

They print what etcdctl v2 prints; their errors exit with 1, as etcdctl's do.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from typing import TYPE_CHECKING, Any

from . import auth
from ._exceptions import EtcdException, EtcdKeyNotFound
from .client import Client

if TYPE_CHECKING:
    from .cli import Context

__all__ = ["add_commands"]


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


def _server_fail(exc: EtcdException) -> int:
    from .cli import server_message

    return _fail(server_message(exc))


# -- member ---------------------------------------------------------------------------------


def cmd_member_list(ctx: Context, args: argparse.Namespace) -> int:
    client = ctx.client
    members = client.get_members()
    leader = client.get_leader()
    for member in members:
        if not member.name:
            print(f"{member.id}[unstarted]: peerURLs={','.join(member.peer_urls)}")
            continue
        print(
            f"{member.id}: name={member.name} peerURLs={','.join(member.peer_urls)} "
            f"clientURLs={','.join(member.client_urls)} "
            f"isLeader={'true' if member.id == leader.id else 'false'}"
        )
    return 0


def cmd_member_add(ctx: Context, args: argparse.Namespace) -> int:
    if len(args.args) != 2:
        return _fail("Provide a name and a single member peerURL")
    name, url = args.args
    client = ctx.client
    try:
        added = client.add_member([url])
    except EtcdException as exc:
        return _server_fail(exc)
    print(f"Added member named {name} with ID {added.id} to cluster")
    conf = [
        f"{name if member.id == added.id else member.name}={peer}"
        for member in client.get_members()
        for peer in member.peer_urls
    ]
    print()
    print(f'ETCD_NAME="{name}"')
    print(f'ETCD_INITIAL_CLUSTER="{",".join(conf)}"')
    print('ETCD_INITIAL_CLUSTER_STATE="existing"')
    return 0


def cmd_member_remove(ctx: Context, args: argparse.Namespace) -> int:
    if len(args.args) != 1:
        return _fail("Provide a single member ID")
    wanted = args.args[0]
    client = ctx.client
    found = False
    for member in client.get_members():
        found = found or member.id == wanted
        if member.name == wanted:
            print(
                f"Found a member named {member.name}; if this is correct, please use its ID, "
                f"eg:\n\tpyetcdctl member remove {member.id}\n",
                file=sys.stderr,
            )
    if not found:
        return _fail(f"Couldn't find a member in the cluster with an ID of {wanted}.")
    try:
        client.remove_member(wanted)
    except EtcdException as exc:
        return _fail(f"Received an error trying to remove member {wanted}: {exc}")
    print(f"Removed member {wanted} from cluster")
    return 0


def cmd_member_update(ctx: Context, args: argparse.Namespace) -> int:
    if len(args.args) != 2:
        return _fail(
            "Provide an ID and a list of comma separated peerURL "
            "(0xabcd http://example.com,http://example1.com)"
        )
    member_id, urls = args.args
    try:
        ctx.client.update_member(member_id, urls.split(","))
    except EtcdKeyNotFound:
        return _fail(f"No such member: {member_id}")
    except EtcdException as exc:
        return _server_fail(exc)
    print(f"Updated member with ID {member_id} in cluster")
    return 0


def _healthy(url: str, args: argparse.Namespace) -> bool:
    """Whether the member at *url* says it is healthy, asked with the global TLS settings."""
    from .cli import _split_endpoint, client_options

    options = client_options(args)
    for name in ("host", "port", "allow_reconnect", "use_proxies", "srv_domain"):
        options.pop(name, None)
    scheme, host, port = _split_endpoint(url)
    options["protocol"] = scheme
    with Client(host=host, port=port, **options) as probe:
        return any(probe.health(timeout=args.timeout).values())


def cmd_cluster_health(ctx: Context, args: argparse.Namespace) -> int:
    from .cli import EXIT_CLUSTER_NOT_HEALTHY, EXIT_SERVER_ERROR, error_line

    args.no_sync = True  # as etcdctl: a cluster that cannot be listed is reported, not synced

    while True:
        try:
            members = ctx.client.get_members()
        except EtcdException as exc:
            print("cluster may be unhealthy: failed to list members", flush=True)
            print(error_line(exc), file=sys.stderr)
            return EXIT_SERVER_ERROR
        healthy = 0
        for member in members:
            if not member.client_urls:
                print(f"member {member.id} is unreachable: no available published client urls")
                continue
            url = member.client_urls[0]
            if _healthy(url, args):
                print(f"member {member.id} is healthy: got healthy result from {url}")
                healthy += 1
            else:
                print(f"member {member.id} is unhealthy: got unhealthy result from {url}")
        if healthy == len(members):
            print("cluster is healthy", flush=True)
        elif healthy == 0:
            print("cluster is unavailable", flush=True)
        else:
            print("cluster is degraded", flush=True)
        if not args.forever:
            return 0 if healthy == len(members) else EXIT_CLUSTER_NOT_HEALTHY
        print("\nnext check after 10 second...\n", flush=True)
        time.sleep(10)


# -- user, role, auth -----------------------------------------------------------------------


def ask_password(prompt: str) -> str:
    """Read a password: without echo from a terminal, else a line of stdin (as etcdctl)."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    print(prompt, flush=True)
    return sys.stdin.readline().rstrip("\r\n")


def _name_and_password(arg: str, prompt: str) -> tuple[str, str]:
    name, sep, password = arg.partition(":")
    if not sep:
        password = ask_password(prompt)
    return name, password


def cmd_user_add(ctx: Context, args: argparse.Namespace) -> int:
    if len(args.args) != 1:
        return _fail("Please provide a username")
    client = ctx.client
    # etcdctl 3.4 means to refuse an existing user here, but its check never
    # succeeds against etcd 3.x: it sets the password instead, and so does this.
    name, password = _name_and_password(args.args[0], "New password: ")
    user = auth.EtcdUser(client, name)
    user.password = password
    try:
        user.write()
    except EtcdException as exc:
        return _server_fail(exc)
    print(f"User {name} created")
    return 0


def _read(obj: auth.EtcdAuthBase) -> None:
    obj.read()


def cmd_user_get(ctx: Context, args: argparse.Namespace) -> int:
    if len(args.args) != 1:
        return _fail("Please provide a username")
    user = auth.EtcdUser(ctx.client, args.args[0])
    try:
        _read(user)
    except EtcdException as exc:
        return _server_fail(exc)
    print(f"User: {user.name}")
    print("Roles: " + "".join(f" {role}" for role in sorted(user.roles)))
    return 0


def _list(ctx: Context, cls: type[auth.EtcdAuthBase]) -> int:
    try:
        names = cls(ctx.client, "").names
    except EtcdException as exc:
        return _server_fail(exc)
    for name in names:
        print(name)
    return 0


def cmd_user_list(ctx: Context, args: argparse.Namespace) -> int:
    return _list(ctx, auth.EtcdUser)


def cmd_role_list(ctx: Context, args: argparse.Namespace) -> int:
    return _list(ctx, auth.EtcdRole)


def _remove(ctx: Context, args: argparse.Namespace, cls: type[auth.EtcdAuthBase]) -> int:
    what = "User" if cls is auth.EtcdUser else "Role"
    if len(args.args) != 1:
        return _fail(
            "Please provide a username" if what == "User" else "Please provide a role name"
        )
    try:
        cls(ctx.client, args.args[0]).delete()
    except EtcdException as exc:
        return _server_fail(exc)
    print(f"{what} {args.args[0]} removed")
    return 0


def cmd_user_remove(ctx: Context, args: argparse.Namespace) -> int:
    return _remove(ctx, args, auth.EtcdUser)


def cmd_role_remove(ctx: Context, args: argparse.Namespace) -> int:
    return _remove(ctx, args, auth.EtcdRole)


def _user_roles(ctx: Context, args: argparse.Namespace, grant: bool) -> int:
    if not args.roles:
        return _fail("No roles specified; please use `--roles`")
    if len(args.args) != 1:
        return _fail("Please provide a username")
    user = auth.EtcdUser(ctx.client, args.args[0])
    try:
        _read(user)
        for role in args.roles:
            if grant:
                user.roles.add(role)
            elif role not in user.roles:
                return _fail(f"auth: Revoking ungranted role {role} for user {user.name}")
            else:
                user.roles.discard(role)
        user.write()
    except EtcdException as exc:
        return _server_fail(exc)
    print(f"User {user.name} updated")
    return 0


def cmd_user_grant(ctx: Context, args: argparse.Namespace) -> int:
    return _user_roles(ctx, args, grant=True)


def cmd_user_revoke(ctx: Context, args: argparse.Namespace) -> int:
    return _user_roles(ctx, args, grant=False)


def cmd_user_passwd(ctx: Context, args: argparse.Namespace) -> int:
    if len(args.args) != 1:
        return _fail("Please provide a username")
    name = args.args[0]
    password = ask_password("New password: ")
    user = auth.EtcdUser(ctx.client, name)
    try:
        _read(user)
        user.password = password
        user.write()
    except EtcdException as exc:
        return _server_fail(exc)
    print("Password updated")
    return 0


def cmd_role_add(ctx: Context, args: argparse.Namespace) -> int:
    if len(args.args) != 1:
        return _fail("Please provide a role name")
    name = args.args[0]
    client = ctx.client
    try:
        if name in auth.EtcdRole(client, name).names:
            return _fail(f"Role {name} already exists")
        auth.EtcdRole(client, name).write()
    except EtcdException as exc:
        return _server_fail(exc)
    print(f"Role {name} created")
    return 0


def cmd_role_get(ctx: Context, args: argparse.Namespace) -> int:
    if len(args.args) != 1:
        return _fail("Please provide a role name")
    role = auth.EtcdRole(ctx.client, args.args[0])
    try:
        _read(role)
    except EtcdException as exc:
        return _server_fail(exc)
    acls = role.acls
    print(f"Role: {role.name}")
    print("KV Read:")
    for path, rights in acls.items():
        if "R" in rights:
            print(f"\t{path}")
    print("KV Write:")
    for path, rights in acls.items():
        if "W" in rights:
            print(f"\t{path}")
    return 0


def _role_paths(ctx: Context, args: argparse.Namespace, grant: bool) -> int:
    if not args.path:
        return _fail("No path specified; please use `--path`")
    chosen = [flag for flag in (args.read, args.write, args.readwrite) if flag]
    if len(chosen) != 1:
        return _fail("Please specify exactly one of --read, --write or --readwrite")
    if len(args.args) != 1:
        return _fail("Please provide a role name")
    permission = "R" if args.read else "W" if args.write else "RW"
    role = auth.EtcdRole(ctx.client, args.args[0])
    try:
        _read(role)
        if grant:
            role.grant(args.path, permission)
        else:
            role.revoke(args.path, permission)
        role.write()
    except EtcdException as exc:
        return _server_fail(exc)
    print(f"Role {role.name} updated")
    return 0


def cmd_role_grant(ctx: Context, args: argparse.Namespace) -> int:
    return _role_paths(ctx, args, grant=True)


def cmd_role_revoke(ctx: Context, args: argparse.Namespace) -> int:
    return _role_paths(ctx, args, grant=False)


def _switch_auth(ctx: Context, on: bool) -> int:
    client = ctx.client
    try:
        client.api_execute(f"{client.version_prefix}/auth/enable", "PUT" if on else "DELETE")
    except EtcdException as exc:
        return _server_fail(exc)
    print("Authentication Enabled" if on else "Authentication Disabled")
    return 0


def cmd_auth_enable(ctx: Context, args: argparse.Namespace) -> int:
    return _switch_auth(ctx, True)


def cmd_auth_disable(ctx: Context, args: argparse.Namespace) -> int:
    return _switch_auth(ctx, False)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def add_commands(commands: Any) -> None:
    """Add member, cluster-health, user, role and auth to the sub-parsers of ``pyetcdctl``."""
    from .cli import _Parser

    def group(name: str, help: str, subcommands: dict[str, tuple[Any, str]]) -> Any:
        parser = commands.add_parser(name, help=help, description=help)
        parser.set_defaults(handler=lambda ctx, args: _print_help(parser))
        sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", parser_class=_Parser)
        parser.set_defaults(_commands=sub)
        made = {}
        for sub_name, (handler, sub_help) in subcommands.items():
            child = sub.add_parser(sub_name, help=sub_help, description=sub_help)
            child.set_defaults(handler=handler)
            child.add_argument("args", nargs="*")
            made[sub_name] = child
        return made

    group(
        "member",
        "member add, remove, list and update",
        {
            "list": (cmd_member_list, "list the members"),
            "add": (cmd_member_add, "add a member: NAME PEER-URL"),
            "remove": (cmd_member_remove, "remove a member: ID"),
            "update": (cmd_member_update, "change a member's peer URLs: ID URL,URL"),
        },
    )
    health = commands.add_parser(
        "cluster-health", help="check the health of the cluster", description="check the health"
    )
    health.set_defaults(handler=cmd_cluster_health)
    health.add_argument("--forever", "-f", action="store_true", help="every 10 s until Ctrl-C")

    users = group(
        "user",
        "user add, get, list, remove, grant, revoke and passwd",
        {
            "add": (cmd_user_add, "add a user: NAME[:PASSWORD]"),
            "get": (cmd_user_get, "show a user's roles"),
            "list": (cmd_user_list, "list the users"),
            "remove": (cmd_user_remove, "remove a user"),
            "grant": (cmd_user_grant, "grant roles to a user"),
            "revoke": (cmd_user_revoke, "revoke roles of a user"),
            "passwd": (cmd_user_passwd, "change a user's password: NAME[:PASSWORD]"),
        },
    )
    for name in ("grant", "revoke"):
        users[name].add_argument("--roles", action="append", default=[], help="a role name")
    roles = group(
        "role",
        "role add, get, list, remove, grant and revoke",
        {
            "add": (cmd_role_add, "add a role"),
            "get": (cmd_role_get, "show a role's paths"),
            "list": (cmd_role_list, "list the roles"),
            "remove": (cmd_role_remove, "remove a role"),
            "grant": (cmd_role_grant, "grant a path to a role"),
            "revoke": (cmd_role_revoke, "revoke a path from a role"),
        },
    )
    for name in ("grant", "revoke"):
        roles[name].add_argument("--path", default="", help="the key path, such as /app/*")
        roles[name].add_argument("--read", action="store_true", help="read access")
        roles[name].add_argument("--write", action="store_true", help="write access")
        roles[name].add_argument(
            "--readwrite", "--rw", action="store_true", help="read and write access"
        )
    group(
        "auth",
        "switch authentication on and off",
        {
            "enable": (cmd_auth_enable, "switch authentication on"),
            "disable": (cmd_auth_disable, "switch authentication off"),
        },
    )
