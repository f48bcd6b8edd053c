"""Investigation verdicts: phases, conditions, the model's findings, usage and cost -> status.

Pure logic, no I/O. The runner (``inquest.agent.runner``) decides *when*; this module decides
*what* the status says, and keeps every list and text in it bounded with visible cut markers.

Conditions (Tekton-style, one summary condition plus specific ones):

- ``Succeeded``: ``Unknown`` while Pending (reasons ``Pending``, ``Queued``, ``ProviderNotReady``,
  ``ServiceAccountNotFound``, ``ServiceAccountNotImpersonable``, ``ServiceAccountCheckFailed``) or
  Running (``Running``); ``True`` (``Succeeded``) or ``False`` with the failure reason
  (``StepLimitReached``, ``DeadlineExceeded``, ``TokenBudgetExceeded``, ``CostBudgetExceeded``,
  ``ModelAuthenticationFailed``, ``ModelNotFound``, ``ModelUnavailable``, ``ModelRequestRejected``,
  ``ContextWindowExceeded``, ``ProviderNotReady``, ``ServiceAccountNotFound``,
  ``ServiceAccountNotImpersonable``, ``ServiceAccountCheckFailed``, ``RestartLimitExceeded``,
  ``SpecChanged``, ``InternalError``).
- ``ServiceAccountReady``: whether the identity the tools run as exists and the operator may act as
  it (``ServiceAccountFound``, ``ServiceAccountNotFound``, ``ServiceAccountNotImpersonable``,
  ``ServiceAccountCheckFailed``).
- ``ProviderReady``: whether the provider could be used (``ProviderNotReady``, ``ProviderNotFound``,
  ``NoDefaultProvider``, ``ProviderNotAllowed``, or a connection reason).
- ``Restarted``: ``True`` once an operator restart interrupted the run and it started again.
- ``SpecImmutable``: ``True``/``SpecChangeRefused`` after a spec edit was refused. API servers that
  enforce CEL (Kubernetes 1.25 and later) reject the edit outright ("spec is immutable"), so this
  condition appears only where CEL is not enforced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from inquest.api.investigation import (
    MAX_ANSWER,
    MAX_DETAIL,
    MAX_EVIDENCE,
    MAX_EVIDENCE_ITEMS,
    MAX_FINDINGS,
    MAX_MESSAGE,
    MAX_SUMMARY,
    InvestigationSpec,
)
from inquest.api.modelprovider import Pricing
from inquest.domain import conditions
from inquest.domain.conditions import Cond
from inquest.domain.text import cut_end, cut_middle, one_line

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL_PHASES = frozenset({SUCCEEDED, FAILED})

COND_SUCCEEDED = "Succeeded"
COND_PROVIDER = "ProviderReady"
COND_SERVICE_ACCOUNT = "ServiceAccountReady"
COND_RESTARTED = "Restarted"
COND_SPEC = "SpecImmutable"

# Reasons (CamelCase, stable: alerting and `kubectl wait` may key on them).
R_PENDING = "Pending"
R_QUEUED = "Queued"
R_RUNNING = "Running"
R_SUCCEEDED = "Succeeded"
R_PROVIDER_READY = "ProviderReady"
R_PROVIDER_NOT_READY = "ProviderNotReady"
R_PROVIDER_NOT_FOUND = "ProviderNotFound"
R_NO_DEFAULT_PROVIDER = "NoDefaultProvider"
R_PROVIDER_NOT_ALLOWED = "ProviderNotAllowed"
R_SA_FOUND = "ServiceAccountFound"
R_SA_NOT_FOUND = "ServiceAccountNotFound"
R_SA_NOT_IMPERSONABLE = "ServiceAccountNotImpersonable"  # it exists, the operator's RBAC may not act as it
R_SA_CHECK_FAILED = "ServiceAccountCheckFailed"  # the operator could not read it (RBAC, API server error)
R_STEP_LIMIT = "StepLimitReached"
R_DEADLINE = "DeadlineExceeded"
R_TOKENS = "TokenBudgetExceeded"
R_COST = "CostBudgetExceeded"
R_MODEL_AUTH = "ModelAuthenticationFailed"
R_MODEL_NOT_FOUND = "ModelNotFound"
R_MODEL_UNAVAILABLE = "ModelUnavailable"
R_MODEL_REJECTED = "ModelRequestRejected"
R_CONTEXT_WINDOW = "ContextWindowExceeded"  # written by inquest.agent.loop (its R_CONTEXT)
R_RESTART_LIMIT = "RestartLimitExceeded"
R_OPERATOR_RESTARTED = "OperatorRestarted"
R_SPEC_CHANGED = "SpecChanged"
R_SPEC_REFUSED = "SpecChangeRefused"
R_INTERNAL = "InternalError"

# Event reasons (Kubernetes Events about an Investigation; docs/troubleshooting.md, "### Events", has a
# row for each, with its type). Some condition reasons are posted as Events too: see EVENT_TYPES.
EVENT_STARTED = "InvestigationStarted"
EVENT_SUCCEEDED = "InvestigationSucceeded"
EVENT_FAILED = "InvestigationFailed"
EVENT_RESTARTED = "InvestigationRestarted"
EVENT_COST_UNENFORCEABLE = "CostBudgetUnenforceable"  # limits.maxCost set, the provider has no pricing
EVENT_INVALID_SPEC = "InvalidSpec"  # only on a server without the CRD's schema validation
NORMAL, WARNING = "Normal", "Warning"
# Every reason an Event about an Investigation is posted with, and the Event's type.
EVENT_TYPES: dict[str, str] = {
    EVENT_STARTED: NORMAL,
    EVENT_SUCCEEDED: NORMAL,
    EVENT_FAILED: WARNING,
    EVENT_RESTARTED: WARNING,
    EVENT_COST_UNENFORCEABLE: WARNING,
    EVENT_INVALID_SPEC: WARNING,
    R_SA_NOT_FOUND: WARNING,
    R_SA_NOT_IMPERSONABLE: WARNING,
    R_SA_CHECK_FAILED: WARNING,
    R_SPEC_REFUSED: WARNING,
}

# An unfinished run is restarted from scratch this many times after operator restarts; the next
# interruption fails it (a run that keeps dying with the operator would otherwise loop forever).
MAX_RESTARTS = 1
# The ServiceAccount an Investigation's tools run as when spec.serviceAccountName is empty: one per
# namespace, created and bound by whoever sets the namespace up (docs/security.md).
DEFAULT_SERVICE_ACCOUNT = "inquest-investigator"
INVESTIGATOR_CLUSTER_ROLE = "inquest-investigator"  # deploy/'s read-only ClusterRole for it
IMPERSONATOR_CLUSTER_ROLE = "inquest-impersonator"  # deploy/'s ClusterRole: impersonate, by resourceNames
IMPERSONABLE_HELM_VALUE = "investigator.impersonableServiceAccounts"  # the chart's list of further names
DEFAULT_PROVIDER_LABEL = "inquest.dev/default"
# Tighter than the CRD's bounds (which stay the outer limit), so that the worst status stays under
# 64 KiB however much the model writes: the answer (16k chars), findings sharing one budget of JSON
# characters (the least severe are left out first), and the last tool-call records, shortened.
FINDINGS_BUDGET = 22_000
MIN_FINDING_TEXT = 300  # a kept finding gets at least this much for its detail, evidence and remediation
TOOL_CALLS_IN_STATUS = 50
TOOL_NAME_IN_STATUS = 64
TOOL_ARGUMENTS_IN_STATUS = 100
TOOL_ERROR_IN_STATUS = 100

Severity = Literal["critical", "warning", "info"]
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
_SEVERITY_ALIASES = {
    "critical": "critical", "crit": "critical", "fatal": "critical", "error": "critical", "high": "critical",
    "severe": "critical", "major": "critical", "blocker": "critical", "emergency": "critical", "alert": "critical",
    "warning": "warning", "warn": "warning", "medium": "warning", "moderate": "warning", "minor": "warning",
    "info": "info", "information": "info", "informational": "info", "low": "info", "note": "info",
    "notice": "info", "ok": "info", "debug": "info",
}


# --------------------------------------------------------------------------- the model's answer


class InvalidSubmission(ValueError):
    """The model's findings cannot be used; the message is written for the model to fix them."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ReportedResource(_Lenient):
    kind: str = ""
    name: str = ""
    namespace: str | None = None


def _joined(value: Any) -> str:
    """A model's text field as one string: a list of lines is joined, anything else is str()'d."""
    return "\n".join(str(v) for v in value) if isinstance(value, list) else str(value)


class ReportedFinding(_Lenient):
    """One finding as a model reports it. Accepts the usual near-misses of small models."""

    severity: Severity = "info"
    title: str
    detail: str = ""
    resource: ReportedResource | None = None
    evidence: list[str] = []
    remediation: str | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> str:
        key = str(value or "info").strip().lower()
        return _SEVERITY_ALIASES.get(key, "warning" if key else "info")

    @field_validator("title", mode="before")
    @classmethod
    def _title(cls, value: Any) -> str:
        text = one_line(str(value or ""))
        if not text:
            raise ValueError("a finding needs a title")
        return text

    @field_validator("detail", "remediation", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return None if value is None else _joined(value)

    @field_validator("resource", mode="before")
    @classmethod
    def _resource(cls, value: Any) -> Any:
        if value is None or value == "" or value == {}:
            return None
        if isinstance(value, str):  # "pod/web-1", "default/pod/web-1", "Pod web-1"
            parts = [p for p in re.split(r"[/\s]+", value.strip()) if p]
            if len(parts) >= 3:
                return {"namespace": parts[0], "kind": parts[1], "name": parts[2]}
            if len(parts) == 2:
                return {"kind": parts[0], "name": parts[1]}
            return {"name": value.strip()}
        return value

    @field_validator("evidence", mode="before")
    @classmethod
    def _evidence(cls, value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            return [value] if value.strip() else []
        if isinstance(value, Mapping):
            return [f"{k}: {v}" for k, v in value.items()]
        if isinstance(value, Sequence):
            return [v if isinstance(v, str) else json.dumps(v, default=str) for v in value]
        return [str(value)]


class Submission(_Lenient):
    """What ``submit_findings`` carries: a one-line summary, an answer, and findings."""

    summary: str = ""
    answer: str = ""
    findings: list[ReportedFinding] = []

    @field_validator("summary", "answer", mode="before")
    @classmethod
    def _str(cls, value: Any) -> str:
        return "" if value is None else _joined(value)

    @field_validator("findings", mode="before")
    @classmethod
    def _findings(cls, value: Any) -> Any:
        if value is None or value == "":
            return []
        if isinstance(value, Mapping):
            return [value]
        return value


def parse_submission(raw: Any) -> Submission:
    """Validate a submission (a dict or JSON text). Raises :class:`InvalidSubmission`."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            raise InvalidSubmission(f"arguments are not valid JSON ({exc.msg} at char {exc.pos})") from None
        except RecursionError:
            raise InvalidSubmission("arguments are nested too deeply to decode") from None
    if not isinstance(raw, Mapping):
        raise InvalidSubmission("arguments must be a JSON object with summary, answer and findings")
    try:
        sub = Submission.model_validate(raw)
    except ValidationError as exc:
        raise InvalidSubmission(describe_validation_error(exc)) from None
    if not (sub.summary.strip() or sub.answer.strip() or sub.findings):
        raise InvalidSubmission("the submission is empty: give at least a summary or an answer")
    return sub


def describe_validation_error(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


FENCE = "```"


def _fenced_objects(text: str) -> list[str]:
    """The text between each two consecutive ``` fences that holds a JSON object (a ``json`` tag after
    the opening fence is skipped). Linear: every character sits between at most one pair of fences,
    and a stray fence only costs the one block it opens (each pair is tried, not only disjoint ones)."""
    fences: list[int] = []
    pos = text.find(FENCE)
    while pos >= 0:
        fences.append(pos)
        pos = text.find(FENCE, pos + len(FENCE))
    out = []
    for start, end in zip(fences, fences[1:], strict=False):
        body = text[start + len(FENCE):end]
        if body[:4].lower() == "json":
            body = body[4:]
        body = body.strip()
        if body.startswith("{") and body.endswith("}"):
            out.append(body)
    return out


def submission_from_text(text: str) -> Submission | None:
    """A submission embedded in a plain-text answer (a fenced JSON block, or the whole text)."""
    candidates = _fenced_objects(text or "")
    stripped = (text or "").strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        candidates.append(stripped)
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the decoder goes
            continue
        if isinstance(data, Mapping) and ("findings" in data or "summary" in data):
            try:
                return parse_submission(data)
            except InvalidSubmission:
                continue
    return None


_MARKDOWN = re.compile(r"^[#>*\-\s]+|[*_`]+")


def derive_summary(text: str, limit: int = MAX_SUMMARY) -> str:
    """A one-line summary from a free-text answer: its first sentence that is not a heading."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    for line in lines:
        clean = one_line(_MARKDOWN.sub("", line))
        if line.lstrip().startswith("#") or clean.endswith(":") or len(clean) < 3:
            continue  # "## Answer", "Findings:" say nothing
        sentence = re.split(r"(?<=[.!?])\s", clean, maxsplit=1)[0]
        return cut_end(sentence if len(sentence) >= 20 else clean, limit)
    return cut_end(one_line(_MARKDOWN.sub("", lines[0])) if lines else "", limit)


# --------------------------------------------------------------------------- usage and cost


def compute_cost(prompt_tokens: int, completion_tokens: int, pricing: Pricing | None) -> float:
    """USD from the provider's per-million prices, rounded to a micro-dollar."""
    if pricing is None:
        return 0.0
    cost = (prompt_tokens * pricing.input_per_million_tokens
            + completion_tokens * pricing.output_per_million_tokens) / 1_000_000
    return round(cost, 6)


@dataclass
class UsageTotals:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False  # some call reported no usage; its tokens were estimated

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, prompt: int, completion: int, *, estimated: bool = False) -> None:
        self.prompt_tokens += max(0, int(prompt))
        self.completion_tokens += max(0, int(completion))
        self.estimated = self.estimated or estimated

    def to_status(self, pricing: Pricing | None) -> dict[str, Any]:
        return {
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "totalTokens": self.total_tokens,
            "cost": compute_cost(self.prompt_tokens, self.completion_tokens, pricing),
        }

    @classmethod
    def from_status(cls, usage: Mapping[str, Any] | None) -> UsageTotals:
        usage = usage if isinstance(usage, Mapping) else {}
        return cls(_count(usage.get("promptTokens")), _count(usage.get("completionTokens")))


# --------------------------------------------------------------------------- the run's record


@dataclass
class ToolCallLog:
    name: str
    arguments: str
    duration_ms: int
    output_chars: int
    error: str | None = None

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": cut_end(self.name, TOOL_NAME_IN_STATUS),
            "arguments": cut_end(one_line(self.arguments), TOOL_ARGUMENTS_IN_STATUS),
            "durationMs": self.duration_ms,
            "outputChars": self.output_chars,
        }
        if self.error:
            out["error"] = cut_end(one_line(self.error), TOOL_ERROR_IN_STATUS)
        return out


def tool_calls_for_status(calls: Sequence[ToolCallLog], limit: int = TOOL_CALLS_IN_STATUS) -> list[dict[str, Any]]:
    """At most ``limit`` records: the most recent ones, after a visible record of how many were cut
    (``status.toolCallCount`` has the total)."""
    if len(calls) <= limit:
        return [c.to_status() for c in calls]
    cut = len(calls) - (limit - 1)
    marker = {"name": "[cut]", "arguments": f"[... {cut} earlier tool calls cut ...]", "durationMs": 0,
              "outputChars": 0}
    return [marker] + [c.to_status() for c in calls[-(limit - 1):]]


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False))


def _finding_head(f: ReportedFinding) -> dict[str, Any]:
    item: dict[str, Any] = {"severity": f.severity, "title": cut_end(f.title, 200)}
    if f.resource is not None and (f.resource.kind or f.resource.name):
        res: dict[str, Any] = {"kind": cut_end(f.resource.kind, 63), "name": cut_end(f.resource.name, 253)}
        if f.resource.namespace:
            res["namespace"] = cut_end(f.resource.namespace, 63)
        item["resource"] = res
    return item


def _fill_finding(item: dict[str, Any], f: ReportedFinding, share: int) -> dict[str, Any]:
    """Add the detail, evidence and remediation within ``share`` characters (each cut shows a marker)."""
    share = max(MIN_FINDING_TEXT // 2, share - 64)  # their keys, and the escaped line breaks of cut markers
    if f.detail:
        item["detail"] = cut_middle(f.detail, min(MAX_DETAIL, share * 2 // 5))
    evidence = [e for e in f.evidence if e.strip()]
    if evidence:
        room = share * 7 // 20
        # every item costs its quotes and comma too; show fewer items rather than slivers of many
        count = max(1, min(len(evidence), MAX_EVIDENCE_ITEMS, room // 60))
        each = min(MAX_EVIDENCE, max(40, room // count - 4))
        kept = [cut_middle(e, each) for e in evidence[:count]]
        if len(evidence) > count:
            kept[-1] = f"[... {len(evidence) - count + 1} more evidence items cut ...]"
        item["evidence"] = kept
    if f.remediation:
        item["remediation"] = cut_middle(f.remediation, min(MAX_DETAIL, share // 4))
    return item


def findings_for_status(findings: Sequence[ReportedFinding],
                        budget: int = FINDINGS_BUDGET) -> tuple[list[dict[str, Any]], int]:
    """Bounded findings (most severe first) and the number left out.

    The list's JSON stays within ``budget`` characters: the most severe findings are kept while each
    can still get ``MIN_FINDING_TEXT`` for its text, and share what the titles and resources leave
    (never more than the CRD's own bounds); every cut shows a marker. Were JSON escapes to overshoot,
    the least severe kept findings are dropped until it fits (the most severe one always stays).
    """
    ordered = sorted(findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 3))[:MAX_FINDINGS]
    heads = [_finding_head(f) for f in ordered]
    sizes = [_json_size(h) + 2 for h in heads]  # ", " between items
    kept = len(heads)
    while kept > 1 and sum(sizes[:kept]) + kept * MIN_FINDING_TEXT > budget:
        kept -= 1
    share = max(MIN_FINDING_TEXT, (budget - sum(sizes[:kept])) // max(1, kept))
    out = [_fill_finding(h, f, share) for h, f in zip(heads[:kept], ordered[:kept], strict=True)]
    while len(out) > 1 and _json_size(out) > budget:
        out.pop()
    return out, len(findings) - len(out)


def findings_cut_note(shown: int, total: int) -> str:
    """What the answer says when ``status.findings`` lacks some findings (``findingCount`` has them all)."""
    return (f"[... {total - shown} of {total} findings are not in status.findings: the least severe were left "
            "out to keep the status small ...]")


@dataclass
class RunRecord:
    """What one run produced so far; the agent loop fills it, :func:`progress_fields` reads it."""

    steps: int = 0
    tool_calls: list[ToolCallLog] = field(default_factory=list)
    usage: UsageTotals = field(default_factory=UsageTotals)
    summary: str | None = None
    answer: str | None = None
    findings: list[ReportedFinding] = field(default_factory=list)

    def accept(self, submission: Submission) -> None:
        answer = submission.answer.strip()
        summary = one_line(submission.summary)
        if not summary:
            summary = derive_summary(answer) if answer else (submission.findings[0].title if submission.findings
                                                             else "")
        if not answer:
            answer = summary
        self.summary = summary
        self.answer = answer
        self.findings = list(submission.findings)

    def accept_text(self, text: str) -> None:
        embedded = submission_from_text(text)
        if embedded is not None:
            self.accept(embedded)
            return
        self.answer = text.strip()
        self.summary = derive_summary(self.answer)
        self.findings = []

    @property
    def has_answer(self) -> bool:
        return bool(self.answer or self.findings)


def progress_fields(record: RunRecord, pricing: Pricing | None) -> dict[str, Any]:
    """The status fields that change while a run progresses (and at its end)."""
    out: dict[str, Any] = {
        "steps": record.steps,
        "toolCalls": tool_calls_for_status(record.tool_calls),
        "toolCallCount": len(record.tool_calls),
        "usage": record.usage.to_status(pricing),
    }
    if record.has_answer:
        findings, cut = findings_for_status(record.findings)
        note = f"\n\n{findings_cut_note(len(findings), len(record.findings))}" if cut else ""
        answer = cut_middle(record.answer or "", MAX_ANSWER - len(note)) + note
        out["summary"] = cut_end(one_line(record.summary or ""), MAX_SUMMARY) or None
        out["answer"] = answer.strip() or None
        out["findings"] = findings
        out["findingCount"] = len(record.findings)
    return out


# --------------------------------------------------------------------------- phases and conditions


def status_patch(
    existing: Mapping[str, Any] | None,
    *,
    phase: str,
    reason: str,
    message: str,
    generation: int | None,
    extra: Sequence[Cond] = (),
    now: datetime | None = None,
    **fields: Any,
) -> tuple[dict[str, Any], list[conditions.Transition]]:
    """A status merge-patch: phase, the ``Succeeded`` condition from phase/reason, extra conditions.

    Conditions the operator did not mention (e.g. ``SpecImmutable``) are kept.
    """
    if phase == SUCCEEDED:
        verdict = Cond.true(COND_SUCCEEDED, reason, message)
    elif phase == FAILED:
        verdict = Cond.false(COND_SUCCEEDED, reason, message)
    else:
        verdict = Cond.unknown(COND_SUCCEEDED, reason, message)
    conds, transitions = conditions.merge(_conditions_of(existing), [verdict, *extra],
                                          generation=generation, now=now)
    patch: dict[str, Any] = {"phase": phase, "conditions": conds, "message": cut_end(one_line(message), MAX_MESSAGE)}
    patch.update({k: v for k, v in fields.items()})
    return patch, transitions


def _conditions_of(status: Any) -> Any:
    return status.get("conditions") if isinstance(status, Mapping) else None  # merge() vets the rest


def is_finished(status: Mapping[str, Any] | None) -> bool:
    return (status or {}).get("phase") in TERMINAL_PHASES


StartAction = Literal["finished", "fresh", "resume_pending", "restart", "fail_restart_limit", "fail_spec_changed"]


@dataclass(frozen=True)
class StartDecision:
    action: StartAction
    restarts: int = 0


def decide_start(status: Mapping[str, Any] | None, generation: int | None) -> StartDecision:
    """What to do with an Investigation when its runner starts (creation or operator restart).

    - finished (Succeeded/Failed): never run again;
    - never started, or still Pending: run (nothing was lost);
    - was Running: the operator died mid-run; restart from scratch once (``status.restarts``),
      fail with ``RestartLimitExceeded`` the time after;
    - the spec was edited since the run was accepted (observedGeneration differs): fail with
      ``SpecChanged`` rather than run a question nobody asked for at creation time.
    """
    status = status if isinstance(status, Mapping) else {}
    restarts = _count(status.get("restarts"))
    phase = status.get("phase")
    if phase in TERMINAL_PHASES:
        return StartDecision("finished", restarts)
    observed = status.get("observedGeneration")
    if phase and observed is not None and generation is not None and observed != generation:
        return StartDecision("fail_spec_changed", restarts)
    if phase == RUNNING:
        if restarts >= MAX_RESTARTS:
            return StartDecision("fail_restart_limit", restarts)
        return StartDecision("restart", restarts + 1)
    if phase == PENDING:
        return StartDecision("resume_pending", restarts)
    return StartDecision("fresh", restarts)


def _count(value: Any) -> int:
    """A non-negative count from a status field another client may have written anything into."""
    if isinstance(value, bool):
        return 0
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError, OverflowError):
        return 0


def spec_change_refused(existing: Mapping[str, Any] | None, *, generation: int | None,
                        observed: int | None) -> tuple[list[dict[str, Any]], list[conditions.Transition]]:
    message = (f"the spec is immutable: the edit (generation {generation}) was not applied"
               + (f"; the run uses generation {observed}" if observed else "")
               + ". Create a new Investigation to ask another question")
    return conditions.merge(_conditions_of(existing),
                            [Cond.true(COND_SPEC, R_SPEC_REFUSED, message)], generation=generation)


# --------------------------------------------------------------------------- identity and scope


def all_reasons() -> frozenset[str]:
    """Every Investigation reason (the ``R_`` constants); docs/troubleshooting.md has a row for each."""
    return frozenset(v for k, v in globals().items() if k.startswith("R_") and isinstance(v, str))


def all_event_reasons() -> frozenset[str]:
    """Every Event reason (the ``EVENT_`` constants); docs/troubleshooting.md has a row for each."""
    return frozenset(v for k, v in globals().items() if k.startswith("EVENT_") and isinstance(v, str))


def cost_unenforceable_message(max_cost: float, provider: str) -> str:
    """Why ``limits.maxCost`` cannot be enforced (an Event, and part of the Running message)."""
    return (f"limits.maxCost (${max_cost:g}) is not enforced: ModelProvider {provider} has no spec.pricing, so "
            "the run's cost is unknown; set the provider's pricing, or use limits.maxTokens")


def scope_namespaces(namespace: str, spec: InvestigationSpec) -> list[str]:
    """Namespaces the tools may read: ``spec.scope.namespaces`` or the Investigation's own.

    ``*`` means every namespace (the cluster's RBAC for the impersonated identity still applies).
    """
    listed = [n for n in (spec.scope.namespaces if spec.scope else []) if n]
    out: list[str] = []
    for n in listed or [namespace]:
        if n not in out:
            out.append(n)
    return out


def service_account_name(spec: InvestigationSpec, default: str = DEFAULT_SERVICE_ACCOUNT) -> str:
    """The ServiceAccount (in the Investigation's namespace) the tools run as."""
    return spec.service_account_name or default


def impersonation_user(namespace: str, spec: InvestigationSpec, default: str = DEFAULT_SERVICE_ACCOUNT) -> str:
    """The user every tool call runs as: ``system:serviceaccount:<namespace>:<serviceAccountName>``.

    Always a ServiceAccount of the Investigation's own namespace, never the operator's identity: the
    cluster's RBAC for that ServiceAccount decides what the Investigation may read.
    """
    return f"system:serviceaccount:{namespace}:{service_account_name(spec, default)}"


def service_account_missing_message(namespace: str, name: str, *, default: str = DEFAULT_SERVICE_ACCOUNT,
                                    cluster_role: str = INVESTIGATOR_CLUSTER_ROLE) -> str:
    """What to do when the Investigation's ServiceAccount does not exist (a condition message)."""
    note = " (the default: spec.serviceAccountName is not set)" if name == default else ""
    return (f"ServiceAccount {namespace}/{name} does not exist{note}; the tools run as it and nothing runs "
            f"until it exists. Create it and let it read the namespace: kubectl create serviceaccount {name} "
            f"-n {namespace} && kubectl create rolebinding {name} --clusterrole={cluster_role} "
            f"--serviceaccount={namespace}:{name} -n {namespace}")


def service_account_unreadable_message(namespace: str, name: str, status: int, error: str) -> str:
    """The operator could not check the ServiceAccount (a condition message)."""
    if status == 403:
        return (f"the operator may not read ServiceAccount {namespace}/{name} ({error}); grant its own "
                "ServiceAccount get and impersonate on serviceaccounts (the inquest-impersonator role of "
                "deploy/: get on all, impersonate by resourceNames), then the run starts by itself")
    return f"cannot check ServiceAccount {namespace}/{name}: {error}; retrying"


def service_account_not_impersonable_message(namespace: str, name: str, *,
                                             impersonator_role: str = IMPERSONATOR_CLUSTER_ROLE,
                                             detail: str = "") -> str:
    """The ServiceAccount exists but the operator's RBAC does not let it impersonate it (a condition message).

    The operator may impersonate only the ServiceAccount names its role lists in ``resourceNames``
    (docs/security.md): say which rule to extend, in each way the operator may be installed.
    """
    why = f" ({detail})" if detail else ""
    return (f"the operator may not impersonate ServiceAccount {namespace}/{name}{why}, and the tools run as "
            f"it. Grant it: add \"{name}\" to resourceNames of the impersonate rule on serviceaccounts of the "
            f"operator's role {impersonator_role} (Helm: the value {IMPERSONABLE_HELM_VALUE}), or, for this "
            f"namespace only, bind the operator's ServiceAccount to a Role in {namespace} with verbs "
            f"[impersonate] on serviceaccounts, resourceNames [{name}] (docs/security.md); the run starts by "
            "itself once allowed")


def provider_allowed(provider_namespace: str, investigation_namespace: str, allowed: Sequence[str]) -> bool:
    return (provider_namespace == investigation_namespace or "*" in allowed
            or investigation_namespace in allowed)


def choose_default_provider(items: Sequence[Mapping[str, Any]]) -> tuple[str | None, str]:
    """The ModelProvider labelled ``inquest.dev/default=true`` (the oldest, then by name, if several)."""
    labelled = [i for i in items
                if str(((i.get("metadata") or {}).get("labels") or {}).get(DEFAULT_PROVIDER_LABEL, "")).lower()
                == "true" and not (i.get("metadata") or {}).get("deletionTimestamp")]
    if not labelled:
        return None, ""
    labelled.sort(key=lambda i: (str(i["metadata"].get("creationTimestamp") or ""), str(i["metadata"]["name"])))
    chosen = str(labelled[0]["metadata"]["name"])
    note = ""
    if len(labelled) > 1:
        others = ", ".join(str(i["metadata"]["name"]) for i in labelled[1:4])
        note = (f"several providers are labelled {DEFAULT_PROVIDER_LABEL}=true; using the oldest, {chosen} "
                f"(not {others})")
    return chosen, note
