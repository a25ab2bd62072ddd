"""Checks of the arguments of the 0.4.5 key-space methods (compat §11 i).

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
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Set
from typing import Any

from ._exceptions import EtcdTypeError

__all__ = ["check_options"]

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
