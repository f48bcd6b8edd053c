"""resolve_connection + build_openai_client + probe against KMock Secrets and the fake LLM (no Kopf).

Each test checks the verdict of one check; the operator-level tests (test_modelprovider.py) check
that the verdicts reach status, events and scheduling.
"""

from __future__ import annotations

import base64
import datetime
import socket
from typing import Any

import pytest
from aiohttp import web

from inquest.api.modelprovider import ModelProviderSpec
from inquest.clients.connection import ConnectionProblem, resolve, resolve_connection
from inquest.clients.llm import build_openai_client
from inquest.clients.probe import PROBE_TOOL_NAME, probe
from inquest.domain import reasons
from tests.support.certs import make_ca
from tests.support.fake_llm import auto_tool_probe, fault, hang, malformed, text, tool_call

KEY = "sk-probe-0123456789abcdef"


def spec(url: str, **fields: Any) -> ModelProviderSpec:
    return ModelProviderSpec.model_validate({"baseURL": url, "model": "test-model", **fields})


async def put_secret(kube, name: str, data: dict[str, str | bytes], type_: str = "Opaque") -> None:
    encoded = {k: base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode() for k, v in data.items()}
    body = {"apiVersion": "v1", "kind": "Secret", "type": type_,
            "metadata": {"name": name, "namespace": "default"}, "data": encoded}
    async with kube.post("/api/v1/namespaces/default/secrets", json=body) as response:
        assert response.status < 300, await response.text()


async def put_configmap(kube, name: str, data: dict[str, str]) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": data}
    async with kube.post("/api/v1/namespaces/default/configmaps", json=body) as response:
        assert response.status < 300, await response.text()


@pytest.fixture
def kclient(make_clients):
    clients = make_clients()
    yield clients.kube
    clients.close()


async def run(kclient, s: ModelProviderSpec):
    conn = await resolve_connection(kclient, "default", "p", s)
    return conn, await probe(conn)


def check(report, type_: str) -> tuple[str, str, str]:
    c = report.checks[type_]
    return c.status, c.reason, c.message


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- success paths


async def test_plain_http_all_checks_pass(kclient, llm):
    conn, report = await run(kclient, spec(llm.base_url))
    assert {t: c.status for t, c in report.checks.items()} == {
        reasons.CERTIFICATE_VALID: "True", reasons.ENDPOINT_REACHABLE: "True", reasons.AUTHENTICATED: "True",
        reasons.MODEL_AVAILABLE: "True", reasons.TOOL_CALLING_SUPPORTED: "True"}
    assert check(report, reasons.CERTIFICATE_VALID)[1] == reasons.NOT_APPLICABLE
    assert check(report, reasons.AUTHENTICATED)[1] == reasons.NO_AUTHENTICATION_REQUIRED
    assert check(report, reasons.MODEL_AVAILABLE)[1] == reasons.MODEL_LISTED
    assert check(report, reasons.TOOL_CALLING_SUPPORTED)[1] == reasons.TOOL_CALLS_RETURNED
    assert report.available_models == ["test-model"]
    assert report.latency_ms is not None and report.latency_ms >= 0
    tool_request = llm.chat_requests[-1]
    assert tool_request["tools"][0]["function"]["name"] == PROBE_TOOL_NAME
    assert tool_request["tool_choice"] == "required" and tool_request["max_tokens"] <= 128


async def test_model_prefix_openai_is_stripped(kclient, llm):
    s = ModelProviderSpec.model_validate({"baseURL": llm.base_url, "model": "openai/test-model"})
    _, report = await run(kclient, s)
    assert check(report, reasons.MODEL_AVAILABLE)[:2] == ("True", reasons.MODEL_LISTED)
    assert llm.chat_requests[-1]["model"] == "test-model"


@pytest.mark.parametrize("form", ["pem", "base64", "secret", "secret-base64", "configmap"])
async def test_ca_in_every_form_is_trusted(kclient, kube, llm_tls, pki, form):
    if form == "pem":
        tls = {"caBundle": pki.ca.cert_pem.decode()}
    elif form == "base64":
        tls = {"caBundle": pki.ca.b64_pem}
    elif form.startswith("secret"):
        await put_secret(kube, "ca", {"ca.crt": pki.ca.b64_pem if form.endswith("base64") else pki.ca.cert_pem})
        tls = {"caSecretRef": {"name": "ca", "key": "ca.crt"}}
    else:
        await put_configmap(kube, "ca", {"ca.crt": pki.ca.cert_pem.decode()})
        tls = {"caConfigMapRef": {"name": "ca", "key": "ca.crt"}}
    conn, report = await run(kclient, spec(llm_tls.base_url, tls=tls))
    status, reason, message = check(report, reasons.CERTIFICATE_VALID)
    assert (status, reason) == ("True", reasons.CERTIFICATE_TRUSTED)
    assert "CN=localhost" in message and "CN=Inquest Test CA" in message
    assert conn.ca_certificates[0].subject == "CN=Inquest Test CA,O=Inquest Tests"
    assert check(report, reasons.TOOL_CALLING_SUPPORTED)[0] == "True"


async def test_ca_only_without_system_store(kclient, llm_tls, pki):
    conn = await resolve_connection(
        kclient, "default", "p", spec(llm_tls.base_url, tls={"caBundle": pki.ca.b64_pem, "useSystemTrustStore": False}))
    assert conn.ssl_context is not None
    assert len(conn.ssl_context.get_ca_certs()) == 1  # exactly the configured CA
    report = await probe(conn)
    assert check(report, reasons.CERTIFICATE_VALID)[:2] == ("True", reasons.CERTIFICATE_TRUSTED)


# --------------------------------------------------------------------------- TLS failures


async def test_wrong_ca_is_unknown_authority_with_server_subject(kclient, llm_tls, pki):
    _, report = await run(kclient, spec(llm_tls.base_url, tls={"caBundle": pki.other_ca.b64_pem}))
    status, reason, message = check(report, reasons.CERTIFICATE_VALID)
    assert (status, reason) == ("False", reasons.UNKNOWN_AUTHORITY)
    assert "CN=localhost" in message and "issuer CN=Inquest Test CA" in message
    assert check(report, reasons.ENDPOINT_REACHABLE)[:2] == ("False", reasons.TLS_ERROR)
    assert reasons.AUTHENTICATED not in report.checks
    assert llm_tls.requests == []  # nothing but the handshake reached the server


async def test_no_ca_for_private_server_is_unknown_authority(kclient, llm_tls):
    _, report = await run(kclient, spec(llm_tls.base_url))
    status, reason, message = check(report, reasons.CERTIFICATE_VALID)
    assert (status, reason) == ("False", reasons.UNKNOWN_AUTHORITY)
    assert "system trust store" in message


async def test_expired_server_certificate(kclient, llm_factory, pki):
    server = await llm_factory(tls=pki.expired_server)
    _, report = await run(kclient, spec(server.base_url, tls={"caBundle": pki.ca.b64_pem}))
    status, reason, message = check(report, reasons.CERTIFICATE_VALID)
    assert (status, reason) == ("False", reasons.SERVER_CERTIFICATE_EXPIRED)
    assert "CN=localhost" in message and "expired on" in message


async def test_hostname_mismatch(kclient, llm_factory, pki):
    server = await llm_factory(tls=pki.wrong_host_server)
    _, report = await run(kclient, spec(server.base_url, tls={"caBundle": pki.ca.b64_pem}))
    status, reason, message = check(report, reasons.CERTIFICATE_VALID)
    assert (status, reason) == ("False", reasons.HOSTNAME_MISMATCH)
    assert "CN=wrong.example" in message and "'127.0.0.1'" in message


async def test_insecure_skip_verify_works_and_is_flagged(kclient, llm_factory, pki):
    server = await llm_factory(tls=pki.wrong_host_server)
    _, report = await run(kclient, spec(server.base_url, tls={"insecureSkipVerify": True}))
    status, reason, message = check(report, reasons.CERTIFICATE_VALID)
    assert (status, reason) == ("True", reasons.VERIFICATION_DISABLED)
    assert "INSECURE" in message and "insecureSkipVerify" in message
    assert check(report, reasons.TOOL_CALLING_SUPPORTED)[0] == "True"


async def test_mutual_tls_with_client_certificate(kclient, kube, llm_factory, pki):
    server = await llm_factory(tls=pki.server, client_ca=pki.ca)
    await put_secret(kube, "client", {"tls.crt": pki.client.cert_pem, "tls.key": pki.client.key_pem},
                     "kubernetes.io/tls")
    conn, report = await run(kclient, spec(server.base_url, tls={
        "caBundle": pki.ca.b64_pem, "clientCertificateSecretRef": {"name": "client"}}))
    assert conn.client_certificate is not None and "inquest-client" in conn.client_certificate.subject
    assert check(report, reasons.CERTIFICATE_VALID)[:2] == ("True", reasons.CERTIFICATE_TRUSTED)
    assert check(report, reasons.TOOL_CALLING_SUPPORTED)[0] == "True"
    # the agent's client (same factory) works too
    async with build_openai_client(conn) as client:
        answer = await client.chat.completions.create(model=conn.model, messages=[{"role": "user", "content": "x"}])
    assert answer.choices[0].message is not None


async def test_mutual_tls_without_client_certificate(kclient, llm_factory, pki):
    server = await llm_factory(tls=pki.server, client_ca=pki.ca)
    _, report = await run(kclient, spec(server.base_url, tls={"caBundle": pki.ca.b64_pem}))
    status, reason, message = check(report, reasons.CERTIFICATE_VALID)
    assert (status, reason) == ("False", reasons.CLIENT_CERTIFICATE_REQUIRED)
    assert "clientCertificateSecretRef" in message


async def test_mutual_tls_with_a_foreign_client_certificate(kclient, kube, llm_factory, pki):
    server = await llm_factory(tls=pki.server, client_ca=pki.ca)
    await put_secret(kube, "client", {"tls.crt": pki.other_client.cert_pem, "tls.key": pki.other_client.key_pem},
                     "kubernetes.io/tls")
    _, report = await run(kclient, spec(server.base_url, tls={
        "caBundle": pki.ca.b64_pem, "clientCertificateSecretRef": {"name": "client"}}))
    status, reason, message = check(report, reasons.CERTIFICATE_VALID)
    assert (status, reason) == ("False", reasons.CLIENT_CERTIFICATE_REJECTED)
    assert "inquest-other-client" in message


async def test_https_url_on_a_plain_http_server(kclient, llm):
    _, report = await run(kclient, spec(llm.base_url.replace("http://", "https://")))
    status, reason, message = check(report, reasons.CERTIFICATE_VALID)
    assert (status, reason) == ("False", reasons.TLS_HANDSHAKE_FAILED)
    assert "http://" in message


# --------------------------------------------------------------------------- endpoint failures


async def test_connection_refused(kclient):
    port = free_port()
    _, report = await run(kclient, spec(f"http://127.0.0.1:{port}/v1"))
    status, reason, message = check(report, reasons.ENDPOINT_REACHABLE)
    assert (status, reason) == ("False", reasons.CONNECTION_REFUSED)
    assert f"127.0.0.1:{port}" in message


async def test_connection_refused_on_https(kclient, pki):
    port = free_port()
    _, report = await run(kclient, spec(f"https://127.0.0.1:{port}/v1", tls={"caBundle": pki.ca.b64_pem}))
    assert check(report, reasons.ENDPOINT_REACHABLE)[:2] == ("False", reasons.CONNECTION_REFUSED)
    assert check(report, reasons.CERTIFICATE_VALID)[:2] == ("Unknown", reasons.ENDPOINT_UNREACHABLE)


async def test_dns_failure(kclient):
    _, report = await run(kclient, spec("http://inquest-no-such-host.invalid/v1"))
    status, reason, message = check(report, reasons.ENDPOINT_REACHABLE)
    assert (status, reason) == ("False", reasons.DNS_FAILURE)
    assert "inquest-no-such-host.invalid" in message


async def test_timeout(kclient, llm_factory):
    server = await llm_factory(models_endpoint=False)
    server.script(hang(10))
    _, report = await run(kclient, spec(server.base_url, requestTimeoutSeconds=1))
    status, reason, message = check(report, reasons.ENDPOINT_REACHABLE)
    assert (status, reason) == ("False", reasons.TIMEOUT)
    assert "within 1 s" in message


async def test_server_error_is_http_error_with_url(kclient, llm_factory):
    server = await llm_factory(models_endpoint=False)
    server.script(fault(503))
    _, report = await run(kclient, spec(server.base_url))
    status, reason, message = check(report, reasons.ENDPOINT_REACHABLE)
    assert (status, reason) == ("False", reasons.HTTP_ERROR)
    assert "503" in message and server.base_url + "/chat/completions" in message


async def test_rate_limited(kclient, llm_factory):
    server = await llm_factory(models_endpoint=False)
    server.script(fault(429, headers={"Retry-After": "7"}))
    _, report = await run(kclient, spec(server.base_url))
    status, reason, message = check(report, reasons.ENDPOINT_REACHABLE)
    assert (status, reason) == ("False", reasons.RATE_LIMITED)
    assert "Retry-After: 7" in message


async def test_base_url_without_v1_names_the_fix(kclient, llm):
    root = llm.url  # the fake LLM serves /v1 only: the LiteLLM "Not Found" trap
    _, report = await run(kclient, spec(root))
    status, reason, message = check(report, reasons.ENDPOINT_REACHABLE)
    assert (status, reason) == ("False", reasons.HTTP_ERROR)
    assert "404" in message and f"set spec.baseURL to {root}/v1" in message


async def test_html_instead_of_api_is_unexpected_response(kclient, aiohttp_html_server):
    _, report = await run(kclient, spec(aiohttp_html_server + "/v1"))
    status, reason, message = check(report, reasons.ENDPOINT_REACHABLE)
    assert (status, reason) == ("False", reasons.UNEXPECTED_RESPONSE)
    assert "text/html" in message


@pytest.fixture
async def aiohttp_html_server():
    """A web UI answering 200 text/html to everything (a baseURL pointing at the wrong service)."""
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html><body>Welcome</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


# --------------------------------------------------------------------------- auth and model


async def test_invalid_api_key(kclient, kube, llm_factory):
    server = await llm_factory(api_key="sk-the-right-one")
    await put_secret(kube, "key", {"api-key": KEY})
    _, report = await run(kclient, spec(server.base_url, apiKeySecretRef={"name": "key", "key": "api-key"}))
    status, reason, message = check(report, reasons.AUTHENTICATED)
    assert (status, reason) == ("False", reasons.INVALID_API_KEY)
    assert "401" in message and KEY not in message
    assert check(report, reasons.ENDPOINT_REACHABLE)[0] == "True"
    assert reasons.MODEL_AVAILABLE not in report.checks


async def test_missing_api_key(kclient, llm_factory):
    server = await llm_factory(api_key="sk-the-right-one")
    _, report = await run(kclient, spec(server.base_url))
    assert check(report, reasons.AUTHENTICATED)[:2] == ("False", reasons.API_KEY_REQUIRED)


async def test_key_with_trailing_newline_is_sent_bare(kclient, kube, llm_factory):
    server = await llm_factory(api_key=KEY)
    await put_secret(kube, "key", {"api-key": KEY + "\n"})
    _, report = await run(kclient, spec(server.base_url, apiKeySecretRef={"name": "key", "key": "api-key"}))
    assert check(report, reasons.AUTHENTICATED)[:2] == ("True", reasons.AUTHENTICATED_OK)
    assert server.requests[0].header("authorization") == f"Bearer {KEY}"


async def test_server_echoing_the_key_is_redacted(kclient, kube, llm_factory):
    server = await llm_factory(models_endpoint=False)
    server.script(fault(401, body={"error": {"message": f"Incorrect API key provided: {KEY}. See docs."}}))
    await put_secret(kube, "key", {"api-key": KEY})
    _, report = await run(kclient, spec(server.base_url, apiKeySecretRef={"name": "key", "key": "api-key"}))
    status, reason, message = check(report, reasons.AUTHENTICATED)
    assert (status, reason) == ("False", reasons.INVALID_API_KEY)
    assert KEY not in message and KEY[:8] not in message and "[redacted]" in message


async def test_model_not_found_names_served_models(kclient, llm_factory):
    server = await llm_factory(models=[f"m{i}" for i in range(12)])
    _, report = await run(kclient, spec(server.base_url, model="nope"))
    status, reason, message = check(report, reasons.MODEL_AVAILABLE)
    assert (status, reason) == ("False", reasons.MODEL_NOT_FOUND)
    assert "'nope'" in message and "m0, m1" in message and "m9" in message and "and 2 more" in message
    assert "m10" not in message.split("and 2 more")[0]
    assert reasons.TOOL_CALLING_SUPPORTED not in report.checks


async def test_unlisted_model_that_the_server_accepts(kclient, llm_factory):
    server = await llm_factory(models=None)  # lists nothing, accepts any model (llama.cpp-like)
    _, report = await run(kclient, spec(server.base_url, model="whatever"))
    assert check(report, reasons.MODEL_AVAILABLE)[:2] == ("True", reasons.MODEL_ACCEPTED)
    assert check(report, reasons.TOOL_CALLING_SUPPORTED)[0] == "True"


async def test_no_models_endpoint_falls_back_to_one_token_chat(kclient, llm_factory):
    server = await llm_factory(models_endpoint=False)
    _, report = await run(kclient, spec(server.base_url))
    assert check(report, reasons.ENDPOINT_REACHABLE)[0] == "True"
    assert check(report, reasons.MODEL_AVAILABLE)[:2] == ("True", reasons.MODEL_ACCEPTED)
    assert server.chat_requests[0]["max_tokens"] == 1 and "tools" not in server.chat_requests[0]
    assert report.available_models is None


async def test_no_models_endpoint_and_unknown_model(kclient, llm_factory):
    server = await llm_factory(models_endpoint=False)
    _, report = await run(kclient, spec(server.base_url, model="nope"))
    status, reason, message = check(report, reasons.MODEL_AVAILABLE)
    assert (status, reason) == ("False", reasons.MODEL_NOT_FOUND)
    assert "does not exist" in message


# --------------------------------------------------------------------------- tool calling


async def test_model_that_ignores_tools(kclient, llm_factory):
    server = await llm_factory(ignores_tools=True)
    _, report = await run(kclient, spec(server.base_url))
    status, reason, message = check(report, reasons.TOOL_CALLING_SUPPORTED)
    assert (status, reason) == ("False", reasons.TOOL_CALLS_IGNORED)
    assert "instead of a tool call" in message and "--enable-auto-tool-choice" in message


async def test_tool_call_written_as_text(kclient, llm):
    llm.script(text(f'<tool_call>{{"name": "{PROBE_TOOL_NAME}", "arguments": {{"message": "pong"}}}}</tool_call>'))
    _, report = await run(kclient, spec(llm.base_url))
    status, reason, message = check(report, reasons.TOOL_CALLING_SUPPORTED)
    assert (status, reason) == ("False", reasons.TOOL_CALLS_IGNORED)
    assert "parser" in message


async def test_tool_choice_required_rejected_falls_back_to_auto(kclient, llm):
    llm.script(fault(400, body={"error": {"message": "tool_choice 'required' is not supported"}}))
    _, report = await run(kclient, spec(llm.base_url))
    assert check(report, reasons.TOOL_CALLING_SUPPORTED)[:2] == ("True", reasons.TOOL_CALLS_RETURNED)
    assert [r.get("tool_choice") for r in llm.chat_requests] == ["required", "auto"]


async def test_reasoning_model_parameters_are_adapted(kclient, llm_factory):
    """OpenAI reasoning models refuse max_tokens and a non-default temperature with a 400."""
    def reasoning(request: dict[str, Any]):
        if "max_tokens" in request:
            return fault(400, body={"error": {"message": "Unsupported parameter: 'max_tokens' is not supported "
                                              "with this model. Use 'max_completion_tokens' instead."}})
        if "temperature" in request:
            return fault(400, body={"error": {"message": "Unsupported value: 'temperature' does not support 0 "
                                              "with this model. Only the default (1) value is supported."}})
        return auto_tool_probe(request)

    server = await llm_factory(models_endpoint=False, default=reasoning)
    _, report = await run(kclient, spec(server.base_url))
    assert check(report, reasons.MODEL_AVAILABLE)[:2] == ("True", reasons.MODEL_ACCEPTED)
    assert check(report, reasons.TOOL_CALLING_SUPPORTED)[:2] == ("True", reasons.TOOL_CALLS_RETURNED)
    last = server.chat_requests[-1]
    assert "max_tokens" not in last and "temperature" not in last and last["tool_choice"] == "required"
    assert last["max_completion_tokens"] == 128


async def test_tools_rejected_shows_server_text(kclient, llm):
    error = {"error": {"message": '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser'}}
    llm.script(fault(400, body=error), fault(400, body=error))
    _, report = await run(kclient, spec(llm.base_url))
    status, reason, message = check(report, reasons.TOOL_CALLING_SUPPORTED)
    assert (status, reason) == ("False", reasons.TOOL_CALL_REJECTED)
    assert "--enable-auto-tool-choice" in message and "400" in message


async def test_tool_call_with_broken_arguments(kclient, llm):
    llm.script(tool_call(PROBE_TOOL_NAME, '{"message": "pong"'))
    _, report = await run(kclient, spec(llm.base_url))
    assert check(report, reasons.TOOL_CALLING_SUPPORTED)[:2] == ("False", reasons.TOOL_CALL_MALFORMED)


async def test_malformed_json_answer(kclient, llm):
    llm.script(malformed())
    _, report = await run(kclient, spec(llm.base_url))
    status, reason, _ = check(report, reasons.TOOL_CALLING_SUPPORTED)
    assert (status, reason) == ("False", reasons.UNEXPECTED_RESPONSE)


# --------------------------------------------------------------------------- custom gateway path


@pytest.fixture
async def gateway():
    """A gateway with a custom chat path: chat at /llm/team-a/chat, models at /llm/team-a/models."""
    seen: list[str] = []

    async def chat(request: web.Request) -> web.Response:
        seen.append(request.path)
        body = await request.json()
        message: dict[str, Any] = {"role": "assistant", "content": "ok"}
        if body.get("tools"):
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": PROBE_TOOL_NAME, "arguments": "{}"}}]}
        return web.json_response({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                  "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})

    async def models(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"object": "list", "data": [{"id": "test-model", "object": "model"}]})

    async def other(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"error": {"message": "Not Found"}}, status=404)

    app = web.Application()
    app.router.add_post("/llm/team-a/chat", chat)
    app.router.add_get("/llm/team-a/models", models)
    app.router.add_route("*", "/{tail:.*}", other)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/llm/team-a/chat", seen
    await runner.cleanup()


async def test_custom_gateway_chat_path(kclient, gateway):
    url, seen = gateway
    conn, report = await run(kclient, spec(url))
    assert all(c.status == "True" for c in report.checks.values()), report.checks
    assert set(seen) == {"/llm/team-a/models", "/llm/team-a/chat"}
    seen.clear()
    async with build_openai_client(conn) as client:  # the agent's path: exactly chat_url
        await client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
    assert seen == ["/llm/team-a/chat"]


# --------------------------------------------------------------------------- resolution problems


async def test_resolution_names_object_and_key_never_the_value(kclient, kube):
    await put_secret(kube, "key", {"other": KEY, "empty": "  \n"})
    s = spec("http://127.0.0.1:1/v1", apiKeySecretRef={"name": "key", "key": "api-key"},
             headers=[{"name": "X-Team", "valueFrom": {"secretKeyRef": {"name": "key", "key": "empty"}}},
                      {"name": "X-Org", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "org"}}}],
             tls={"caConfigMapRef": {"name": "no-cm", "key": "ca.crt"}})
    result = await resolve(kclient, "default", "p", s)
    found = [(p.condition, p.reason) for p in result.problems]
    assert (reasons.SECRETS_RESOLVED, reasons.SECRET_KEY_NOT_FOUND) in found
    assert (reasons.SECRETS_RESOLVED, reasons.SECRET_VALUE_EMPTY) in found
    assert (reasons.SECRETS_RESOLVED, reasons.SECRET_NOT_FOUND) in found
    assert (reasons.SECRETS_RESOLVED, reasons.CONFIGMAP_NOT_FOUND) in found
    text_all = " ".join(p.message for p in result.problems)
    assert "Secret default/key has no key 'api-key'" in text_all and "its keys: empty, other" in text_all
    assert "Secret default/absent not found" in text_all and "ConfigMap default/no-cm not found" in text_all
    assert KEY not in text_all
    with pytest.raises(ConnectionProblem) as caught:
        await resolve_connection(kclient, "default", "p", s)
    assert caught.value.condition == reasons.SECRETS_RESOLVED and KEY not in str(caught.value)


async def test_resolution_of_bad_certificates(kclient, kube, pki):
    expiring = make_ca("Short CA", not_after=datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3))
    cases = [
        ({"caBundle": "bm90IGEgY2VydA=="}, reasons.INVALID_CERTIFICATE),
        ({"caBundle": pki.non_ca.b64_pem}, reasons.NOT_A_CERTIFICATE_AUTHORITY),
        ({"caBundle": pki.expired_ca.b64_pem}, reasons.CERTIFICATE_EXPIRED),
        ({"caBundle": pki.not_yet_valid_ca.b64_pem}, reasons.CERTIFICATE_NOT_YET_VALID),
    ]
    for tls, reason in cases:
        result = await resolve(kclient, "default", "p", spec("https://127.0.0.1:1/v1", tls=tls))
        assert [(p.condition, p.reason) for p in result.problems] == [(reasons.CERTIFICATE_VALID, reason)], tls
    ok = await resolve(kclient, "default", "p", spec("https://127.0.0.1:1/v1", tls={
        "caBundle": base64.b64encode(expiring.cert_pem + pki.ca.cert_pem).decode()}))
    assert ok.problems == [] and [c.subject.split(",")[0] for c in ok.ca_certificates] == [
        "CN=Short CA", "CN=Inquest Test CA"]
    await put_secret(kube, "client", {"tls.crt": pki.client.cert_pem, "tls.key": pki.other_client.key_pem})
    mismatch = await resolve(kclient, "default", "p", spec("https://127.0.0.1:1/v1", tls={
        "clientCertificateSecretRef": {"name": "client"}}))
    assert [p.reason for p in mismatch.problems] == [reasons.INVALID_CLIENT_CERTIFICATE]
    assert "does not belong" in mismatch.problems[0].message


async def test_invalid_url_is_a_connection_problem(kclient):
    s = spec("http://h:99999/v1")  # the schema admits 5 digits; the port is out of range
    with pytest.raises(ConnectionProblem) as caught:
        await resolve_connection(kclient, "default", "p", s)
    assert (caught.value.condition, caught.value.reason) == (reasons.ENDPOINT_REACHABLE, reasons.INVALID_URL)
    assert caught.value.needs_edit


async def test_secret_header_values_are_sent_and_redacted(kclient, kube, llm_factory):
    server = await llm_factory(models_endpoint=False)
    await put_secret(kube, "hdr", {"token": "tenant-secret-value-123456"})
    server.script(fault(403, body={"error": {"message": "tenant-secret-value-123456 is not allowed"}}))
    conn, report = await run(kclient, spec(server.base_url, headers=[
        {"name": "X-Tenant", "valueFrom": {"secretKeyRef": {"name": "hdr", "key": "token"}}},
        {"name": "X-Plain", "value": "visible"}]))
    assert server.requests[0].header("x-tenant") == "tenant-secret-value-123456"
    assert server.requests[0].header("x-plain") == "visible"
    assert "tenant-secret-value-123456" not in repr(conn)
    message = check(report, reasons.AUTHENTICATED)[2]
    assert "tenant-secret-value-123456" not in message and "[redacted]" in message
