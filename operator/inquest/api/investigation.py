"""The Investigation custom resource: a question, and the agent's findings in status."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from inquest.api.base import DNS_LABEL, K8S_NAME, ApiModel, Condition, NamespaceOrAll, StatusModel

KIND = "Investigation"
PLURAL = "investigations"
SINGULAR = "investigation"
SHORT_NAMES = ["inv"]

InvestigationPhase = Literal["Pending", "Running", "Succeeded", "Failed"]
Severity = Literal["critical", "warning", "info"]

# Bounds that keep the whole status far below etcd's 1.5 MiB object limit.
MAX_SUMMARY = 200
MAX_ANSWER = 16_000
MAX_FINDINGS = 30
MAX_DETAIL = 2_000
MAX_EVIDENCE_ITEMS = 8
MAX_EVIDENCE = 500
MAX_TOOL_CALLS = 100
MAX_TOOL_ARGUMENTS = 300
MAX_MESSAGE = 1_000


class ResourceRef(ApiModel):
    kind: str = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = Field(default=None, max_length=63, pattern=DNS_LABEL)


class ProviderReference(ApiModel):
    name: str = Field(min_length=1, max_length=253, pattern=K8S_NAME)
    namespace: str | None = Field(
        default=None, max_length=63, pattern=DNS_LABEL,
        description="Default: the Investigation's namespace. Another namespace must be allowed by the "
        "provider's spec.allowedNamespaces.",
    )


class Scope(ApiModel):
    namespaces: list[NamespaceOrAll] = Field(
        default_factory=list, max_length=64,
        description="Namespaces the tools may read ('*' for all); default: the Investigation's own.",
    )
    resources: list[ResourceRef] = Field(
        default_factory=list, max_length=32, description="Resources to focus on."
    )


class Limits(ApiModel):
    max_steps: int = Field(default=20, ge=1, le=100, description="Model calls at most.")
    timeout_seconds: int = Field(default=300, ge=1, le=86_400, description=(
        "Deadline over the whole run, from when the operator first sees the Investigation: waiting for the "
        "ServiceAccount and provider, Queued and Running all count (a run restarted after an operator "
        "restart gets a new one). Past it the run fails: DeadlineExceeded, or the reason it waited on."))
    max_tokens: int | None = Field(default=None, ge=1, description="Total token budget.")
    max_cost: float | None = Field(default=None, ge=0, description=(
        "USD budget, from the provider's pricing. Not enforced when the provider has no pricing: the "
        "run then says so in its Running message and a CostBudgetUnenforceable Warning Event."))


class InvestigationSpec(ApiModel):
    question: str = Field(min_length=1, max_length=4000)
    provider_ref: ProviderReference | None = Field(
        default=None,
        description="A ModelProvider; default: the one labelled inquest.dev/default=true in the namespace.",
    )
    scope: Scope | None = None
    limits: Limits = Limits()
    service_account_name: str | None = Field(
        default=None, max_length=253, pattern=K8S_NAME,
        description="Identity the tools run as (impersonated); default inquest-investigator.",
    )
    ttl_seconds_after_finished: int | None = Field(default=None, ge=0)

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "spec is immutable; create a new Investigation"}
            ]
        }
    }


class FindingResource(ApiModel):
    kind: str = Field(default="", max_length=63)
    namespace: str | None = Field(default=None, max_length=63)
    name: str = Field(default="", max_length=253)


class Finding(StatusModel):
    severity: Severity
    title: str = Field(max_length=200)
    detail: str = Field(default="", max_length=MAX_DETAIL)
    resource: FindingResource | None = None
    evidence: list[str] = Field(default_factory=list, max_length=MAX_EVIDENCE_ITEMS)
    remediation: str | None = Field(default=None, max_length=MAX_DETAIL)


class ToolCallRecord(StatusModel):
    name: str
    arguments: str = Field(default="", max_length=MAX_TOOL_ARGUMENTS)
    duration_ms: int = 0
    output_chars: int = 0
    error: str | None = Field(default=None, max_length=MAX_MESSAGE)


class Usage(StatusModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float = 0.0


class InvestigationStatus(StatusModel):
    phase: InvestigationPhase | None = None
    conditions: list[Condition] = Field(default_factory=list)
    start_time: datetime | None = None
    completion_time: datetime | None = None
    provider: str | None = None
    model: str | None = None
    summary: str | None = Field(default=None, max_length=MAX_SUMMARY)
    answer: str | None = Field(default=None, max_length=MAX_ANSWER)
    findings: list[Finding] = Field(default_factory=list, max_length=MAX_FINDINGS)
    finding_count: int | None = None
    steps: int | None = None
    tool_calls: list[ToolCallRecord] = Field(default_factory=list, max_length=MAX_TOOL_CALLS)
    tool_call_count: int | None = None
    usage: Usage | None = None
    message: str | None = Field(default=None, max_length=MAX_MESSAGE)
    restarts: int | None = Field(default=None, description="Times the run was restarted after an operator restart.")
    observed_generation: int | None = None


class Investigation(ApiModel):
    model_config = ApiModel.model_config | {"extra": "ignore"}

    api_version: Literal["inquest.dev/v1alpha1"] = "inquest.dev/v1alpha1"
    kind: Literal["Investigation"] = "Investigation"
    spec: InvestigationSpec
    status: InvestigationStatus | None = None
