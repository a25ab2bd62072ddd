"""TLS and client certificates with ``api="v3"``, on a server without v2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import etcd
from etcd.testing import EtcdCluster

from .certs import CertificateSet, make_certificates
from .helpers import call_in_thread


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    return make_certificates(Path(tmp_path_factory.mktemp("certs")))


@pytest.fixture(scope="module")
def tls_server(certs: CertificateSet) -> Iterator[EtcdCluster]:
    with EtcdCluster(
        1,
        enable_v2=False,
        client_scheme="https",
        extra_args=[f"--cert-file={certs.server_cert}", f"--key-file={certs.server_key}"],
        ca_cert=certs.ca,
    ) as cluster:
        yield cluster


def _mtls_cluster(certs: CertificateSet, cert: str, key: str) -> EtcdCluster:
    """A server without v2 that asks every client for a certificate, serving *cert*."""
    return EtcdCluster(
        1,
        enable_v2=False,
        client_scheme="https",
        extra_args=[
            f"--cert-file={cert}",
            f"--key-file={key}",
            "--client-cert-auth",
            f"--trusted-ca-file={certs.ca}",
        ],
        ca_cert=certs.ca,
        cert=certs.client_cert,
        key=certs.client_key,
    )


@pytest.fixture(scope="module")
def mtls_server(certs: CertificateSet) -> Iterator[EtcdCluster]:
    with _mtls_cluster(certs, certs.server_cert, certs.server_key) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def mtls_server_for_the_gateway(certs: CertificateSet) -> Iterator[EtcdCluster]:
    """``--client-cert-auth`` with a server certificate good for client authentication too."""
    both = (certs.server_and_client_cert, certs.server_and_client_key)
    with _mtls_cluster(certs, *both) as cluster:
        yield cluster


def _client(server: EtcdCluster, **kwargs: Any) -> etcd.Client:
    return etcd.Client(
        host="127.0.0.1", port=server.members[0].port, protocol="https", api="v3", **kwargs
    )


def test_keys_and_watches_over_tls(tls_server, certs):
    with _client(tls_server, ca_cert=certs.ca) as c:
        written = c.write("/tls/key", "value")
        assert c.read("/tls/key").value == "value"
        pending = call_in_thread(c.watch, "/tls/key", index=written.etcd_index + 1, timeout=20)
        c.write("/tls/key", "changed")
        thread, box = pending
        thread.join(30)
        assert box.get("result") is not None and box["result"].value == "changed", box
        assert c.machines == [tls_server.members[0].client_url]
        c.delete("/tls", recursive=True)


def test_a_wrong_ca_is_refused(tls_server):
    with _client(tls_server) as c, pytest.raises(etcd.EtcdConnectionFailed, match="certificate"):
        c.read("/")  # the system's CAs do not know the test CA


def test_client_certificate_auth_needs_a_server_certificate_for_clients_too(mtls_server, certs):
    # etcd's gateway dials its own gRPC server with the server certificate; with
    # --client-cert-auth that certificate must allow client authentication too,
    # which the test server's does not: the client's own handshake succeeds, and
    # the gateway's refusal arrives as a gRPC Unavailable error (docs/v3.rst).
    pair = (certs.client_cert, certs.client_key)
    with _client(mtls_server, ca_cert=certs.ca, cert=pair) as c:
        with pytest.raises(etcd.EtcdRaftInternalError) as info:
            c.read("/")
        assert info.value.payload["grpcCode"] == 14  # 3.5 says "bad certificate", 3.4 "closed"
    with _client(mtls_server, ca_cert=certs.ca) as c, pytest.raises(etcd.EtcdConnectionFailed):
        c.read("/")  # no client certificate: refused in the handshake


@pytest.mark.parametrize("cert", ["pair", "combined"])
def test_a_valid_client_certificate_reads_writes_and_watches(
    mtls_server_for_the_gateway, certs, cert
):
    server = mtls_server_for_the_gateway
    given = (certs.client_cert, certs.client_key) if cert == "pair" else certs.client_combined
    with _client(server, ca_cert=certs.ca, cert=given) as c:
        written = c.write(f"/mtls-{cert}/key", "value")
        assert c.read(f"/mtls-{cert}/key").value == "value"
        pending = call_in_thread(c.watch, f"/mtls-{cert}/key", index=written.etcd_index + 1)
        c.write(f"/mtls-{cert}/key", "changed")
        thread, box = pending
        thread.join(30)
        assert box.get("result") is not None and box["result"].value == "changed", box
        assert c.machines == [server.members[0].client_url]
        c.delete(f"/mtls-{cert}", recursive=True)
        with pytest.raises(etcd.EtcdKeyNotFound):
            c.read(f"/mtls-{cert}/key")
    with _client(server, ca_cert=certs.ca) as c, pytest.raises(etcd.EtcdConnectionFailed):
        c.read("/")  # the same server still refuses a client without a certificate
