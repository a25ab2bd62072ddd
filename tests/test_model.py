"""The client against a model of the v2 key space, on a real etcd (a hypothesis state machine).

Hypothesis drives writes, reads, compare-and-swaps, appends, directory
creation and the three kinds of delete with keys made of awkward segments
(spaces, ``%``, ``#``, ``?``, ``&``, ``+``, non-ASCII, a trailing ``/``). After
every step the whole tree read back from the server must equal the model,
and every call must give what the model predicts: the result, or exactly
the predicted :class:`etcd.EtcdException` subclass. The example count is
bounded so that the run takes seconds, not minutes.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

import etcd

Path = tuple[str, ...]

SEGMENTS = st.sampled_from(["a", "b c", "50%", "#h", "q?x", "&=;", "x+y", "é", "雪", "ok-1"])
PATHS = st.lists(SEGMENTS, min_size=1, max_size=3).map(tuple)
VALUES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=6)

_runs = itertools.count()


class KeySpace(RuleBasedStateMachine):
    """Files and directories below one fresh directory, in the model and on the server."""

    client: etcd.Client
    prefix: str

    def __init__(self) -> None:
        super().__init__()
        self.root = f"{self.prefix}/run{next(_runs)}"
        self.files: dict[Path, str] = {}
        self.dirs: set[Path] = set()

    # -- the model ---------------------------------------------------------

    def key(self, path: Path, slash: bool = False) -> str:
        return self.root + "/" + "/".join(path) + ("/" if slash else "")

    def kind(self, path: Path) -> str | None:
        if path in self.files:
            return "file"
        if path in self.dirs:
            return "dir"
        return None

    def file_above(self, path: Path) -> bool:
        return any(path[:i] in self.files for i in range(1, len(path)))

    def add_parents(self, path: Path) -> None:
        self.dirs.update(path[:i] for i in range(1, len(path)))

    def remove_tree(self, path: Path) -> None:
        self.files = {p: v for p, v in self.files.items() if p[: len(path)] != path}
        self.dirs = {d for d in self.dirs if d[: len(path)] != path}

    def children(self, path: Path) -> set[Path]:
        below = set(self.files) | self.dirs
        return {p for p in below if len(p) == len(path) + 1 and p[: len(path)] == path}

    def call(self, expected: type[etcd.EtcdException] | None, fn: Any, *args: Any, **kw: Any):
        """Run the call; it must raise exactly *expected*, or succeed when that is ``None``."""
        try:
            result = fn(*args, **kw)
        except etcd.EtcdException as exc:
            assert type(exc) is expected, f"{fn.__name__}{args}: {exc!r}, model: {expected}"
            return None
        assert expected is None, f"{fn.__name__}{args} succeeded, model: {expected}"
        return result

    # -- rules -------------------------------------------------------------

    @rule(path=PATHS, value=VALUES, slash=st.booleans())
    def write(self, path: Path, value: str, slash: bool) -> None:
        expected: type[etcd.EtcdException] | None = None
        if self.file_above(path):
            expected = etcd.EtcdNotDir
        elif self.kind(path) == "dir":
            expected = etcd.EtcdNotFile
        result = self.call(expected, self.client.write, self.key(path, slash), value)
        if result is not None:
            assert (result.key, result.value) == (self.key(path), value)
            self.files[path] = value
            self.add_parents(path)

    @rule(path=PATHS, slash=st.booleans())
    def read(self, path: Path, slash: bool) -> None:
        kind = self.kind(path)
        expected: type[etcd.EtcdException] | None = None
        if self.file_above(path):
            expected = etcd.EtcdNotDir
        elif kind is None:
            expected = etcd.EtcdKeyNotFound
        result = self.call(expected, self.client.read, self.key(path, slash))
        if result is None:
            return
        assert result.key == self.key(path)
        if kind == "file":
            assert (result.dir, result.value) == (False, self.files[path])
        else:
            assert result.dir
            listed = {node.key for node in result.get_subtree()} - {result.key}
            assert listed == {self.key(child) for child in self.children(path)}

    @rule(path=PATHS, matches=st.booleans(), value=VALUES)
    def compare_and_swap(self, path: Path, matches: bool, value: str) -> None:
        kind = self.kind(path)
        old = self.files.get(path, "")
        prev = old if matches else old + "!"
        expected: type[etcd.EtcdException] | None = None
        if self.file_above(path):
            expected = etcd.EtcdNotDir
        elif kind is None:
            expected = etcd.EtcdKeyNotFound
        elif kind == "dir":
            expected = etcd.EtcdNotFile
        elif not matches:
            expected = etcd.EtcdCompareFailed
        if prev == "":
            return  # an empty prevValue is a different error (201); not modelled here
        result = self.call(expected, self.client.write, self.key(path), value, prevValue=prev)
        if result is not None:
            assert result.value == value and result._prev_node.value == old
            self.files[path] = value

    @rule(path=PATHS, value=VALUES)
    def append(self, path: Path, value: str) -> None:
        if self.file_above(path) or self.kind(path) == "file":
            return
        result = self.call(None, self.client.write, self.key(path), value, append=True)
        assert result.newKey and result.value == value
        name = result.key.rpartition("/")[2]
        child = (*path, name)
        assert result.key == self.key(child) and len(name) == 20
        self.files[child] = value
        self.dirs.add(path)
        self.add_parents(path)

    @rule(path=PATHS)
    def mkdir(self, path: Path) -> None:
        if self.file_above(path) or self.kind(path) is not None:
            return
        result = self.call(None, self.client.write, self.key(path), None, dir=True)
        assert result.dir and result.key == self.key(path)
        self.dirs.add(path)
        self.add_parents(path)

    @rule(path=PATHS)
    def delete(self, path: Path) -> None:
        if self.file_above(path):
            return
        kind = self.kind(path)
        expected = {None: etcd.EtcdKeyNotFound, "dir": etcd.EtcdNotFile, "file": None}[kind]
        result = self.call(expected, self.client.delete, self.key(path))
        if result is not None:
            assert result.key == self.key(path) and result._prev_node.value == self.files[path]
            del self.files[path]

    @rule(path=PATHS)
    def delete_empty_directory(self, path: Path) -> None:
        if self.kind(path) != "dir":
            return
        expected = etcd.EtcdDirNotEmpty if self.children(path) else None
        if self.call(expected, self.client.delete, self.key(path), dir=True) is not None:
            self.dirs.discard(path)

    @rule(path=PATHS)
    def delete_recursively(self, path: Path) -> None:
        if self.file_above(path):
            return
        expected = etcd.EtcdKeyNotFound if self.kind(path) is None else None
        if self.call(expected, self.client.delete, self.key(path), recursive=True) is not None:
            self.remove_tree(path)

    # -- the whole tree, after every step ---------------------------------

    @invariant()
    def the_server_holds_the_model(self) -> None:
        try:
            tree = self.client.read(self.root, recursive=True)
        except etcd.EtcdKeyNotFound:
            assert not self.files and not self.dirs
            return
        files: dict[str, str | None] = {}
        dirs: set[str] = set()
        for node in tree.get_subtree():
            if node.key == self.root:
                continue
            if node.dir:
                dirs.add(node.key or "")
            else:
                files[node.key or ""] = node.value
        assert files == {self.key(p): v for p, v in self.files.items()}
        assert dirs == {self.key(d) for d in self.dirs}

    def teardown(self) -> None:
        with contextlib.suppress(etcd.EtcdKeyNotFound):
            self.client.delete(self.root, recursive=True)


@pytest.mark.timeout(300)
def test_the_client_agrees_with_a_model_of_the_key_space(etcd_client, etcd_prefix):
    class Machine(KeySpace):
        client = etcd_client
        prefix = etcd_prefix

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
