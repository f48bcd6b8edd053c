"""Test-time X.509 material generated with ``cryptography``.

Everything uses EC P-256 keys so that a whole PKI is generated in a few milliseconds.
Certificates are built to satisfy ``ssl.VERIFY_X509_STRICT`` (critical basicConstraints /
keyUsage on CAs, subject and authority key identifiers, SAN on servers).

Typical use::

    pki = TestPKI.create()            # or the session-scoped ``pki`` fixture
    pki.ca.b64_pem                    # HolmesGPT-style CERTIFICATE value (base64 of the PEM)
    server_ctx = server_ssl_context(pki.server, client_ca=pki.ca)
    client_ctx = client_ssl_context(pki.ca, client=pki.client)
"""

from __future__ import annotations

import base64
import datetime
import functools
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CertKey",
    "TestPKI",
    "bundle_pem",
    "client_ssl_context",
    "get_pki",
    "make_ca",
    "make_leaf",
    "make_self_signed_non_ca",
    "server_ssl_context",
]

_DEFAULT_LIFETIME = datetime.timedelta(days=30)
_BACKDATE = datetime.timedelta(hours=1)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Inquest Tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity(
    not_before: datetime.datetime | None, not_after: datetime.datetime | None
) -> tuple[datetime.datetime, datetime.datetime]:
    start = not_before if not_before is not None else _now() - _BACKDATE
    end = not_after if not_after is not None else max(start, _now()) + _DEFAULT_LIFETIME
    return start, end


@dataclass(frozen=True)
class CertKey:
    """A certificate together with its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    name: str = field(default="cert", compare=False)

    @functools.cached_property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @functools.cached_property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def b64_pem(self) -> str:
        """Base64 of the PEM text: the format of HolmesGPT's ``CERTIFICATE`` setting."""
        return base64.b64encode(self.cert_pem).decode("ascii")

    @property
    def common_name(self) -> str:
        attrs = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else ""

    def write(self, directory: str | os.PathLike[str], stem: str | None = None) -> tuple[Path, Path]:
        """Write ``<stem>.crt`` and ``<stem>.key`` (mode 0600) into ``directory``; return both paths."""
        base = Path(directory)
        base.mkdir(parents=True, exist_ok=True)
        stem = stem or self.name
        cert_path = base / f"{stem}.crt"
        key_path = base / f"{stem}.key"
        cert_path.write_bytes(self.cert_pem)
        key_path.write_bytes(self.key_pem)
        key_path.chmod(0o600)
        return cert_path, key_path


def bundle_pem(*items: CertKey | x509.Certificate) -> bytes:
    """Concatenate the PEM of several certificates (a CA bundle)."""
    out = b""
    for item in items:
        cert = item.cert if isinstance(item, CertKey) else item
        out += cert.public_bytes(serialization.Encoding.PEM)
    return out


def make_ca(
    common_name: str = "Inquest Test CA",
    *,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> CertKey:
    """A self-signed CA certificate (basicConstraints CA=True, keyCertSign + cRLSign)."""
    key = _new_key()
    start, end = _validity(not_before, not_after)
    name = _name(common_name)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertKey(cert, key, name=_stem(common_name))


def _stem(common_name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in common_name.lower()).strip("-") or "cert"


def _san(dns_names: Iterable[str], ip_addresses: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    return names


def _leaf_builder(
    common_name: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    not_before: datetime.datetime | None,
    not_after: datetime.datetime | None,
    client: bool,
) -> x509.CertificateBuilder:
    start, end = _validity(not_before, not_after)
    eku = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    san = _san(dns_names, ip_addresses)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder


def make_leaf(
    ca: CertKey,
    common_name: str = "localhost",
    *,
    dns_names: Sequence[str] = ("localhost",),
    ip_addresses: Sequence[str] = ("127.0.0.1",),
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    client: bool = False,
) -> CertKey:
    """A leaf certificate signed by ``ca``: server auth EKU (client auth when ``client=True``) + SAN."""
    key = _new_key()
    builder = _leaf_builder(
        common_name,
        key,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        not_before=not_before,
        not_after=not_after,
        client=client,
    )
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        builder.issuer_name(ca.cert.subject)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return CertKey(cert, key, name=_stem(common_name))


def make_self_signed_non_ca(
    common_name: str = "localhost",
    *,
    dns_names: Sequence[str] = ("localhost",),
    ip_addresses: Sequence[str] = ("127.0.0.1",),
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    client: bool = False,
) -> CertKey:
    """A self-signed leaf (basicConstraints CA=False): not usable as a trust anchor for other certs."""
    key = _new_key()
    builder = _leaf_builder(
        common_name,
        key,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        not_before=not_before,
        not_after=not_after,
        client=client,
    )
    cert = builder.issuer_name(_name(common_name)).sign(key, hashes.SHA256())
    return CertKey(cert, key, name=_stem(common_name) + "-self-signed")


@dataclass(frozen=True)
class TestPKI:
    """A ready-made set of certificates for TLS tests (see :func:`get_pki` / the ``pki`` fixture)."""

    __test__ = False  # not a pytest test class

    ca: CertKey
    other_ca: CertKey  # unrelated CA: trusting it must NOT validate ``server``
    server: CertKey  # signed by ca, valid for localhost / 127.0.0.1
    expired_server: CertKey  # signed by ca, not_after in the past
    wrong_host_server: CertKey  # signed by ca, SAN only DNS:wrong.example
    client: CertKey  # client-auth cert signed by ca
    expired_ca: CertKey  # CA whose not_after is in the past
    not_yet_valid_ca: CertKey  # CA whose not_before is in the future
    non_ca: CertKey  # self-signed leaf, basicConstraints CA=False
    other_server: CertKey  # signed by other_ca, valid for localhost / 127.0.0.1
    other_client: CertKey  # client-auth cert signed by other_ca

    @classmethod
    def create(cls) -> TestPKI:
        now = _now()
        day = datetime.timedelta(days=1)
        ca = make_ca("Inquest Test CA")
        other_ca = make_ca("Inquest Other CA")
        return cls(
            ca=ca,
            other_ca=other_ca,
            server=make_leaf(ca, "localhost"),
            expired_server=make_leaf(ca, "localhost", not_before=now - 10 * day, not_after=now - day),
            wrong_host_server=make_leaf(ca, "wrong.example", dns_names=("wrong.example",), ip_addresses=()),
            client=make_leaf(ca, "inquest-client", dns_names=(), ip_addresses=(), client=True),
            expired_ca=make_ca("Inquest Expired CA", not_before=now - 10 * day, not_after=now - day),
            not_yet_valid_ca=make_ca("Inquest Future CA", not_before=now + day, not_after=now + 10 * day),
            non_ca=make_self_signed_non_ca("localhost"),
            other_server=make_leaf(other_ca, "localhost"),
            other_client=make_leaf(
                other_ca, "inquest-other-client", dns_names=(), ip_addresses=(), client=True
            ),
        )


@functools.cache
def get_pki() -> TestPKI:
    """The process-wide TestPKI (generated on first use)."""
    return TestPKI.create()


def _load_chain(ctx: ssl.SSLContext, cert: CertKey) -> None:
    # The ssl module only loads cert chains from files: use a private temp dir, removed right away.
    with tempfile.TemporaryDirectory(prefix="inquest-tls-") as tmp:
        cert_path, key_path = cert.write(tmp, "chain")
        ctx.load_cert_chain(str(cert_path), str(key_path))


def server_ssl_context(cert: CertKey, *, client_ca: CertKey | None = None) -> ssl.SSLContext:
    """A server-side context presenting ``cert``; with ``client_ca`` it requires a client cert from it."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _load_chain(ctx, cert)
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=client_ca.cert_pem.decode("ascii"))
    return ctx


def client_ssl_context(ca: CertKey | None = None, *, client: CertKey | None = None) -> ssl.SSLContext:
    """A client-side context trusting ``ca`` (system CAs when None), presenting ``client`` if given."""
    if ca is None:
        ctx = ssl.create_default_context()
    else:
        ctx = ssl.create_default_context(cadata=ca.cert_pem.decode("ascii"))
    if client is not None:
        _load_chain(ctx, client)
    return ctx
