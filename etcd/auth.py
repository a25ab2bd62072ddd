"""Users, roles, and switching etcd's authentication on and off.

This is the admin side of etcd's v2 auth API, below ``{version_prefix}/auth/``.
It speaks to the cluster only through the public methods of
:class:`etcd.Client`, so it works with subclasses of the client too. Every
call needs the ``root`` user once authentication is on:

.. code-block:: python

    import etcd
    from etcd import auth

    root = etcd.Client(host="127.0.0.1", port=2379, username="root", password="...")

    role = auth.EtcdRole(root, "app")
    role.grant("/app/*", "RW")
    role.write()

    user = auth.EtcdUser(root, "app")
    user.password = "s3cret"
    user.roles = {"app"}
    user.write()

    auth.Auth(root).active = True

The module is not imported by ``import etcd``; use ``from etcd import auth``
or ``import etcd.auth``.

Passwords are write-only here: :attr:`EtcdUser.password` reads as ``None``,
and neither ``str()`` nor ``repr()`` of a user, nor any log record or
exception message of this module, contains one.

.. versionchanged:: 0.5.0
   :meth:`EtcdAuthBase.delete` raises :class:`etcd.EtcdException` on a
   generic error instead of :class:`AttributeError`; :meth:`EtcdAuthBase.new`
   accepts a dict; ``null`` lists from the server count as empty; ``str()`` of
   a user shows no password and no longer consumes the pending one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from . import _v3_authadmin
from ._exceptions import (
    EtcdException,
    EtcdInsufficientPermissions,
    EtcdKeyNotFound,
    EtcdTypeError,
    EtcdValueError,
)

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Auth", "EtcdAuthBase", "EtcdRole", "EtcdUser"]

log = logging.getLogger(__name__)

_A = TypeVar("_A", bound="EtcdAuthBase")

# Errors that keep their own class: the caller must be able to tell "no such
# user", "not allowed" and "cannot reach the cluster" apart.
_PASS_THROUGH_ON_READ = (EtcdInsufficientPermissions, EtcdKeyNotFound)
_PASS_THROUGH_ON_WRITE = (EtcdInsufficientPermissions,)


def _decode(data: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    """Turn a response body (or an already decoded object) into a JSON object."""
    if isinstance(data, Mapping):
        return data
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EtcdException(
                f"The auth API answered with a body that is not UTF-8: {exc}"
            ) from exc
    try:
        decoded = json.loads(data)
    except ValueError as exc:
        # The text itself is not quoted: a record given to new() may hold a password.
        raise EtcdException(f"The auth API answered with invalid JSON ({exc})") from exc
    if not isinstance(decoded, Mapping):
        raise EtcdException(f"The auth API answered with {type(decoded).__name__}, not an object")
    return decoded


def _names(value: Any) -> list[Any]:
    """A list from the server, where ``null`` (and a missing field) means empty."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise EtcdException(f"The auth API answered with {type(value).__name__} where a list belongs")


class EtcdAuthBase:
    """What users and roles have in common: a name, and reading, writing and deleting it.

    :param client: the client to send requests through; once authentication
        is on, it must be logged in as ``root``.
    :param name: the name of the user or role.

    Nothing is sent until :meth:`read`, :meth:`write` or :meth:`delete` is
    called (or :attr:`names`, :attr:`legacy_api` are read).
    """

    #: ``"user"`` or ``"role"``: the kind of object, and the path element of its URI.
    entity: ClassVar[str] = "entity"

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name
        #: The path of this object, ``{version_prefix}/auth/{entity}s/{name}``.
        self.uri = f"{client.version_prefix}/auth/{self.entity}s/{name}"
        #: ``None`` until :attr:`legacy_api` was asked; set it to skip the question.
        self._legacy_api: bool | None = None

    @property
    def legacy_api(self) -> bool:
        """Whether the server speaks the auth API of etcd before 2.3.

        Servers before 2.3 list users and roles by name only; 2.3 and every
        3.x server send objects. The answer comes from :attr:`etcd.Client.version`
        and is kept; setting ``_legacy_api`` overrides it.

        .. note:: The first access may make a request (``GET /version``).

        :raises EtcdException: the server's version could not be read or understood.
        """
        if self._legacy_api is None:
            version = self.client.version or ""
            try:
                major, minor = (int(part) for part in version.split(".")[:2])
            except ValueError as exc:
                raise EtcdException(f"Cannot understand the etcd version {version!r}") from exc
            self._legacy_api = major < 3 and minor < 3
        return self._legacy_api

    @property
    def names(self) -> list[str]:
        """The names of every user (or every role) on the server.

        .. note:: Each access is a request.

        :raises EtcdInsufficientPermissions: the client is not ``root``.
        :raises EtcdException: the server refused or answered nonsense.
        """
        key = f"{self.entity}s"
        if self.client.api == "v3":
            return _v3_authadmin.names(self.client, self.entity)
        response = self.client.api_execute(f"{self.client.version_prefix}/auth/{key}", "GET")
        names: list[str] = []
        for item in _names(_decode(response.data).get(key)):
            # The legacy API lists names; the current one lists objects.
            if isinstance(item, Mapping) and isinstance(item.get(self.entity), str):
                names.append(item[self.entity])
            elif isinstance(item, str):
                names.append(item)
            else:
                raise EtcdException(f"Unexpected entry in the list of {key}: {item!r}")
        return names

    def read(self) -> None:
        """Load this object from the server, replacing what it held.

        :raises EtcdKeyNotFound: there is no such user or role.
        :raises EtcdInsufficientPermissions: the client is not ``root``.
        :raises EtcdException: anything else, as ``Could not fetch {entity} '{name}'``;
            the server's error is its ``__cause__`` and its body the ``payload``.
        """
        try:
            if self.client.api == "v3":
                self._from_net(_v3_authadmin.get(self.client, self.entity, self.name))
                return
            response = self.client.api_execute(self.uri, "GET")
            self._from_net(response.data)
        except _PASS_THROUGH_ON_READ:
            raise
        except EtcdException as exc:
            raise EtcdException(
                f"Could not fetch {self.entity} '{self.name}'", exc.payload
            ) from exc

    def write(self) -> None:
        """Create the object on the server, or bring the server's copy in line with this one.

        A fresh copy is read first. If there is none, the object is created;
        otherwise only the differences are sent (for a user: a new password,
        granted roles, revoked roles; for a role: revoked paths, then granted
        ones), in that order. This object is then loaded from the answers.

        :raises EtcdInsufficientPermissions: the client is not ``root``.
        :raises EtcdException: anything else, as ``Could not write {entity} '{name}': {error}``.
        """
        fresh = type(self)(self.client, self.name)
        fresh._legacy_api = self._legacy_api
        previous: EtcdAuthBase | None = fresh
        try:
            fresh.read()
        except EtcdKeyNotFound:
            previous = None
        try:
            if self.client.api == "v3":
                exists = previous is not None
                state = self._v3_state()
                self._from_net(
                    _v3_authadmin.update(
                        self.client, self.entity, self.name, exists=exists, **state
                    )
                )
                log.debug("Wrote %s %r", self.entity, self.name)
                return
            for payload in self._to_net(previous):
                response = self.client.api_execute_json(self.uri, "PUT", payload)
                self._from_net(response.data)
        except _PASS_THROUGH_ON_WRITE:
            raise
        except EtcdException as exc:
            raise EtcdException(
                f"Could not write {self.entity} '{self.name}': {exc}", exc.payload
            ) from exc
        log.debug("Wrote %s %r", self.entity, self.name)

    def delete(self) -> None:
        """Delete the object on the server.

        :raises EtcdKeyNotFound: there is no such user or role.
        :raises EtcdInsufficientPermissions: the client is not ``root``.
        :raises EtcdException: anything else, as ``Could not delete {entity} '{name}'``,
            for example the ``root`` user while authentication is on; the
            server's error is its ``__cause__`` and its body the ``payload``.

        .. versionchanged:: 0.5.0
           A generic error raises :class:`etcd.EtcdException`, not :class:`AttributeError`.
        """
        try:
            if self.client.api == "v3":
                _v3_authadmin.remove(self.client, self.entity, self.name)
            else:
                self.client.api_execute(self.uri, "DELETE")
        except _PASS_THROUGH_ON_READ:
            raise
        except EtcdException as exc:
            raise EtcdException(
                f"Could not delete {self.entity} '{self.name}'", exc.payload
            ) from exc
        log.debug("Deleted %s %r", self.entity, self.name)

    @classmethod
    def new(cls: type[_A], client: Client, data: bytes | str | Mapping[str, Any]) -> _A:
        """Build an object from what the server sent, without a request.

        :param client: the client the object will use.
        :param data: a decoded JSON object such as ``{"user": "bob", "roles": [...]}``,
            or its text.
        :returns: the object, named as *data* says.
        :raises EtcdException: *data* is not such an object.

        .. versionchanged:: 0.5.0
           *data* may be a dict.
        """
        decoded = _decode(data)
        name = decoded.get(cls.entity)
        if not isinstance(name, str):
            # Only the field names: the data may hold a password.
            raise EtcdException(f"No {cls.entity} name in a record with fields {sorted(decoded)}")
        obj = cls(client, name)
        obj._from_net(decoded)
        return obj

    def _from_net(self, data: bytes | str | Mapping[str, Any]) -> None:
        """Load a server answer (bytes, text or a decoded dict) into this object."""
        decoded = _decode(data)
        try:
            self._load(decoded)
        except (LookupError, TypeError, AttributeError) as exc:
            raise EtcdException(
                f"Unexpected {self.entity} record with fields {sorted(decoded)}: {exc!r}"
            ) from exc

    def _load(self, data: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _to_net(self, prev: Any = None) -> list[dict[str, Any]]:
        """The request bodies that turn *prev* (``None``: nothing) into this object."""
        raise NotImplementedError

    def _v3_state(self) -> dict[str, Any]:
        """What :func:`etcd._v3_authadmin.update` needs to write this object over v3."""
        raise NotImplementedError


class EtcdUser(EtcdAuthBase):
    """A user of etcd's v2 auth API.

    :param client: the client to send requests through (``root`` once auth is on).
    :param name: the user name.

    Set :attr:`password` and :attr:`roles`, then call :meth:`write`:

    .. code-block:: python

        user = EtcdUser(root_client, "app")
        user.password = "s3cret"
        user.roles = {"app"}
        user.write()
    """

    entity = "user"

    def __init__(self, client: Client, name: str) -> None:
        super().__init__(client, name)
        self._roles: set[str] = set()
        self._password: str | None = None

    @property
    def roles(self) -> set[str]:
        """The names of the user's roles, a set that may be changed in place."""
        return self._roles

    @roles.setter
    def roles(self, roles: Iterable[str]) -> None:
        if isinstance(roles, str):
            raise EtcdTypeError(
                f"roles must be a collection of role names, not the string {roles!r}"
            )
        self._roles = set(roles)

    @property
    def password(self) -> None:
        """Always ``None``: passwords are never read back.

        Setting it stores a new password that the next :meth:`write` sends once.
        """
        return None

    @password.setter
    def password(self, new_password: str | None) -> None:
        self._password = new_password

    def _load(self, data: Mapping[str, Any]) -> None:
        roles: set[str] = set()
        for role in _names(data.get("roles")):
            if isinstance(role, Mapping):
                # Single-user PUT answers list names; GETs expand them into objects.
                if self.legacy_api:
                    raise EtcdException(f"Role objects from a legacy auth API: {role!r}")
                roles.add(role["role"])
            else:
                roles.add(role)
        self.name = data["user"]
        self._roles = roles

    def _to_net(self, prev: Any = None) -> list[dict[str, Any]]:
        password, self._password = self._password, None
        if prev is None:
            return [{"user": self.name, "password": password, "roles": sorted(self._roles)}]
        payloads: list[dict[str, Any]] = []
        if password is not None:
            payloads.append({"user": self.name, "password": password})
        granted = sorted(self._roles - prev.roles)
        if granted:
            payloads.append({"user": self.name, "grant": granted})
        revoked = sorted(prev.roles - self._roles)
        if revoked:
            payloads.append({"user": self.name, "revoke": revoked})
        return payloads

    def _v3_state(self) -> dict[str, Any]:
        password, self._password = self._password, None
        return {"password": password, "roles": set(self._roles)}

    def __str__(self) -> str:
        return json.dumps({"user": self.name, "password": None, "roles": sorted(self._roles)})

    def __repr__(self) -> str:
        return f"<etcd.auth.EtcdUser {self.name!r} roles={sorted(self._roles)!r}>"


class EtcdRole(EtcdAuthBase):
    """A role of etcd's v2 auth API: the key paths it may read and write.

    :param client: the client to send requests through (``root`` once auth is on).
    :param name: the role name.

    Paths are etcd key paths, where a trailing ``*`` matches everything
    below (``/app/*``):

    .. code-block:: python

        role = EtcdRole(root_client, "app")
        role.grant("/app/*", "RW")
        role.grant("/shared/*", "R")
        role.write()
    """

    entity = "role"

    def __init__(self, client: Client, name: str) -> None:
        super().__init__(client, name)
        self._read_paths: set[str] = set()
        self._write_paths: set[str] = set()

    def _load(self, data: Mapping[str, Any]) -> None:
        kv = (data.get("permissions") or {}).get("kv") or {}
        self.name = data["role"]
        self._read_paths = set(_names(kv.get("read")))
        self._write_paths = set(_names(kv.get("write")))

    def _to_net(self, prev: Any = None) -> list[dict[str, Any]]:
        if prev is None:
            permissions = {"read": sorted(self._read_paths), "write": sorted(self._write_paths)}
            return [{"role": self.name, "permissions": {"kv": permissions}}]
        payloads: list[dict[str, Any]] = []
        revoked = {
            "read": sorted(prev._read_paths - self._read_paths),
            "write": sorted(prev._write_paths - self._write_paths),
        }
        if revoked["read"] or revoked["write"]:
            payloads.append({"role": self.name, "revoke": {"kv": revoked}})
        granted = {
            "read": sorted(self._read_paths - prev._read_paths),
            "write": sorted(self._write_paths - prev._write_paths),
        }
        if granted["read"] or granted["write"]:
            payloads.append({"role": self.name, "grant": {"kv": granted}})
        return payloads

    @staticmethod
    def _rights(permission: str) -> tuple[bool, bool]:
        upper = permission.upper()
        read, write = "R" in upper, "W" in upper
        if not (read or write):
            raise EtcdValueError(
                f"A permission is 'R', 'W' or 'RW' (any case), not {permission!r}"
            )
        return read, write

    def grant(self, path: str, permission: str) -> None:
        """Allow reading and/or writing *path*; sent by the next :meth:`write`.

        :param path: a key path; ``/app/*`` covers everything below ``/app``.
        :param permission: ``"R"``, ``"W"`` or ``"RW"``, in any case.
        :raises EtcdValueError: *permission* names neither right.
        """
        read, write = self._rights(permission)
        if read:
            self._read_paths.add(path)
        if write:
            self._write_paths.add(path)

    def revoke(self, path: str, permission: str) -> None:
        """Withdraw reading and/or writing *path*; sent by the next :meth:`write`.

        :param path: a path granted before.
        :param permission: ``"R"``, ``"W"`` or ``"RW"``, in any case.
        :raises EtcdValueError: *permission* names neither right.
        """
        read, write = self._rights(permission)
        if read:
            self._read_paths.discard(path)
        if write:
            self._write_paths.discard(path)

    @property
    def acls(self) -> dict[str, str]:
        """The role's rights as ``{path: "R" | "W" | "RW"}``.

        Assigning a dict replaces every right with the ones it lists.
        """
        acls = {}
        for path in sorted(self._read_paths | self._write_paths):
            acls[path] = ("R" if path in self._read_paths else "") + (
                "W" if path in self._write_paths else ""
            )
        return acls

    @acls.setter
    def acls(self, acls: Mapping[str, str]) -> None:
        rights = {path: self._rights(permission) for path, permission in acls.items()}
        self._read_paths = {path for path, (read, _) in rights.items() if read}
        self._write_paths = {path for path, (_, write) in rights.items() if write}

    def _v3_state(self) -> dict[str, Any]:
        paths = self._read_paths | self._write_paths
        return {"acls": {p: (p in self._read_paths, p in self._write_paths) for p in paths}}

    def __str__(self) -> str:
        return json.dumps({"role": self.name, "acls": self.acls})

    def __repr__(self) -> str:
        return f"<etcd.auth.EtcdRole {self.name!r} acls={self.acls!r}>"


class Auth:
    """Switch the cluster's authentication on and off.

    :param client: the client to send requests through.

    Before switching it on, create the ``root`` user (:class:`EtcdUser`). The
    server then also creates the role ``guest``, which keeps anonymous
    requests working with full rights until its rights are revoked.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        #: The path of the switch, ``{version_prefix}/auth/enable``.
        self.uri = f"{client.version_prefix}/auth/enable"

    @property
    def active(self) -> bool:
        """Whether authentication is on.

        Assigning a different value switches it: on needs a ``root`` user,
        off needs the client to be ``root``. Assigning the current value
        sends nothing more.

        .. note:: Each read is a request; each assignment makes one or two.

        :raises EtcdException: switching on without a ``root`` user.
        :raises EtcdInsufficientPermissions: switching off as another user.
        """
        if self.client.api == "v3":
            return _v3_authadmin.is_active(self.client)
        response = self.client.api_execute(self.uri, "GET")
        enabled = _decode(response.data).get("enabled")
        if not isinstance(enabled, bool):
            raise EtcdException(f"Unexpected answer from {self.uri}: {response.data[:200]!r}")
        return enabled

    @active.setter
    def active(self, value: bool) -> None:
        if bool(value) == self.active:
            return
        if self.client.api == "v3":
            _v3_authadmin.set_active(self.client, bool(value))
        else:
            self.client.api_execute(self.uri, "PUT" if value else "DELETE")
        log.info("Authentication switched %s", "on" if value else "off")
