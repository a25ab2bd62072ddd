"""The exception tree and the error-code table (pure code, no server needed)."""

from __future__ import annotations

import pickle

import pytest

import etcd

HIERARCHY = {
    etcd.EtcdValueError: (etcd.EtcdException, ValueError),
    etcd.EtcdCompareFailed: (etcd.EtcdValueError,),
    etcd.EtcdDirNotEmpty: (etcd.EtcdValueError,),
    etcd.EtcdKeyError: (etcd.EtcdException,),
    etcd.EtcdKeyNotFound: (etcd.EtcdKeyError,),
    etcd.EtcdNotFile: (etcd.EtcdKeyError,),
    etcd.EtcdNotDir: (etcd.EtcdKeyError,),
    etcd.EtcdAlreadyExist: (etcd.EtcdKeyError,),
    etcd.EtcdRootReadOnly: (etcd.EtcdKeyError,),
    etcd.EtcdClusterIdChanged: (etcd.EtcdException,),
    etcd.EtcdEventIndexCleared: (etcd.EtcdException,),
    etcd.EtcdConnectionFailed: (etcd.EtcdException,),
    etcd.EtcdWatchTimedOut: (etcd.EtcdConnectionFailed,),
    etcd.EtcdInsufficientPermissions: (etcd.EtcdException,),
    etcd.EtcdWatcherCleared: (etcd.EtcdException,),
    etcd.EtcdLeaderElectionInProgress: (etcd.EtcdException,),
    etcd.EtcdLockExpired: (etcd.EtcdException,),
    etcd.EtcdRaftInternalError: (etcd.EtcdException,),
    etcd.EtcdV2ApiDisabled: (etcd.EtcdException,),
    etcd.EtcdTypeError: (etcd.EtcdException, TypeError),
}


@pytest.mark.parametrize("cls", list(HIERARCHY), ids=lambda c: c.__name__)
def test_bases(cls):
    assert cls.__bases__ == HIERARCHY[cls]
    assert cls.__module__ == "etcd"


def test_key_error_is_not_a_python_key_error():
    assert not issubclass(etcd.EtcdKeyError, KeyError)
    assert not issubclass(etcd.EtcdV2ApiDisabled, etcd.EtcdKeyNotFound)


CODES = {
    100: etcd.EtcdKeyNotFound,
    101: etcd.EtcdCompareFailed,
    102: etcd.EtcdNotFile,
    103: etcd.EtcdException,
    104: etcd.EtcdNotDir,
    105: etcd.EtcdAlreadyExist,
    106: etcd.EtcdException,
    107: etcd.EtcdRootReadOnly,
    108: etcd.EtcdDirNotEmpty,
    109: etcd.EtcdException,
    110: etcd.EtcdInsufficientPermissions,
    **dict.fromkeys(range(200, 213), etcd.EtcdValueError),
    300: etcd.EtcdRaftInternalError,
    301: etcd.EtcdLeaderElectionInProgress,
    400: etcd.EtcdWatcherCleared,
    401: etcd.EtcdEventIndexCleared,
    999: etcd.EtcdException,
}


@pytest.mark.parametrize("code", sorted(CODES))
def test_error_code_table(code):
    payload = {"errorCode": code, "message": "msg", "cause": "why", "status": 400}
    with pytest.raises(etcd.EtcdException) as info:
        etcd.EtcdError.handle(payload)
    assert type(info.value) is CODES[code]
    assert str(info.value) == "msg : why"
    assert info.value.payload is payload


def test_status_overrides_the_code():
    with pytest.raises(etcd.EtcdKeyNotFound, match=r"^auth: User nope does not exist\. : None$"):
        etcd.EtcdError.handle({"message": "auth: User nope does not exist.", "status": 404})
    with pytest.raises(
        etcd.EtcdInsufficientPermissions, match=r"^Insufficient credentials : None$"
    ):
        etcd.EtcdError.handle({"message": "Insufficient credentials", "status": 401})
    with pytest.raises(etcd.EtcdKeyNotFound):
        etcd.EtcdError.handle({"errorCode": 101, "message": "x", "status": 404})


def test_missing_or_odd_codes_fall_back_to_the_root():
    for payload in ({}, {"errorCode": None}, {"errorCode": "100"}, {"errorCode": [1]}):
        with pytest.raises(etcd.EtcdException) as info:
            etcd.EtcdError.handle(payload)
        assert type(info.value) is etcd.EtcdException
        assert str(info.value) == "None : None"


def test_the_table_can_be_patched(monkeypatch):
    class MyError(etcd.EtcdException):
        pass

    monkeypatch.setitem(etcd.EtcdError.error_exceptions, 300, MyError)
    with pytest.raises(MyError):
        etcd.EtcdError.handle({"errorCode": 300, "message": "Raft Internal Error"})


def test_connection_failed_keeps_its_signature_and_cause():
    cause = OSError("refused")
    exc = etcd.EtcdConnectionFailed("down", cause=cause)
    assert exc.cause is cause and exc.payload is None and str(exc) == "down"
    timed_out = etcd.EtcdWatchTimedOut("slow", {"x": 1}, cause)
    assert timed_out.payload == {"x": 1} and timed_out.cause is cause


@pytest.mark.parametrize("cls", [etcd.EtcdException, *HIERARCHY], ids=lambda c: c.__name__)
def test_pickle_round_trip(cls):
    payload = {"errorCode": 100, "message": "Key not found", "cause": "/k", "index": 7}
    exc = cls("boom", payload)
    if issubclass(cls, etcd.EtcdConnectionFailed):
        exc = cls("boom", payload, cause=ConnectionRefusedError("refused"))
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is cls
    assert str(copy) == "boom"
    assert copy.payload == payload
    if issubclass(cls, etcd.EtcdConnectionFailed):
        assert isinstance(copy.cause, ConnectionRefusedError)


def test_structured_fields():
    exc = etcd.EtcdEventIndexCleared("cleared", {"errorCode": 401, "index": 1139})
    assert exc.error_code == 401
    assert exc.resume_index == 1139
    assert etcd.EtcdException("no payload").error_code is None
    assert etcd.EtcdEventIndexCleared("x").resume_index is None
