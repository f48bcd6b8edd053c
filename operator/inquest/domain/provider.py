"""ModelProvider verdicts: from the spec, the resolved references and the probe to conditions and phase.

Pure: ``clients.connection`` resolves references, ``clients.probe`` talks to the endpoint, both produce
the data defined here (``Problem``, ``ProbeReport``); this module decides what the status says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from inquest.api.modelprovider import ModelProviderSpec
from inquest.domain import conditions, endpoints, reasons
from inquest.domain.certificates import EXPIRY_WARNING, CertificateInfo
from inquest.domain.conditions import Cond, Transition

MAX_AVAILABLE_MODELS = 20
CA_SOURCE_KEYS = ("caBundle", "caSecretRef", "caConfigMapRef")

Phase = Literal["Ready", "NotReady", "Invalid"]
Retry = Literal["never", "backoff", "interval"]


@dataclass(frozen=True)
class Problem:
    """One failed check: the condition it falsifies, a reasons.* constant and a message for humans."""

    condition: str
    reason: str
    message: str

    @property
    def needs_edit(self) -> bool:
        return self.reason in reasons.NEEDS_EDIT


@dataclass
class ProbeReport:
    """What the network probe found: a verdict per check it reached (CertificateValid from the TLS
    handshake, EndpointReachable, Authenticated, ModelAvailable, ToolCallingSupported)."""

    checks: dict[str, Cond] = field(default_factory=dict)
    available_models: list[str] | None = None
    latency_ms: int | None = None
    server_certificate: CertificateInfo | None = None

    def set(self, cond: Cond) -> None:
        self.checks[cond.type] = cond


# --------------------------------------------------------------------------- spec


def _as_dict(raw: Any) -> dict[str, Any] | None:
    """A spec as a plain dict; None when it is not an object (a server without schema validation lets
    a list or a string through, and Kopf's view of such a spec fails when it is read)."""
    if raw is None:
        return {}
    try:
        return dict(raw) if isinstance(raw, Mapping) else None
    except (TypeError, ValueError, AttributeError):
        return None


def parse_spec(raw: Mapping[str, Any] | None) -> tuple[ModelProviderSpec | None, list[Problem]]:
    """The typed spec, or the problems that make it unusable (a server without schema validation, or
    an old object). Messages never repeat input values."""
    data = _as_dict(raw)
    if data is None:
        return None, [Problem(reasons.READY, reasons.INVALID_SPEC, "the spec is invalid: spec: must be an object")]
    try:
        return ModelProviderSpec.model_validate(data), []
    except ValidationError as exc:
        problems: list[Problem] = []
        tls = data.get("tls") if isinstance(data.get("tls"), Mapping) else {}
        given = [k for k in CA_SOURCE_KEYS if tls and tls.get(k) is not None]
        if len(given) > 1:
            problems.append(Problem(
                reasons.CERTIFICATE_VALID, reasons.CONFLICTING_CA_SOURCES,
                f"spec.tls sets {' and '.join(given)}: keep exactly one CA source",
            ))
        others = [e for e in exc.errors() if not (e.get("loc") or ())[:1] == ("tls",) or len(given) <= 1]
        if others or not problems:
            details = "; ".join(
                f"spec.{'.'.join(str(p) for p in e.get('loc') or ()) or '(root)'}: {e.get('msg', 'invalid')}"
                for e in others[:5]
            )
            problems.append(Problem(reasons.READY, reasons.INVALID_SPEC, f"the spec is invalid: {details}"))
        return None, problems


def reference_keys(namespace: str, raw_spec: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of every Secret/ConfigMap a (possibly invalid) spec references."""
    spec = _as_dict(raw_spec) or {}
    keys: list[tuple[str, str, str]] = []

    def add(kind: str, ref: Any) -> None:
        if isinstance(ref, Mapping) and isinstance(ref.get("name"), str) and ref["name"]:
            keys.append((kind, namespace, ref["name"]))

    add("Secret", spec.get("apiKeySecretRef"))
    headers = spec.get("headers")
    for header in headers if isinstance(headers, list) else []:
        value_from = header.get("valueFrom") if isinstance(header, Mapping) else None
        if isinstance(value_from, Mapping):
            add("Secret", value_from.get("secretKeyRef"))
    tls = spec.get("tls") if isinstance(spec.get("tls"), Mapping) else {}
    if tls:
        add("Secret", tls.get("caSecretRef"))
        add("ConfigMap", tls.get("caConfigMapRef"))
        add("Secret", tls.get("clientCertificateSecretRef"))
    return list(dict.fromkeys(keys))


def endpoint_of(raw_spec: Mapping[str, Any] | None) -> str | None:
    try:
        return endpoints.resolve(str((_as_dict(raw_spec) or {}).get("baseURL") or "")).chat_url
    except endpoints.InvalidURL:
        return None


# --------------------------------------------------------------------------- verdict


@dataclass(frozen=True)
class Verdict:
    phase: Phase
    conditions: list[Cond]  # Ready first, then the checks in order
    retry: Retry

    def get(self, type_: str) -> Cond:
        return next(c for c in self.conditions if c.type == type_)


def _blocked(type_: str, blocker: Cond) -> Cond:
    reason = reasons.BLOCKED_BY.get(blocker.type, reasons.SPEC_INVALID)
    if blocker.reason == reasons.INVALID_SPEC:
        reason = reasons.SPEC_INVALID
    return Cond.unknown(type_, reason, f"not checked: {blocker.type} is {blocker.status} ({blocker.reason})")


def _secrets_ok(references: int) -> Cond:
    if references == 0:
        return Cond.true(reasons.SECRETS_RESOLVED, reasons.NO_SECRETS_REFERENCED,
                         "the spec references no Secret or ConfigMap")
    noun = "reference" if references == 1 else "references"
    return Cond.true(reasons.SECRETS_RESOLVED, reasons.SECRETS_FOUND,
                     f"{references} Secret/ConfigMap {noun} resolved")


def _from_problems(problems: Sequence[Problem]) -> dict[str, Cond]:
    """The first problem of each condition gives the reason; all their messages are joined."""
    out: dict[str, Cond] = {}
    for type_ in dict.fromkeys(p.condition for p in problems):
        mine = [p for p in problems if p.condition == type_]
        message = "; ".join(dict.fromkeys(p.message for p in mine))
        out[type_] = Cond.false(type_, mine[0].reason, message)
    return out


def _with_expiry_note(cond: Cond, ca: Sequence[CertificateInfo], now: datetime) -> Cond:
    soon = [c for c in ca if c.expires_within(EXPIRY_WARNING, now)]
    if not soon or cond.status != "True":
        return cond
    notes = ", ".join(f"{c.subject} expires in {c.days_left(now)} days ({c.not_after:%Y-%m-%d})" for c in soon)
    return Cond(cond.type, cond.status, cond.reason, f"{cond.message}; WARNING: CA {notes}")


def evaluate(
    *,
    problems: Sequence[Problem],
    references: int = 0,
    resolved: bool = True,
    report: ProbeReport | None = None,
    ca_certificates: Sequence[CertificateInfo] = (),
    model: str | None = None,
    endpoint: str | None = None,
    now: datetime | None = None,
) -> Verdict:
    """Every condition, Ready and the phase from what resolution and probing found.

    ``resolved``: whether the Secret/ConfigMap references were resolved at all (not when the spec
    itself is unusable); ``references``: how many there are.
    """
    now = now or datetime.now(UTC)
    known: dict[str, Cond] = _from_problems([p for p in problems if p.condition in reasons.CHECKS])
    spec_level = [p for p in problems if p.condition not in reasons.CHECKS]  # InvalidSpec
    if reasons.SECRETS_RESOLVED not in known and resolved and not spec_level:
        known[reasons.SECRETS_RESOLVED] = _secrets_ok(references)
    if report is not None:
        for type_, cond in report.checks.items():
            known.setdefault(type_, cond)

    ordered: list[Cond] = []
    blocker: Cond | None = None
    if spec_level:
        blocker = Cond.false(reasons.READY, spec_level[0].reason, "; ".join(p.message for p in spec_level))
    for type_ in reasons.CHECKS:
        found = known.get(type_)
        if found is None:
            first_bad = blocker or next((c for c in ordered if not c.ok), None) or next(
                (known[t] for t in reasons.CHECKS if t in known and not known[t].ok), None)
            found = _blocked(type_, first_bad) if first_bad is not None else Cond.unknown(
                type_, reasons.PROBING, "not checked yet")
        cond = found
        if type_ == reasons.CERTIFICATE_VALID:
            cond = _with_expiry_note(cond, ca_certificates, now)
        ordered.append(cond)

    needs_edit = (blocker is not None and blocker.reason in reasons.NEEDS_EDIT) or any(
        c.status == "False" and c.reason in reasons.NEEDS_EDIT for c in ordered)
    if all(c.ok for c in ordered):
        latency = f" in {report.latency_ms} ms" if report is not None and report.latency_ms is not None else ""
        ready = Cond.true(reasons.READY, reasons.PROVIDER_READY,
                          f"model {model or '?'} at {endpoint or '?'} answers and calls tools{latency}")
        phase: Phase = "Ready"
        retry: Retry = "interval"
    else:
        cause = blocker or next((c for c in ordered if c.status == "False"), None) or next(
            c for c in ordered if not c.ok)
        message = cause.message if cause.type == reasons.READY else f"{cause.type}: {cause.message}"
        ready = Cond.false(reasons.READY, cause.reason, message)
        phase = "Invalid" if needs_edit else "NotReady"
        retry = "never" if needs_edit else "backoff"
    return Verdict(phase=phase, conditions=[ready, *ordered], retry=retry)


def probing_conditions() -> list[Cond]:
    """Shown while the first probe of a new provider runs."""
    return [Cond.unknown(reasons.READY, reasons.PROBING, "the endpoint is being validated")]


# --------------------------------------------------------------------------- status


def build_status(
    old_status: Mapping[str, Any] | None,
    verdict: Verdict,
    *,
    generation: int | None,
    endpoint: str | None,
    ca_certificates: Sequence[CertificateInfo] = (),
    report: ProbeReport | None = None,
    now: datetime | None = None,
) -> tuple[dict[str, Any], list[Transition]]:
    """The full status (``None`` values delete stale fields in a merge patch) and the transitions."""
    now = now or datetime.now(UTC)
    conds, transitions = conditions.merge((old_status or {}).get("conditions"), verdict.conditions,
                                          generation=generation, now=now)
    status: dict[str, Any] = {
        "phase": verdict.phase,
        "conditions": conds,
        "endpoint": endpoint,
        "certificate": ca_certificates[0].to_status() if ca_certificates else None,
        "latencyMs": report.latency_ms if report is not None else None,
        "availableModels": (report.available_models[:MAX_AVAILABLE_MODELS]
                            if report is not None and report.available_models else None),
        "observedGeneration": generation,
    }
    if report is not None:
        status["lastProbeTime"] = conditions.now_iso(now)
    return status, transitions


def probing_status(
    old_status: Mapping[str, Any] | None, *, generation: int | None, endpoint: str | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    conds, _ = conditions.merge((old_status or {}).get("conditions"), probing_conditions(),
                                generation=generation, now=now)
    return {"phase": "NotReady", "conditions": conds, "endpoint": endpoint, "observedGeneration": generation}


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class EventSpec:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def events_for(transitions: Iterable[Transition]) -> list[EventSpec]:
    """An Event per condition flip. A condition seen for the first time is reported only when it is
    False (or when it is Ready), so that a healthy new provider gets one Normal event, not seven."""
    out: list[EventSpec] = []
    for t in transitions:
        if t.old_status is None and t.new_status != "False" and t.type != reasons.READY:
            continue
        if t.old_status is None and t.type == reasons.READY and t.new_status == "Unknown":
            continue
        kind: Literal["Normal", "Warning"] = "Normal" if t.new_status == "True" else "Warning"
        was = f" (was {t.old_status})" if t.old_status else ""
        out.append(EventSpec(kind, t.reason, f"{t.type} is {t.new_status}{was}: {t.message}"))
    return out


def expiry_events(ca: Sequence[CertificateInfo], *, now: datetime | None = None) -> list[tuple[str, EventSpec]]:
    """(fingerprint, Warning event) for each CA certificate expiring within 14 days."""
    now = now or datetime.now(UTC)
    return [
        (c.sha256_fingerprint, EventSpec(
            "Warning", reasons.CERTIFICATE_EXPIRES_SOON,
            f"CA certificate {c.subject} expires in {c.days_left(now)} days ({c.not_after:%Y-%m-%d %H:%M} UTC); "
            "rotate it and update the provider's CA",
        ))
        for c in ca if c.expires_within(EXPIRY_WARNING, now)
    ]


# --------------------------------------------------------------------------- scheduling


def next_delay(retry: Retry, *, failures: int, interval: float, base: float = 5.0) -> float | None:
    """Seconds until the next probe: the interval when Ready, exponential backoff (base·2^(n-1), capped
    at the interval) when NotReady, never (until the spec or a referenced object changes) when Invalid."""
    if retry == "never":
        return None
    if retry == "interval":
        return interval
    return min(interval, base * (2 ** max(0, failures - 1)))
