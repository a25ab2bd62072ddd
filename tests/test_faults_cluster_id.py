"""A changed or expected cluster id, from the answers' ``X-Etcd-Cluster-Id`` headers.

The faults come from the fake server in tests/fakes.py.
"""

from __future__ import annotations

import pytest

import etcd

from .fakes import (
    HeadersThenStall,
    Reply,
    Responder,
    etcd_headers,
)
from .faults_support import GET_A, serving


def test_cluster_id_change_is_raised_once():
    answers = [Reply.etcd(GET_A, cluster_id=cid) for cid in ("aaaa", "bbbb", "bbbb")]
    with serving(*answers) as (fake, client):
        assert client.read("/a").value == "1"
        assert client.expected_cluster_id == "aaaa"
        with pytest.raises(etcd.EtcdException) as info:
            client.read("/a")
        assert type(info.value) is etcd.EtcdClusterIdChanged
        assert str(info.value) == "The UUID of the cluster changed from aaaa to bbbb."
        assert client.expected_cluster_id == "bbbb"
        assert client.read("/a").value == "1"
        assert len(fake.requests) == 3


def test_expected_cluster_id_is_checked_on_the_first_answer():
    with (
        serving(Reply.etcd(GET_A, cluster_id="bbbb"), expected_cluster_id="aaaa") as (_, client),
        pytest.raises(etcd.EtcdClusterIdChanged, match=r"from aaaa to bbbb\.$"),
    ):
        client.read("/a")


def test_an_answer_without_a_cluster_id_is_not_checked():
    answers = [Reply.etcd(GET_A, cluster_id="aaaa"), Reply.etcd(GET_A, cluster_id=None)]
    with serving(*answers) as (_fake, client):
        client.read("/a")
        assert client.read("/a").value == "1"
        assert client.expected_cluster_id == "aaaa"


def test_a_watch_notices_a_new_cluster_from_the_headers():
    # compat §4.6: the check runs on the headers, before the body, so a watch
    # on a replaced cluster fails at once instead of waiting for an event.
    answers: list[Responder] = [
        Reply.etcd(GET_A, cluster_id="aaaa"),
        HeadersThenStall(200, etcd_headers(cluster_id="bbbb")),
    ]
    # A check that waited for the body would end in EtcdWatchTimedOut instead.
    with serving(*answers) as (_fake, client):
        client.read("/a")
        with pytest.raises(etcd.EtcdClusterIdChanged):
            client.watch("/a", timeout=10)
