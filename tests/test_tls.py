"""TLS against real etcd servers: verification on by default, client certificates, clear errors.

The certificates are made at run time by :mod:`tests.certs`. Three https
servers are started for the module: one with a certificate for ``127.0.0.1``
and ``localhost``, one whose certificate does not name ``localhost``, and one
that demands client certificates (``--client-cert-auth``). The shared
``etcd_server`` serves plain http.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
import urllib3.exceptions

import etcd
from etcd.testing import EtcdCluster

from .certs import CertificateSet, make_certificates
from .fakes import Fault, FaultProxy, refusing_port

#: Long enough that a failure which waited for it says "timed out".
READ_TIMEOUT = 30


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    return make_certificates(Path(tmp_path_factory.mktemp("certs")))


def _https_server(certs: CertificateSet, cert: str, key: str, *args: str) -> EtcdCluster:
    return EtcdCluster(
        1,
        client_scheme="https",
        extra_args=[f"--cert-file={cert}", f"--key-file={key}", *args],
        ca_cert=certs.ca,
        cert=certs.client_cert if args else None,
        key=certs.client_key if args else None,
    )


@pytest.fixture(scope="module")
def tls_server(certs: CertificateSet) -> Iterator[EtcdCluster]:
    with _https_server(certs, certs.server_cert, certs.server_key) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def odd_name_server(certs: CertificateSet) -> Iterator[EtcdCluster]:
    with _https_server(certs, certs.wrong_host_cert, certs.wrong_host_key) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def mtls_server(certs: CertificateSet) -> Iterator[EtcdCluster]:
    server = _https_server(
        certs,
        certs.server_cert,
        certs.server_key,
        "--client-cert-auth",
        f"--trusted-ca-file={certs.ca}",
    )
    with server as cluster:
        yield cluster


def _https_client(server: EtcdCluster, host: str = "127.0.0.1", **kwargs: Any) -> etcd.Client:
    kwargs.setdefault("protocol", "https")
    kwargs.setdefault("read_timeout", READ_TIMEOUT)
    return etcd.Client(host=host, port=server.members[0].port, **kwargs)


def _is_timeout(exc: BaseException) -> bool:
    # urllib3's NewConnectionError subclasses ConnectTimeoutError, and is no timeout.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return False
    return isinstance(exc, (TimeoutError, urllib3.exceptions.TimeoutError))


def _fails_quickly(client: etcd.Client) -> etcd.EtcdConnectionFailed:
    """The error of a read that must fail at once, not after the read timeout."""
    with client, pytest.raises(etcd.EtcdConnectionFailed) as info:
        client.read("/")
    error = info.value
    # Not a timeout: the failure did not wait for the 30 s read timeout.
    assert type(error) is etcd.EtcdConnectionFailed
    assert "timed out" not in str(error)
    causes: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and len(causes) < 20:
        causes.append(cause)
        cause = getattr(cause, "cause", None) or cause.__cause__ or cause.__context__
    assert not any(_is_timeout(c) for c in causes), causes
    return error


# --------------------------------------------------------------------------
# Verification on, and working


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_https_with_the_right_ca_works(tls_server, certs, host):
    with _https_client(tls_server, host, ca_cert=certs.ca) as client:
        client.write("/tls/greeting", "hello")
        assert client.read("/tls/greeting").value == "hello"
        client.delete("/tls", recursive=True)


def test_a_clone_keeps_the_tls_settings(tls_server, certs):
    with _https_client(tls_server, ca_cert=certs.ca) as client, client.clone() as twin:
        assert twin.read("/").dir


@pytest.mark.parametrize("pair", [True, False], ids=["cert-and-key", "one-pem-file"])
def test_client_certificate_is_accepted_by_client_cert_auth(mtls_server, certs, pair):
    cert: str | tuple[str, str] = (
        (certs.client_cert, certs.client_key) if pair else certs.client_combined
    )
    with _https_client(mtls_server, ca_cert=certs.ca, cert=cert) as client:
        client.write("/mtls/key", "value")
        assert client.read("/mtls/key").value == "value"
        client.delete("/mtls", recursive=True)


# --------------------------------------------------------------------------
# Verification failures say that they are certificate problems


def test_a_server_signed_by_another_ca_is_refused(tls_server, certs):
    error = _fails_quickly(_https_client(tls_server, ca_cert=certs.other_ca))
    message = str(error)
    assert message.startswith("Connection to etcd failed due to ")
    assert "TLS certificate problem" in message
    assert "ca_cert=" in message
    assert isinstance(error.cause, urllib3.exceptions.HTTPError)


def test_without_ca_cert_the_system_store_is_used_and_a_private_ca_is_refused(tls_server):
    # Default settings: no ca_cert, no verify argument. The test CA is in no trust store.
    error = _fails_quickly(_https_client(tls_server))
    assert "TLS certificate problem" in str(error)
    assert "could not be verified" in str(error)
    assert "ca_cert=" in str(error)


def test_a_certificate_for_another_host_name_is_refused(odd_name_server, certs):
    # The CA is right: the address the certificate names is accepted ...
    with _https_client(odd_name_server, "127.0.0.1", ca_cert=certs.ca) as client:
        assert client.read("/").dir
    # ... but "localhost" is not among its names (OTHER_HOST_NAME and 127.0.0.1).
    error = _fails_quickly(_https_client(odd_name_server, "localhost", ca_cert=certs.ca))
    assert "TLS certificate problem" in str(error)
    assert "not valid for the host name" in str(error)


def test_failover_error_names_the_certificate_problem(tls_server, certs):
    port = tls_server.members[0].port
    client = etcd.Client(
        host=(("127.0.0.1", port), ("localhost", port)),
        protocol="https",
        ca_cert=certs.other_ca,
        allow_reconnect=True,
        use_proxies=True,
        read_timeout=READ_TIMEOUT,
    )
    error = _fails_quickly(client)
    assert "TLS certificate problem" in str(error)


# --------------------------------------------------------------------------
# The explicit opt-out


def test_verify_false_works_warns_once_per_client_and_changes_nothing_process_wide(
    tls_server, caplog
):
    filters_before = list(warnings.filters)
    caplog.set_level(logging.WARNING, logger="etcd")
    with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
        with _https_client(tls_server, verify=False) as client:
            client.write("/insecure/key", "1")
            assert client.read("/insecure/key").value == "1"
            client.delete("/insecure", recursive=True)
        with _https_client(tls_server, verify=False) as other:
            assert other.read("/").dir
    warned = [r for r in caplog.records if "verify=False" in r.getMessage()]
    assert len(warned) == 2  # one per client, not one per request
    assert all(r.levelno == logging.WARNING for r in warned)
    # No process-wide changes: warning filters untouched, urllib3 not patched.
    assert warnings.filters == filters_before
    assert "urllib3.contrib.pyopenssl" not in sys.modules
    assert not getattr(urllib3.util.ssl_, "IS_PYOPENSSL", False)


def test_verification_stays_on_when_nobody_opts_out(tls_server, certs, caplog):
    caplog.set_level(logging.WARNING, logger="etcd")
    with _https_client(tls_server, ca_cert=certs.ca) as client:
        pool_kw = client.http.connection_pool_kw
        assert pool_kw["cert_reqs"] == "CERT_REQUIRED"
        assert pool_kw.get("assert_hostname") is not False
        client.read("/")
    assert not [r for r in caplog.records if "verify=False" in r.getMessage()]


# --------------------------------------------------------------------------
# Client certificates required


def test_client_cert_auth_without_a_client_certificate_fails_clearly(mtls_server, certs):
    error = _fails_quickly(_https_client(mtls_server, ca_cert=certs.ca))
    assert "client certificate" in str(error)
    assert "cert=" in str(error)


def test_client_cert_auth_refuses_a_certificate_from_another_ca(mtls_server, certs):
    client = _https_client(
        mtls_server, ca_cert=certs.ca, cert=(certs.stranger_cert, certs.stranger_key)
    )
    error = _fails_quickly(client)
    # etcd 3.5 sends "bad certificate"; 3.4 may just hang up in the handshake.
    assert "client certificate" in str(error)
    assert "cert=" in str(error)


# --------------------------------------------------------------------------
# The wrong scheme for the port


def test_plain_http_to_an_https_port_fails_clearly_and_quickly(tls_server):
    client = etcd.Client(
        host="127.0.0.1", port=tls_server.members[0].port, read_timeout=READ_TIMEOUT
    )
    error = _fails_quickly(client)
    assert "protocol='https'" in str(error)


def test_https_to_a_plain_http_port_fails_clearly_and_quickly(etcd_server, certs):
    error = _fails_quickly(_https_client(etcd_server, ca_cert=certs.ca))
    # etcd 3.5 answers the handshake with garbage, 3.4 resets the connection.
    assert "protocol='http'" in str(error)


def test_other_connection_errors_keep_the_045_start_and_no_tls_advice():
    with refusing_port() as port:
        client = etcd.Client(host="127.0.0.1", port=port)
        error = _fails_quickly(client)
    assert str(error) == (
        f"Connection to etcd failed due to http://127.0.0.1:{port}: connection refused."
    )
    assert "TLS" not in str(error)


# --------------------------------------------------------------------------
# A TLS handshake that drips counts against the exchange's deadline

DRIP_TIMEOUT = 1.0

DRIPPED_CALLS = {
    "read": lambda client: client.read("/"),
    "watch": lambda client: client.watch("/dripped", timeout=DRIP_TIMEOUT),
}


@pytest.fixture
def dripping_proxy(tls_server: EtcdCluster) -> Iterator[FaultProxy]:
    """A proxy in front of the TLS etcd that relays the server's bytes one per 50 ms."""
    with FaultProxy("127.0.0.1", tls_server.members[0].port) as proxy:
        proxy.inject(Fault("drip", delay=0.05), times=None)
        yield proxy


@pytest.mark.parametrize("call", DRIPPED_CALLS.values(), ids=DRIPPED_CALLS.keys())
@pytest.mark.parametrize("lean", [True, False], ids=["lean", "urllib3"])
def test_a_dripping_tls_handshake_is_a_connect_failure_within_the_deadline(
    dripping_proxy, certs, call, lean
):
    client = etcd.Client(
        host="127.0.0.1",
        port=dripping_proxy.port,
        protocol="https",
        ca_cert=certs.ca,
        read_timeout=DRIP_TIMEOUT,
    )
    with client:
        if not lean:
            client.http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=certs.ca)
        started = time.monotonic()
        with pytest.raises(etcd.EtcdConnectionFailed) as info:
            call(client)
        elapsed = time.monotonic() - started
    assert dripping_proxy.faults_applied >= 1
    assert elapsed < DRIP_TIMEOUT + 1, f"the call took {elapsed:.2f} s: {info.value}"
    # nothing was sent: no watch that saw no change, but a member that could not be reached
    assert not isinstance(info.value, etcd.EtcdWatchTimedOut), info.value
    if lean:
        assert "while connecting" in str(info.value)


def test_a_slow_connect_and_a_dripping_tls_handshake_share_one_deadline(tls_server, certs):
    # The proxy's accept queue stays full for 1.5 s: the client's SYN is dropped and
    # sent again, so the TCP connect takes a good part of the timeout; the TLS
    # handshake then gets only what is left, not a fresh timeout of its own.
    timeout = 3.0
    with FaultProxy("127.0.0.1", tls_server.members[0].port, accept_after=1.5) as proxy:
        proxy.inject(Fault("drip", delay=0.05), times=None)
        client = etcd.Client(
            host="127.0.0.1",
            port=proxy.port,
            protocol="https",
            ca_cert=certs.ca,
            read_timeout=timeout,
        )
        started = time.monotonic()
        with client, pytest.raises(etcd.EtcdConnectionFailed) as info:
            client.read("/")
        elapsed = time.monotonic() - started
    assert elapsed < timeout + 1, f"the call took {elapsed:.2f} s: {info.value}"
    assert "while connecting" in str(info.value)
