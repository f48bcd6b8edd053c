"""CA bundles and client certificates: parse PEM or base64-of-PEM, check CA-ness, validity and expiry.

Pure functions over bytes (``cryptography``); no file or network access. Messages name the source
(``caBundle``, ``Secret default/ca key ca.crt``...) and the certificate's subject, never key material.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization

from inquest.domain import reasons

EXPIRY_WARNING = timedelta(days=14)
# What reading a lazily parsed certificate's corrupt field raises (CertificateProblem is a ValueError
# too: it is re-raised before these are caught).
_UNREADABLE = (ValueError, UnsupportedAlgorithm, x509.InvalidVersion)
_PEM_MARK = b"-----BEGIN"


class CertificateProblem(ValueError):
    """A certificate the user must replace: ``reason`` is a reasons.* constant."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    sha256_fingerprint: str

    def to_status(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "notBefore": _iso(self.not_before),
            "notAfter": _iso(self.not_after),
            "sha256Fingerprint": self.sha256_fingerprint,
        }

    def expires_within(self, window: timedelta, now: datetime) -> bool:
        return now <= self.not_after <= now + window

    def days_left(self, now: datetime) -> int:
        return max(0, int((self.not_after - now).total_seconds() // 86400))


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe_name(name: x509.Name) -> str:
    """RFC 4514 form (``CN=Inquest Test CA,O=Inquest Tests``), or a placeholder for an empty name."""
    text = name.rfc4514_string()
    return text or "(empty subject)"


def certificate_info(cert: x509.Certificate) -> CertificateInfo:
    return CertificateInfo(
        subject=describe_name(cert.subject),
        issuer=describe_name(cert.issuer),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256_fingerprint=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
    )


def decode_pem(data: str | bytes, *, source: str) -> bytes:
    """PEM text from PEM or from base64 of PEM (HolmesGPT's CERTIFICATE format); DER (raw or base64)
    is converted. Raises CertificateProblem(InvalidCertificate)."""
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
    stripped = raw.strip()
    if not stripped:
        raise CertificateProblem(reasons.INVALID_CERTIFICATE, f"{source} is empty: expected PEM certificates")
    if _PEM_MARK in stripped:
        return stripped
    der: bytes | None = None
    try:
        decoded = base64.b64decode(b"".join(stripped.split()), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
        der = stripped  # maybe raw DER bytes
    if _PEM_MARK in decoded:
        return decoded.strip()
    der = der or decoded
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        raise CertificateProblem(
            reasons.INVALID_CERTIFICATE,
            f"{source} is neither PEM ('-----BEGIN CERTIFICATE-----') nor base64 of PEM",
        ) from None
    return cert.public_bytes(serialization.Encoding.PEM)


def parse_bundle(data: str | bytes, *, source: str) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (PEM or base64 of PEM). Raises CertificateProblem."""
    pem = decode_pem(data, source=source)
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        what = "a private key" if b"PRIVATE KEY-----" in pem else "no certificate"
        raise CertificateProblem(
            reasons.INVALID_CERTIFICATE,
            f"{source} holds {what}: expected one or more '-----BEGIN CERTIFICATE-----' blocks",
        )
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise CertificateProblem(
            reasons.INVALID_CERTIFICATE, f"{source} cannot be parsed as PEM certificates ({exc})"
        ) from None
    if not certs:  # pragma: no cover - cryptography raises instead
        raise CertificateProblem(reasons.INVALID_CERTIFICATE, f"{source} holds no certificate")
    return certs


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        # X.509 v1 roots predate extensions; OpenSSL accepts them as trust anchors.
        return cert.version == x509.Version.v1
    return bool(constraints.ca)


def _which(index: int, total: int, cert: x509.Certificate) -> str:
    position = f"certificate {index + 1} of {total}" if total > 1 else "the certificate"
    return f"{position} ({describe_name(cert.subject)})"


def check_ca_bundle(
    certs: Sequence[x509.Certificate], *, source: str, now: datetime | None = None
) -> list[CertificateInfo]:
    """Every certificate must be a CA and valid now. Raises CertificateProblem naming the first bad one."""
    now = now or datetime.now(UTC)
    infos: list[CertificateInfo] = []
    for i, cert in enumerate(certs):
        which = _which(i, len(certs), cert)
        if not _is_ca(cert):
            raise CertificateProblem(
                reasons.NOT_A_CERTIFICATE_AUTHORITY,
                f"{source}: {which} is not a certificate authority (basicConstraints CA is not true); "
                "configure the CA that issued the server's certificate, not the server certificate itself",
            )
        if cert.not_valid_after_utc < now:
            raise CertificateProblem(
                reasons.CERTIFICATE_EXPIRED,
                f"{source}: {which} expired on {_iso(cert.not_valid_after_utc)}; replace it with the current CA",
            )
        if cert.not_valid_before_utc > now:
            raise CertificateProblem(
                reasons.CERTIFICATE_NOT_YET_VALID,
                f"{source}: {which} is not valid before {_iso(cert.not_valid_before_utc)}; "
                "check the clocks of the issuing system and of this node",
            )
        infos.append(certificate_info(cert))
    return infos


def load_ca_bundle(data: str | bytes, *, source: str, now: datetime | None = None) -> tuple[str, list[CertificateInfo]]:
    """(PEM text for ``SSLContext.load_verify_locations(cadata=...)``, info per certificate)."""
    certs = parse_bundle(data, source=source)
    try:  # certificates are parsed lazily: a corrupt field raises only when it is read
        infos = check_ca_bundle(certs, source=source, now=now)
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs).decode("ascii")
    except CertificateProblem:
        raise
    except _UNREADABLE:
        raise CertificateProblem(reasons.INVALID_CERTIFICATE,
                                 f"{source} holds a certificate with unreadable fields") from None
    return pem, infos


@dataclass(frozen=True)
class ClientCertificate:
    """A client certificate chain and its key, checked to belong together. ``repr`` hides the key."""

    chain_pem: bytes
    key_pem: bytes
    info: CertificateInfo

    def __repr__(self) -> str:
        return f"ClientCertificate(subject={self.info.subject!r})"


def load_client_certificate(
    cert_pem: bytes, key_pem: bytes, *, source: str, now: datetime | None = None
) -> ClientCertificate:
    """Parse ``tls.crt`` (leaf first, optional intermediates) and ``tls.key``; check they match and the
    leaf is valid now. Raises CertificateProblem (InvalidClientCertificate / ClientCertificateExpired)."""
    now = now or datetime.now(UTC)
    try:
        certs = x509.load_pem_x509_certificates(decode_pem(cert_pem, source=f"{source} key tls.crt"))
    except (ValueError, CertificateProblem):
        raise CertificateProblem(
            reasons.INVALID_CLIENT_CERTIFICATE, f"{source} key tls.crt is not a PEM certificate"
        ) from None
    try:
        key = serialization.load_pem_private_key(key_pem.strip(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # Never include the parser's text: it is about secret material.
        raise CertificateProblem(
            reasons.INVALID_CLIENT_CERTIFICATE,
            f"{source} key tls.key is not an unencrypted PEM private key",
        ) from None
    try:  # certificates are parsed lazily: a corrupt field raises only when it is read
        return _check_client_certificate(certs, key, source=source, now=now)
    except CertificateProblem:
        raise
    except _UNREADABLE:
        raise CertificateProblem(reasons.INVALID_CLIENT_CERTIFICATE,
                                 f"{source} key tls.crt holds a certificate with unreadable fields") from None


def _check_client_certificate(certs: Sequence[x509.Certificate], key: Any, *, source: str,
                              now: datetime) -> ClientCertificate:
    leaf = certs[0]
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise CertificateProblem(
            reasons.INVALID_CLIENT_CERTIFICATE,
            f"{source}: tls.key does not belong to the certificate in tls.crt ({describe_name(leaf.subject)})",
        )
    if leaf.not_valid_after_utc < now:
        raise CertificateProblem(
            reasons.CLIENT_CERTIFICATE_EXPIRED,
            f"{source}: the client certificate ({describe_name(leaf.subject)}) expired on "
            f"{_iso(leaf.not_valid_after_utc)}; renew it",
        )
    if leaf.not_valid_before_utc > now:
        raise CertificateProblem(
            reasons.INVALID_CLIENT_CERTIFICATE,
            f"{source}: the client certificate ({describe_name(leaf.subject)}) is not valid before "
            f"{_iso(leaf.not_valid_before_utc)}",
        )
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    key_out = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return ClientCertificate(chain_pem=chain, key_pem=key_out, info=certificate_info(leaf))


def expiring_soon(
    infos: Iterable[CertificateInfo], *, now: datetime | None = None, window: timedelta = EXPIRY_WARNING
) -> list[CertificateInfo]:
    now = now or datetime.now(UTC)
    return [i for i in infos if i.expires_within(window, now)]


def subject_of_der(der: bytes) -> str | None:
    """The subject of a DER certificate (what ``SSLSocket.getpeercert(binary_form=True)`` returns)."""
    try:
        return describe_name(x509.load_der_x509_certificate(der).subject)
    except ValueError:
        return None


def info_of_der(der: bytes) -> CertificateInfo | None:
    try:
        return certificate_info(x509.load_der_x509_certificate(der))
    except ValueError:
        return None
