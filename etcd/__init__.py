"""A client for the etcd v2 HTTP API, compatible with python-etcd 0.4.5.

>>> import etcd
>>> client = etcd.Client(host="127.0.0.1", port=2379)   # doctest: +SKIP
>>> client.write("/nodes/n1", 1)                         # doctest: +SKIP
"""

from __future__ import annotations

import logging

from . import client, lock
from ._endpoints import Member
from ._exceptions import (
    EtcdAlreadyExist,
    EtcdBadResponse,
    EtcdClusterIdChanged,
    EtcdCompareFailed,
    EtcdConnectionFailed,
    EtcdDirNotEmpty,
    EtcdError,
    EtcdEventIndexCleared,
    EtcdException,
    EtcdInsufficientPermissions,
    EtcdKeyError,
    EtcdKeyNotFound,
    EtcdLeaderElectionInProgress,
    EtcdLockExpired,
    EtcdNotDir,
    EtcdNotFile,
    EtcdRaftInternalError,
    EtcdRootReadOnly,
    EtcdTypeError,
    EtcdV2ApiDisabled,
    EtcdValueError,
    EtcdWatcherCleared,
    EtcdWatchTimedOut,
)
from ._result import EtcdResult
from .client import Client
from .election import Election, LeaderObserver
from .keepalive import KeepAlive
from .lock import Lock

__version__ = "0.5.0.dev0"

__all__ = [
    "Client",
    "Election",
    "EtcdAlreadyExist",
    "EtcdBadResponse",
    "EtcdClusterIdChanged",
    "EtcdCompareFailed",
    "EtcdConnectionFailed",
    "EtcdDirNotEmpty",
    "EtcdError",
    "EtcdEventIndexCleared",
    "EtcdException",
    "EtcdInsufficientPermissions",
    "EtcdKeyError",
    "EtcdKeyNotFound",
    "EtcdLeaderElectionInProgress",
    "EtcdLockExpired",
    "EtcdNotDir",
    "EtcdNotFile",
    "EtcdRaftInternalError",
    "EtcdResult",
    "EtcdRootReadOnly",
    "EtcdTypeError",
    "EtcdV2ApiDisabled",
    "EtcdValueError",
    "EtcdWatchTimedOut",
    "EtcdWatcherCleared",
    "KeepAlive",
    "LeaderObserver",
    "Lock",
    "Member",
    "client",
    "lock",
]

# Reprs and pickles name the classes as python-etcd 0.4.5 did: etcd.EtcdResult,
# etcd.EtcdKeyNotFound ... Classes of public modules keep theirs (etcd.client.Client,
# etcd.lock.Lock, etcd.keepalive.KeepAlive ...).
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith(f"{__name__}._"):
        _obj.__module__ = __name__
del _name, _obj

#: The ``etcd`` logger, kept under python-etcd 0.4.5's name: callers set its
#: level at import time (``etcd._log.setLevel(logging.WARNING)``).
_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())
