"""A client for the etcd v2 HTTP API, compatible with python-etcd 0.4.5."""

from __future__ import annotations

import logging

__version__ = "0.5.0.dev0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
