"""inquest.domain.provider: spec parsing, verdicts, phase, status, events and scheduling (pure)."""

from __future__ import annotations

import datetime

import pytest

from inquest.domain import reasons
from inquest.domain.certificates import certificate_info
from inquest.domain.conditions import Cond, Transition
from inquest.domain.provider import (
    ProbeReport,
    Problem,
    build_status,
    endpoint_of,
    evaluate,
    events_for,
    expiry_events,
    next_delay,
    parse_spec,
    reference_keys,
)
from tests.support.certs import make_ca

T0 = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)


def all_true_report(latency: int = 42) -> ProbeReport:
    report = ProbeReport(available_models=["m"], latency_ms=latency)
    for type_, reason in [(reasons.CERTIFICATE_VALID, reasons.NOT_APPLICABLE),
                          (reasons.ENDPOINT_REACHABLE, reasons.ENDPOINT_REACHABLE_OK),
                          (reasons.AUTHENTICATED, reasons.AUTHENTICATED_OK),
                          (reasons.MODEL_AVAILABLE, reasons.MODEL_LISTED),
                          (reasons.TOOL_CALLING_SUPPORTED, reasons.TOOL_CALLS_RETURNED)]:
        report.set(Cond.true(type_, reason, "ok"))
    return report


def table(verdict) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in verdict.conditions}


# --------------------------------------------------------------------------- spec


def test_parse_valid_spec():
    spec, problems = parse_spec({"baseURL": "http://h/v1", "model": "m"})
    assert spec is not None and problems == []


def test_two_ca_sources_are_conflicting():
    spec, problems = parse_spec({"baseURL": "http://h/v1", "model": "m",
                                 "tls": {"caBundle": "x", "caSecretRef": {"name": "s", "key": "k"}}})
    assert spec is None
    assert [(p.condition, p.reason) for p in problems] == [(reasons.CERTIFICATE_VALID, reasons.CONFLICTING_CA_SOURCES)]
    assert "caBundle and caSecretRef" in problems[0].message


def test_other_schema_errors_are_invalid_spec_without_values():
    spec, problems = parse_spec({"baseURL": "http://h/v1", "model": "m", "maxRetries": 99,
                                 "headers": [{"name": "X", "value": "secret-ish", "valueFrom": {}}]})
    assert spec is None and [p.reason for p in problems] == [reasons.INVALID_SPEC]
    assert "spec.maxRetries" in problems[0].message and "secret-ish" not in problems[0].message


def test_reference_keys_from_a_raw_spec():
    keys = reference_keys("ns", {
        "apiKeySecretRef": {"name": "key", "key": "k"},
        "headers": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "key", "key": "h"}}}, {"name": "B"}],
        "tls": {"caConfigMapRef": {"name": "ca", "key": "c"}, "clientCertificateSecretRef": {"name": "client"}},
    })
    assert keys == [("Secret", "ns", "key"), ("ConfigMap", "ns", "ca"), ("Secret", "ns", "client")]
    assert reference_keys("ns", {"tls": "garbage", "headers": ["x"]}) == []


def test_endpoint_of():
    assert endpoint_of({"baseURL": "http://h:1/v1/"}) == "http://h:1/v1/chat/completions"
    assert endpoint_of({"baseURL": "http://:80"}) is None


# --------------------------------------------------------------------------- verdicts


def test_all_checks_true_is_ready():
    verdict = evaluate(problems=[], references=2, report=all_true_report(), model="m", endpoint="http://h/v1/chat")
    assert verdict.phase == "Ready" and verdict.retry == "interval"
    assert [c.type for c in verdict.conditions] == [reasons.READY, *reasons.CHECKS]
    assert table(verdict)[reasons.READY] == ("True", reasons.PROVIDER_READY)
    assert table(verdict)[reasons.SECRETS_RESOLVED] == ("True", reasons.SECRETS_FOUND)
    assert "42 ms" in verdict.get(reasons.READY).message


def test_a_failed_check_blocks_the_later_ones_and_names_itself_in_ready():
    report = ProbeReport()
    report.set(Cond.true(reasons.CERTIFICATE_VALID, reasons.NOT_APPLICABLE, "http"))
    report.set(Cond.false(reasons.ENDPOINT_REACHABLE, reasons.CONNECTION_REFUSED, "refused at h:1"))
    verdict = evaluate(problems=[], report=report)
    t = table(verdict)
    assert t[reasons.READY] == ("False", reasons.CONNECTION_REFUSED)
    assert verdict.get(reasons.READY).message == "EndpointReachable: refused at h:1"
    assert t[reasons.SECRETS_RESOLVED] == ("True", reasons.NO_SECRETS_REFERENCED)
    assert t[reasons.AUTHENTICATED] == ("Unknown", reasons.ENDPOINT_UNREACHABLE)
    assert t[reasons.TOOL_CALLING_SUPPORTED] == ("Unknown", reasons.ENDPOINT_UNREACHABLE)
    assert verdict.phase == "NotReady" and verdict.retry == "backoff"


def test_secret_problems_block_everything_after_them():
    problems = [Problem(reasons.SECRETS_RESOLVED, reasons.SECRET_NOT_FOUND, "Secret ns/a not found"),
                Problem(reasons.SECRETS_RESOLVED, reasons.SECRET_KEY_NOT_FOUND, "Secret ns/b has no key 'k'")]
    verdict = evaluate(problems=problems, references=2)
    t = table(verdict)
    assert t[reasons.SECRETS_RESOLVED] == ("False", reasons.SECRET_NOT_FOUND)
    assert "Secret ns/a" in verdict.get(reasons.SECRETS_RESOLVED).message
    assert "Secret ns/b" in verdict.get(reasons.SECRETS_RESOLVED).message
    assert t[reasons.CERTIFICATE_VALID] == ("Unknown", reasons.SECRETS_NOT_RESOLVED)
    assert verdict.phase == "NotReady"


@pytest.mark.parametrize("reason", sorted(reasons.NEEDS_EDIT - {reasons.INVALID_SPEC, reasons.INVALID_URL}))
def test_certificate_problems_make_the_provider_invalid(reason):
    verdict = evaluate(problems=[Problem(reasons.CERTIFICATE_VALID, reason, "bad")])
    assert verdict.phase == "Invalid" and verdict.retry == "never"
    assert table(verdict)[reasons.READY] == ("False", reason)
    assert table(verdict)[reasons.ENDPOINT_REACHABLE] == ("Unknown", reasons.CERTIFICATE_NOT_VALID)


def test_invalid_url_is_invalid_and_blocks_the_certificate_too():
    verdict = evaluate(problems=[Problem(reasons.ENDPOINT_REACHABLE, reasons.INVALID_URL, "no host")])
    t = table(verdict)
    assert verdict.phase == "Invalid" and t[reasons.READY] == ("False", reasons.INVALID_URL)
    assert t[reasons.CERTIFICATE_VALID] == ("Unknown", reasons.ENDPOINT_UNREACHABLE)
    assert t[reasons.SECRETS_RESOLVED][0] == "True"


def test_invalid_spec_blocks_every_check():
    verdict = evaluate(problems=[Problem(reasons.READY, reasons.INVALID_SPEC, "spec.x: bad")], resolved=False)
    t = table(verdict)
    assert t[reasons.READY] == ("False", reasons.INVALID_SPEC) and verdict.phase == "Invalid"
    assert {t[c] for c in reasons.CHECKS} == {("Unknown", reasons.SPEC_INVALID)}


def test_unresolved_references_are_not_claimed_resolved():
    verdict = evaluate(problems=[Problem(reasons.CERTIFICATE_VALID, reasons.CONFLICTING_CA_SOURCES, "two")],
                       resolved=False)
    assert table(verdict)[reasons.SECRETS_RESOLVED][0] == "Unknown"


def test_a_runtime_tls_failure_is_not_ready_not_invalid():
    report = ProbeReport()
    report.set(Cond.false(reasons.CERTIFICATE_VALID, reasons.UNKNOWN_AUTHORITY, "CN=x"))
    report.set(Cond.false(reasons.ENDPOINT_REACHABLE, reasons.TLS_ERROR, "see CertificateValid"))
    verdict = evaluate(problems=[], report=report)
    assert verdict.phase == "NotReady"
    assert table(verdict)[reasons.READY] == ("False", reasons.UNKNOWN_AUTHORITY)


def test_ca_expiring_soon_is_noted_in_certificate_valid():
    now = datetime.datetime.now(datetime.UTC)
    ca = certificate_info(make_ca("Soon", not_after=now + datetime.timedelta(days=3)).cert)
    report = all_true_report()
    verdict = evaluate(problems=[], report=report, ca_certificates=[ca], now=now)
    assert "WARNING: CA CN=Soon" in verdict.get(reasons.CERTIFICATE_VALID).message
    assert verdict.phase == "Ready"
    assert expiry_events([ca], now=now - datetime.timedelta(days=30)) == []
    events = expiry_events([ca], now=now)
    assert [e.reason for _, e in events] == [reasons.CERTIFICATE_EXPIRES_SOON] and events[0][1].type == "Warning"


# --------------------------------------------------------------------------- status


def test_build_status_full_and_deletes_stale_fields():
    ca = certificate_info(make_ca("CA").cert)
    verdict = evaluate(problems=[], report=all_true_report(7), model="m", endpoint="e")
    status, transitions = build_status(None, verdict, generation=3, endpoint="e", ca_certificates=[ca],
                                       report=all_true_report(7), now=T0)
    assert status["phase"] == "Ready" and status["latencyMs"] == 7 and status["availableModels"] == ["m"]
    assert status["lastProbeTime"] == "2026-03-01T00:00:00Z" and status["observedGeneration"] == 3
    assert status["certificate"]["subject"] == "CN=CA,O=Inquest Tests"
    assert len(transitions) == 7
    broken = evaluate(problems=[Problem(reasons.SECRETS_RESOLVED, reasons.SECRET_NOT_FOUND, "x")])
    later, transitions = build_status(status, broken, generation=3, endpoint="e", now=T0 + datetime.timedelta(1))
    assert later["latencyMs"] is None and later["availableModels"] is None and later["certificate"] is None
    assert "lastProbeTime" not in later  # the last probe is still the last probe
    flipped = {t.type for t in transitions}
    assert flipped == {reasons.READY, *reasons.CHECKS}
    assert next(c for c in later["conditions"] if c["type"] == reasons.READY)["lastTransitionTime"] == \
        "2026-03-02T00:00:00Z"


def test_available_models_are_capped():
    report = all_true_report()
    report.available_models = [f"m{i}" for i in range(50)]
    verdict = evaluate(problems=[], report=report)
    status, _ = build_status(None, verdict, generation=1, endpoint="e", report=report, now=T0)
    assert len(status["availableModels"]) == 20


# --------------------------------------------------------------------------- events


def test_events_for_flips_and_first_failures():
    transitions = [
        Transition(reasons.READY, None, "True", reasons.PROVIDER_READY, "ok"),
        Transition(reasons.SECRETS_RESOLVED, None, "True", reasons.SECRETS_FOUND, "ok"),  # silent
        Transition(reasons.MODEL_AVAILABLE, None, "False", reasons.MODEL_NOT_FOUND, "nope"),
        Transition(reasons.READY, None, "Unknown", reasons.PROBING, "..."),  # silent
        Transition(reasons.AUTHENTICATED, "True", "False", reasons.INVALID_API_KEY, "401"),
        Transition(reasons.AUTHENTICATED, "False", "True", reasons.AUTHENTICATED_OK, "ok"),
        Transition(reasons.TOOL_CALLING_SUPPORTED, "True", "Unknown", reasons.MODEL_NOT_AVAILABLE, "blocked"),
    ]
    events = [(e.type, e.reason) for e in events_for(transitions)]
    assert events == [("Normal", reasons.PROVIDER_READY), ("Warning", reasons.MODEL_NOT_FOUND),
                      ("Warning", reasons.INVALID_API_KEY), ("Normal", reasons.AUTHENTICATED_OK),
                      ("Warning", reasons.MODEL_NOT_AVAILABLE)]
    assert events_for([transitions[4]])[0].message == "Authenticated is False (was True): 401"


# --------------------------------------------------------------------------- scheduling


def test_next_delay():
    assert next_delay("never", failures=3, interval=300) is None
    assert next_delay("interval", failures=0, interval=300) == 300
    assert [next_delay("backoff", failures=n, interval=300) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert next_delay("backoff", failures=1, interval=300, base=0.5) == 0.5
