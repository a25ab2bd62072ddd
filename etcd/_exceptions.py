"""The exception tree of the client and the table of etcd error codes.

Every error this library raises is an :class:`EtcdException`::

    EtcdException
    ├── EtcdValueError (also ValueError)          codes 200-212
    │   ├── EtcdCompareFailed                     code 101
    │   └── EtcdDirNotEmpty                       code 108
    ├── EtcdTypeError (also TypeError)            a bad argument or option
    ├── EtcdKeyError (not a KeyError)
    │   ├── EtcdKeyNotFound                       code 100, HTTP 404
    │   ├── EtcdNotFile                           code 102
    │   ├── EtcdNotDir                            code 104
    │   ├── EtcdAlreadyExist                      code 105
    │   └── EtcdRootReadOnly                      code 107
    ├── EtcdClusterIdChanged
    ├── EtcdEventIndexCleared                     code 401
    ├── EtcdConnectionFailed
    │   └── EtcdWatchTimedOut
    ├── EtcdInsufficientPermissions               code 110, HTTP 401
    ├── EtcdWatcherCleared                        code 400
    ├── EtcdLeaderElectionInProgress              code 301
    ├── EtcdLockExpired
    ├── EtcdRaftInternalError                     code 300
    ├── EtcdV2ApiDisabled                         a plain-text 404
    └── EtcdBadResponse                           an answer the client refuses

:class:`EtcdError` keeps the code table of python-etcd 0.4.5: its
``error_exceptions`` dict is looked up at raise time, so callers may patch it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, NoReturn

__all__ = [
    "EtcdAlreadyExist",
    "EtcdBadResponse",
    "EtcdClusterIdChanged",
    "EtcdCompareFailed",
    "EtcdConnectionFailed",
    "EtcdDirNotEmpty",
    "EtcdError",
    "EtcdEventIndexCleared",
    "EtcdException",
    "EtcdInsufficientPermissions",
    "EtcdKeyError",
    "EtcdKeyNotFound",
    "EtcdLeaderElectionInProgress",
    "EtcdLockExpired",
    "EtcdNotDir",
    "EtcdNotFile",
    "EtcdRaftInternalError",
    "EtcdRootReadOnly",
    "EtcdTypeError",
    "EtcdV2ApiDisabled",
    "EtcdValueError",
    "EtcdWatchTimedOut",
    "EtcdWatcherCleared",
]


class EtcdException(Exception):
    """The root of every error raised by this library.

    :param message: what went wrong; ``str(exc)`` is this message.
    :param payload: the decoded error body of the server, when there is one.
    """

    def __init__(self, message: str | None = None, payload: Any = None) -> None:
        super().__init__(message)
        self.payload = payload

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, self.__dict__))

    @property
    def error_code(self) -> int | None:
        """The etcd ``errorCode`` of the server's answer, or ``None``.

        .. versionadded:: 0.5.0
        """
        if isinstance(self.payload, Mapping):
            code = self.payload.get("errorCode")
            if isinstance(code, int):
                return code
        return None


def _rebuild(cls: type[EtcdException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


class EtcdValueError(EtcdException, ValueError):
    """The server refused a value or a form field (etcd errors 200-212)."""


class EtcdCompareFailed(EtcdValueError):
    """A ``prevValue`` or ``prevIndex`` condition did not hold (etcd error 101)."""


class EtcdDirNotEmpty(EtcdValueError):
    """A non-recursive delete of a directory that has children (etcd error 108)."""


class EtcdTypeError(EtcdException, TypeError):
    """A call was given an argument of the wrong type or an unknown keyword option.

    It is also a :class:`TypeError`, which is what python-etcd's callers of
    misspelled options expect.

    .. versionadded:: 0.5.0
    """


class EtcdKeyError(EtcdException):
    """A problem with a key; deliberately not a :class:`KeyError`."""


class EtcdKeyNotFound(EtcdKeyError):
    """The key does not exist (etcd error 100, or any HTTP 404 with a JSON body)."""


class EtcdNotFile(EtcdKeyError):
    """The operation needs a file but the key is a directory (etcd error 102)."""


class EtcdNotDir(EtcdKeyError):
    """A path component is a file where a directory is needed (etcd error 104)."""


class EtcdAlreadyExist(EtcdKeyError):
    """``prevExist=False`` but the key exists (etcd error 105)."""


class EtcdRootReadOnly(EtcdKeyError):
    """The root directory cannot be written or deleted (etcd error 107)."""


class EtcdClusterIdChanged(EtcdException):
    """The server answered with another cluster id than the one expected."""


class EtcdEventIndexCleared(EtcdException):
    """The watched index has left the server's event history (etcd error 401).

    The server keeps the last 1,000 events. :attr:`resume_index` tells where
    to read the current state from and watch again.
    """

    @property
    def resume_index(self) -> int | None:
        """The server's current ``etcd_index`` when it refused the watch.

        Re-read the key, then watch from the read's ``etcd_index + 1``.

        .. versionadded:: 0.5.0
        """
        if isinstance(self.payload, Mapping):
            index = self.payload.get("index")
            if isinstance(index, int):
                return index
        return None


class EtcdConnectionFailed(EtcdException):
    """A request could not be completed because of the network or the transport.

    :param cause: the underlying urllib3, socket or SSL error.
    """

    def __init__(
        self, message: str | None = None, payload: Any = None, cause: BaseException | None = None
    ) -> None:
        super().__init__(message, payload)
        self.cause = cause


class EtcdWatchTimedOut(EtcdConnectionFailed):
    """A watch saw no event before its timeout."""

    #: The ``X-Etcd-Index`` the server sent when the watch started, or ``None``
    #: when the timeout came before the headers. Nothing the watch was waiting
    #: for happened up to this index, so a new watch may start after it.
    #:
    #: .. versionadded:: 0.5.0
    etcd_index: int | None = None


class EtcdInsufficientPermissions(EtcdException):
    """Authentication is needed, failed, or the user lacks the rights (etcd error 110)."""


class EtcdWatcherCleared(EtcdException):
    """The server dropped the watcher while recovering (etcd error 400)."""


class EtcdLeaderElectionInProgress(EtcdException):
    """The cluster is electing a leader (etcd error 301)."""


class EtcdLockExpired(EtcdException):
    """The key of a held or queued lock has disappeared."""


class EtcdRaftInternalError(EtcdException):
    """The cluster could not agree on the request (etcd error 300).

    It comes from a request that timed out without a leader, and on etcd 3.5
    from any update of a directory.

    .. versionadded:: 0.5.0
    """


class EtcdV2ApiDisabled(EtcdException):
    """The server answered a plain-text 404: its v2 API is not enabled.

    .. versionadded:: 0.5.0
    """


class EtcdBadResponse(EtcdException):
    """The client refused the server's answer without using it.

    The answer's body was larger than the client's ``max_response_size``, it
    was compressed although the client asks for no compression, or it
    redirected to an invalid URL. The message says which.

    .. versionadded:: 0.5.0
    """


_VALIDATION_CODES = tuple(range(200, 213))


class EtcdError:
    """The table of etcd error codes and the function that raises from it.

    ``error_exceptions`` maps each ``errorCode`` to the class raised for it.
    It is consulted at raise time, so it may be extended or patched.
    """

    error_exceptions: ClassVar[dict[int, type[EtcdException]]] = {
        100: EtcdKeyNotFound,
        101: EtcdCompareFailed,
        102: EtcdNotFile,
        # 103: "The number of peers has reached the limit"
        104: EtcdNotDir,
        105: EtcdAlreadyExist,
        # 106: "The prefix of given key is a keyword in etcd"
        107: EtcdRootReadOnly,
        108: EtcdDirNotEmpty,
        # 109: "Standby internal error"
        110: EtcdInsufficientPermissions,
        **dict.fromkeys(_VALIDATION_CODES, EtcdValueError),
        300: EtcdRaftInternalError,
        301: EtcdLeaderElectionInProgress,
        400: EtcdWatcherCleared,
        401: EtcdEventIndexCleared,
    }

    @classmethod
    def handle(cls, payload: Mapping[str, Any]) -> NoReturn:
        """Raise the exception that matches an error body of the server.

        HTTP status 404 is always :class:`EtcdKeyNotFound` and 401 always
        :class:`EtcdInsufficientPermissions`, whatever the body says: the auth
        endpoints answer with a bare ``{"message": ...}``.

        :param payload: the decoded error body, with ``status`` added.
        :raises EtcdException: always, of the class the code maps to.
        """
        error_code = payload.get("errorCode")
        message = payload.get("message")
        cause = payload.get("cause")
        status = payload.get("status")
        if status == 404:
            error_code = 100
        elif status == 401:
            error_code = 110
        exc_class = EtcdException
        if isinstance(error_code, int):
            exc_class = cls.error_exceptions.get(error_code, EtcdException)
        raise exc_class(f"{message} : {cause}", payload)


def raise_for_body(status: int, body: bytes) -> NoReturn:
    """Raise the exception for a failed response from its status and body.

    :param status: the HTTP status, neither 200 nor 201.
    :param body: the raw response body.
    :raises EtcdException: always.
    """
    text = body.decode("utf-8", errors="replace")
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        payload["status"] = status
        EtcdError.handle(payload)
    if status == 404:
        raise EtcdV2ApiDisabled(
            "The server answered 404 without an etcd error body: its v2 API seems disabled. "
            'Start etcd 3.4 or 3.5 with --enable-v2=true, or use etcd.Client(..., api="v3"), '
            "which offers the same API over etcd's v3 gateway (etcd 3.6 and later have no v2 "
            "API). The v2 and v3 stores hold separate data: keys written through the v2 API "
            "must be migrated to the v3 store first. "
            f"Body: {text.strip()[:200]!r}",
            {"message": "Bad response", "cause": text, "status": 404},
        )
    EtcdError.handle({"message": "Bad response", "cause": text})
