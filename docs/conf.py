"""Sphinx configuration of the python-etcd documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html``.
"""

from __future__ import annotations

import os
import sys

# Document the package of this checkout, not whatever copy is installed.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import etcd

project = "python-etcd"
author = "the python-etcd authors"
copyright = "2026, the python-etcd authors"
release = etcd.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc"]

exclude_patterns = ["_build"]
nitpicky = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_default_options = {"show-inheritance": True}

html_theme = "alabaster"
html_title = f"python-etcd {release}"
