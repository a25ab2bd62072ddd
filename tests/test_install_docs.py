"""What the README and the docs tell a new user: installing, a server, the docs, the news."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.rst").read_text(encoding="utf-8")
DOCS = ROOT / "docs"
#: Longest line a code block of the quick start or the testing guide may have.
MAX_COMMAND_WIDTH = 72


def section(text: str, title: str) -> str:
    """The body of the RST section called *title* (up to the next title of any level)."""
    match = re.search(
        rf"^{re.escape(title)}\n[=\-~]+\n(.*?)(?=^\S[^\n]*\n[=\-~]{{3,}}\n|\Z)", text, re.M | re.S
    )
    assert match, f"no section {title!r}"
    return match.group(1)


def code_lines(text: str) -> list[str]:
    """The lines of every ``.. code-block::`` in *text*."""
    lines: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith(".. code-block::"):
            inside = True
        elif inside and line and not line.startswith(" "):
            inside = False
        elif inside and line.strip():
            lines.append(line)
    return lines


def test_no_page_installs_the_old_release_from_pypi():
    pages = [README] + [path.read_text(encoding="utf-8") for path in DOCS.glob("*.rst")]
    for text in pages:
        for match in re.finditer(r"pip install\s+'?python-etcd(\[\w+\])?(?P<rest>[^`]*)", text):
            from_git = match["rest"].lstrip().startswith("@ git+")
            warned = text[: match.start()].endswith("not with ``")
            assert from_git or warned, match.group(0)


def test_the_quick_start_says_why_it_installs_from_a_checkout():
    quick = section(README, "Quick start")
    assert re.search(r"PyPI still holds\s+the old 0\.4\.5", quick)
    assert "git+" in quick
    assert TEST_COMMAND in quick


# The README's test command as the README writes it, over two lines.
TEST_COMMAND = (
    "    python3 -m venv .venv && .venv/bin/pip install -q '.[test]' \\\n"
    "        && .venv/bin/python -m pytest\n"
)


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = " ".join(part.strip() for part in TEST_COMMAND.split("\\\n"))
    assert f"    {command}\n" in ci


def test_quick_start_commands_fit_the_page():
    quick = section(README, "Quick start")
    testing = (DOCS / "testing.rst").read_text(encoding="utf-8")
    demo = (DOCS / "demo.rst").read_text(encoding="utf-8")
    for text in (quick, testing, section(demo, "Demo")):
        for line in code_lines(text):
            assert len(line) <= MAX_COMMAND_WIDTH, line


def test_usage_starts_with_a_server_in_one_command():
    usage = README.split(".. usage-start", 1)[1]
    first_block = usage.split(".. code-block::", 2)[1]
    assert first_block.startswith(" shell\n\n    .venv/bin/python -m etcd.testing serve\n")
    assert "etcd.testing serve" in usage.split(".. code-block::", 1)[0] + first_block


def test_the_testing_guide_names_the_extra_that_exists():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r"^test = \[", pyproject, re.M)
    testing = (DOCS / "testing.rst").read_text(encoding="utf-8")
    assert "``test`` extra" in testing
    assert "``testing`` extra" not in testing


def test_the_readme_says_how_to_build_the_docs():
    build = section(README, "Building the documentation")
    assert ".venv/bin/pip install -q '.[docs]'" in build
    assert "sphinx-build -b html docs docs/_build/html" in build


def test_the_news_are_in_the_docs():
    assert "   news\n" in (DOCS / "index.rst").read_text(encoding="utf-8")
    assert ".. include:: ../NEWS.txt" in (DOCS / "news.rst").read_text(encoding="utf-8")
