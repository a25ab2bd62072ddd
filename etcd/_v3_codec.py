"""The v3 JSON gateway's encoding: answers, errors, the key layout and request bodies.

Pure code, no I/O. Every answer of the gateway goes through :func:`decode_answer`
(or :func:`decode_range_answer` for the reads of a listing, or
:func:`decode_stream_line` for the lines of a watch stream), which accepts
both error bodies the gateway has used:

* etcd 3.4 and 3.5 (grpc-gateway v1): ``{"error": ..., "code": <gRPC code>, "message": ...}``
* etcd 3.6 and later (grpc-gateway v2): ``{"code": <gRPC code>, "message": ..., "details": []}``

Errors are decided from the gRPC ``code`` and ``message`` only: the HTTP status
differs between gateway versions (code 9 is 412 on 3.4 and 400 on 3.5).

The key layout ("layout F" of the design): a v2 file ``P`` is the v3 key
``NS+P``, a directory ``P`` is the marker ``NS+P+"/"`` (empty value) and
everything below it shares that prefix; indexes are the v3 revisions.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NoReturn, TypedDict

from ._exceptions import (
    EtcdError,
    EtcdException,
    EtcdInsufficientPermissions,
    EtcdTypeError,
    EtcdValueError,
)
from ._result import _fast_decode, _msgspec_decoder

__all__ = [
    "Layout",
    "b64",
    "decode_answer",
    "decode_range_answer",
    "decode_stream_line",
    "raise_grpc_error",
    "split_lines",
    "unb64",
]

# gRPC status codes (google.golang.org/grpc/codes)
CANCELED = 1
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
PERMISSION_DENIED = 7
FAILED_PRECONDITION = 9
OUT_OF_RANGE = 11
UNAVAILABLE = 14
UNAUTHENTICATED = 16

_GATEWAY_HINT = (
    "the server does not answer etcd's v3 JSON gateway at /v3/: it may have been "
    "started with --enable-grpc-gateway=false, sit behind a gRPC proxy, or be older "
    'than etcd 3.4; use api="v2" for servers that serve only the v2 API'
)


def b64(text: str) -> str:
    """Standard base64 (padded) of the UTF-8 bytes of *text*.

    :raises EtcdValueError: *text* cannot be encoded as UTF-8 (a lone surrogate).
    """
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EtcdValueError(
            f"keys and values must be valid text; {text!r} cannot be encoded as UTF-8 ({exc})"
        ) from exc
    return base64.b64encode(raw).decode("ascii")


if sys.version_info >= (3, 11):

    def _b64decode(data: Any) -> bytes:
        # what base64.b64decode(data, validate=True) does on 3.11+, minus two calls
        return binascii.a2b_base64(data, strict_mode=True)

else:  # pragma: no cover - Python 3.10

    def _b64decode(data: Any) -> bytes:
        return base64.b64decode(data, validate=True)


def unb64(data: Any) -> str:
    """The text of a base64 field of an answer; a missing field is ``""``.

    Bytes that are not UTF-8 (written by another v3 client) are replaced by U+FFFD.
    A field :func:`decode_range_answer` decoded already comes as bytes.

    :raises EtcdException: *data* is not base64.
    """
    if not data:
        return ""
    if type(data) is bytes:
        return data.decode("utf-8", errors="replace")
    try:
        return _b64decode(data).decode("utf-8", errors="replace")
    except (binascii.Error, TypeError, ValueError) as exc:
        raise EtcdException(f"Unable to decode server response: bad base64 {data!r}") from exc


def _grpc_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def raise_grpc_error(code: int, message: str, body: Any = None) -> NoReturn:
    """Raise the etcd exception for a gRPC error of the gateway.

    The v2 ``errorCode`` the error corresponds to goes through
    :attr:`etcd.EtcdError.error_exceptions`, so a patched table applies here too.

    :param code: the gRPC status code.
    :param message: the gRPC message, such as ``etcdserver: permission denied``.
    :param body: the decoded error body, kept in the exception's payload.
    :raises EtcdException: always.
    """
    payload: dict[str, Any] = {"grpcCode": code, "message": message, "cause": message}
    if isinstance(body, Mapping):
        payload["body"] = dict(body)
    lowered = message.lower()
    if code in (UNAUTHENTICATED, PERMISSION_DENIED) or (
        code == INVALID_ARGUMENT
        and any(
            reason in lowered
            for reason in ("user name is empty", "authentication failed", "auth store is old")
        )
    ):
        payload.update(errorCode=110, message="The request requires user authentication")
        if code == PERMISSION_DENIED:
            payload["message"] = "Insufficient credentials"
        EtcdError.handle(payload)
    if code == OUT_OF_RANGE and "compacted" in lowered:
        payload.update(
            errorCode=401, message="The event in requested index is outdated and cleared"
        )
        EtcdError.handle(payload)
    if code in (UNAVAILABLE, DEADLINE_EXCEEDED):
        payload.update(errorCode=300, message="Raft Internal Error")
        EtcdError.handle(payload)
    if code == NOT_FOUND:
        payload.update(errorCode=100, message="Key not found")
        EtcdError.handle(payload)
    if code == INVALID_ARGUMENT:
        raise EtcdValueError(f"The server refused the request : {message}", payload)
    raise EtcdException(f"The server refused the request (gRPC code {code}) : {message}", payload)


def _error_of(obj: Mapping[str, Any]) -> tuple[int, str] | None:
    """``(code, message)`` when *obj* is a gateway error body, else ``None``."""
    if "header" in obj or "result" in obj:
        return None
    code = _grpc_code(obj.get("code"))
    if code is None or code == 0:
        return None
    message = obj.get("message")
    if not isinstance(message, str) or not message:
        error = obj.get("error")  # 3.4/3.5 repeat the message here; 3.6 has no such field
        message = error if isinstance(error, str) else ""
    return code, message


def decode_answer(status: int, body: bytes) -> dict[str, Any]:
    """Decode one answer of the gateway, raising the etcd exception of an error body.

    :param status: the HTTP status: an answer that is not 2xx is an error even
        when its body is not a gateway error (a proxy's ``503 {"message": ...}``).
    :param body: the raw body.
    :returns: the decoded JSON object of a successful answer.
    :raises EtcdException: an error body, a failed status, or a body that is
        not a JSON object.
    """
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to decode
        obj = None
    if not isinstance(obj, dict):
        text = body[:200].decode("utf-8", errors="replace").strip()
        if status in (404, 405):
            raise EtcdException(
                f"The server answered {status} {text!r}: {_GATEWAY_HINT}",
                {"status": status, "cause": text},
            )
        raise EtcdException(
            f"Unable to decode server response (HTTP {status}): {text!r}",
            {"status": status, "cause": text},
        )
    error = _error_of(obj)
    if error is not None:
        raise_grpc_error(error[0], error[1], obj)
    if not 200 <= status < 300:
        text = body[:200].decode("utf-8", errors="replace").strip()
        raise EtcdException(
            f"The server answered HTTP {status} without a gateway error: {text!r}",
            {"status": status, "cause": text},
        )
    return obj


class _KeyValue(TypedDict, total=False):
    """A pair of a range answer as msgspec decodes it: base64 fields as bytes.

    The int64 fields stay text, as the gateway sends them, so that anything
    else (a JSON number) is left to :func:`decode_answer` and its readers.
    Only the fields a read uses are kept (not ``version``): the others would
    cost a string per pair of a large listing for nothing.
    """

    key: bytes
    value: bytes
    create_revision: str
    mod_revision: str
    lease: str


class _Range(TypedDict, total=False):
    header: dict[str, Any]
    kvs: list[_KeyValue]


class _TxnResponse(TypedDict, total=False):
    response_range: _Range
    response_put: dict[str, Any]
    response_delete_range: dict[str, Any]
    response_txn: dict[str, Any]


class _RangeAnswer(_Range, total=False):
    """The answer of ``/v3/kv/range`` or of a ``/v3/kv/txn`` of ranges, or an error."""

    succeeded: bool
    responses: list[_TxnResponse]
    code: Any
    error: Any
    message: Any


_RANGE_DECODE = _msgspec_decoder(_RangeAnswer)
_ERROR_FIELDS = frozenset({"code", "error", "message"})


def decode_range_answer(status: int, body: bytes) -> dict[str, Any]:
    """:func:`decode_answer` for an answer of ranges, faster with the speedups extra.

    With msgspec, the ``key`` and ``value`` of each pair come decoded, as
    bytes, which :func:`unb64` and the listing code take as they are; the
    rest is as :func:`decode_answer` gives it. Whatever msgspec refuses, and
    any error, goes to :func:`decode_answer`, which accepts it or raises.
    """
    if status == 200:
        answer: dict[str, Any] | None = _fast_decode(_RANGE_DECODE, body)
        if answer is not None and "header" in answer and _ERROR_FIELDS.isdisjoint(answer):
            return answer
    return decode_answer(status, body)


def decode_stream_line(line: bytes) -> dict[str, Any]:
    """Decode one line of a stream answer (a watch or a lease keep-alive).

    Successful lines are ``{"result": {...}}``. A stream error is
    ``{"error": {"grpc_code": N, "message": ...}}`` (3.4/3.5) or
    ``{"error": {"code": N, "message": ...}}`` (3.6+), or a bare error body.

    :returns: the ``result`` object.
    :raises EtcdException: an error line, or a line that is not JSON.
    """
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise EtcdException(
            f"Unable to decode a stream line of the server: {line[:200]!r}"
        ) from exc
    if not isinstance(obj, dict):
        raise EtcdException(f"Unable to decode a stream line of the server: {line[:200]!r}")
    result = obj.get("result")
    if isinstance(result, dict):
        return result
    inner = obj.get("error")
    if isinstance(inner, Mapping):
        code = _grpc_code(inner.get("grpc_code", inner.get("code")))
        message = inner.get("message")
        raise_grpc_error(code or 2, message if isinstance(message, str) else "", obj)
    error = _error_of(obj)
    if error is not None:
        raise_grpc_error(error[0], error[1], obj)
    raise EtcdException(f"Unable to decode a stream line of the server: {line[:200]!r}")


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Cut a byte stream into its newline-terminated lines, whatever the chunking.

    Blank lines are skipped; an unterminated tail is yielded when the stream ends.
    """
    pending = b""
    for chunk in chunks:
        if not chunk:
            continue
        pending += chunk
        while True:
            end = pending.find(b"\n")
            if end < 0:
                break
            line, pending = pending[:end], pending[end + 1 :]
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def check_permission_cancel(reason: str) -> NoReturn:
    """Raise the exception for a watch the server canceled with *reason*."""
    lowered = reason.lower()
    if "permission" in lowered or "auth" in lowered or "user name is empty" in lowered:
        raise EtcdInsufficientPermissions(
            f"The server refused the watch : {reason}",
            {"errorCode": 110, "message": "Insufficient credentials", "cause": reason},
        )
    raise EtcdException(f"The server canceled the watch : {reason}", {"cause": reason})


def int_field(obj: Mapping[str, Any], name: str) -> int:
    """An int64 field of an answer (a JSON string); a missing field is 0."""
    value = obj.get(name)
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise EtcdException(f"Unable to decode server response: {name} is {value!r}") from exc


class Layout:
    """The mapping of v2 paths to v3 keys, below an optional namespace.

    :param namespace: a prefix for every key, such as ``"/v2"``; ``""`` keeps
        the keys as ``etcdctl migrate`` wrote them.
    """

    def __init__(self, namespace: str = "") -> None:
        if not isinstance(namespace, str):
            raise EtcdTypeError(f"namespace must be a string such as '/v2', not {namespace!r}")
        namespace = namespace.rstrip("/")
        if namespace and not namespace.startswith("/"):
            namespace = "/" + namespace
        b64(namespace)  # refuses what cannot be encoded, before any I/O
        self.namespace = namespace

    @staticmethod
    def path(sanitized_key: str) -> str:
        """The v2 path of a sanitized key: no trailing ``/``; the root is ``""``."""
        return sanitized_key.rstrip("/")

    def file(self, path: str) -> str:
        """The v3 key of the file *path*."""
        return self.namespace + path

    def marker(self, path: str) -> str:
        """The marker of the directory *path*, also the prefix of everything below it."""
        return self.namespace + path + "/"

    def end(self, path: str) -> str:
        """The range end of the prefix :meth:`marker` (``'0'`` is ``'/'`` + 1)."""
        return self.namespace + path + "0"

    def v2_key(self, v3_key: str) -> str:
        """The v2 path of a v3 key of this namespace (a marker keeps its ``/``)."""
        return v3_key[len(self.namespace) :]


# ----------------------------------------------------------------------
# Request bodies (the shapes of the design's §5)


def compare(
    target: str, key: str, result: str, value: Any, *, range_end: str | None = None
) -> dict[str, Any]:
    """One txn compare: *target* is VALUE, MOD, CREATE or VERSION."""
    field = {
        "VALUE": "value",
        "MOD": "mod_revision",
        "CREATE": "create_revision",
        "VERSION": "version",
    }[target]
    item: dict[str, Any] = {"target": target, "key": b64(key), "result": result}
    item[field] = b64(value) if target == "VALUE" else str(value)
    if range_end is not None:
        item["range_end"] = b64(range_end)
    return item


def absent(key: str, range_end: str | None = None) -> dict[str, Any]:
    """A compare that holds when *key* (or every key of the range) does not exist."""
    return compare("VERSION", key, "EQUAL", 0, range_end=range_end)


def present(key: str) -> dict[str, Any]:
    """A compare that holds when *key* exists."""
    return compare("VERSION", key, "GREATER", 0)


def put(
    key: str,
    value: str = "",
    *,
    lease: int | None = None,
    prev_kv: bool = False,
    ignore_value: bool = False,
) -> dict[str, Any]:
    """A ``request_put`` op."""
    item: dict[str, Any] = {"key": b64(key)}
    if value:
        item["value"] = b64(value)
    if lease:
        item["lease"] = str(lease)
    if prev_kv:
        item["prev_kv"] = True
    if ignore_value:
        item["ignore_value"] = True
    return {"request_put": item}


def get(
    key: str,
    range_end: str | None = None,
    *,
    keys_only: bool = False,
    limit: int = 0,
    serializable: bool = False,
) -> dict[str, Any]:
    """A ``request_range`` op."""
    item: dict[str, Any] = {"key": b64(key)}
    if range_end is not None:
        item["range_end"] = b64(range_end)
    if keys_only:
        item["keys_only"] = True
    if limit:
        item["limit"] = str(limit)
    if serializable:
        item["serializable"] = True
    return {"request_range": item}


def delete(key: str, range_end: str | None = None) -> dict[str, Any]:
    """A ``request_delete_range`` op returning the deleted pairs."""
    item: dict[str, Any] = {"key": b64(key), "prev_kv": True}
    if range_end is not None:
        item["range_end"] = b64(range_end)
    return {"request_delete_range": item}


def mkdir_if_missing(marker: str) -> dict[str, Any]:
    """A nested txn that puts the directory marker *marker* unless it exists."""
    return {
        "request_txn": {
            "compare": [compare("CREATE", marker, "EQUAL", 0)],
            "success": [put(marker)],
        }
    }


def txn(
    compares: list[dict[str, Any]],
    success: list[dict[str, Any]],
    failure: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A ``/v3/kv/txn`` body."""
    body: dict[str, Any] = {"compare": compares, "success": success}
    if failure:
        body["failure"] = failure
    return body


def responses(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The op answers of a txn answer, each unwrapped (``response_range`` ...)."""
    out = []
    for item in answer.get("responses") or ():
        if not isinstance(item, Mapping) or len(item) != 1:
            raise EtcdException(f"Unable to decode server response: txn answer {item!r}")
        (inner,) = item.values()
        out.append(inner if isinstance(inner, dict) else {})
    return out
