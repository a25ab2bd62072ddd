"""The key-space API against a real etcd: every method and its options."""

from __future__ import annotations

import pytest

import etcd

from .helpers import wait_for


def _version(client: etcd.Client) -> tuple[int, int]:
    major, minor = (client.version or "0.0").split(".")[:2]
    return int(major), int(minor)


# --- write and read ---------------------------------------------------------


def test_write_creates_then_sets(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/greeting"
    created = etcd_client.write(key, "hello")
    assert (created.action, created.key, created.value) == ("set", key, "hello")
    assert created.newKey is True
    assert created.modifiedIndex == created.createdIndex
    assert created.etcd_index >= created.modifiedIndex
    assert not hasattr(created, "_prev_node")

    replaced = etcd_client.write(key, "again")
    assert replaced.newKey is False
    assert replaced.value == "again"
    assert replaced._prev_node.value == "hello"
    assert replaced.modifiedIndex > created.modifiedIndex

    read = etcd_client.read(key)
    assert (read.action, read.value, read.dir) == ("get", "again", False)
    assert read.modifiedIndex == replaced.modifiedIndex
    assert read.raft_index >= 1


def test_get_and_set_are_the_short_forms(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/short"
    assert etcd_client.set(key, "one", 30).ttl == 30
    assert etcd_client.get(key).value == "one"


def test_ttl_sets_expiration_and_ttl_zero_is_sent(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/ttl"
    result = etcd_client.write(key, "v", ttl=20)
    assert result.ttl == 20
    assert result.expiration is not None


def test_ttl_zero_is_sent_and_expires_the_key(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/gone"
    written = etcd_client.write(key, "v", ttl=0)
    assert written.expiration is not None
    # expiry is applied by the leader's sync, about every 500 ms
    assert wait_for(lambda: key not in etcd_client, timeout=5)


def test_write_without_value_stores_empty_string(etcd_client, etcd_prefix):
    result = etcd_client.write(f"{etcd_prefix}/empty", None)
    assert result.value == ""


def test_read_recursive_and_sorted(etcd_client, etcd_prefix):
    for name in ["c", "a", "b"]:
        etcd_client.write(f"{etcd_prefix}/dir/{name}", name.upper())
    etcd_client.write(f"{etcd_prefix}/dir/sub/deep", "D")

    shallow = etcd_client.read(f"{etcd_prefix}/dir", sorted=True)
    assert shallow.dir is True
    # a plain directory GET lists one level: the child directory has no nodes
    assert [c["key"].rsplit("/", 1)[1] for c in shallow._children] == ["a", "b", "c", "sub"]

    deep = etcd_client.read(f"{etcd_prefix}/dir", recursive=True, sorted=True)
    assert [leaf.key.split("/dir/", 1)[1] for leaf in deep.leaves] == ["a", "b", "c", "sub/deep"]
    assert [leaf.value for leaf in deep.leaves] == ["A", "B", "C", "D"]
    subtree = [n.key.split("/dir", 1)[1] for n in deep.get_subtree()]
    assert subtree == ["", "/a", "/b", "/c", "/sub", "/sub/deep"]


def test_read_with_quorum(etcd_client, etcd_prefix):
    etcd_client.write(f"{etcd_prefix}/q", "v")
    assert etcd_client.read(f"{etcd_prefix}/q", quorum=True).value == "v"


def test_read_root_has_no_key(etcd_client, etcd_prefix):
    etcd_client.write(f"{etcd_prefix}/x", "v")
    root = etcd_client.read("/")
    assert root.key is None
    assert root.dir is True


def test_read_missing_key(etcd_client, etcd_prefix):
    etcd_client.write(f"{etcd_prefix}/present", "v")
    with pytest.raises(etcd.EtcdKeyNotFound) as info:
        etcd_client.read(f"{etcd_prefix}/missing")
    assert str(info.value) == f"Key not found : {etcd_prefix}/missing"
    assert info.value.payload["errorCode"] == 100
    assert info.value.payload["status"] == 404
    assert info.value.error_code == 100


def test_contains(etcd_client, etcd_prefix):
    etcd_client.write(f"{etcd_prefix}/here", "v")
    assert f"{etcd_prefix}/here" in etcd_client
    assert f"{etcd_prefix}/absent" not in etcd_client


# --- directories --------------------------------------------------------------


def test_directories(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/newdir"
    made = etcd_client.write(key, None, dir=True)
    assert made.dir is True and made.newKey is True
    # An empty directory yields itself from get_subtree (0.4.5 behaviour, issue #117).
    assert [n.key for n in etcd_client.read(key).leaves] == [key]

    with pytest.raises(etcd.EtcdNotFile):
        etcd_client.write(key, None, dir=True)
    with pytest.raises(etcd.EtcdNotFile):
        etcd_client.write(key, "value")
    with pytest.raises(etcd.EtcdNotFile):
        etcd_client.delete(key)

    etcd_client.write(f"{key}/child", "c")
    with pytest.raises(etcd.EtcdDirNotEmpty):
        etcd_client.delete(key, dir=True)
    deleted = etcd_client.delete(key, recursive=True)
    assert deleted.action == "delete" and deleted.dir is True
    assert key not in etcd_client


def test_empty_directory_deleted_with_dir(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/emptydir"
    etcd_client.write(key, None, dir=True)
    assert etcd_client.delete(key, dir=True).dir is True


def test_dir_with_value_is_refused_before_io(etcd_client, etcd_prefix):
    with pytest.raises(etcd.EtcdException, match="Cannot create a directory with a value"):
        etcd_client.write(f"{etcd_prefix}/d", "v", dir=True)
    assert f"{etcd_prefix}/d" not in etcd_client


def test_not_a_directory(etcd_client, etcd_prefix):
    etcd_client.write(f"{etcd_prefix}/file", "v")
    with pytest.raises(etcd.EtcdNotDir):
        etcd_client.write(f"{etcd_prefix}/file/below", "v")
    with pytest.raises(etcd.EtcdNotDir):
        etcd_client.read(f"{etcd_prefix}/file/below")


def test_dir_true_on_a_file_replaces_it(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/file"
    etcd_client.write(key, "v")
    result = etcd_client.write(key, None, dir=True)
    assert result.dir is True
    assert result._prev_node.value == "v"


def test_root_is_read_only(etcd_client):
    with pytest.raises(etcd.EtcdRootReadOnly):
        etcd_client.write("/", "v")
    with pytest.raises(etcd.EtcdRootReadOnly):
        etcd_client.delete("/", recursive=True)


# --- in-order keys ------------------------------------------------------------


def test_append_creates_in_order_keys(etcd_client, etcd_prefix):
    queue = f"{etcd_prefix}/queue"
    first = etcd_client.write(queue, "job1", append=True)
    second = etcd_client.write(queue, "job2", append=True)
    assert first.action == "create" and first.newKey is True
    assert first.key.startswith(queue + "/")
    name = first.key.rsplit("/", 1)[1]
    assert len(name) == 20 and name.isdigit()
    assert second.key > first.key
    listing = etcd_client.read(queue, sorted=True)
    assert [n.value for n in listing.leaves] == ["job1", "job2"]


# --- conditions ---------------------------------------------------------------


def test_compare_and_swap_on_value(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/cas"
    etcd_client.write(key, "old")
    swapped = etcd_client.test_and_set(key, "new", "old")
    assert swapped.action == "compareAndSwap"
    assert swapped._prev_node.value == "old"
    with pytest.raises(etcd.EtcdCompareFailed) as info:
        etcd_client.test_and_set(key, "newer", "old")
    assert str(info.value) == "Compare failed : [old != new]"
    assert etcd_client.read(key).value == "new"


def test_compare_and_swap_on_index(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/cas"
    first = etcd_client.write(key, "a")
    etcd_client.write(key, "b", prevIndex=first.modifiedIndex)
    with pytest.raises(etcd.EtcdCompareFailed):
        etcd_client.write(key, "c", prevIndex=first.modifiedIndex)
    assert etcd_client.read(key).value == "b"


def test_prev_exist(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/exists"
    created = etcd_client.write(key, "a", prevExist=False)
    assert created.action == "create"
    with pytest.raises(etcd.EtcdAlreadyExist):
        etcd_client.write(key, "b", prevExist=False)
    assert etcd_client.write(key, "c", prevExist=True).action == "update"
    with pytest.raises(etcd.EtcdKeyNotFound):
        etcd_client.write(f"{etcd_prefix}/nothing", "d", prevExist=True)


def test_prev_index_zero_is_no_condition(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/zero"
    etcd_client.write(key, "a")
    assert etcd_client.write(key, "b", prevIndex=0).value == "b"


# --- update -------------------------------------------------------------------


def test_update_writes_back_an_edited_result(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/upd"
    etcd_client.write(key, "1")
    result = etcd_client.read(key)
    result.value = "2"
    updated = etcd_client.update(result)
    assert updated.action == "compareAndSwap"
    assert etcd_client.read(key).value == "2"

    result.value = "3"  # stale: its modifiedIndex is behind the key's
    with pytest.raises(etcd.EtcdCompareFailed):
        etcd_client.update(result)
    assert etcd_client.read(key).value == "2"


def test_update_ttl_of_a_file(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/upd"
    etcd_client.write(key, "v")
    result = etcd_client.read(key)
    result.ttl = 120
    assert etcd_client.update(result).ttl == 120


def test_update_of_a_directory_differs_between_34_and_35(etcd_client, etcd_prefix):
    """etcd 3.5 cannot update a directory (etcd issue 13589); 3.4 can."""
    key = f"{etcd_prefix}/dirttl"
    etcd_client.write(key, None, dir=True)
    result = etcd_client.read(key)
    result.ttl = 60
    if _version(etcd_client) >= (3, 5):
        with pytest.raises(etcd.EtcdRaftInternalError) as info:
            etcd_client.update(result)
        assert info.value.payload["errorCode"] == 300
        assert "Not a file" in str(info.value)
    else:
        updated = etcd_client.update(result)
        assert updated.action == "update"
        assert updated.dir is True and updated.ttl == 60


# --- refresh ------------------------------------------------------------------


def test_refresh_keeps_value_and_index(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/lease"
    written = etcd_client.write(key, "alive", ttl=5)
    refreshed = etcd_client.refresh(key, ttl=60)
    assert refreshed.action == "update"
    assert refreshed.ttl == 60
    assert refreshed.value == "alive"
    assert refreshed.createdIndex == written.createdIndex


def test_refresh_of_missing_key(etcd_client, etcd_prefix):
    with pytest.raises(etcd.EtcdKeyNotFound):
        etcd_client.refresh(f"{etcd_prefix}/none", ttl=10)
    assert f"{etcd_prefix}/none" not in etcd_client


def test_refresh_does_not_wake_a_watcher(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/silent"
    written = etcd_client.write(key, "v", ttl=30)
    etcd_client.refresh(key, ttl=60)
    marker = etcd_client.write(key, "changed")
    # The first event after the write is the marker, not the refresh.
    event = etcd_client.watch(key, index=written.modifiedIndex + 1, timeout=5)
    assert event.modifiedIndex == marker.modifiedIndex
    assert event.value == "changed"


def test_refresh_errors_have_their_own_codes(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/r"
    etcd_client.write(key, "v", ttl=30)
    with pytest.raises(etcd.EtcdValueError) as info:
        etcd_client.write(key, "v2", ttl=5, refresh=True, prevExist=True)
    assert info.value.error_code == 211
    with pytest.raises(etcd.EtcdValueError) as info:
        etcd_client.write(key, None, refresh=True, prevExist=True)
    assert info.value.error_code == 212
    assert etcd_client.read(key).value == "v"


# --- delete and pop -----------------------------------------------------------


def test_delete(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/del"
    etcd_client.write(key, "v")
    deleted = etcd_client.delete(key)
    assert deleted.action == "delete"
    assert deleted.value is None
    assert deleted._prev_node.value == "v"
    with pytest.raises(etcd.EtcdKeyNotFound):
        etcd_client.delete(key)


def test_delete_below_missing_parent_names_first_missing_part(etcd_client, etcd_prefix):
    etcd_client.write(f"{etcd_prefix}/present", "v")
    with pytest.raises(etcd.EtcdKeyNotFound) as info:
        etcd_client.delete(f"{etcd_prefix}/no/such/key")
    assert info.value.payload["cause"] == f"{etcd_prefix}/no"


def test_compare_and_delete(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/cad"
    written = etcd_client.write(key, "v")
    with pytest.raises(etcd.EtcdCompareFailed):
        etcd_client.delete(key, prevValue="other")
    with pytest.raises(etcd.EtcdCompareFailed):
        etcd_client.delete(key, prevIndex=written.modifiedIndex + 100)
    assert etcd_client.delete(key, prevValue="v").action == "compareAndDelete"

    written = etcd_client.write(key, "w")
    assert etcd_client.delete(key, prevIndex=written.modifiedIndex).action == "compareAndDelete"


def test_pop_returns_the_old_node(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/pop"
    etcd_client.write(key, "last")
    popped = etcd_client.pop(key)
    assert popped.value == "last"
    assert popped.action is None
    assert not hasattr(popped, "etcd_index")
    assert key not in etcd_client


def test_idempotent_flag_is_accepted(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/idem"
    assert etcd_client.write(key, "v", idempotent=True, timeout=5).value == "v"
    assert etcd_client.delete(key, idempotent=True, timeout=5).action == "delete"


# --- watch (the compatible API; the robust watcher has its own tests) --------


def test_watch_from_an_index(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/w"
    first = etcd_client.write(key, "1")
    etcd_client.write(key, "2")
    event = etcd_client.watch(key, index=first.modifiedIndex, timeout=5)
    assert event.value == "1" and event.action == "set"


def test_watch_times_out(etcd_client, etcd_prefix):
    with pytest.raises(etcd.EtcdWatchTimedOut) as info:
        etcd_client.watch(f"{etcd_prefix}/quiet", timeout=0.3)
    assert isinstance(info.value, etcd.EtcdConnectionFailed)
    assert info.value.cause is not None


def test_recursive_watch_sees_children(etcd_client, etcd_prefix):
    start = etcd_client.write(f"{etcd_prefix}/tree/a", "x")
    etcd_client.write(f"{etcd_prefix}/tree/b/c", "y")
    event = etcd_client.watch(
        f"{etcd_prefix}/tree", index=start.modifiedIndex + 1, timeout=5, recursive=True
    )
    assert event.key == f"{etcd_prefix}/tree/b/c"


def test_eternal_watch_follows_indexes(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/ew"
    first = etcd_client.write(key, "1")
    etcd_client.write(key, "2")
    etcd_client.write(key, "3")
    events = etcd_client.eternal_watch(key, index=first.modifiedIndex)
    assert [next(events).value for _ in range(3)] == ["1", "2", "3"]


def test_watch_of_cleared_history(etcd_client, etcd_prefix):
    key = f"{etcd_prefix}/hist"
    first = etcd_client.write(key, "0")
    for i in range(1005):
        etcd_client.write(f"{etcd_prefix}/filler", str(i))
    with pytest.raises(etcd.EtcdEventIndexCleared) as info:
        etcd_client.watch(key, index=first.modifiedIndex, timeout=5)
    assert info.value.error_code == 401
    assert info.value.resume_index is not None
    assert info.value.resume_index > first.modifiedIndex + 1000


# --- removed primitives ---------------------------------------------------------


def test_removed_primitives_say_so(etcd_client):
    with pytest.raises(NotImplementedError, match="Lock primitives were removed"):
        etcd_client.get_lock("x")
    with pytest.raises(NotImplementedError, match="Election primitives were removed"):
        etcd_client.election  # noqa: B018
