"""Checks of the arguments of the 0.4.5 API, made before anything is sent.

**Keyword options** of ``read``, ``write`` and ``delete`` (compat §11 i).
python-etcd 0.4.5 silently dropped every keyword it did not know. That turned a
misspelled ``prevvalue=`` into a blind overwrite, but real callers also pass
harmless extras (``write(..., recursive=True)``) and rely on them being
ignored. So a keyword that is not an option of the method called is:

1. refused when it is a near-miss of an option name: the same letters in
   another case or with ``_``/``-``, or within two edits of a condition or a
   read option;
2. refused when it is a condition the method cannot honour (``prevExist`` on
   ``delete``), because ignoring it would make a conditional call a blind one;
3. otherwise ignored, as in 0.4.5, and logged once per name at DEBUG on the
   ``etcd.client`` logger.

**Hosts, TTLs, ``update()``'s argument, keys and text**: a host written as a
URL or ``"host:port"``, a negative or fractional TTL, an ``update()`` of
something that is not a result, a key with a ``.`` or ``..`` segment and text
with a lone surrogate are refused with a message that says what to do. Where
0.4.5 raised some other class for the same input, the error is an instance of
that class too (:class:`HostFormError`, :class:`NotAResultError`,
:class:`NoPreviousNode`), so existing ``except`` clauses still catch it.
"""

from __future__ import annotations

import logging
import posixpath
import re
import threading
import urllib.parse
from collections.abc import Iterable, Mapping, Set
from typing import Any

from ._exceptions import EtcdConnectionFailed, EtcdException, EtcdTypeError, EtcdValueError

__all__ = [
    "HostFormError",
    "NoPreviousNode",
    "NotAResultError",
    "check_host",
    "check_key",
    "check_max_response_size",
    "check_options",
    "check_result",
    "check_settings",
    "check_sync_interval",
    "check_text",
    "check_ttl",
    "unsendable",
]

log = logging.getLogger("etcd.client")

#: Whose near-misses (within two edits) are refused: 0.4.5's conditions and read options.
_NEAR_MISS_TARGETS = (
    "prevValue",
    "prevIndex",
    "prevExist",
    "refresh",
    "recursive",
    "waitIndex",
    "quorum",
    "sorted",
)
#: The keyword parameters of the key-space methods, besides the option sets.
_PARAMETERS = frozenset({"ttl", "dir", "append", "timeout", "idempotent", "index"})
#: Conditions a method cannot honour, by method: ignoring them would drop a condition.
_CANNOT_HONOUR = {"delete": frozenset({"prevExist"})}

_logged: set[str] = set()
_logged_lock = threading.Lock()


def _fold(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def _within_two_edits(a: str, b: str) -> bool:
    """Whether the Levenshtein distance of *a* and *b* is at most 2."""
    if abs(len(a) - len(b)) > 2:
        return False
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        if min(current) > 2:
            return False
        previous = current
    return previous[-1] <= 2


def near_miss(name: str, known: Iterable[str]) -> str | None:
    """The option *name* most likely meant, or ``None`` if it resembles none.

    :param name: a keyword that is not an exact option name.
    :param known: every option name of the key-space methods.
    """
    folded = _fold(name)
    for option in sorted(known):
        if _fold(option) == folded:
            return option
    for option in _NEAR_MISS_TARGETS:
        if _within_two_edits(folded, option.lower()):
            return option
    return None


def check_options(
    method: str,
    given: Mapping[str, Any],
    accepted: Set[str],
    all_options: Set[str],
) -> None:
    """Refuse the keywords of *given* that would change what a call means (compat §11 i).

    :param method: the name of the method called, for the message.
    :param given: the keyword arguments the caller passed.
    :param accepted: the keywords this method takes.
    :param all_options: the option names of every key-space method (the
        client's option sets, which subclasses may extend).
    :raises EtcdTypeError: a keyword is a near-miss of an option name, or a
        condition this method cannot honour.
    """
    cannot_honour = _CANNOT_HONOUR.get(method, frozenset())
    known = all_options | _PARAMETERS
    for name in sorted(given.keys() - accepted):
        if name in cannot_honour:
            raise EtcdTypeError(
                f"{method}() cannot honour the condition {name!r}: etcd has no such "
                f"condition for {method}, and ignoring it would make the call unconditional. "
                f"The conditions {method}() takes are {', '.join(sorted(accepted))}"
            )
        if name in known:
            _ignore(method, name)
            continue
        meant = near_miss(name, known)
        if meant is not None:
            raise EtcdTypeError(
                f"{method}() got an unknown option {name!r} (did you mean {meant!r}?); "
                "nothing was sent, so that a misspelled condition cannot turn into an "
                f"unconditional request. The options {method}() takes are "
                f"{', '.join(sorted(accepted - {'_endpoint'}))}"
            )
        _ignore(method, name)


def _ignore(method: str, name: str) -> None:
    with _logged_lock:
        if name in _logged:
            return
        _logged.add(name)
    log.debug("%s() ignores the option %r, as python-etcd 0.4.5 did", method, name)


# --------------------------------------------------------------------------
# Errors that keep the class python-etcd 0.4.5 raised for the same input


class HostFormError(EtcdTypeError, EtcdConnectionFailed):
    """``host`` was given as a URL or as ``"host:port"``.

    python-etcd 0.4.5 accepted such a host and failed on every request with
    :class:`etcd.EtcdConnectionFailed`, so this error is one too, as well as
    an :class:`etcd.EtcdTypeError`.
    """


class NotAResultError(EtcdTypeError, AttributeError):
    """``update()`` was given something other than an :class:`etcd.EtcdResult`.

    python-etcd 0.4.5 failed with :class:`AttributeError` on it, so this
    error is one too, as well as an :class:`etcd.EtcdTypeError`.
    """


class NoPreviousNode(EtcdException, AttributeError):
    """``pop()`` got a DELETE answer without the previous node.

    python-etcd 0.4.5 failed with :class:`AttributeError` on it, so this
    error is one too, as well as an :class:`etcd.EtcdException`.
    """


_HOST_FORMS = (
    "host must be a host name or an IP address, such as 'localhost', '10.0.0.1' or '::1', "
    "with the port given as port= (or, with allow_reconnect=True, a tuple of (host, port) "
    "pairs such as (('10.0.0.1', 2379), ('10.0.0.2', 2379)))"
)
_NOT_IN_A_HOST = re.compile(r"[/\s?#@]")


def check_host(host: str, port: int, *, in_tuple: bool = False) -> None:
    """Refuse a host string that 0.4.5 would have turned into an unusable URL.

    Accepted: a host name, an IPv4 address, an IPv6 address with or without
    brackets (``'::1'``, ``'[::1]'``).

    :raises HostFormError: a URL, ``"host:port"``, an empty host, or a host
        with ``/``, a space, ``?``, ``#`` or ``@``.
    """
    name: str | None = None
    given_port: str | None = None
    scheme: str | None = None
    if "://" in host:
        parts = urllib.parse.urlsplit(host)
        scheme = parts.scheme
        name = parts.hostname
        try:
            given_port = str(parts.port) if parts.port is not None else None
        except ValueError:
            given_port = None
    elif host.startswith("[") and "]:" in host:
        name, _, given_port = host[1:].partition("]:")
    elif host.count(":") == 1:
        name, _, given_port = host.partition(":")
    elif host and not _NOT_IN_A_HOST.search(host):
        return
    advice = ""
    if name:
        use_port = int(given_port) if given_port and given_port.isdecimal() else port
        if in_tuple:
            advice = f" Use the pair ({name!r}, {use_port})"
        else:
            advice = f" Use host={name!r}, port={use_port}"
        if scheme in ("http", "https"):
            advice += f", protocol={scheme!r}"
        advice += "."
    raise HostFormError(f"{_HOST_FORMS}; got {host!r}.{advice}")


def check_result(obj: Any, result_class: type) -> None:
    """Refuse an ``update()`` argument that is not a result.

    :raises NotAResultError: *obj* is not an instance of *result_class*.
    """
    if not isinstance(obj, result_class):
        raise NotAResultError(
            "update() takes an EtcdResult (from read(), with value or ttl edited), "
            f"not {type(obj).__name__} {obj!r:.80}"
        )


_NUMBER_TEXT = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)\s*")


def check_ttl(ttl: Any) -> Any:
    """Refuse a TTL that etcd would refuse as "not a number", naming the value.

    Integers of 0 or more pass; so do strings of digits and other objects,
    which are sent as ``str(ttl)`` as python-etcd 0.4.5 did.

    :raises EtcdValueError: a negative number, a fraction, a float or a bool
        (the class python-etcd 0.4.5 raised from the server's answer).
    """
    if isinstance(ttl, bool):
        raise EtcdValueError(f"ttl must be a whole number of seconds (0 or more), not {ttl!r}")
    if isinstance(ttl, int):
        if ttl < 0:
            raise EtcdValueError(
                f"ttl must be a whole number of seconds (0 or more), not the negative {ttl}"
            )
        return ttl
    if isinstance(ttl, float) or (
        isinstance(ttl, str) and not ttl.isdigit() and _NUMBER_TEXT.fullmatch(ttl)
    ):
        raise EtcdValueError(
            f"ttl must be a whole number of seconds (an int, 0 or more), not {ttl!r}"
        )
    return ttl


# --------------------------------------------------------------------------
# Keys and values that cannot mean what they say


def _lone_surrogate(text: str, what: str, exc: UnicodeEncodeError) -> EtcdValueError:
    char = text[exc.start : exc.end]
    shown = text if len(text) <= 60 else text[:57] + "..."
    return EtcdValueError(
        f"The {what} {shown!r} is not valid Unicode: it has the lone surrogate {char!r} "
        f"at position {exc.start}, which UTF-8 cannot encode. Decode bytes strictly, or "
        "remove the surrogate, before passing the text."
    )


def check_text(text: str, what: str) -> None:
    """Refuse text that cannot be sent as UTF-8 (a lone surrogate such as ``'\\ud800'``).

    :raises EtcdValueError: *text* has a lone surrogate; *what* names it in the message.
    """
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _lone_surrogate(text, what, exc) from None


def check_key(key: str) -> None:
    """Refuse a key that would address another key (a deliberate difference from 0.4.5).

    etcd cleans the path it is given, so ``/t/x/..`` is ``/t``: a key built
    from user input could delete or overwrite outside its prefix.

    :raises EtcdValueError: *key* has a ``.`` or ``..`` segment, or a lone surrogate.
    """
    if "." in key:
        for part in key.split("/"):
            if part in (".", ".."):
                resolved = posixpath.normpath("/" + key.lstrip("/"))
                raise EtcdValueError(
                    f"The key {key!r} has a {part!r} segment: etcd would resolve it to "
                    f"{resolved!r}, another key than the one named. Keys must not have "
                    "'.' or '..' segments (check keys built from outside input)."
                )
    check_text(key, "key")


def unsendable(exc: UnicodeEncodeError) -> EtcdValueError:
    """The error for an option or value whose text UTF-8 cannot encode."""
    text = exc.object if isinstance(exc.object, str) else repr(exc.object)
    return _lone_surrogate(text, "text", exc)


# --------------------------------------------------------------------------
# The constructor's arguments


def check_settings(
    host: Any,
    port: Any,
    protocol: Any,
    read_timeout: Any,
    pool_size: Any,
) -> None:
    """Check the constructor arguments of :class:`etcd.Client` before any I/O.

    :raises EtcdTypeError: an argument of the wrong type.
    :raises EtcdValueError: an argument out of range.
    """
    if isinstance(host, tuple):
        for pair in host:
            if (
                not isinstance(pair, tuple)
                or len(pair) != 2
                or not isinstance(pair[0], str)
                or isinstance(pair[1], bool)
                or not isinstance(pair[1], int)
            ):
                raise EtcdTypeError(
                    f"host must be a tuple of (host, port) pairs such as "
                    f"(('10.0.0.1', 2379), ('10.0.0.2', 2379)); got {pair!r} in it"
                )
    elif not isinstance(host, str):
        raise EtcdTypeError(
            f"host must be a string, or a tuple of (host, port) pairs; "
            f"got {type(host).__name__} {host!r}"
        )
    if isinstance(port, bool) or not isinstance(port, int):
        raise EtcdTypeError(f"port must be an int, not {type(port).__name__} {port!r}")
    if not 0 < port < 65536:
        raise EtcdValueError(f"port must be from 1 to 65535, not {port!r}")
    if isinstance(host, tuple):
        for name, pair_port in host:
            check_host(name, pair_port, in_tuple=True)
    else:
        check_host(host, port)
    if protocol not in ("http", "https"):
        raise EtcdValueError(f"protocol must be 'http' or 'https', not {protocol!r}")
    if isinstance(read_timeout, bool) or not isinstance(read_timeout, (int, float)):
        raise EtcdTypeError(
            f"read_timeout must be a number of seconds, not {type(read_timeout).__name__}"
        )
    if read_timeout < 0:
        raise EtcdValueError(
            f"read_timeout must be a number of seconds (0 waits forever), not {read_timeout!r}"
        )
    if isinstance(pool_size, bool) or not isinstance(pool_size, int):
        raise EtcdTypeError(f"per_host_pool_size must be an int, not {pool_size!r}")
    if pool_size < 1:
        raise EtcdValueError(f"per_host_pool_size must be a positive integer, not {pool_size!r}")


def check_sync_interval(member_sync_interval: Any) -> None:
    """Check ``member_sync_interval``: a positive number of seconds or ``None``.

    :raises EtcdValueError: anything else.
    """
    if member_sync_interval is not None and (
        isinstance(member_sync_interval, bool)
        or not isinstance(member_sync_interval, (int, float))
        or member_sync_interval <= 0
    ):
        raise EtcdValueError(
            "member_sync_interval must be a positive number of seconds or None, "
            f"not {member_sync_interval!r}"
        )


def check_max_response_size(max_response_size: Any) -> None:
    """Check ``max_response_size``: a positive number of bytes or ``None``.

    :raises EtcdTypeError: not a number.
    :raises EtcdValueError: zero or negative.
    """
    if max_response_size is None:
        return
    if isinstance(max_response_size, bool) or not isinstance(max_response_size, int):
        raise EtcdTypeError(
            "max_response_size must be a number of bytes or None (no limit), "
            f"not {type(max_response_size).__name__} {max_response_size!r}"
        )
    if max_response_size < 1:
        raise EtcdValueError(
            "max_response_size must be a positive number of bytes or None (no limit), "
            f"not {max_response_size!r}"
        )
