"""The v2 errors and option checks of the v3 protocol (pure code, no I/O).

The v3 protocol reports what v2 would have answered: the same error codes,
messages and causes, and the same client-side validation errors (2xx).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, NoReturn

from ._exceptions import EtcdError, EtcdException
from ._v3_codec import int_field, unb64

__all__ = [
    "_ancestors",
    "_bool_option",
    "_compare_failed",
    "_expiration",
    "_int_option",
    "_kvs",
    "_not_file",
    "_not_found",
    "_raise",
    "_validation",
]


# The HTTP status v2 answers each error with, kept in the payload as v2's is.
_STATUS = {100: 404, 101: 412, 102: 403, 104: 403, 105: 412, 107: 403, 108: 403}


def _raise(code: int, message: str, cause: str, index: int) -> NoReturn:
    status = _STATUS.get(code, 400)
    EtcdError.handle(
        {"errorCode": code, "message": message, "cause": cause, "index": index, "status": status}
    )


def _not_found(path: str, index: int) -> NoReturn:
    _raise(100, "Key not found", path or "/", index)


def _not_file(path: str, index: int) -> NoReturn:
    _raise(102, "Not a file", path, index)


def _compare_failed(
    kv: Mapping[str, Any], prev_value: str | None, prev_index: int | None, index: int
) -> NoReturn:
    """Raise v2's error 101, whose cause shows each condition that did not hold."""
    causes = []
    if prev_value is not None and unb64(kv.get("value")) != prev_value:
        causes.append(f"[{prev_value} != {unb64(kv.get('value'))}]")
    if prev_index is not None and int_field(kv, "mod_revision") != prev_index:
        causes.append(f"[{prev_index} != {int_field(kv, 'mod_revision')}]")
    _raise(101, "Compare failed", " ".join(causes), index)


def _validation(code: int, message: str, cause: str) -> NoReturn:
    _raise(code, message, cause, 0)


def _ancestors(path: str) -> list[str]:
    """The v2 paths above *path*, outermost first: ``/a/b/c`` gives ``/a``, ``/a/b``."""
    parts = path.split("/")[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _kvs(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    kvs = answer.get("kvs") or []
    if not isinstance(kvs, list):
        raise EtcdException(f"Unable to decode server response: kvs is {kvs!r}")
    return kvs


def _bool_option(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    _validation(209, "Invalid field", f"invalid value for {name!r}: {value!r}")


def _int_option(name: str, value: Any, code: int, message: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        _validation(code, message, f'invalid value for "{name}"')
    if number < 0:
        _validation(code, message, f'invalid value for "{name}"')
    return number


def _expiration(ttl: int) -> str:
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=ttl)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
