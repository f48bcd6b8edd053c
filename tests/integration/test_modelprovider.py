"""The ModelProvider reconciliation end to end: Kopf in-process against KMock and the fake LLM (real TLS).

Objects are created and changed through the API (KMock sends watch events only for API calls).
Events are read from the POST requests Kopf sends to KMock.
"""

from __future__ import annotations

import base64
import datetime
import itertools
import logging
import socket
from typing import Any

import kmock
import pytest

from inquest.clients.providers import ENV_PROBE_INTERVAL, ENV_RETRY_BASE
from inquest.domain import reasons
from tests.conftest import eventually
from tests.support.certs import make_ca, make_leaf
from tests.support.fake_llm import fault, hang, text
from tests.support.kube import MP

NS = "default"
MP_PATH = f"/apis/inquest.dev/v1alpha1/namespaces/{NS}/modelproviders"
KEY = "sk-live-4f0c2d9e8b7a61537c1e"
TYPES = [reasons.READY, reasons.SECRETS_RESOLVED, reasons.CERTIFICATE_VALID, reasons.ENDPOINT_REACHABLE,
         reasons.AUTHENTICATED, reasons.MODEL_AVAILABLE, reasons.TOOL_CALLING_SUPPORTED]


# --------------------------------------------------------------------------- helpers


async def call(kube, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
    async with kube.request(method, path, json=body, headers={"Content-Type": content_type}) as response:
        assert response.status < 300, f"{method} {path}: {response.status} {await response.text()}"
        return await response.json()


async def create_provider(kube, name: str, **spec: Any) -> None:
    spec.setdefault("model", "test-model")
    body = {"apiVersion": "inquest.dev/v1alpha1", "kind": "ModelProvider",
            "metadata": {"name": name, "namespace": NS, "uid": f"uid-mp-{name}", "generation": 1}, "spec": spec}
    await call(kube, "POST", MP_PATH, body)


async def update_spec(kube, name: str, generation: int, **spec: Any) -> None:
    await call(kube, "PATCH", f"{MP_PATH}/{name}", {"metadata": {"generation": generation}, "spec": spec},
               "application/merge-patch+json")


async def put_secret(kube, name: str, data: dict[str, str | bytes], type_: str = "Opaque") -> None:
    """Create the Secret, or replace its data (a MODIFIED watch event) when it exists."""
    encoded = {k: base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode() for k, v in data.items()}
    path = f"/api/v1/namespaces/{NS}/secrets"
    body = {"apiVersion": "v1", "kind": "Secret", "type": type_, "metadata": {"name": name, "namespace": NS},
            "data": encoded}
    async with kube.request("POST", path, json=body) as response:
        if response.status != 409:
            assert response.status < 300, await response.text()
            return
    old = await call(kube, "GET", f"{path}/{name}")
    removed = {k: None for k in old.get("data") or {} if k not in encoded}
    await call(kube, "PATCH", f"{path}/{name}", {"data": {**removed, **encoded}}, "application/merge-patch+json")


async def put_configmap(kube, name: str, data: dict[str, str]) -> None:
    await call(kube, "POST", f"/api/v1/namespaces/{NS}/configmaps",
               {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}, "data": data})


def status(kube, name: str) -> dict[str, Any]:
    return dict(kube.objects[MP, NS, name].get("status") or {})


def cond(st: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in st.get("conditions", []) if c["type"] == type_]
    if not found:
        raise KeyError(f"no condition {type_}")
    return found[0]


def verdicts(st: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in st.get("conditions", [])}


async def settled(kube, name: str, phase: str | None = None, timeout: float = 15, **expected: str) -> dict[str, Any]:
    """Wait until the provider's status has ``phase`` (if given) and conditions with ``expected`` reasons."""
    def check() -> dict[str, Any]:
        st = status(kube, name)
        if phase is not None:
            assert st.get("phase") == phase, verdicts(st)
        for type_, reason in expected.items():
            assert cond(st, type_)["reason"] == reason, verdicts(st)
        assert cond(st, reasons.READY)["reason"] != reasons.PROBING
        return st
    return await eventually(check, timeout=timeout)


def events(kube, name: str | None = None) -> list[dict[str, Any]]:
    posted = [r.data for r in list(kube) if r.method == "POST"
              and r.url.path == f"/api/v1/namespaces/{NS}/events" and isinstance(r.data, dict)]
    return [e for e in posted if name is None or e["involvedObject"]["name"] == name]


def event_reasons(kube, name: str) -> list[tuple[str, str]]:
    return [(e["type"], e["reason"]) for e in events(kube, name)]


async def event_posted(kube, name: str, type_: str, reason: str) -> None:
    """Kopf posts events from a background task: wait for it."""
    await eventually(lambda: (type_, reason) in event_reasons(kube, name), timeout=10)


@pytest.fixture(autouse=True)
def _kmock_like_a_real_server(monkeypatch):
    """Two things KMock does not do and Kopf relies on:

    - metadata.generateName (Kopf names its Events that way): without it, every Event after the first
      is refused as a duplicate. Each created object without a name gets a unique one.
    - metadata.resourceVersion: Kopf compares it with the version its own patch produced to skip the
      stale events still queued (KMock replays existing objects when a watch starts); without it,
      Kopf re-runs the create handler on the stale object. Every write gets a new version.
    """
    original = kmock.KubernetesEmulator._handle
    counter = itertools.count(1000)

    async def handle(self, request):
        data = request.data
        if request.method in ("POST", "PATCH", "PUT") and isinstance(data, dict) and request.resource is not None:
            meta = data.setdefault("metadata", {})
            if isinstance(meta, dict):
                if request.method == "POST" and not meta.get("name") and meta.get("generateName"):
                    meta["name"] = f"{meta['generateName']}{next(counter):05d}"
                meta["resourceVersion"] = str(next(counter))
        return await original(self, request)

    monkeypatch.setattr(kmock.KubernetesEmulator, "_handle", handle)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setenv(ENV_RETRY_BASE, "0.2")


# --------------------------------------------------------------------------- Ready


async def test_private_ca_provider_becomes_ready_with_full_status(kube, operator, llm_tls, pki):
    await create_provider(kube, "tls", baseURL=llm_tls.base_url, tls={"caBundle": pki.ca.b64_pem})
    st = await settled(kube, "tls", "Ready")
    assert [c["type"] for c in st["conditions"]] == TYPES
    assert all(c["status"] == "True" and c["observedGeneration"] == 1 for c in st["conditions"])
    assert cond(st, reasons.READY)["reason"] == reasons.PROVIDER_READY
    assert st["endpoint"] == llm_tls.base_url + "/chat/completions"
    assert st["observedGeneration"] == 1 and st["availableModels"] == ["test-model"]
    assert isinstance(st["latencyMs"], int) and st["lastProbeTime"].endswith("Z")
    cert = st["certificate"]
    assert cert["subject"] == "CN=Inquest Test CA,O=Inquest Tests" == cert["issuer"]
    assert cert["sha256Fingerprint"].count(":") == 31 and cert["notBefore"] < cert["notAfter"]
    await event_posted(kube, "tls", "Normal", reasons.PROVIDER_READY)
    assert not [e for e in events(kube, "tls") if e["type"] == "Warning"]


@pytest.mark.parametrize("form", ["pem", "base64", "secret", "configmap"])
async def test_ca_from_every_source(kube, operator, llm_tls, pki, form):
    tls: dict[str, Any]
    if form == "pem":
        tls = {"caBundle": pki.ca.cert_pem.decode()}
    elif form == "base64":
        tls = {"caBundle": pki.ca.b64_pem}
    elif form == "secret":
        await put_secret(kube, "llm-ca", {"ca.crt": pki.ca.cert_pem})
        tls = {"caSecretRef": {"name": "llm-ca", "key": "ca.crt"}}
    else:
        await put_configmap(kube, "llm-ca", {"ca.crt": pki.ca.cert_pem.decode()})
        tls = {"caConfigMapRef": {"name": "llm-ca", "key": "ca.crt"}}
    await create_provider(kube, "ca", baseURL=llm_tls.base_url, tls=tls)
    st = await settled(kube, "ca", "Ready", CertificateValid=reasons.CERTIFICATE_TRUSTED)
    assert st["certificate"]["subject"].startswith("CN=Inquest Test CA")


async def test_plain_http_without_auth(kube, operator, llm):
    await create_provider(kube, "plain", baseURL=llm.base_url)
    st = await settled(kube, "plain", "Ready", CertificateValid=reasons.NOT_APPLICABLE,
                       SecretsResolved=reasons.NO_SECRETS_REFERENCED, Authenticated=reasons.NO_AUTHENTICATION_REQUIRED)
    assert "certificate" not in st


# --------------------------------------------------------------------------- certificates


@pytest.mark.parametrize(("server", "reason"), [
    ("wrong_ca", reasons.UNKNOWN_AUTHORITY),
    ("expired_server", reasons.SERVER_CERTIFICATE_EXPIRED),
    ("wrong_host_server", reasons.HOSTNAME_MISMATCH),
])
async def test_server_certificate_failures(kube, operator, llm_factory, pki, server, reason):
    llm = await llm_factory(tls=pki.server if server == "wrong_ca" else getattr(pki, server))
    ca = pki.other_ca if server == "wrong_ca" else pki.ca
    await create_provider(kube, "bad", baseURL=llm.base_url, tls={"caBundle": ca.b64_pem})
    st = await settled(kube, "bad", "NotReady", CertificateValid=reason, EndpointReachable=reasons.TLS_ERROR)
    assert cond(st, reasons.CERTIFICATE_VALID)["status"] == "False"
    assert "subject CN=" in cond(st, reasons.CERTIFICATE_VALID)["message"]
    assert verdicts(st)[reasons.AUTHENTICATED] == ("Unknown", reasons.CERTIFICATE_NOT_VALID)
    assert verdicts(st)[reasons.READY] == ("False", reason)
    await event_posted(kube, "bad", "Warning", reason)


async def test_mutual_tls(kube, operator, llm_factory, pki):
    llm = await llm_factory(tls=pki.server, client_ca=pki.ca)
    await put_secret(kube, "client-tls", {"tls.crt": pki.client.cert_pem, "tls.key": pki.client.key_pem},
                     "kubernetes.io/tls")
    await create_provider(kube, "with-cert", baseURL=llm.base_url, tls={
        "caBundle": pki.ca.b64_pem, "clientCertificateSecretRef": {"name": "client-tls"}})
    await create_provider(kube, "without-cert", baseURL=llm.base_url, tls={"caBundle": pki.ca.b64_pem})
    await settled(kube, "with-cert", "Ready")
    st = await settled(kube, "without-cert", "NotReady", CertificateValid=reasons.CLIENT_CERTIFICATE_REQUIRED)
    assert "clientCertificateSecretRef" in cond(st, reasons.CERTIFICATE_VALID)["message"]


async def test_insecure_skip_verify_is_ready_but_flagged(kube, operator, llm_tls):
    await create_provider(kube, "insecure", baseURL=llm_tls.base_url, tls={"insecureSkipVerify": True})
    st = await settled(kube, "insecure", "Ready", CertificateValid=reasons.VERIFICATION_DISABLED)
    assert "INSECURE" in cond(st, reasons.CERTIFICATE_VALID)["message"]


@pytest.mark.parametrize(("ca", "reason"), [
    ("garbage", reasons.INVALID_CERTIFICATE),
    ("non_ca", reasons.NOT_A_CERTIFICATE_AUTHORITY),
    ("expired_ca", reasons.CERTIFICATE_EXPIRED),
    ("not_yet_valid_ca", reasons.CERTIFICATE_NOT_YET_VALID),
])
async def test_unusable_ca_is_invalid_and_not_retried(kube, operator, llm_tls, pki, ca, reason):
    bundle = "not a certificate" if ca == "garbage" else getattr(pki, ca).b64_pem
    await create_provider(kube, "badca", baseURL=llm_tls.base_url, tls={"caBundle": bundle})
    st = await settled(kube, "badca", "Invalid", CertificateValid=reason, Ready=reason)
    assert verdicts(st)[reasons.ENDPOINT_REACHABLE] == ("Unknown", reasons.CERTIFICATE_NOT_VALID)
    assert llm_tls.requests == []
    assert operator.memo.providers.state(NS, "badca").next_due is None  # no re-probe until something changes
    # fixing the spec re-validates at once
    await update_spec(kube, "badca", 2, tls={"caBundle": pki.ca.b64_pem})
    st = await settled(kube, "badca", "Ready")
    assert st["observedGeneration"] == 2 and cond(st, reasons.READY)["observedGeneration"] == 2


async def test_two_ca_sources_are_invalid(kube, operator, llm_tls, pki):
    await create_provider(kube, "two", baseURL=llm_tls.base_url, tls={
        "caBundle": pki.ca.b64_pem, "caConfigMapRef": {"name": "x", "key": "ca.crt"}})
    st = await settled(kube, "two", "Invalid", CertificateValid=reasons.CONFLICTING_CA_SOURCES)
    assert "caBundle and caConfigMapRef" in cond(st, reasons.CERTIFICATE_VALID)["message"]
    assert verdicts(st)[reasons.SECRETS_RESOLVED][0] == "Unknown"


async def test_ca_expiring_soon_warns(kube, operator, llm_factory):
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=5)
    ca = make_ca("Short-lived CA", not_after=soon)
    llm = await llm_factory(tls=make_leaf(ca, "localhost", not_after=soon))
    await create_provider(kube, "soon", baseURL=llm.base_url, tls={"caBundle": ca.b64_pem})
    st = await settled(kube, "soon", "Ready")
    assert "expires in 4 days" in cond(st, reasons.CERTIFICATE_VALID)["message"] or \
        "expires in 5 days" in cond(st, reasons.CERTIFICATE_VALID)["message"]
    await event_posted(kube, "soon", "Warning", reasons.CERTIFICATE_EXPIRES_SOON)
    warnings = [e for e in events(kube, "soon") if e["reason"] == reasons.CERTIFICATE_EXPIRES_SOON]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning" and "Short-lived CA" in warnings[0]["message"]


# --------------------------------------------------------------------------- endpoint, auth, model, tools


async def test_invalid_api_key(kube, operator, llm_factory):
    llm = await llm_factory(api_key="sk-the-right-key")
    await put_secret(kube, "llm-key", {"api-key": KEY})
    await create_provider(kube, "auth", baseURL=llm.base_url, apiKeySecretRef={"name": "llm-key", "key": "api-key"})
    st = await settled(kube, "auth", "NotReady", Authenticated=reasons.INVALID_API_KEY, Ready=reasons.INVALID_API_KEY)
    assert verdicts(st)[reasons.MODEL_AVAILABLE] == ("Unknown", reasons.NOT_AUTHENTICATED)
    await event_posted(kube, "auth", "Warning", reasons.INVALID_API_KEY)


async def test_model_not_found(kube, operator, llm):
    await create_provider(kube, "model", baseURL=llm.base_url, model="llama-70b")
    st = await settled(kube, "model", "NotReady", ModelAvailable=reasons.MODEL_NOT_FOUND)
    message = cond(st, reasons.MODEL_AVAILABLE)["message"]
    assert "'llama-70b'" in message and "test-model" in message
    assert verdicts(st)[reasons.TOOL_CALLING_SUPPORTED] == ("Unknown", reasons.MODEL_NOT_AVAILABLE)
    assert st["availableModels"] == ["test-model"]


async def test_connection_refused_is_retried(kube, operator, fast_retries):
    port = free_port()
    await create_provider(kube, "down", baseURL=f"http://127.0.0.1:{port}/v1")
    st = await settled(kube, "down", "NotReady", EndpointReachable=reasons.CONNECTION_REFUSED)
    assert f"127.0.0.1:{port}" in cond(st, reasons.ENDPOINT_REACHABLE)["message"]
    state = operator.memo.providers.state(NS, "down")
    await eventually(lambda: state.failures >= 3, timeout=10)  # backoff 0.2, 0.4, 0.8 s...
    assert state.next_due is not None


async def test_transient_server_error_recovers_by_itself(kube, operator, llm_factory, fast_retries):
    llm = await llm_factory(models_endpoint=False)
    llm.script(fault(500))
    await create_provider(kube, "flaky", baseURL=llm.base_url)
    await eventually(lambda: ("Warning", reasons.HTTP_ERROR) in event_reasons(kube, "flaky"), timeout=15)
    await settled(kube, "flaky", "Ready")
    await event_posted(kube, "flaky", "Normal", reasons.PROVIDER_READY)


async def test_timeout(kube, operator, llm_factory):
    llm = await llm_factory(models_endpoint=False)
    llm.script(hang(30))
    await create_provider(kube, "slow", baseURL=llm.base_url, requestTimeoutSeconds=1)
    st = await settled(kube, "slow", "NotReady", EndpointReachable=reasons.TIMEOUT)
    assert "within 1 s" in cond(st, reasons.ENDPOINT_REACHABLE)["message"]


async def test_model_that_ignores_tools(kube, operator, llm_factory):
    llm = await llm_factory(ignores_tools=True)
    await create_provider(kube, "notools", baseURL=llm.base_url)
    st = await settled(kube, "notools", "NotReady", ToolCallingSupported=reasons.TOOL_CALLS_IGNORED)
    assert cond(st, reasons.MODEL_AVAILABLE)["status"] == "True"
    await event_posted(kube, "notools", "Warning", reasons.TOOL_CALLS_IGNORED)


# --------------------------------------------------------------------------- Secrets: late creation, rotation


async def test_secret_created_after_the_provider(kube, operator, llm_factory):
    llm = await llm_factory(api_key=KEY)
    await create_provider(kube, "late", baseURL=llm.base_url, apiKeySecretRef={"name": "late-key", "key": "token"})
    st = await settled(kube, "late", "NotReady", SecretsResolved=reasons.SECRET_NOT_FOUND)
    message = cond(st, reasons.SECRETS_RESOLVED)["message"]
    assert "Secret default/late-key not found (key 'token', spec.apiKeySecretRef)" in message
    assert verdicts(st)[reasons.ENDPOINT_REACHABLE] == ("Unknown", reasons.SECRETS_NOT_RESOLVED)
    assert llm.requests == []
    await put_secret(kube, "late-key", {"wrong": KEY})
    await settled(kube, "late", "NotReady", SecretsResolved=reasons.SECRET_KEY_NOT_FOUND)
    await put_secret(kube, "late-key", {"token": KEY})
    await settled(kube, "late", "Ready")
    await event_posted(kube, "late", "Warning", reasons.SECRET_NOT_FOUND)
    await event_posted(kube, "late", "Normal", reasons.PROVIDER_READY)


async def test_configmap_created_or_changed_after_the_provider_revalidates_at_once(
        kube, operator, llm_tls, pki, monkeypatch):
    monkeypatch.setenv(ENV_RETRY_BASE, "3600")  # no backoff retry within the test: only the watch re-validates
    await create_provider(kube, "cmlate", baseURL=llm_tls.base_url,
                          tls={"caConfigMapRef": {"name": "late-ca", "key": "ca.crt"}})
    st = await settled(kube, "cmlate", "NotReady", SecretsResolved=reasons.CONFIGMAP_NOT_FOUND)
    assert cond(st, reasons.SECRETS_RESOLVED)["message"] == (
        "ConfigMap default/late-ca not found (key 'ca.crt', spec.tls.caConfigMapRef); "
        "create it in namespace default")
    await put_configmap(kube, "late-ca", {"ca.crt": pki.other_ca.cert_pem.decode()})  # created: the wrong CA
    await settled(kube, "cmlate", "NotReady", CertificateValid=reasons.UNKNOWN_AUTHORITY)
    await call(kube, "PATCH", f"/api/v1/namespaces/{NS}/configmaps/late-ca",
               {"data": {"ca.crt": pki.ca.cert_pem.decode()}}, "application/merge-patch+json")  # changed: fixed
    st = await settled(kube, "cmlate", "Ready", CertificateValid=reasons.CERTIFICATE_TRUSTED)
    assert st["certificate"]["subject"].startswith("CN=Inquest Test CA")


async def test_deleting_a_referenced_secret_makes_the_provider_not_ready_at_once(kube, operator, llm_factory):
    llm = await llm_factory(api_key=KEY)  # Ready: the next periodic probe is probeIntervalSeconds (300 s) away
    await put_secret(kube, "del-key", {"token": KEY})
    await create_provider(kube, "del", baseURL=llm.base_url, apiKeySecretRef={"name": "del-key", "key": "token"})
    await settled(kube, "del", "Ready")
    await call(kube, "DELETE", f"/api/v1/namespaces/{NS}/secrets/del-key")
    st = await settled(kube, "del", "NotReady", SecretsResolved=reasons.SECRET_NOT_FOUND,
                       Ready=reasons.SECRET_NOT_FOUND)
    assert "Secret default/del-key not found (key 'token', spec.apiKeySecretRef)" in cond(
        st, reasons.SECRETS_RESOLVED)["message"]
    await event_posted(kube, "del", "Warning", reasons.SECRET_NOT_FOUND)


async def test_rotated_key_is_used_on_the_next_probe(kube, operator, llm_factory, monkeypatch):
    monkeypatch.setenv(ENV_PROBE_INTERVAL, "0.3")
    monkeypatch.setenv(ENV_RETRY_BASE, "0.2")
    llm = await llm_factory(api_key="sk-old-0000000000000000")
    await put_secret(kube, "rot", {"api-key": "sk-old-0000000000000000"})
    await create_provider(kube, "rot", baseURL=llm.base_url, apiKeySecretRef={"name": "rot", "key": "api-key"})
    await settled(kube, "rot", "Ready")
    llm.api_key = "sk-new-1111111111111111"  # the server rotates first: the next periodic probe fails
    await settled(kube, "rot", "NotReady", Authenticated=reasons.INVALID_API_KEY)
    await put_secret(kube, "rot", {"api-key": "sk-new-1111111111111111"})
    await settled(kube, "rot", "Ready")
    assert llm.requests[-1].header("authorization") == "Bearer sk-new-1111111111111111"
    await event_posted(kube, "rot", "Warning", reasons.INVALID_API_KEY)
    await eventually(lambda: event_reasons(kube, "rot").count(("Normal", reasons.PROVIDER_READY)) >= 2, timeout=10)


async def test_spec_update_revalidates(kube, operator, llm):
    await create_provider(kube, "upd", baseURL=llm.base_url, model="missing")
    await settled(kube, "upd", "NotReady", ModelAvailable=reasons.MODEL_NOT_FOUND)
    await update_spec(kube, "upd", 2, model="openai/test-model")
    st = await settled(kube, "upd", "Ready")
    assert st["observedGeneration"] == 2


async def test_new_and_changed_providers_show_probing_while_the_probe_runs(kube, operator, llm_factory):
    def probing(generation: int) -> dict[str, Any]:
        st = status(kube, "hung")
        assert st.get("phase") == "NotReady" and st.get("observedGeneration") == generation, st
        ready = cond(st, reasons.READY)
        assert (ready["status"], ready["reason"], ready["observedGeneration"]) == (
            "Unknown", reasons.PROBING, generation), ready
        return st

    first = await llm_factory()
    first.script(hang(120))  # the tool-calling check hangs until the server stops
    await create_provider(kube, "hung", baseURL=first.base_url, requestTimeoutSeconds=600, maxRetries=0)
    await eventually(lambda: first.chat_requests, timeout=10)  # the probe is in flight
    st = probing(1)
    assert st["endpoint"] == first.base_url + "/chat/completions"
    await first.stop()  # releases the hang: a text answer, no tool call
    await settled(kube, "hung", "NotReady", ToolCallingSupported=reasons.TOOL_CALLS_IGNORED)

    second = await llm_factory()
    second.script(hang(120))
    await update_spec(kube, "hung", 2, baseURL=second.base_url)
    await eventually(lambda: second.chat_requests, timeout=10)
    st = probing(2)
    assert verdicts(st)[reasons.TOOL_CALLING_SUPPORTED] == ("False", reasons.TOOL_CALLS_IGNORED)  # kept meanwhile
    await second.stop()
    st = await settled(kube, "hung", "NotReady", ToolCallingSupported=reasons.TOOL_CALLS_IGNORED)
    assert st["observedGeneration"] == 2


async def test_invalid_url(kube, operator):
    # the schema admits 1 to 5 port digits (a URL without a host it refuses: tests/manifests/invalid)
    await create_provider(kube, "url", baseURL="http://llm:99999/v1")
    st = await settled(kube, "url", "Invalid", EndpointReachable=reasons.INVALID_URL, Ready=reasons.INVALID_URL)
    assert "invalid port" in cond(st, reasons.ENDPOINT_REACHABLE)["message"]
    assert "endpoint" not in st or st["endpoint"] is None


async def test_deleted_provider_stops_probing(kube, operator, llm):
    await create_provider(kube, "gone", baseURL=llm.base_url)
    await settled(kube, "gone", "Ready")
    assert (NS, "gone") in operator.memo.providers
    await call(kube, "DELETE", f"{MP_PATH}/gone")
    await eventually(lambda: (NS, "gone") not in operator.memo.providers, timeout=10)


async def test_resume_after_restart_revalidates(kube, start_operator, llm):
    first = await start_operator()
    await create_provider(kube, "res", baseURL=llm.base_url)
    before = (await settled(kube, "res", "Ready"))["lastProbeTime"]
    await first.stop()
    seen = len(llm.requests)
    await start_operator()
    await eventually(lambda: len(llm.requests) > seen, timeout=10)
    st = await settled(kube, "res", "Ready")
    assert st["lastProbeTime"] >= before


# --------------------------------------------------------------------------- secrets never leak


async def test_secret_values_never_reach_logs_status_or_events(kube, start_operator, llm_factory, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)  # every logger, not only kopf and inquest
    monkeypatch.setenv(ENV_RETRY_BASE, "0.2")
    header_secret = "hdr-9d8c7b6a5f4e3d2c1b0a"
    llm = await llm_factory(models_endpoint=False)
    # probe 1: the server echoes the key in a 401; probe 2: it echoes the header while rejecting tools
    # (tool_choice "required", then "auto"); probe 3 works
    rejected = fault(400, body={"error": {"message": f"tools with header {header_secret} rejected"}})
    llm.script(fault(401, body={"error": {"message": f"Incorrect API key provided: {KEY}"}}),
               text("ok"), rejected, rejected)
    await put_secret(kube, "leak", {"api-key": KEY + "\n", "hdr": header_secret})
    await start_operator()
    await create_provider(kube, "leak", baseURL=llm.base_url, apiKeySecretRef={"name": "leak", "key": "api-key"},
                          headers=[{"name": "X-Tenant", "valueFrom": {"secretKeyRef": {"name": "leak", "key": "hdr"}}}])
    await settled(kube, "leak", "Ready", timeout=20)
    await event_posted(kube, "leak", "Warning", reasons.INVALID_API_KEY)
    await event_posted(kube, "leak", "Warning", reasons.TOOL_CALL_REJECTED)
    await event_posted(kube, "leak", "Normal", reasons.PROVIDER_READY)
    assert llm.requests[0].header("authorization") == f"Bearer {KEY}"  # it was really used
    # a rotation goes through the Secret watch: the new value must not leak either
    rotated = "sk-rotated-77aa66bb55cc44dd"
    llm.script(fault(401, body={"error": {"message": f"Incorrect API key provided: {rotated}"}}))
    await put_secret(kube, "leak", {"api-key": rotated, "hdr": header_secret})
    await settled(kube, "leak", "NotReady", Authenticated=reasons.INVALID_API_KEY)
    assert llm.requests[-1].header("authorization") == f"Bearer {rotated}"

    secrets = [KEY, rotated, header_secret, base64.b64encode(KEY.encode()).decode(), KEY[:8], KEY[-6:]]
    log_text = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    statuses = " ".join(str(v.get("status")) for v in kube.objects[MP, NS, "leak"].history if v is not None)
    sent = " ".join(r.text for r in list(kube) if "/secrets" not in r.url.path)  # statuses, events, patches
    for value in secrets:
        assert value not in log_text
        assert value not in statuses
        assert value not in sent
    assert "[redacted]" in sent  # the echoed key was there, and was masked
