"""``EtcdResult``: what every key-space call returns.

The class keeps the attributes and the mutability of python-etcd 0.4.5, because
``client.update(result)`` relies on callers editing ``value`` or ``ttl``. Child
nodes stay raw dicts until they are iterated, so a recursive read of a large
tree costs little more than decoding its JSON.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from ._exceptions import EtcdException

__all__ = ["EtcdResult", "response_header"]


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
