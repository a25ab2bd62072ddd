"""``EtcdResult``: what every key-space call returns.

The class keeps the attributes and the mutability of python-etcd 0.4.5, because
``client.update(result)`` relies on callers editing ``value`` or ``ttl``. Child
nodes stay raw dicts until they are iterated, so a recursive read of a large
tree costs little more than decoding its JSON.

An answer is decoded and its types checked once, in :func:`decode_v2_answer`.
With msgspec installed (the ``speedups`` extra) both happen in C, against
:class:`_NodeSchema`; whatever msgspec refuses goes on to the standard
library's decoder and the checks written here, which accept it or say what was
wrong. Both paths give the same dicts for every answer etcd sends.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import repeat
from operator import contains
from typing import Any, ClassVar, TypedDict

from ._exceptions import EtcdException

log = logging.getLogger(__name__)

__all__ = ["EtcdResult", "decode_v2_answer", "response_header"]


def response_header(response: Any, name: str) -> str | None:
    """The header *name* of *response*, or ``None`` (compat §4.6, §10.2).

    A urllib3 response has a case-insensitive ``headers``. Test doubles
    written for python-etcd 0.4.5 (``mock.create_autospec(HTTPResponse)()``)
    offer only ``getheader(name)``, and hand-written fakes may offer neither:
    those have no headers. A value that is not a string counts as absent.
    """
    try:
        headers = response.headers
    except AttributeError:
        getheader = getattr(response, "getheader", None)
        value = getheader(name) if callable(getheader) else None
    else:
        value = headers.get(name)
    return value if isinstance(value, str) else None


def _legacy_index(response: Any, name: str) -> int:
    # A 0.4.5 double answers every getheader() with the cluster id it was given:
    # what is not a number counts as absent, as int() of 0.4.5's mock did.
    value = response_header(response, name)
    return int(value) if value is not None and value.isdigit() else 1


_NODE_PROPS: dict[str, Any] = {
    "key": None,
    "value": None,
    "expiration": None,
    "ttl": None,
    "modifiedIndex": None,
    "createdIndex": None,
    "newKey": False,
    "dir": False,
}
# The keys a server's node carries; a node made only of these can be copied
# into an instance's state in one step.
_PLAIN_NODE_KEYS = frozenset(_NODE_PROPS) | {"nodes"}


# The JSON types etcd sends for each node field; null counts as absent, except
# for the two flags.
_STR = (str, type(None))
_INT = (int, type(None))
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "key": _STR,
    "value": _STR,
    "expiration": _STR,
    "ttl": _INT,
    "modifiedIndex": _INT,
    "createdIndex": _INT,
    "newKey": (bool,),
    "dir": (bool,),
}
_EXPECTED = {_STR: "a string", _INT: "an integer", (bool,): "true or false"}
_BAD_ANSWER = "Unable to decode server response: the answer is not the JSON etcd sends: "


def _json_type(value: Any) -> str:
    """*value* described in JSON's terms, for an error message."""
    if isinstance(value, bool):
        return f"a boolean ({value!r})"
    if isinstance(value, int):
        return f"an integer ({value!r})"
    if isinstance(value, float):
        return f"a number ({value!r})" if value == value else "NaN"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "..."
        return f"a string ({shown!r})"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _bad(what: str) -> EtcdException:
    return EtcdException(_BAD_ANSWER + what)


def _check_node(node: Any, where: str) -> Any:
    """Check the fields of one node; return its ``nodes`` (``None`` when absent).

    :raises etcd.EtcdException: a field has a type etcd never sends.
    """
    if type(node) is not dict:
        raise _bad(f"{where} is {_json_type(node)}, not an object")
    key = node.get("key")
    if type(key) is str:
        where = f"the node {key!r}"
    for field, allowed in _FIELD_TYPES.items():
        if field in node and type(node[field]) not in allowed:
            raise _bad(
                f"{field} of {where} is {_json_type(node[field])}, not {_EXPECTED[allowed]}"
            )
    children = node.get("nodes")
    if children is not None and type(children) is not list:
        raise _bad(f"nodes of {where} is {_json_type(children)}, not an array")
    return children


class _NodeSchema(TypedDict, total=False):
    """A node as msgspec checks it: the fields and types of :data:`_FIELD_TYPES`.

    Fields etcd does not send are dropped when decoding; an
    :class:`EtcdResult` leaves them out either way.
    """

    key: str | None
    value: str | None
    expiration: str | None
    ttl: int | None
    modifiedIndex: int | None
    createdIndex: int | None
    newKey: bool
    dir: bool
    nodes: list[_NodeSchema] | None


class _AnswerSchema(TypedDict, total=False):
    """A keys-API answer as msgspec checks it (``node`` is checked to be there)."""

    action: str | None
    node: _NodeSchema
    prevNode: _NodeSchema | None


@functools.cache
def _msgspec_json() -> Any:
    """The ``msgspec.json`` module, or ``None`` without a usable msgspec (said once)."""
    try:
        import msgspec.json
    except ImportError:
        return None
    except Exception as exc:  # a broken installation
        log.warning("msgspec cannot decode etcd's answers (%r); the json module will", exc)
        return None
    return msgspec.json


def _msgspec_decoder(schema: type) -> Callable[[bytes], Any] | None:
    """msgspec's decoder of answers of *schema*, or ``None`` when there is none to use.

    msgspec is optional: a broken installation, or a version that cannot take
    the schema, leaves the json module to do the work, with a warning.
    """
    module = _msgspec_json()
    if module is None:
        return None
    try:
        decoder: Callable[[bytes], Any] = module.Decoder(schema).decode
    except Exception as exc:  # a version that cannot take the schema
        log.warning("msgspec cannot decode etcd's answers (%r); the json module will", exc)
        return None
    return decoder


_FAST_DECODE = _msgspec_decoder(_AnswerSchema)


class _Leaves(list[Any]):
    """Children that :func:`decode_v2_answer` found to be plain leaves only.

    Each is a node of known fields and the types etcd sends, without children
    of its own, so a walk can turn them into results without looking at them.
    """

    __slots__ = ()


def _check_tree(top: Any, where: str) -> None:
    """Check a node and every node below it, once, without recursion.

    The usual leaves (a key, a value and two indexes, with or without a TTL)
    are recognised by one expression each: this loop runs once per leaf of a
    recursive read, so it must cost little next to decoding the JSON. A list
    of children made only of such leaves is marked as :class:`_Leaves`, which
    spares the walks of the result from looking at them again.
    """
    holder = top
    if _check_node(top, where) is None:
        return
    pending = [holder]
    string = str
    integer = int
    kind = type
    while pending:
        holder = pending.pop()
        nodes = holder["nodes"]
        plain = True
        for raw in nodes:
            try:
                size = len(raw)
                if size == 4:
                    if kind(raw["key"]) is string is kind(raw["value"]) and kind(
                        raw["modifiedIndex"]
                    ) is integer is kind(raw["createdIndex"]):
                        continue
                elif size == 6 and (
                    kind(raw["key"]) is string is kind(raw["value"]) is kind(raw["expiration"])
                    and kind(raw["modifiedIndex"]) is integer is kind(raw["createdIndex"])
                    and kind(raw["ttl"]) is integer
                ):
                    continue
            except (KeyError, TypeError):
                pass  # not a usual leaf: check it field by field
            plain = False
            if _check_node(raw, "a child node") is not None:
                pending.append(raw)
        if plain and nodes:
            holder["nodes"] = _Leaves(nodes)


def _mark_leaves(top: dict[str, Any]) -> None:
    """Mark the lists of children that hold only leaves, as :func:`_check_tree` does.

    msgspec checked every node, so each field is known and of the right type:
    a child without a ``nodes`` field is a plain leaf.
    """
    pending = [top]
    while pending:
        holder = pending.pop()
        nodes = holder.get("nodes")
        if not nodes:
            continue
        if any(map(contains, nodes, repeat("nodes"))):
            pending.extend(node for node in nodes if node.get("nodes"))
        else:
            holder["nodes"] = _Leaves(nodes)


def _fast_decode(decode: Callable[[bytes], Any] | None, data: bytes) -> Any:
    """What the msgspec decoder *decode* makes of *data*, or ``None``.

    ``None`` when there is no decoder, when msgspec refuses the body, and when
    the body is not UTF-8: msgspec does not check the UTF-8 of the fields it
    skips, so it would accept a body that the json module refuses. The
    caller then decodes with the json module, which accepts it or says why.
    """
    if decode is None:
        return None
    try:
        if not data.isascii():  # the usual body is checked at memory speed
            data.decode("utf-8", "surrogatepass")
        return decode(data)
    except Exception:  # a test double's str, a broken body, a refusal: json decides
        return None


def decode_v2_answer(data: bytes) -> dict[str, Any]:
    """Decode the body of a keys-API answer and check its types.

    Every node of the tree is checked here, once, so that an
    :class:`EtcdResult` built from the answer (and every child of it) holds
    the types etcd sends: text keys, values and expirations, integer indexes
    and TTLs, boolean flags, and lists of objects as children. msgspec does
    it when installed; an answer it refuses is decoded again by
    :func:`_decode_with_json`, which accepts it or names what was wrong.

    :param data: the body, as sent.
    :returns: the decoded answer, ready for ``EtcdResult(**answer)``.
    :raises etcd.EtcdException: the body is not JSON ("Server response was not
        valid JSON: ..."), or not the JSON etcd sends ("Unable to decode server
        response: ..."), naming the field and what it held.
    """
    answer: dict[str, Any] | None = _fast_decode(_FAST_DECODE, data)
    if answer is not None:
        prev = answer.get("prevNode")
        # A prevNode left empty by dropping fields etcd does not send would
        # count as absent: the json module keeps them, and decides.
        if "node" in answer and (prev is None or prev):
            _mark_leaves(answer["node"])
            if prev:
                _mark_leaves(prev)
            return answer
    return _decode_with_json(data)


def _decode_with_json(data: bytes) -> dict[str, Any]:
    """:func:`decode_v2_answer` with the standard library alone.

    The node tree is checked by :func:`_check_tree`, which names the field
    that holds a type etcd never sends.
    """
    try:
        answer = json.loads(data)
    except ValueError as exc:  # also UnicodeDecodeError
        raise EtcdException(f"Server response was not valid JSON: {exc!r}") from exc
    except RecursionError as exc:
        raise EtcdException(
            "Server response was not valid JSON: it is nested too deeply to decode"
        ) from exc
    if type(answer) is not dict:
        raise _bad(f"it is {_json_type(answer)}, not an object")
    if "node" not in answer:
        raise _bad("it has no node")
    action = answer.get("action")
    if action is not None and type(action) is not str:
        raise _bad(f"action is {_json_type(action)}, not a string")
    _check_tree(answer["node"], "node")
    prev = answer.get("prevNode")
    if prev is not None:
        _check_tree(prev, "prevNode")
    return answer


def _iter_nodes(nodes: Any) -> Iterator[Any]:
    if not isinstance(nodes, list):
        raise EtcdException(f"Unable to decode server response: nodes is {nodes!r}")
    return iter(nodes)


class EtcdResult:
    """One node of the key space, as the server described it.

    :param action: the server's ``action`` (``"get"``, ``"set"``,
        ``"compareAndSwap"`` ...), or ``None`` for a child or previous node.
    :param node: the server's ``node`` object.
    :param prevNode: the server's ``prevNode``, available as ``_prev_node``.

    Attributes: ``key``, ``value``, ``expiration``, ``ttl``, ``modifiedIndex``,
    ``createdIndex``, ``newKey`` (the write created the key), ``dir`` and
    ``action``. After a request, ``etcd_index`` and ``raft_index`` hold the
    ``X-Etcd-Index`` and ``X-Raft-Index`` headers of the answer.
    """

    _node_props: ClassVar[dict[str, Any]] = _NODE_PROPS

    # Class-level defaults: a child result's state holds only the fields the
    # server sent (see _child); the others fall back to these.
    key: str | None = None
    value: str | None = None
    expiration: str | None = None
    ttl: int | None = None
    modifiedIndex: int | None = None
    createdIndex: int | None = None
    newKey: bool = False
    dir: bool = False
    action: str | None = None
    _children: Sequence[dict[str, Any]] = ()
    etcd_index: int
    raft_index: int
    _prev_node: EtcdResult

    def __init__(
        self,
        action: str | None = None,
        node: Mapping[str, Any] | None = None,
        prevNode: Mapping[str, Any] | None = None,
        **kwdargs: Any,
    ) -> None:
        if node is None:
            raise TypeError("EtcdResult() needs the node of a server answer")
        state = self.__dict__
        state["action"] = action
        props = self._node_props
        if props is _NODE_PROPS and node.keys() <= _PLAIN_NODE_KEYS:
            state.update(_NODE_PROPS)
            state.update(node)
            children = state.pop("nodes", None)
        else:
            for prop, default in props.items():
                state[prop] = node.get(prop, default)
            children = node.get("nodes")
        state["_children"] = children if children is not None and state["dir"] else []
        if prevNode:
            self._prev_node = EtcdResult(None, node=prevNode)
            # etcd reports a directory whose TTL was updated without dir=true
            if self._prev_node.dir and not self.dir:
                self.dir = True

    @staticmethod
    def _child(node: dict[str, Any]) -> EtcdResult:
        """The result for a child node, equal to ``EtcdResult(None, node)``.

        The fields the server left out fall back to the class attributes. The
        raw node is never changed by this library, so a result may be walked
        again and from several threads; a leaf shares its state with the raw
        node, so an edit to a leaf (``leaf.value = ...``) is seen by later
        walks of the same result.
        """
        obj = object.__new__(EtcdResult)
        if "nodes" not in node and _PLAIN_NODE_KEYS.issuperset(node):
            obj.__dict__ = node  # a plain leaf: its state is its node
            return obj
        if _PLAIN_NODE_KEYS.issuperset(node):
            state = dict(node)  # a copy, as "nodes" becomes "_children"
        else:  # fields this library does not know are left out
            state = {k: v for k, v in node.items() if k in _NODE_PROPS or k == "nodes"}
        nodes = state.pop("nodes", None)
        if nodes is not None and state.get("dir"):
            state["_children"] = nodes
        obj.__dict__ = state
        return obj

    def parse_headers(self, response: Any) -> None:
        """Store the ``X-Etcd-Index`` and ``X-Raft-Index`` headers of *response*.

        A missing header counts as 1, as in python-etcd 0.4.5. Headers are
        read through ``response.headers``, or through ``getheader(name)`` for
        a test double that has only that.
        """
        try:
            headers = response.headers
        except AttributeError:
            self.etcd_index = _legacy_index(response, "x-etcd-index")
            self.raft_index = _legacy_index(response, "x-raft-index")
            return
        self.etcd_index = int(headers.get("x-etcd-index", 1))
        self.raft_index = int(headers.get("x-raft-index", 1))

    def get_subtree(self, leaves_only: bool = False) -> Iterator[EtcdResult]:
        """Walk this node and everything below it, depth first, in server order.

        A node without children (a file, or an empty directory) yields itself.

        :param leaves_only: yield only the nodes that have no children.
        """
        if not self._children:
            yield self
            return
        if not leaves_only:
            yield self
        make = self._child
        new = object.__new__
        cls = EtcdResult
        plain = _PLAIN_NODE_KEYS.issuperset
        if type(self._children) is _Leaves:  # checked when decoded: no look needed
            for leaf in self._children:
                child = new(cls)
                child.__dict__ = leaf
                yield child
            return
        stack = [_iter_nodes(self._children)]
        while stack:
            for raw in stack[-1]:
                try:
                    # A leaf made of known fields, _child() inlined: this loop is
                    # the hot path of walking a large listing.
                    if "nodes" not in raw and plain(raw):
                        # A leaf's state is its node itself, never changed here.
                        child = new(cls)
                        child.__dict__ = raw
                        yield child
                        continue
                    child = make(raw)
                    children = child._children
                except (AttributeError, TypeError) as exc:
                    raise EtcdException(f"Unable to decode server response: {raw!r}") from exc
                if children:
                    if not leaves_only:
                        yield child
                    if type(children) is _Leaves:  # checked when decoded: no look needed
                        for leaf in children:
                            child = new(cls)
                            child.__dict__ = leaf
                            yield child
                        continue
                    stack.append(_iter_nodes(children))
                    break
                yield child
            else:
                stack.pop()

    @property
    def leaves(self) -> Iterator[EtcdResult]:
        """Every node below this one that has no children (itself for a file)."""
        return self.get_subtree(leaves_only=True)

    @property
    def children(self) -> Iterator[EtcdResult]:
        """The same as :attr:`leaves`.

        .. deprecated:: 0.4
           Despite its name this yields all leaves, not the direct children.
        """
        return self.leaves

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        try:
            return all(getattr(self, p) == getattr(other, p) for p in self._node_props)
        except AttributeError:
            return False

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{self.__class__}({self.__dict__!r})"
