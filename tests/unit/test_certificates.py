"""inquest.domain.certificates: PEM / base64-of-PEM / DER parsing, CA checks, client pairs, expiry."""

from __future__ import annotations

import base64
import datetime

import pytest
from cryptography.hazmat.primitives import serialization

from inquest.domain import reasons
from inquest.domain.certificates import (
    CertificateProblem,
    certificate_info,
    check_ca_bundle,
    decode_pem,
    expiring_soon,
    info_of_der,
    load_ca_bundle,
    load_client_certificate,
    parse_bundle,
)
from tests.support.certs import bundle_pem, make_ca

NOW = datetime.datetime.now(datetime.UTC)


def problem(fn, *args, **kwargs) -> CertificateProblem:
    with pytest.raises(CertificateProblem) as caught:
        fn(*args, **kwargs)
    return caught.value


@pytest.mark.parametrize("form", ["pem-bytes", "pem-str", "b64", "b64-wrapped", "der", "der-b64", "crlf"])
def test_every_encoding_of_one_ca(pki, form):
    pem = pki.ca.cert_pem
    der = pki.ca.cert.public_bytes(serialization.Encoding.DER)
    data = {
        "pem-bytes": pem,
        "pem-str": "\n  " + pem.decode() + "\n",
        "b64": pki.ca.b64_pem,
        "b64-wrapped": "\n".join(pki.ca.b64_pem[i:i + 64] for i in range(0, len(pki.ca.b64_pem), 64)),
        "der": der,
        "der-b64": base64.b64encode(der).decode(),
        "crlf": pem.decode().replace("\n", "\r\n"),
    }[form]
    certs = parse_bundle(data, source="test")
    assert [c.subject for c in certs] == [pki.ca.cert.subject]


def test_bundle_of_several(pki):
    data = base64.b64encode(bundle_pem(pki.ca, pki.other_ca)).decode()
    pem, infos = load_ca_bundle(data, source="spec.tls.caBundle", now=NOW)
    assert [i.subject for i in infos] == ["CN=Inquest Test CA,O=Inquest Tests", "CN=Inquest Other CA,O=Inquest Tests"]
    assert pem.count("BEGIN CERTIFICATE") == 2


def test_info_fields(pki):
    info = certificate_info(pki.ca.cert)
    assert info.subject == info.issuer == "CN=Inquest Test CA,O=Inquest Tests"
    assert info.not_before < NOW < info.not_after
    assert len(info.sha256_fingerprint.split(":")) == 32 and info.sha256_fingerprint.isupper()
    wire = info.to_status()
    assert set(wire) == {"subject", "issuer", "notBefore", "notAfter", "sha256Fingerprint"}
    assert wire["notAfter"].endswith("Z") and "T" in wire["notBefore"]
    assert info_of_der(pki.ca.cert.public_bytes(serialization.Encoding.DER)) == info
    assert info_of_der(b"junk") is None


@pytest.mark.parametrize("data", ["", "   \n", "not a certificate at all", "bm90IGEgY2VydA==", b"\x00\x01\x02",
                                  "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_garbage_is_invalid_certificate(data):
    p = problem(parse_bundle, data, source="spec.tls.caBundle")
    assert p.reason == reasons.INVALID_CERTIFICATE
    assert p.message.startswith("spec.tls.caBundle")


def test_a_private_key_is_named_but_never_shown(pki):
    p = problem(parse_bundle, pki.ca.key_pem, source="Secret default/ca key ca.crt")
    assert p.reason == reasons.INVALID_CERTIFICATE and "private key" in p.message
    body = b"".join(pki.ca.key_pem.splitlines()[1:-1]).decode()
    assert body[:20] not in p.message


def test_server_certificate_is_not_a_ca(pki):
    p = problem(load_ca_bundle, bundle_pem(pki.ca, pki.server), source="caBundle", now=NOW)
    assert p.reason == reasons.NOT_A_CERTIFICATE_AUTHORITY
    assert "certificate 2 of 2 (CN=localhost" in p.message and "not the server certificate" in p.message
    assert problem(load_ca_bundle, pki.non_ca.cert_pem, source="x", now=NOW).reason == \
        reasons.NOT_A_CERTIFICATE_AUTHORITY


def test_expired_and_future_cas(pki):
    p = problem(check_ca_bundle, [pki.expired_ca.cert], source="caBundle", now=NOW)
    assert p.reason == reasons.CERTIFICATE_EXPIRED and "expired on" in p.message and "Expired CA" in p.message
    p = problem(check_ca_bundle, [pki.not_yet_valid_ca.cert], source="caBundle", now=NOW)
    assert p.reason == reasons.CERTIFICATE_NOT_YET_VALID and "not valid before" in p.message


def test_expiring_soon():
    soon = make_ca("Soon CA", not_after=NOW + datetime.timedelta(days=10))
    later = make_ca("Later CA", not_after=NOW + datetime.timedelta(days=20))
    infos = [certificate_info(soon.cert), certificate_info(later.cert)]
    assert [i.subject for i in expiring_soon(infos, now=NOW)] == ["CN=Soon CA,O=Inquest Tests"]
    assert infos[0].days_left(NOW) in (9, 10)


def test_decode_pem_keeps_pem(pki):
    assert decode_pem(pki.ca.cert_pem, source="x").startswith(b"-----BEGIN CERTIFICATE-----")


def test_client_certificate_pair(pki):
    client = load_client_certificate(pki.client.cert_pem, pki.client.key_pem, source="Secret default/c", now=NOW)
    assert client.info.subject.startswith("CN=inquest-client")
    assert b"PRIVATE KEY" in client.key_pem and "PRIVATE" not in repr(client)


def test_client_certificate_problems_never_echo_the_key(pki):
    p = problem(load_client_certificate, pki.client.cert_pem, pki.other_client.key_pem, source="Secret default/c",
                now=NOW)
    assert p.reason == reasons.INVALID_CLIENT_CERTIFICATE and "does not belong" in p.message
    p = problem(load_client_certificate, pki.client.cert_pem, b"-----BEGIN PRIVATE KEY-----\nzzzz\n", source="S",
                now=NOW)
    assert p.reason == reasons.INVALID_CLIENT_CERTIFICATE and "zzzz" not in p.message
    p = problem(load_client_certificate, b"nope", pki.client.key_pem, source="S", now=NOW)
    assert p.reason == reasons.INVALID_CLIENT_CERTIFICATE and "tls.crt" in p.message
    later = NOW + datetime.timedelta(days=365)
    p = problem(load_client_certificate, pki.client.cert_pem, pki.client.key_pem, source="S", now=later)
    assert p.reason == reasons.CLIENT_CERTIFICATE_EXPIRED
