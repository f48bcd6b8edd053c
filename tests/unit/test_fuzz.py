"""Property-based fuzzing (hypothesis): generated ModelProvider and Investigation specs, tool arguments
and model responses. The property each time: no exception escapes, and the outcome is named (a
reason from the reason tables, a tool error the model can read, a run outcome).

Case counts are fixed (``max_examples``) so CI time stays known; run with
``--hypothesis-show-statistics`` to see them per property, and with ``INQUEST_FUZZ_SCALE=10`` for a
longer hunt.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import string
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from inquest.agent import model as model_module
from inquest.agent.budget import ContextBudget
from inquest.agent.loop import Agent, AgentConfig
from inquest.agent.model import ModelError, ModelReply, ToolCallRequest, to_reply
from inquest.agent.tools import ToolContext, default_registry
from inquest.api.investigation import InvestigationSpec, InvestigationStatus
from inquest.api.modelprovider import Pricing
from inquest.domain import certificates, endpoints, provider, reasons
from inquest.domain import investigation as inv
from tests.support.certs import get_pki
from tests.unit.test_agent_fakes import FakeKube, crashloop_scene

CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]+$")
PROVIDER_REASONS = {v for k, v in vars(reasons).items() if k.isupper() and isinstance(v, str)}
INVESTIGATION_REASONS = {v for k, v in vars(inv).items() if k.startswith("R_") and isinstance(v, str)}
RUN_REASONS = INVESTIGATION_REASONS | {"ContextWindowExceeded"}
NOW = datetime(2026, 1, 1, tzinfo=UTC)
SECRETS_PATH = re.compile(r"^/api/v1/(?:namespaces/[^/]+/)?secrets(?:/|$)")


def fuzz(max_examples: int) -> Any:
    """Fixed case counts; INQUEST_FUZZ_SCALE=10 multiplies them for a longer hunt."""
    scale = max(1, int(os.environ.get("INQUEST_FUZZ_SCALE", "1")))
    return settings(max_examples=max_examples * scale, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------- generators

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**63, max_value=2**64),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
                    st.sampled_from(["", "https://", "http://[::1", "openai/gpt-4o", "a" * 300, "\x00", "🦄"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)


def objects_with(keys: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts made of known keys (sometimes with their right type, sometimes anything) and unknown keys."""
    fields = {k: st.one_of(v, json_values) for k, v in keys.items()}
    return st.fixed_dictionaries({}, optional=fields).flatmap(
        lambda known: st.dictionaries(st.text(max_size=10), json_values, max_size=2).map(
            lambda extra: {**extra, **known}))


urls = st.one_of(st.text(max_size=60), st.builds(
    lambda scheme, host, port, path, tail: f"{scheme}{host}{port}{path}{tail}",
    st.sampled_from(["http://", "https://", "ftp://", "", "HTTPS://", "http:/"]),
    st.sampled_from(["llm.example.com", "127.0.0.1", "[::1]", "[::1", "[abc]", "", "user:pw@host", "höst", "a b"]),
    st.sampled_from(["", ":8080", ":0", ":99999", ":abc", ":"]),
    st.sampled_from(["", "/", "/v1", "/v1/chat/completions", "/openai/deployments/x/chat", "/api/generate", "/%zz"]),
    st.sampled_from(["", "?x=1", "#frag", "/", "//"])))
refs = objects_with({"name": st.text(max_size=20), "key": st.text(max_size=20)})
provider_specs = st.one_of(json_values, objects_with({
    "baseURL": urls,
    "model": st.text(max_size=30),
    "apiKeySecretRef": refs,
    "tls": objects_with({"caBundle": st.text(max_size=50), "caSecretRef": refs, "caConfigMapRef": refs,
                         "clientCertificateSecretRef": refs, "insecureSkipVerify": st.booleans()}),
    "headers": st.lists(objects_with({"name": st.text(max_size=20), "value": st.text(max_size=20),
                                      "valueFrom": objects_with({"secretKeyRef": refs})}), max_size=3),
    "parameters": objects_with({"temperature": st.floats(), "contextWindow": st.integers(),
                                "maxOutputTokens": st.integers()}),
    "pricing": objects_with({"inputPerMillionTokens": st.floats(), "outputPerMillionTokens": st.floats()}),
    "maxRetries": st.integers(), "requestTimeoutSeconds": st.integers(), "probeIntervalSeconds": st.integers(),
    "maxConcurrentInvestigations": st.integers(), "allowedNamespaces": st.lists(st.text(max_size=10), max_size=3),
}))
investigation_specs = st.one_of(json_values, objects_with({
    "question": st.text(max_size=200),
    "providerRef": objects_with({"name": st.text(max_size=20), "namespace": st.text(max_size=20)}),
    "scope": objects_with({"namespaces": st.lists(st.text(max_size=12), max_size=3),
                           "resources": st.lists(objects_with({"kind": st.text(max_size=10),
                                                               "name": st.text(max_size=10),
                                                               "namespace": st.text(max_size=10)}), max_size=3)}),
    "limits": objects_with({"maxSteps": st.integers(), "timeoutSeconds": st.integers(),
                            "maxTokens": st.integers(), "maxCost": st.floats()}),
    "serviceAccountName": st.text(max_size=30),
    "ttlSecondsAfterFinished": st.integers(),
}))


# --------------------------------------------------------------------------- ModelProvider


@fuzz(400)
@given(raw=provider_specs, generation=st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)))
def test_provider_specs_get_named_reasons(raw, generation):
    spec, problems = provider.parse_spec(raw if isinstance(raw, dict) else {"baseURL": raw})
    assert (spec is None) == bool(problems)
    for p in problems:
        assert p.reason in PROVIDER_REASONS and p.condition in reasons.CONDITION_TYPES and p.message
    verdict = provider.evaluate(problems=problems, resolved=spec is not None, model="m", now=NOW,
                                endpoint=provider.endpoint_of(raw if isinstance(raw, dict) else None))
    assert verdict.phase in ("Ready", "NotReady", "Invalid")
    assert all(c.reason in PROVIDER_REASONS and CAMEL.match(c.reason) for c in verdict.conditions)
    status, _ = provider.build_status(None, verdict, generation=generation, endpoint=None, now=NOW)
    assert status["conditions"][0]["type"] == "Ready"


@fuzz(200)
@given(raw=objects_with({"apiKeySecretRef": refs, "headers": st.lists(json_values, max_size=3),
                         "tls": json_values}))
def test_provider_references_of_any_spec(raw):
    """Which Secrets/ConfigMaps a spec references, whatever shape a server without schema validation
    let through (the handler indexes them to notice rotations)."""
    keys = provider.reference_keys("default", raw)
    assert all(kind in ("Secret", "ConfigMap") and isinstance(name, str) and name for kind, _, name in keys)


@fuzz(300)
@given(url=urls)
def test_endpoint_urls_resolve_or_say_why(url):
    try:
        ends = endpoints.resolve(url)
    except endpoints.InvalidURL as exc:
        assert str(exc).startswith("baseURL ")
        return
    assert ends.chat_url.startswith(("http://", "https://")) and ends.models_url.endswith("/models")


def _mangled(pem: bytes, data: st.DataObject) -> bytes:
    how = data.draw(st.sampled_from(["flip", "cut", "base64", "base64-cut", "double", "garbage-body", "asis"]))
    if how == "flip":
        i = data.draw(st.integers(min_value=0, max_value=len(pem) - 1))
        return pem[:i] + bytes([pem[i] ^ data.draw(st.integers(min_value=1, max_value=255))]) + pem[i + 1:]
    if how == "cut":
        return pem[: data.draw(st.integers(min_value=0, max_value=len(pem)))]
    if how == "base64":
        return base64.b64encode(pem)
    if how == "base64-cut":
        encoded = base64.b64encode(pem)
        return encoded[: data.draw(st.integers(min_value=0, max_value=len(encoded)))]
    if how == "double":
        return pem + b"\n" + pem
    if how == "garbage-body":
        return b"-----BEGIN CERTIFICATE-----\n" + data.draw(st.binary(max_size=200)) + b"\n-----END CERTIFICATE-----\n"
    return pem


@fuzz(250)
@given(data=st.data())
def test_certificates_parse_or_name_the_problem(data):
    pki = get_pki()
    source = data.draw(st.sampled_from([pki.ca, pki.expired_ca, pki.non_ca, pki.server, pki.client]))
    bundle = data.draw(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                                 st.just(source.cert_pem).map(lambda p: p)).map(lambda b: b))
    if data.draw(st.booleans()):
        bundle = _mangled(source.cert_pem, data)
    try:
        pem, infos = certificates.load_ca_bundle(bundle, source="caBundle", now=NOW)
        assert pem and infos
    except certificates.CertificateProblem as exc:
        assert exc.reason in PROVIDER_REASONS and exc.message
    key = data.draw(st.sampled_from([pki.client.key_pem, pki.server.key_pem, b"", b"garbage"]))
    try:
        certificates.load_client_certificate(_mangled(pki.client.cert_pem, data), key, source="Secret x", now=NOW)
    except certificates.CertificateProblem as exc:
        assert exc.reason in PROVIDER_REASONS
        assert b"PRIVATE" not in exc.message.encode() and "MI" not in exc.message  # no key material


# --------------------------------------------------------------------------- Investigation


@fuzz(400)
@given(raw=investigation_specs)
def test_investigation_specs_are_valid_or_say_why(raw):
    try:
        spec = InvestigationSpec.model_validate(raw)
    except ValidationError as exc:
        assert inv.describe_validation_error(exc)  # what the InvalidSpec event says
        return
    namespaces = inv.scope_namespaces("default", spec)
    assert namespaces and all(isinstance(n, str) and n for n in namespaces)
    user = inv.impersonation_user("default", spec)
    assert user is None or user.startswith("system:serviceaccount:default:")
    assert isinstance(inv.provider_allowed("other", "default", spec.scope.namespaces if spec.scope else []), bool)


# Statuses as the CRD's schema lets them be stored (a real API server validates the status
# subresource's types; values are anything the types allow).
crd_statuses = st.fixed_dictionaries({}, optional={
    "phase": st.sampled_from(["Pending", "Running", "Succeeded", "Failed"]),
    "restarts": st.integers(min_value=-2**31, max_value=2**31),
    "observedGeneration": st.integers(min_value=-5, max_value=2**40),
    "completionTime": st.text(max_size=30),
    "usage": st.fixed_dictionaries({}, optional={"promptTokens": st.integers(), "completionTokens": st.integers()}),
    "conditions": st.lists(st.fixed_dictionaries({}, optional={
        "type": st.sampled_from(["Succeeded", "ProviderReady", "Restarted", "SpecImmutable", "X", ""]),
        "status": st.sampled_from(["True", "False", "Unknown", ""]), "reason": st.text(max_size=20),
        "message": st.text(max_size=50), "lastTransitionTime": st.text(max_size=25),
        "observedGeneration": st.integers()}), max_size=4, unique_by=lambda c: c.get("type")),
})  # (duplicate condition types are storable too; conditions.merge then updates the last: reported)


@fuzz(400)
@given(status=st.one_of(st.none(), crd_statuses), generation=st.one_of(st.none(), st.integers(0, 2**40)),
       phase=st.sampled_from([inv.PENDING, inv.RUNNING, inv.SUCCEEDED, inv.FAILED]),
       reason=st.sampled_from(sorted(INVESTIGATION_REASONS)))
def test_investigation_statuses_get_a_start_decision_and_a_named_condition(status, generation, phase, reason):
    decision = inv.decide_start(status, generation)
    assert decision.action in ("finished", "fresh", "resume_pending", "restart", "fail_restart_limit",
                               "fail_spec_changed")
    patch, _ = inv.status_patch(status, phase=phase, reason=reason, message="m" * 5000, generation=generation,
                                now=NOW)
    verdict = inv.conditions.find(patch["conditions"], inv.COND_SUCCEEDED)
    assert verdict is not None and verdict["reason"] == reason and CAMEL.match(reason)
    assert len(patch["message"]) <= 1000 and len(verdict["message"]) <= 1024
    usage = inv.UsageTotals.from_status((status or {}).get("usage"))
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


@fuzz(300)
@given(raw=st.one_of(json_values, st.text(max_size=300), objects_with({
    "summary": json_values, "answer": json_values,
    "findings": st.one_of(json_values, st.lists(objects_with({
        "severity": st.text(max_size=10), "title": json_values, "detail": json_values, "evidence": json_values,
        "remediation": json_values, "resource": json_values}), max_size=4))})))
def test_submissions_are_accepted_or_refused_with_a_reason(raw):
    try:
        submission = inv.parse_submission(raw if not isinstance(raw, dict) else json.dumps(raw))
    except inv.InvalidSubmission as exc:
        assert str(exc)
        return
    record = inv.RunRecord()
    record.accept(submission)
    fields = inv.progress_fields(record, None)
    InvestigationStatus.model_validate(fields)  # within the CRD's bounds


# --------------------------------------------------------------------------- tool arguments

REGISTRY = default_registry()
TOOL_PARAMS = {name: list(tool.parameters.get("properties", {})) for name, tool in REGISTRY.tools.items()}
huge = st.sampled_from(["x" * 100_000, "pods" * 20_000, "../" * 1000, "\x00" * 100, "(a+)+$", "ü" * 5000])
arg_values = st.one_of(json_values, huge, st.sampled_from(["pods", "secrets", "Secret.v1.", "default", "*", "..",
                                                           "checkout-7d9f-abcde", "app", -1, 0, 10**12, True]))


@st.composite
def tool_arguments(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.one_of(st.sampled_from(list(TOOL_PARAMS)), st.text(max_size=30), huge))
    params = TOOL_PARAMS.get(name, [])
    kind = draw(st.sampled_from(["object", "broken", "not-object", "empty"]))
    if kind == "object":
        keys = draw(st.lists(st.one_of(st.sampled_from(params or ["x"]), st.text(max_size=10)), max_size=5))
        return name, json.dumps({k: draw(arg_values) for k in keys})
    if kind == "broken":
        text = json.dumps({k: draw(arg_values) for k in params[:2]})
        return name, text[: draw(st.integers(min_value=0, max_value=max(0, len(text) - 1)))] + draw(
            st.sampled_from(["", "}", "{", "\\", '"', "\x00", "NaN", "]"]))
    if kind == "not-object":
        return name, json.dumps(draw(st.one_of(scalars, st.lists(scalars, max_size=3))))
    return name, draw(st.sampled_from(["", "   ", "null", "{}"]))


@fuzz(500)
@given(call=tool_arguments(), scope=st.sampled_from([[], ["default"], ["*"], ["default", "other"]]))
def test_tool_arguments_always_give_a_result_or_a_tool_error(call, scope):
    name, arguments = call
    objects, logs = crashloop_scene()
    kube = FakeKube(objects, logs)
    ctx = ToolContext(kube, "default", scope=scope, now=lambda: NOW)  # type: ignore[arg-type]
    outcome = asyncio.run(REGISTRY.call(ctx, name, arguments))
    assert isinstance(outcome.text, str) and outcome.text
    if outcome.error is not None:
        assert outcome.text.startswith("error: ") and "failed unexpectedly" not in outcome.error, outcome.error
    assert not any(SECRETS_PATH.search(path) for path, _, _ in kube.calls)
    assert len(outcome.text) < 400_000


# --------------------------------------------------------------------------- model responses

tool_names = st.one_of(st.sampled_from(list(TOOL_PARAMS)), st.text(max_size=20), huge)
raw_arguments = st.one_of(tool_arguments().map(lambda c: c[1]), st.text(max_size=50), huge,
                          st.sampled_from(['{"summary": "s", "answer": "a"}', '{"findings": 5}', "{" * 500]))
tool_call_requests = st.builds(ToolCallRequest, id=st.one_of(st.just(""), st.text(max_size=8), st.just("dup")),
                               name=tool_names, arguments=raw_arguments)
usage_numbers = st.one_of(st.none(), st.integers(min_value=-100, max_value=10**7))
replies = st.one_of(
    st.builds(ModelReply, content=st.one_of(st.none(), st.text(max_size=200), huge,
                                            st.just("```json\n{\"summary\": \"s\", \"findings\": [{}]}\n```")),
              tool_calls=st.lists(tool_call_requests, max_size=4), prompt_tokens=usage_numbers,
              completion_tokens=usage_numbers, finish_reason=st.one_of(st.none(), st.text(max_size=10))),
    st.builds(ModelError, kind=st.sampled_from(["rate_limited", "unavailable", "timeout", "malformed", "auth",
                                                "not_found", "rejected"]),
              message=st.text(max_size=60), status=st.one_of(st.none(), st.integers(400, 599)),
              retry_after=st.one_of(st.none(), st.floats(min_value=0, max_value=0.01))),
)


class ListModel:
    name = "fuzz-model"

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.calls = 0

    async def complete(self, messages: Any, tools: Any, *, max_tokens: int | None, timeout: float) -> ModelReply:
        self.calls += 1
        item = self.items.pop(0) if self.items else ModelReply(content="the end")
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[no-any-return]

    async def close(self) -> None:
        return None


@fuzz(300)
@given(items=st.lists(replies, min_size=1, max_size=6), max_steps=st.integers(min_value=1, max_value=6),
       window=st.sampled_from([1024, 4096, 32768]), max_tokens=st.one_of(st.none(), st.integers(1, 20_000)),
       max_cost=st.one_of(st.none(), st.floats(min_value=0, max_value=0.01)))
def test_any_model_behaviour_ends_the_run_with_a_named_outcome(items, max_steps, window, max_tokens, max_cost):
    async def run() -> Any:
        objects, logs = crashloop_scene()
        loop = asyncio.get_running_loop()
        config = AgentConfig(max_steps=max_steps, deadline=loop.time() + 20, budget=ContextBudget.for_window(window),
                             max_tokens=max_tokens, max_cost=max_cost, request_timeout=5, max_retries=1,
                             pricing=Pricing(input_per_million_tokens=1, output_per_million_tokens=2))
        ctx = ToolContext(FakeKube(objects, logs), "default", scope=["default"])  # type: ignore[arg-type]
        return await Agent(ListModel(list(items)), REGISTRY, ctx, config).run("Why does checkout restart?")

    with patch.object(model_module, "BACKOFF_BASE", 0.001):  # retries without the real back-off
        outcome = asyncio.run(run())
    assert outcome.reason in RUN_REASONS and CAMEL.match(outcome.reason) and outcome.message
    assert outcome.record.steps <= max_steps
    assert all(c.error is None or "failed unexpectedly" not in c.error for c in outcome.record.tool_calls)
    fields = inv.progress_fields(outcome.record, None)
    InvestigationStatus.model_validate({**fields, "message": outcome.message[:1000]})  # the CRD's bounds
    assert len(json.dumps(fields)) < 160_000


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


functions = st.builds(lambda n, a: SimpleNamespace(name=n, arguments=a), maybe(st.text(max_size=10)),
                      maybe(st.text(max_size=10)))
raw_calls = st.builds(lambda i, fn: SimpleNamespace(id=i, function=fn), maybe(st.text(max_size=5)), maybe(functions))
choices = st.builds(lambda content, calls, finish: SimpleNamespace(
    message=SimpleNamespace(content=content, tool_calls=calls), finish_reason=finish),
    maybe(st.text(max_size=20)), maybe(st.lists(maybe(raw_calls), max_size=3)),
    maybe(st.text(alphabet=string.ascii_lowercase, max_size=8)))
completions = st.builds(lambda c: SimpleNamespace(choices=c, usage=None),
                        st.one_of(st.none(), st.just([]), st.lists(choices, min_size=1, max_size=2)))


@fuzz(200)
@given(completion=completions)
def test_any_completion_body_is_a_reply_or_a_malformed_error(completion):
    try:
        reply = to_reply(completion)
    except ModelError as exc:
        assert exc.kind == "malformed"
        return
    assert all(isinstance(c.name, str) and isinstance(c.arguments, str) for c in reply.tool_calls)
