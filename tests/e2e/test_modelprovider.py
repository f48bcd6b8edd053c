"""A ModelProvider validated for real: the operator (deploy/'s ServiceAccount) reads the CA and the
API key from Secrets on the real API server and probes the fake LLM over TLS."""

from __future__ import annotations

import base64
from typing import Any

from tests.e2e.controlplane import ControlPlane
from tests.e2e.harness import (
    GROUP,
    VERSION,
    collection_path,
    condition,
    create_ok,
    get,
    object_path,
    table,
    table_rows,
    unique,
    wait_for,
)
from tests.e2e.processes import OperatorProcess
from tests.support.certs import TestPKI
from tests.support.fake_llm import FakeLLM

API_KEY = "sk-e2e-" + "5f0c9a1d7e3b4c2a8d6f"  # a recognisable value to look for where it must not be


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def provider(name: str, llm: FakeLLM, *, ca_secret: str, key_secret: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "baseURL": llm.base_url,
        "model": "test-model",
        "tls": {"caSecretRef": {"name": ca_secret, "key": "ca.crt"}, "useSystemTrustStore": False},
    }
    if key_secret:
        spec["apiKeySecretRef"] = {"name": key_secret, "key": "api-key"}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelProvider", "metadata": {"name": name}, "spec": spec}


def conditions_of(mp: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in ((mp or {}).get("status") or {}).get("conditions") or []}


def wait_condition(cp: ControlPlane, op: OperatorProcess, namespace: str, name: str, type_: str, status: str,
                   *, reason: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        mp = get(cp, "ModelProvider", name, namespace)
        cond = condition(mp, type_)
        if cond and cond["status"] == status and (reason is None or cond["reason"] == reason):
            return mp
        return None

    def last() -> str:
        return f"{conditions_of(get(cp, 'ModelProvider', name, namespace))}"

    try:
        return wait_for(check, timeout=timeout, what=f"{type_}={status} ({reason or 'any reason'}) on {name}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nconditions: {last()}{op.diagnostics()}") from None


def events_about(cp: ControlPlane, namespace: str, name: str) -> list[dict[str, Any]]:
    status, body = cp.request("GET", f"/api/v1/namespaces/{namespace}/events"
                                     f"?fieldSelector=involvedObject.name%3D{name}")
    assert status == 200, body
    return body["items"]


def test_provider_over_tls_with_ca_from_secret(
    controlplane: ControlPlane, namespace: str, pki: TestPKI, fake_llm_tls: FakeLLM, operator: OperatorProcess
) -> None:
    llm = fake_llm_tls
    llm.api_key = API_KEY
    create_ok(controlplane, secret("llm-ca", {"ca.crt": pki.ca.cert_pem.decode()}),
              namespace)
    create_ok(controlplane, secret("llm-key", {"api-key": API_KEY}), namespace)
    name = unique("llm")
    create_ok(controlplane, provider(name, llm, ca_secret="llm-ca", key_secret="llm-key"), namespace)

    # ---- Ready: every check passed against the real endpoint
    mp = wait_condition(controlplane, operator, namespace, name, "Ready", "True")
    conds = conditions_of(mp)
    for type_ in ("SecretsResolved", "CertificateValid", "EndpointReachable", "Authenticated", "ModelAvailable",
                  "ToolCallingSupported"):
        assert conds[type_]["status"] == "True", (type_, conds[type_], operator.diagnostics())
    assert conds["CertificateValid"]["reason"] == "CertificateTrusted", conds["CertificateValid"]
    status = mp["status"]
    assert status["phase"] == "Ready"
    assert status["endpoint"] == llm.base_url + "/chat/completions"
    assert "Inquest Tests" in status["certificate"]["subject"], status["certificate"]
    assert len(status["certificate"]["sha256Fingerprint"].replace(":", "")) == 64, status["certificate"]
    assert isinstance(status.get("latencyMs"), int) and status.get("lastProbeTime"), status
    # the probe really went to the fake server, with the key from the Secret, and offered tools
    assert any(r.header("authorization") == f"Bearer {API_KEY}" for r in llm.requests), "no authorized request"
    assert any(body.get("tools") for body in llm.chat_requests), "the probe never offered tools"

    # kubectl get mp shows it
    row = table_rows(table(controlplane, collection_path("ModelProvider", namespace)))[name]
    assert (row["Ready"], row["Tools"], row["Phase"]) == ("True", "True", "Ready"), row

    # ---- the CA Secret goes away: NotReady, SecretNotFound naming it, at once (watch, no restart)
    st, body = controlplane.request("DELETE", object_path("Secret", "llm-ca", namespace))
    assert st == 200, body
    mp = wait_condition(controlplane, operator, namespace, name, "SecretsResolved", "False", reason="SecretNotFound")
    conds = conditions_of(mp)
    assert f"{namespace}/llm-ca" in conds["SecretsResolved"]["message"], conds["SecretsResolved"]
    assert conds["Ready"]["status"] == "False", conds["Ready"]
    assert mp["status"]["phase"] == "NotReady", mp["status"]
    assert table_rows(table(controlplane, collection_path("ModelProvider", namespace)))[name]["Ready"] == "False"
    warnings = wait_for(
        lambda: [e for e in events_about(controlplane, namespace, name)
                 if e["type"] == "Warning" and e["reason"] == "SecretNotFound"],
        timeout=10, what="a SecretNotFound Warning event" + operator.diagnostics())
    assert "llm-ca" in warnings[0]["message"], warnings

    # ---- it comes back: Ready again, without an operator restart
    create_ok(controlplane, secret("llm-ca", {"ca.crt": pki.ca.cert_pem.decode()}),
              namespace)
    wait_condition(controlplane, operator, namespace, name, "Ready", "True")
    assert operator.starts == 1

    # ---- the API key never leaves the Secret: not in status, events or the operator's output
    final = get(controlplane, "ModelProvider", name, namespace)
    assert API_KEY not in repr(final)
    assert API_KEY not in repr(events_about(controlplane, namespace, name))
    assert API_KEY not in operator.output(), "the API key appears in the operator's output"


def test_provider_with_the_wrong_ca_is_not_trusted(
    controlplane: ControlPlane, namespace: str, pki: TestPKI, fake_llm_tls: FakeLLM, operator: OperatorProcess
) -> None:
    create_ok(controlplane, secret("other-ca", {"ca.crt": pki.other_ca.cert_pem.decode()}), namespace)
    name = unique("untrusted")
    create_ok(controlplane, provider(name, fake_llm_tls, ca_secret="other-ca"), namespace)
    mp = wait_condition(controlplane, operator, namespace, name, "CertificateValid", "False",
                        reason="UnknownAuthority")
    assert conditions_of(mp)["Ready"]["status"] == "False"
    assert mp["status"]["phase"] == "NotReady"
    assert not [r for r in fake_llm_tls.chat_requests], "a chat request went to an untrusted server"
