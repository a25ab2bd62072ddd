"""The watch, lock, keep-alive and election tests, run unchanged with ``api="v3"``.

Every test of ``tests/test_watch.py``, ``test_lock.py``, ``test_keepalive.py``
and ``test_election.py`` that takes ``etcd_client`` is collected here again,
with an ``etcd_client`` fixture that gives a v3 client in a namespace of its
own; the processes those tests start speak v3 too (they copy the client's
protocol, see ``recipes_support.child_client``). A test pinning what v3 cannot
reproduce is a strict xfail naming its row of docs/v3.rst.
"""

from __future__ import annotations

from . import test_election, test_keepalive, test_lock, test_watch
from .v3_support import collect_again, v3_parity_client

__all__ = ["v3_parity_client"]  # the v3 etcd_client fixture of these tests

_SAME_TTL = (
    'docs/v3.rst row "refresh with the same TTL": the lease is kept alive without a new '
    "modifiedIndex, which this test counts refreshes by"
)
_HISTORY = (
    'docs/v3.rst row "a watch from an index older than the last compaction": v3 keeps every '
    "event until a compaction, so 5,000 changes never overrun a slow watcher (test_v3_watch.py "
    "pins the compacted index and 5,000 changes to a slow watcher)"
)

_DIFFERENT = {
    "test_watch_floor_follows_the_server_while_other_keys_change": (
        "a v3 watch poll that times out has no answer to learn the current revision from, so "
        "next_index stays put (v3 needs no floor: see the docs/v3.rst row "
        '"a watch from an index older than the last compaction")'
    ),
    "test_lock_renewing_does_not_wake_the_waiters": _SAME_TTL,
    "test_keepalive_a_refresh_it_did_not_expect_is_not_a_loss": _SAME_TTL,
    "test_keepalive_refreshing_wakes_no_watcher_and_stop_deletes_the_key": _SAME_TTL,
    "test_keepalive_a_key_outlives_its_ttl_while_kept_and_goes_when_the_process_dies": (
        'docs/v3.rst row "expire events": a key whose TTL ran out is reported as delete'
    ),
}

# Not run over v3: they cannot pass there, and each takes a 5,000-change writer.
_SKIPPED = {
    "test_watch_history_overrun_in_strict_mode_raises_with_the_resume_index": _HISTORY,
    "test_watch_history_overrun_in_snapshot_mode_converges": _HISTORY,
}

for _module in (test_watch, test_lock, test_keepalive, test_election):
    _prefix = _module.__name__.rsplit(".test_", 1)[1] + "_"
    collect_again(_module, globals(), _DIFFERENT, _SKIPPED, _prefix)
