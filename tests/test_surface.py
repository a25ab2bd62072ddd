"""The public surface of python-etcd 0.4.5 is intact (compat §2, §10)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import etcd
import etcd.client

LEGACY_NAMES = {
    "Client",
    "EtcdResult",
    "EtcdError",
    "EtcdException",
    "EtcdValueError",
    "EtcdCompareFailed",
    "EtcdDirNotEmpty",
    "EtcdKeyError",
    "EtcdKeyNotFound",
    "EtcdNotFile",
    "EtcdNotDir",
    "EtcdAlreadyExist",
    "EtcdRootReadOnly",
    "EtcdClusterIdChanged",
    "EtcdEventIndexCleared",
    "EtcdConnectionFailed",
    "EtcdWatchTimedOut",
    "EtcdInsufficientPermissions",
    "EtcdWatcherCleared",
    "EtcdLeaderElectionInProgress",
    "EtcdLockExpired",
    "client",
}


def test_legacy_names_are_exported():
    assert set(etcd.__all__) >= LEGACY_NAMES
    assert etcd.client.Client is etcd.Client
    for name in etcd.__all__:
        assert hasattr(etcd, name), name


def test_constructor_signature():
    params = inspect.signature(etcd.Client.__init__).parameters
    expected = [
        ("host", "127.0.0.1"),
        ("port", 4001),
        ("srv_domain", None),
        ("version_prefix", "/v2"),
        ("read_timeout", 60),
        ("allow_redirect", True),
        ("protocol", "http"),
        ("cert", None),
        ("ca_cert", None),
        ("username", None),
        ("password", None),
        ("allow_reconnect", False),
        ("use_proxies", False),
        ("expected_cluster_id", None),
        ("per_host_pool_size", 10),
        ("lock_prefix", "/_locks"),
    ]
    positional = [(n, p.default) for n, p in params.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == [("self", inspect.Parameter.empty), *expected]
    assert params["verify"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["verify"].default is True


METHODS = {
    "write": ["self", "key", "value", "ttl", "dir", "append", "kwdargs"],
    "read": ["self", "key", "kwdargs"],
    "get": ["self", "key"],
    "delete": ["self", "key", "recursive", "dir", "kwdargs"],
    "pop": ["self", "key", "recursive", "dir", "kwdargs"],
    "set": ["self", "key", "value", "ttl"],
    "test_and_set": ["self", "key", "value", "prev_value", "ttl"],
    "update": ["self", "obj"],
    "refresh": ["self", "key", "ttl", "kwdargs"],
    "watch": ["self", "key", "index", "timeout", "recursive"],
    "eternal_watch": ["self", "key", "index", "recursive"],
    "api_execute": ["self", "path", "method", "params", "timeout"],
    "api_execute_json": ["self", "path", "method", "params", "timeout"],
    "get_lock": ["self", "args", "kwargs"],
    "close": ["self"],
}


def test_method_signatures():
    for name, expected in METHODS.items():
        params = list(inspect.signature(getattr(etcd.Client, name)).parameters)
        assert params == expected, name


def test_seams_and_option_sets():
    client_cls = etcd.Client
    assert (client_cls._MGET, client_cls._MPUT, client_cls._MPOST, client_cls._MDELETE) == (
        "GET",
        "PUT",
        "POST",
        "DELETE",
    )
    assert client_cls._comparison_conditions == {"prevValue", "prevIndex", "prevExist", "refresh"}
    assert client_cls._read_options == {"recursive", "wait", "waitIndex", "sorted", "quorum"}
    assert client_cls._del_conditions == {"prevValue", "prevIndex"}
    assert client_cls.http is None
    for name in ["machines", "members", "leader", "stats", "leader_stats", "store_stats"]:
        assert isinstance(inspect.getattr_static(client_cls, name), property), name
    for name in ["_next_server", "_handle_server_response", "_set_version_info", "_discover"]:
        assert callable(getattr(client_cls, name, None)), name


def test_client_is_a_plain_class():
    assert type(etcd.Client) is type
    assert not hasattr(etcd.Client, "__slots__")


def test_import_has_no_side_effects():
    code = (
        "import warnings, logging, sys\n"
        "import urllib3  # urllib3 adds its own filters on import\n"
        "before = list(warnings.filters)\n"
        "import etcd\n"
        "assert warnings.filters == before, 'warning filters changed'\n"
        "assert 'etcd.testing' not in sys.modules\n"
        "assert 'urllib3.contrib.pyopenssl' not in sys.modules\n"
        "handlers = logging.getLogger('etcd').handlers\n"
        "assert [type(h).__name__ for h in handlers] == ['NullHandler']\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
