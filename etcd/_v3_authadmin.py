"""``etcd.auth`` (users, roles, the on/off switch) over the v3 auth API.

:mod:`etcd.auth` keeps its objects; with a client made with ``api="v3"`` it
calls these functions instead of the v2 ``/v2/auth`` paths. Answers are turned
into the v2 JSON shapes that :mod:`etcd.auth` loads.

v2 permissions are key paths where a trailing ``*`` matches everything below;
v3 permissions are key ranges. ``/app/*`` becomes the range ``[/app, /app0)``
(``/app`` itself included, since writes below ``/app`` look at it), ``/app*``
the prefix range of ``/app``, ``/*`` every key, and a path without ``*`` that
one key. v2's ``guest`` role (anonymous access while auth is on) has no v3
equivalent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._exceptions import EtcdException, EtcdKeyNotFound
from ._v3_codec import b64, unb64

if TYPE_CHECKING:
    from .client import Client

__all__ = ["get", "is_active", "names", "path_of", "range_of", "remove", "set_active", "update"]

_PERM_TYPES = {"READ": (True, False), "WRITE": (False, True), "READWRITE": (True, True)}


def _prefix_end(key: str) -> str:
    return key[:-1] + chr(ord(key[-1]) + 1)


def range_of(path: str) -> tuple[str, str | None]:
    """The v3 key range of a v2 permission path: ``(key, range_end or None)``."""
    if path in ("*", "/*"):
        return "/", "0"
    if path.endswith("/*"):
        base = path[:-2]
        return base, base + "0"
    if path.endswith("*"):
        base = path[:-1]
        return base, _prefix_end(base)
    return path, None


def path_of(key: str, range_end: str | None) -> str:
    """The v2 permission path of a v3 key range (the inverse of :func:`range_of`)."""
    if not range_end:
        return key
    if (key, range_end) == ("/", "0"):
        return "/*"
    if range_end == key + "0":
        return key + "/*"
    if key and range_end == _prefix_end(key):
        return key + "*"
    return f"{key}*..{range_end}"  # a range no v2 path names; shown as is


def _guest(name: str) -> None:
    if name == "guest":
        raise EtcdException(
            "v2's guest role (anonymous access while auth is on) has no equivalent in etcd's "
            'v3 API: with api="v3" the server refuses every request without a token'
        )


def _call(client: Client, endpoint: str, body: Mapping[str, Any], entity: str, name: str) -> Any:
    try:
        return client.api_execute_v3(endpoint, body)
    except EtcdException as exc:
        payload = exc.payload if isinstance(exc.payload, Mapping) else {}
        if "not found" in str(payload.get("cause", "")):
            raise EtcdKeyNotFound(f"The {entity} {name!r} does not exist", exc.payload) from exc
        raise


def names(client: Client, entity: str) -> list[str]:
    """The names of every user (*entity* ``"user"``) or role."""
    answer = client.api_execute_v3(f"/v3/auth/{entity}/list", {})
    listed = answer.get(f"{entity}s") or []
    return [str(name) for name in listed]


def get(client: Client, entity: str, name: str) -> dict[str, Any]:
    """A user or role in the JSON shape of the v2 auth API.

    :raises EtcdKeyNotFound: there is no such user or role.
    """
    if entity == "user":
        answer = _call(client, "/v3/auth/user/get", {"name": name}, entity, name)
        return {"user": name, "roles": list(answer.get("roles") or [])}
    _guest(name)
    answer = _call(client, "/v3/auth/role/get", {"role": name}, entity, name)
    read: list[str] = []
    write: list[str] = []
    for perm in answer.get("perm") or []:
        path = path_of(unb64(perm.get("key")), unb64(perm.get("range_end")) or None)
        can_read, can_write = _PERM_TYPES.get(str(perm.get("permType", "READ")), (True, False))
        if can_read:
            read.append(path)
        if can_write:
            write.append(path)
    return {"role": name, "permissions": {"kv": {"read": read, "write": write}}}


def update(
    client: Client,
    entity: str,
    name: str,
    *,
    exists: bool,
    password: str | None = None,
    roles: set[str] | None = None,
    acls: Mapping[str, tuple[bool, bool]] | None = None,
) -> dict[str, Any]:
    """Create the user or role, or bring it in line with what is given.

    :param exists: whether the server has it already.
    :param password: a new password (users).
    :param roles: the user's roles.
    :param acls: the role's rights, ``{path: (read, write)}``.
    :returns: the object as :func:`get` reads it afterwards.
    """
    if entity == "user":
        if not exists:
            _call(
                client,
                "/v3/auth/user/add",
                {"name": name, "password": password or ""},
                entity,
                name,
            )
        elif password is not None:
            _call(
                client,
                "/v3/auth/user/changepw",
                {"name": name, "password": password},
                entity,
                name,
            )
        current = set(get(client, entity, name)["roles"]) if exists else set()
        for role in sorted((roles or set()) - current):
            _call(client, "/v3/auth/user/grant", {"user": name, "role": role}, "role", role)
        for role in sorted(current - (roles or set())):
            _call(client, "/v3/auth/user/revoke", {"name": name, "role": role}, "role", role)
        return get(client, entity, name)
    _guest(name)
    if not exists:
        _call(client, "/v3/auth/role/add", {"name": name}, entity, name)
    before = (
        get(client, entity, name)["permissions"]["kv"] if exists else {"read": [], "write": []}
    )
    old = {
        path: (path in before["read"], path in before["write"])
        for path in {*before["read"], *before["write"]}
    }
    new = dict(acls or {})
    for path in sorted(old):
        if new.get(path) != old[path]:
            key, end = range_of(path)
            body = {"role": name, "key": b64(key)}
            if end is not None:
                body["range_end"] = b64(end)
            _call(client, "/v3/auth/role/revoke", body, entity, name)
    for path, (read, write) in sorted(new.items()):
        if old.get(path) == (read, write) or not (read or write):
            continue
        key, end = range_of(path)
        perm: dict[str, Any] = {
            "permType": "READWRITE" if read and write else ("READ" if read else "WRITE"),
            "key": b64(key),
        }
        if end is not None:
            perm["range_end"] = b64(end)
        _call(client, "/v3/auth/role/grant", {"name": name, "perm": perm}, entity, name)
    return get(client, entity, name)


def remove(client: Client, entity: str, name: str) -> None:
    """Delete a user or role.

    :raises EtcdKeyNotFound: there is no such user or role.
    """
    if entity == "role":
        _guest(name)
    body = {"name": name} if entity == "user" else {"role": name}
    _call(client, f"/v3/auth/{entity}/delete", body, entity, name)


def is_active(client: Client) -> bool:
    """Whether authentication is on."""
    try:
        answer = client.api_execute_v3("/v3/auth/status", {})
    except EtcdException as exc:
        if exc.error_code == 110:
            return True  # refused for want of a token: auth is on
        payload = exc.payload if isinstance(exc.payload, Mapping) else {}
        if payload.get("status") not in (404, 405):
            raise
    else:
        return bool(answer.get("enabled"))
    # etcd 3.4 has no /v3/auth/status: authenticating tells whether auth is on
    try:
        client.api_execute_v3("/v3/auth/authenticate", {"name": "", "password": ""})
    except EtcdException as exc:
        payload = exc.payload if isinstance(exc.payload, Mapping) else {}
        if payload.get("grpcCode") == 9 and "not enabled" in str(payload.get("cause")):
            return False
        if exc.error_code == 110:
            return True
        raise
    return True


def set_active(client: Client, value: bool) -> None:
    """Switch authentication on (needs a root user) or off (needs root)."""
    client.api_execute_v3("/v3/auth/enable" if value else "/v3/auth/disable", {})
