"""The v2 key-space tests of ``tests/test_keys.py``, run unchanged with ``api="v3"``.

Every test function of that module is collected here again, with an
``etcd_client`` fixture that gives a v3 client (in a namespace of its own).
The few that pin a behaviour v3 cannot reproduce are marked, each with the
row of docs/v3.rst that says what v3 does instead; a marked test that starts
passing fails the run (``strict``), so the table stays true.
"""

from __future__ import annotations

from . import test_keys
from .v3_support import collect_again, v3_parity_client

__all__ = ["v3_parity_client"]  # the v3 etcd_client fixture of these tests

DIFFERENT = {
    "test_refresh_does_not_wake_a_watcher": "refresh to another TTL makes a revision",
    "test_update_of_a_directory_differs_between_34_and_35": "a v2 store bug of 3.5",
    "test_watch_from_an_index": 'watch action names: a first version is "create"',
    "test_watch_of_cleared_history": "v3 keeps the whole history until a compaction",
}


collect_again(test_keys, globals(), DIFFERENT)
