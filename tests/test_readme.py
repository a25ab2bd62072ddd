"""The README's examples and the demo script run against a real etcd.

Every ``.. code-block:: python`` of README.rst is executed, in order and in one
namespace, against the shared ``etcd_server`` of :mod:`etcd.testing`.

Conventions for README authors:

* Connect with ``etcd.Client(host='127.0.0.1', port=2379)``; the test swaps in
  the host and port of the test server.
* A block that cannot run here (several hosts, https, credentials) is preceded
  by the RST comment line ``.. skip-test``, which the renderer hides.
* Keep the keys below the top-level directories in :data:`README_DIRS`, which
  the test deletes afterwards. A key anywhere else fails the test.
* Raise :data:`MIN_BLOCKS` when adding blocks, so that a broken extractor
  cannot pass by running nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import etcd
from etcd.testing import EtcdCluster

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"
DEMO = ROOT / "docs" / "demo.py"

SKIP_MARKER = ".. skip-test"
#: The top-level directories the README's examples write to.
README_DIRS = ("/nodes", "/dir", "/queue", "/config")
#: How many runnable blocks README.rst has at least (skipped ones not counted).
MIN_BLOCKS = 22

_DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. code-block::\s*(?P<language>\S+)\s*$")
_OPTION = re.compile(r"^\s*:[\w-]+:")


@dataclass(frozen=True)
class CodeBlock:
    line: int  # 1-based line of the ``.. code-block::`` directive
    language: str
    code: str
    skipped: bool


def extract_code_blocks(text: str) -> list[CodeBlock]:
    """Return every ``.. code-block::`` of an RST document, in order."""
    lines = text.splitlines()
    blocks: list[CodeBlock] = []
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if match is None:
            i += 1
            continue
        directive_line = i
        indent = len(match["indent"])
        previous = next((line for line in reversed(lines[:i]) if line.strip()), "")
        i += 1
        while i < len(lines) and _OPTION.match(lines[i]):
            i += 1
        body: list[str] = []
        while i < len(lines):
            line = lines[i]
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break
            body.append(line)
            i += 1
        blocks.append(
            CodeBlock(
                line=directive_line + 1,
                language=match["language"],
                code=textwrap.dedent("\n".join(body)).strip("\n") + "\n",
                skipped=previous.strip() == SKIP_MARKER,
            )
        )
    return blocks


def runnable_python_blocks(text: str) -> list[CodeBlock]:
    return [b for b in extract_code_blocks(text) if b.language == "python" and not b.skipped]


def test_extractor_reads_blocks_and_skip_markers() -> None:
    sample = textwrap.dedent(
        """\
        Title
        =====

        .. code-block:: python

            a = 1
            if a:

                b = 2
        text after

        .. skip-test
        .. code-block:: python
            :caption: skipped

            raise RuntimeError("must not run")

        .. code-block:: shell

            echo not python

        * item

          .. code-block:: python

              c = 3
        """
    )
    blocks = extract_code_blocks(sample)
    assert [(b.language, b.skipped) for b in blocks] == [
        ("python", False),
        ("python", True),
        ("shell", False),
        ("python", False),
    ]
    assert blocks[0].code == "a = 1\nif a:\n\n    b = 2\n"
    assert blocks[0].line == 4
    assert blocks[1].code == 'raise RuntimeError("must not run")\n'
    assert blocks[3].code == "c = 3\n"
    assert [b.code for b in runnable_python_blocks(sample)] == [
        "a = 1\nif a:\n\n    b = 2\n",
        "c = 3\n",
    ]


def _localise(code: str, host: str, port: int) -> str:
    code = code.replace("host='127.0.0.1'", f"host={host!r}").replace("port=2379", f"port={port}")
    # Never let an example reach whatever listens on the default port here.
    assert "2379" not in code, (
        f"an example names port 2379 in a form the test cannot replace:\n{code}"
    )
    return code


def _children_of_root(client: etcd.Client) -> set[str]:
    root = client.read("/", sorted=True)
    return {str(node.key) for node in root.get_subtree() if node is not root and _is_top(node.key)}


def _is_top(key: str | None) -> bool:
    return key is not None and key.count("/") == 1


def test_readme_examples_run_in_order(etcd_server: EtcdCluster) -> None:
    blocks = runnable_python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= MIN_BLOCKS, (
        f"found only {len(blocks)} runnable python blocks in README.rst, expected at "
        f"least {MIN_BLOCKS}: is the extractor broken?"
    )
    member = etcd_server.members[0]
    with etcd_server.client() as admin:
        before = _children_of_root(admin)
        leftovers = sorted(before & set(README_DIRS))
        assert not leftovers, f"README directories exist before the test: {leftovers}"
        namespace: dict[str, object] = {"__name__": "readme"}
        try:
            for block in blocks:
                code = _localise(block.code, member.host, member.port)
                compiled = compile(code, f"{README.name}, block at line {block.line}", "exec")
                try:
                    exec(compiled, namespace)
                except Exception as exc:
                    raise AssertionError(
                        f"the example at README.rst line {block.line} failed: {exc!r}\n{code}"
                    ) from exc
        finally:
            client = namespace.get("client")
            if isinstance(client, etcd.Client):
                client.close()
            for key in README_DIRS:
                with contextlib.suppress(etcd.EtcdKeyNotFound):
                    admin.delete(key, recursive=True)
        stray = sorted(_children_of_root(admin) - before)
        for key in stray:
            admin.delete(key, recursive=True)
    assert not stray, f"the README wrote outside {README_DIRS}: {stray}; add them there"


def test_demo_script_runs() -> None:
    env = dict(os.environ)  # ETCD_BINARY, if set, reaches the demo unchanged
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, str(DEMO)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, f"demo exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stdout.splitlines()
    assert any(re.fullmatch(r"read /demo/greeting:\s+hello", line) for line in lines), proc.stdout
    assert any(
        re.fullmatch(r"queue, in order:\s+\['first', 'second', 'third'\]", line) for line in lines
    )
    assert lines[-1] == "demo finished"
