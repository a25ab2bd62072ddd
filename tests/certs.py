"""Throwaway certificates for the TLS tests, made at run time with ``cryptography``.

:func:`make_certificates` writes, into a directory of the caller's choosing:

* a CA, and a second CA that has nothing to do with it;
* a server certificate for ``127.0.0.1`` and ``localhost`` signed by the CA;
* the same, also good for client authentication: etcd's v3 gateway presents
  the server certificate to its own gRPC port, so a server with
  ``--client-cert-auth`` needs one of these;
* a server certificate for another host name and ``127.0.0.1``, but not
  ``localhost``, signed by the same CA: the harness can probe the server by
  address while a client that asks for ``localhost`` must refuse it;
* a client certificate signed by the CA, as a ``(cert, key)`` pair and as one
  PEM file holding both;
* a client certificate signed by the unrelated CA.

Keys are ECDSA P-256 (quick to make, accepted by etcd 3.4 and 3.5 and by
OpenSSL) and every signature is SHA-256.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["OTHER_HOST_NAME", "CertificateSet", "make_certificates"]

#: The host name in the SAN of the "wrong host" server certificate.
OTHER_HOST_NAME = "etcd.other-host.invalid"

_Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class CertificateSet:
    """Paths of the PEM files written by :func:`make_certificates`."""

    directory: Path
    ca: str
    other_ca: str
    server_cert: str
    server_key: str
    server_and_client_cert: str
    server_and_client_key: str
    wrong_host_cert: str
    wrong_host_key: str
    client_cert: str
    client_key: str
    client_combined: str
    stranger_cert: str
    stranger_key: str


def _new_key() -> _Key:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "python-etcd tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(
        now + datetime.timedelta(days=7)
    )


def _make_ca(common_name: str) -> tuple[x509.Certificate, _Key]:
    key = _new_key()
    name = _name(common_name)
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, hashes.SHA256()), key


def _issue(
    ca: x509.Certificate,
    ca_key: _Key,
    common_name: str,
    *,
    usage: tuple[x509.ObjectIdentifier, ...],
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
) -> tuple[x509.Certificate, _Key]:
    key = _new_key()
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(list(usage)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: _Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_certificates(directory: Path) -> CertificateSet:
    """Write a fresh set of certificates and keys into *directory*.

    :param directory: an existing, preferably private, directory.
    :returns: the paths of the files written.
    """

    def write(filename: str, data: bytes) -> str:
        path = directory / filename
        path.write_bytes(data)
        path.chmod(0o600)
        return str(path)

    ca, ca_key = _make_ca("python-etcd test CA")
    other_ca, other_ca_key = _make_ca("unrelated test CA")
    server, server_key = _issue(
        ca,
        ca_key,
        "127.0.0.1",
        usage=(ExtendedKeyUsageOID.SERVER_AUTH,),
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1",),
    )
    both, both_key = _issue(
        ca,
        ca_key,
        "127.0.0.1",
        usage=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1",),
    )
    wrong_host, wrong_host_key = _issue(
        ca,
        ca_key,
        OTHER_HOST_NAME,
        usage=(ExtendedKeyUsageOID.SERVER_AUTH,),
        dns_names=(OTHER_HOST_NAME,),
        ip_addresses=("127.0.0.1",),
    )
    client, client_key = _issue(ca, ca_key, "app", usage=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    stranger, stranger_key = _issue(
        other_ca, other_ca_key, "stranger", usage=(ExtendedKeyUsageOID.CLIENT_AUTH,)
    )
    return CertificateSet(
        directory=directory,
        ca=write("ca.pem", _cert_pem(ca)),
        other_ca=write("other-ca.pem", _cert_pem(other_ca)),
        server_cert=write("server.pem", _cert_pem(server)),
        server_key=write("server-key.pem", _key_pem(server_key)),
        server_and_client_cert=write("server-and-client.pem", _cert_pem(both)),
        server_and_client_key=write("server-and-client-key.pem", _key_pem(both_key)),
        wrong_host_cert=write("wrong-host.pem", _cert_pem(wrong_host)),
        wrong_host_key=write("wrong-host-key.pem", _key_pem(wrong_host_key)),
        client_cert=write("client.pem", _cert_pem(client)),
        client_key=write("client-key.pem", _key_pem(client_key)),
        client_combined=write("client-combined.pem", _cert_pem(client) + _key_pem(client_key)),
        stranger_cert=write("stranger.pem", _cert_pem(stranger)),
        stranger_key=write("stranger-key.pem", _key_pem(stranger_key)),
    )
