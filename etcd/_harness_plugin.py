"""The ``pytest11`` entry point of the package: it loads :mod:`etcd.testing`.

The entry point names this module instead of :mod:`etcd.testing`, so that the
plugin is always registered under its own module name. ``-p etcd.testing`` and
``pytest_plugins = ["etcd.testing"]`` then find it loaded already (or load it
first, and this module finds it), instead of pytest refusing the same module
under a second name ("Plugin already registered under a different name").
``-p no:etcd`` blocks the entry point, as before.
"""

from __future__ import annotations

pytest_plugins = ["etcd.testing"]
