"""inquest.clients.connection (with a stub Kubernetes client) and the llm.py factory: no network."""

from __future__ import annotations

import os
import ssl
import tempfile
import threading
import time
from typing import Any

import httpx2
import pytest

from inquest.api.modelprovider import ModelProviderSpec
from inquest.clients import connection, llm
from inquest.clients.connection import ConnectionProblem, build_ssl_context, resolve, resolve_connection
from inquest.clients.kube import KubeError
from inquest.clients.llm import (
    NO_KEY_PLACEHOLDER,
    ProviderConnection,
    SSLContextCache,
    build_openai_client,
    default_ssl_context,
    redact,
    url_rewriter,
)
from inquest.domain import certificates, endpoints, reasons

KEY = "sk-unit-9f8e7d6c5b4a39281706"


class StubKube:
    """read_secret / read_configmap from dicts; ``forbidden`` names raise a 403 KubeError."""

    def __init__(self, secrets: dict[str, dict[str, bytes]] | None = None,
                 configmaps: dict[str, dict[str, str]] | None = None, forbidden: set[str] | None = None) -> None:
        self.secrets = secrets or {}
        self.configmaps = configmaps or {}
        self.forbidden = forbidden or set()
        self.reads: list[tuple[str, str, str]] = []

    async def read_secret(self, namespace: str, name: str) -> tuple[str, dict[str, bytes]] | None:
        self.reads.append(("Secret", namespace, name))
        if name in self.forbidden:
            raise KubeError(403, "Forbidden", f'secrets "{name}" is forbidden')
        data = self.secrets.get(name)
        return None if data is None else ("Opaque", dict(data))

    async def read_configmap(self, namespace: str, name: str) -> dict[str, str] | None:
        self.reads.append(("ConfigMap", namespace, name))
        return self.configmaps.get(name)


def spec(**fields: Any) -> ModelProviderSpec:
    fields.setdefault("baseURL", "https://llm.example.com/v1")
    fields.setdefault("model", "openai/qwen")
    return ModelProviderSpec.model_validate(fields)


# --------------------------------------------------------------------------- resolve_connection


async def test_connection_fields():
    kube = StubKube({"key": {"api-key": (KEY + "\n").encode()}, "hdr": {"t": b"  tenant-a "}})
    conn = await resolve_connection(kube, "team", "p", spec(  # type: ignore[arg-type]
        apiKeySecretRef={"name": "key", "key": "api-key"}, requestTimeoutSeconds=12, maxRetries=0,
        headers=[{"name": "X-Tenant", "valueFrom": {"secretKeyRef": {"name": "hdr", "key": "t"}}},
                 {"name": "X-Plain", "value": "v"}],
        parameters={"contextWindow": 32768}, pricing={"inputPerMillionTokens": 1.5}))
    assert conn.api_key == KEY  # trailing newline removed
    assert conn.headers == {"X-Tenant": "tenant-a", "X-Plain": "v"} and conn.secret_header_names == {"X-Tenant"}
    assert conn.model == "qwen" and conn.timeout_seconds == 12 and conn.max_retries == 0
    assert conn.context_window == 32768 and conn.pricing.input_per_million_tokens == 1.5
    assert conn.endpoints.chat_url == "https://llm.example.com/v1/chat/completions"
    assert conn.ssl_context is not None and conn.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert conn.tls and conn.ca_source is None and not conn.insecure
    assert KEY not in repr(conn) and "tenant-a" not in repr(conn)
    assert set(conn.secret_values()) == {KEY, "tenant-a"}
    assert kube.reads.count(("Secret", "team", "key")) == 1


async def test_plain_http_has_no_ssl_context():
    conn = await resolve_connection(StubKube(), "ns", "p", spec(baseURL="http://h:8080/v1"))  # type: ignore[arg-type]
    assert conn.ssl_context is None and not conn.tls and conn.api_key is None


async def test_every_problem_is_collected_and_named():
    kube = StubKube({"key": {"other": KEY.encode(), "blank": b" \n", "bad": b"sk-\nx"}},
                    {"cm": {"wrong": "x"}}, forbidden={"locked"})
    s = spec(apiKeySecretRef={"name": "key", "key": "api-key"},
             headers=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "key", "key": "blank"}}},
                      {"name": "B", "valueFrom": {"secretKeyRef": {"name": "key", "key": "bad"}}},
                      {"name": "C", "valueFrom": {"secretKeyRef": {"name": "locked", "key": "x"}}},
                      {"name": "D", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "x"}}},
                      {"name": "E", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "y"}}}],
             tls={"caConfigMapRef": {"name": "cm", "key": "ca.crt"}})
    result = await resolve(kube, "ns", "p", s)  # type: ignore[arg-type]
    got = [p.reason for p in result.problems]
    assert sorted(got) == sorted([reasons.SECRET_KEY_NOT_FOUND, reasons.SECRET_VALUE_EMPTY,
                                  reasons.SECRET_VALUE_INVALID, reasons.SECRET_READ_FAILED,
                                  reasons.SECRET_NOT_FOUND, reasons.CONFIGMAP_KEY_NOT_FOUND])
    assert {p.condition for p in result.problems} == {reasons.SECRETS_RESOLVED}
    assert result.connection is None and result.references == 4  # distinct objects
    messages = " | ".join(p.message for p in result.problems)
    assert "Secret ns/key has no key 'api-key' (spec.apiKeySecretRef); its keys: bad, blank, other" in messages
    assert "Secret ns/missing not found" in messages and messages.count("Secret ns/missing not found") == 1
    assert "403 Forbidden" in messages and "ConfigMap ns/cm has no key 'ca.crt'" in messages
    assert KEY not in messages and "sk-\nx" not in messages


async def test_first_problem_is_raised_with_condition_and_reason():
    with pytest.raises(ConnectionProblem) as caught:
        await resolve_connection(StubKube(), "ns", "p", spec(apiKeySecretRef={"name": "k", "key": "v"}))  # type: ignore[arg-type]
    problem = caught.value
    assert (problem.condition, problem.reason) == (reasons.SECRETS_RESOLVED, reasons.SECRET_NOT_FOUND)
    assert not problem.needs_edit and "Secret ns/k not found (key 'v', spec.apiKeySecretRef)" in str(problem)


async def test_missing_configmap_and_unreadable_secret_name_object_and_key():
    s = spec(tls={"caConfigMapRef": {"name": "ca", "key": "bundle.pem"}},
             apiKeySecretRef={"name": "locked", "key": "token"})
    result = await resolve(StubKube(forbidden={"locked"}), "ns", "p", s)  # type: ignore[arg-type]
    messages = {p.reason: p.message for p in result.problems}
    assert messages[reasons.CONFIGMAP_NOT_FOUND].startswith(
        "ConfigMap ns/ca not found (key 'bundle.pem', spec.tls.caConfigMapRef)")
    assert messages[reasons.SECRET_READ_FAILED].startswith(
        "cannot read Secret ns/locked (key 'token', spec.apiKeySecretRef): 403 Forbidden")


async def test_ca_and_client_certificate_from_secrets(pki):
    kube = StubKube({"ca": {"ca.crt": pki.ca.b64_pem.encode()},
                     "client": {"tls.crt": pki.client.cert_pem, "tls.key": pki.client.key_pem}})
    conn = await resolve_connection(kube, "ns", "p", spec(tls={  # type: ignore[arg-type]
        "caSecretRef": {"name": "ca", "key": "ca.crt"}, "clientCertificateSecretRef": {"name": "client"},
        "useSystemTrustStore": False}))
    assert conn.ca_source == "Secret ns/ca key ca.crt"
    assert conn.ca_certificates[0].subject.startswith("CN=Inquest Test CA")
    assert conn.client_certificate is not None and conn.client_certificate.subject.startswith("CN=inquest-client")
    assert conn.ssl_context is not None and len(conn.ssl_context.get_ca_certs()) == 1


async def test_bad_client_certificate_is_a_certificate_problem(pki):
    kube = StubKube({"client": {"tls.crt": pki.client.cert_pem}})
    result = await resolve(kube, "ns", "p", spec(tls={"clientCertificateSecretRef": {"name": "client"}}))  # type: ignore[arg-type]
    assert [(p.condition, p.reason) for p in result.problems] == [(reasons.SECRETS_RESOLVED,
                                                                   reasons.SECRET_KEY_NOT_FOUND)]
    assert "no key 'tls.key'" in result.problems[0].message


# --------------------------------------------------------------------------- SSL context


def test_ssl_context_variants(pki):
    pem, _ = certificates.load_ca_bundle(pki.ca.cert_pem, source="x")
    only_ca = build_ssl_context(ca_pem=pem, client=None, insecure=False, use_system_trust_store=False)
    assert len(only_ca.get_ca_certs()) == 1 and only_ca.check_hostname
    assert only_ca.verify_flags & ssl.VERIFY_X509_PARTIAL_CHAIN
    insecure = build_ssl_context(ca_pem=None, client=None, insecure=True, use_system_trust_store=True)
    assert insecure.verify_mode == ssl.CERT_NONE and not insecure.check_hostname


def test_client_chain_without_memfd_uses_a_private_directory_that_is_removed(pki, monkeypatch):
    client = certificates.load_client_certificate(pki.client.cert_pem, pki.client.key_pem, source="s")
    monkeypatch.delattr(os, "memfd_create", raising=False)
    made: list[str] = []
    real = tempfile.TemporaryDirectory

    def recording(*args: Any, **kwargs: Any) -> tempfile.TemporaryDirectory[str]:
        tmp = real(*args, **kwargs)
        made.append(tmp.name)
        assert os.stat(tmp.name).st_mode & 0o077 == 0  # private
        return tmp

    monkeypatch.setattr(connection.tempfile, "TemporaryDirectory", recording)
    ctx = build_ssl_context(ca_pem=None, client=client, insecure=False, use_system_trust_store=True)
    assert ctx is not None and made and not os.path.exists(made[0])


def test_client_chain_with_memfd_leaves_no_file(pki, monkeypatch):
    if not hasattr(os, "memfd_create") or not os.path.isdir("/proc/self/fd"):
        pytest.skip("no memfd on this platform")
    client = certificates.load_client_certificate(pki.client.cert_pem, pki.client.key_pem, source="s")
    monkeypatch.setattr(connection.tempfile, "TemporaryDirectory", None)  # would raise if used
    before = set(os.listdir("/proc/self/fd"))
    build_ssl_context(ca_pem=None, client=client, insecure=False, use_system_trust_store=True)
    assert set(os.listdir("/proc/self/fd")) <= before  # no descriptor left open


# --------------------------------------------------------------------------- shared SSL contexts


def trusted(ctx: ssl.SSLContext) -> list[str]:
    """Common names of the CAs a context trusts."""
    return [dict(rdn[0] for rdn in cert["subject"])["commonName"] for cert in ctx.get_ca_certs()]


async def test_ssl_context_is_shared_for_equal_configuration_and_differs_for_another_ca(pki):
    def tls(ca: Any, **more: Any) -> ModelProviderSpec:
        return spec(tls={"caBundle": ca.b64_pem, "useSystemTrustStore": False, **more})

    kube = StubKube({"client": {"tls.crt": pki.client.cert_pem, "tls.key": pki.client.key_pem}})
    first = await resolve_connection(kube, "ns", "a", tls(pki.ca))  # type: ignore[arg-type]
    again = await resolve_connection(kube, "other-ns", "b", tls(pki.ca))  # type: ignore[arg-type]
    other_ca = await resolve_connection(kube, "ns", "a", tls(pki.other_ca))  # type: ignore[arg-type]
    with_client = await resolve_connection(kube, "ns", "a", tls(  # type: ignore[arg-type]
        pki.ca, clientCertificateSecretRef={"name": "client"}))
    insecure = await resolve_connection(kube, "ns", "a", tls(pki.ca, insecureSkipVerify=True))  # type: ignore[arg-type]
    assert first.ssl_context is not None and again.ssl_context is first.ssl_context
    contexts = [first.ssl_context, other_ca.ssl_context, with_client.ssl_context, insecure.ssl_context]
    assert len({id(c) for c in contexts}) == 4
    assert [trusted(c) for c in (first.ssl_context, other_ca.ssl_context)] == [["Inquest Test CA"],
                                                                                ["Inquest Other CA"]]
    assert insecure.ssl_context is not None and insecure.ssl_context.verify_mode == ssl.CERT_NONE
    assert first.ssl_context.verify_mode == ssl.CERT_REQUIRED  # the insecure one did not change it


def test_ssl_context_cache_is_bounded_expires_and_keeps_no_failure():
    now = [0.0]
    cache = SSLContextCache(maxsize=2, ttl=60, clock=lambda: now[0])
    built: list[str] = []

    def build(name: str) -> Any:
        def make() -> ssl.SSLContext:
            built.append(name)
            return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        return make

    a = cache.get("a", build("a"))
    assert cache.get("a", build("a")) is a and built == ["a"]
    cache.get("b", build("b"))
    cache.get("a", build("a"))  # "a" used last: "b" goes first
    cache.get("c", build("c"))
    assert len(cache) == 2 and cache.peek("b") is None and cache.peek("a") is a
    now[0] = 61
    assert cache.peek("a") is None and cache.get("a", build("a")) is not a  # expired: built again
    assert built == ["a", "b", "c", "a"]

    def broken() -> ssl.SSLContext:
        raise ssl.SSLError("bad certificate")

    with pytest.raises(ssl.SSLError):
        cache.get("d", broken)
    assert cache.peek("d") is None and cache.get("d", build("d")) is not None


def test_concurrent_misses_build_once():
    cache = SSLContextCache()
    calls: list[int] = []

    def slow() -> ssl.SSLContext:
        calls.append(1)
        time.sleep(0.05)
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

    got: list[ssl.SSLContext] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("k", slow))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(got) == 8 and all(c is got[0] for c in got)


async def test_clients_without_tls_settings_share_the_default_context(monkeypatch, tmp_path, pki):
    made: list[object] = []
    real = httpx2.create_ssl_context

    def counting(verify: Any = True, *args: Any, **kwargs: Any) -> ssl.SSLContext:
        if verify is True:
            made.append(verify)
        return real(verify, *args, **kwargs)

    monkeypatch.setattr(llm.httpx2, "create_ssl_context", counting)
    monkeypatch.setattr(httpx2, "create_ssl_context", counting)
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(pki.ca.cert_pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # a store of its own: a key of its own
    clients = [build_openai_client(conn_for("http://h/v1")) for _ in range(3)]
    try:
        assert len(made) == 1  # httpx would have built one per client
        ctx = default_ssl_context()
        assert trusted(ctx) == ["Inquest Test CA"]
        monkeypatch.delenv("SSL_CERT_FILE")
        assert default_ssl_context() is not ctx
    finally:
        for client in clients:
            await client.close()


# --------------------------------------------------------------------------- the client factory


def conn_for(url: str, **kwargs: Any) -> ProviderConnection:
    return ProviderConnection(name="p", namespace="ns", endpoints=endpoints.resolve(url), model="m", **kwargs)


async def test_factory_settings():
    c = conn_for("http://h/v1", api_key=KEY, headers={"X-A": "1"}, timeout_seconds=7, max_retries=3)
    client = build_openai_client(c)
    try:
        assert str(client.base_url) == "http://h/v1/" and client.api_key == KEY
        assert client.max_retries == 3 and client.timeout == 7
        assert client.default_headers["X-A"] == "1"
        assert build_openai_client(c, max_retries=0).max_retries == 0
    finally:
        await client.close()
    anonymous = build_openai_client(conn_for("http://h/v1"))
    assert anonymous.api_key == NO_KEY_PLACEHOLDER
    await anonymous.close()


@pytest.mark.parametrize(("url", "sent", "expected"), [
    ("https://gw/llm/team-a/chat", "https://gw/llm/team-a/chat/chat/completions", "https://gw/llm/team-a/chat"),
    ("https://gw/llm/team-a/chat", "https://gw/llm/team-a/chat/models", "https://gw/llm/team-a/models"),
    ("https://gw/api/generate", "https://gw/api/generate/chat/completions?x=1", "https://gw/api/generate?x=1"),
])
async def test_custom_chat_paths_are_rewritten(url, sent, expected):
    hook = url_rewriter(endpoints.resolve(url))
    assert hook is not None
    request = httpx2.Request("POST", sent)
    await hook(request)
    assert str(request.url) == expected


async def test_standard_urls_need_no_rewrite():
    assert url_rewriter(endpoints.resolve("http://h/v1")) is None
    assert url_rewriter(endpoints.resolve("http://h/v1/chat/completions")) is None


async def test_the_factory_installs_the_rewrite():
    client = build_openai_client(conn_for("https://gw/llm/team-a/chat"))
    try:
        assert len(client._client.event_hooks["request"]) == 1
    finally:
        await client.close()


def test_redact():
    assert redact(f"bad key {KEY}!", [KEY]) == "bad key [redacted]!"
    assert redact(f"key {KEY[:8]}****{KEY[-6:]}", [KEY]) == "key [redacted]****[redacted]"
    assert redact("nothing here", [KEY, ""]) == "nothing here"
    c = conn_for("http://h/v1", api_key=KEY, headers={"X-T": "tenant-secret-value"},
                 secret_header_names=frozenset({"X-T"}))
    assert c.redact(f"{KEY} tenant-secret-value") == "[redacted] [redacted]"
