"""The agent loop: call the model with the tool schemas, run every tool call, append the results,
until the model answers (``submit_findings`` or plain text) or a limit ends the run.

Limits: ``max_steps`` (the last allowed step is called without tools to force an answer, and the
run then ends as ``StepLimitReached`` keeping that answer), a deadline over the whole loop,
``max_tokens`` and ``max_cost`` (checked before each call with the predicted prompt and after it with
the reported usage). Nothing the model sends crashes the loop: broken arguments, unknown tools and
failing tools all come back to it as tool results.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from inquest.agent import prompts
from inquest.agent.budget import ContextBudget
from inquest.agent.conversation import ContextOverflow, Conversation
from inquest.agent.kinds import canonical_kind
from inquest.agent.model import ChatModel, DeadlineReached, ModelError, ModelReply, complete_with_retries
from inquest.agent.redact import redact_tool_output
from inquest.agent.tokens import estimate_text, estimate_tools
from inquest.agent.tools import SUBMIT_FINDINGS, ToolContext, ToolOutcome, ToolRegistry
from inquest.api.investigation import MAX_ANSWER, MAX_DETAIL, MAX_EVIDENCE, MAX_MESSAGE, MAX_TOOL_ARGUMENTS
from inquest.api.modelprovider import Pricing
from inquest.domain import investigation as inv
from inquest.domain.redaction import redact_cut
from inquest.domain.text import cut_end, cut_middle

logger = logging.getLogger("inquest.agent")

R_CONTEXT = "ContextWindowExceeded"
# Tool outputs longer than this are redacted in a worker thread (the event loop keeps serving).
REDACT_IN_THREAD = 64_000
# A model's own text kept in the history beside its tool calls, and a plain-text answer parsed.
MAX_ASSISTANT_CHARS = 4_000
MAX_REPLY_CHARS = 64_000
MAX_REPLAYED_ARGUMENTS = 4_000
MAX_TOOL_NAME = 64  # OpenAI's own limit for function names
ProgressFn = Callable[[inv.RunRecord], Awaitable[None]]


@dataclass
class AgentConfig:
    max_steps: int
    deadline: float  # in the event loop's clock (loop.time())
    budget: ContextBudget
    max_tokens: int | None = None
    max_cost: float | None = None
    pricing: Pricing | None = None
    request_timeout: float = 60.0
    max_retries: int = 2
    system_role: bool = True


@dataclass
class AgentOutcome:
    succeeded: bool
    reason: str
    message: str
    record: inv.RunRecord
    first_request_tokens: int = 0
    step_overheads: list[float] = field(default_factory=list)  # seconds per step outside model and tools


_MODEL_REASONS = {"auth": inv.R_MODEL_AUTH, "not_found": inv.R_MODEL_NOT_FOUND, "rejected": inv.R_MODEL_REJECTED}


def _model_failure(exc: ModelError) -> tuple[str, str]:
    reason = _MODEL_REASONS.get(exc.kind, inv.R_MODEL_UNAVAILABLE)
    what = {"auth": "the provider refused the credentials", "not_found": "the provider does not know the model "
            "or endpoint", "rejected": "the provider rejected the request"}.get(exc.kind, "the model is unavailable")
    return reason, redact_cut(f"{what}: {exc.describe()}", MAX_MESSAGE)


def _valid_json_or_empty(arguments: str) -> str:
    """Arguments as replayed in the history: some servers re-parse them in their chat templates, and
    a megabyte of them (a model gone wrong) would crowd out the context: both are replayed as {}."""
    if len(arguments or "") > MAX_REPLAYED_ARGUMENTS:
        return "{}"
    try:
        json.loads(arguments or "{}")
        return arguments or "{}"
    except ValueError:
        return "{}"


class Agent:
    def __init__(self, model: ChatModel, registry: ToolRegistry, ctx: ToolContext, config: AgentConfig,
                 record: inv.RunRecord | None = None, on_progress: ProgressFn | None = None) -> None:
        self.model = model
        self.registry = registry
        self.ctx = ctx
        self.config = config
        self.record = record or inv.RunRecord()
        self.on_progress = on_progress
        self.tools = registry.specs()
        self.tools_tokens = estimate_tools(self.tools)
        self.first_request_tokens = 0
        self.overheads: list[float] = []

    def _cost(self) -> float:
        return inv.compute_cost(self.record.usage.prompt_tokens, self.record.usage.completion_tokens,
                                self.config.pricing)

    def _outcome(self, succeeded: bool, reason: str, message: str) -> AgentOutcome:
        return AgentOutcome(succeeded, reason, message, self.record, self.first_request_tokens, self.overheads)

    def _over_budget(self, predicted_prompt: int = 0) -> tuple[str, str] | None:
        cfg, usage = self.config, self.record.usage
        if cfg.max_tokens is not None and usage.total_tokens + predicted_prompt > cfg.max_tokens:
            more = f" and the next request needs ~{predicted_prompt}" if predicted_prompt else ""
            return inv.R_TOKENS, f"the token budget ({cfg.max_tokens}) is spent: {usage.total_tokens} used{more}"
        if cfg.max_cost is not None and cfg.pricing is not None:
            predicted = inv.compute_cost(predicted_prompt, 0, cfg.pricing)
            cost = self._cost()
            if cost + predicted > cfg.max_cost or (cfg.max_cost == 0 and cost > 0):
                return inv.R_COST, f"the cost budget (${cfg.max_cost:g}) is spent: ${cost:.6f} used"
        return None

    async def run(self, question: str) -> AgentOutcome:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(self.config.deadline):
                return await self._run(question)
        except (TimeoutError, DeadlineReached) as exc:
            detail = str(exc) if isinstance(exc, DeadlineReached) and str(exc) else "the run took too long"
            remaining = self.config.deadline - loop.time()
            logger.debug("deadline reached (%.1fs left): %s", remaining, detail)
            return self._outcome(False, inv.R_DEADLINE, f"the deadline passed after {self.record.steps} step(s): "
                                 f"{detail}")

    async def _run(self, question: str) -> AgentOutcome:
        loop = asyncio.get_running_loop()
        cfg = self.config
        conv = Conversation.start(prompts.SYSTEM_PROMPT, question, system_role=cfg.system_role)
        base_tokens = conv.tokens() + self.tools_tokens
        self.first_request_tokens = base_tokens
        if base_tokens > cfg.budget.prompt_limit:
            return self._outcome(False, R_CONTEXT, f"the first request needs ~{base_tokens} tokens but the "
                                 f"context window ({cfg.budget.context_window}) leaves {cfg.budget.prompt_limit} for "
                                 "the prompt; shorten the question or raise parameters.contextWindow")
        empty_replies = 0
        for step in range(1, cfg.max_steps + 1):
            step_started = loop.time()
            final = step == cfg.max_steps
            if final:
                conv.add({"role": "user", "content": prompts.FINAL_STEP_PROMPT})
            tools = None if final else self.tools
            tools_tokens = 0 if final else self.tools_tokens
            try:
                conv.fit(cfg.budget.prompt_limit - tools_tokens)
            except ContextOverflow as exc:
                return self._outcome(False, R_CONTEXT, str(exc))
            predicted = conv.tokens() + tools_tokens
            over = self._over_budget(predicted)
            if over:
                return self._outcome(False, *over)
            messages = conv.wire_messages()
            model_started = loop.time()
            try:
                reply = await complete_with_retries(
                    self.model, messages, tools, max_tokens=cfg.budget.output_reserve, deadline=cfg.deadline,
                    request_timeout=cfg.request_timeout, max_retries=cfg.max_retries)
            except ModelError as exc:
                return self._outcome(False, *_model_failure(exc))
            model_time = loop.time() - model_started
            self.record.steps = step
            self._account(reply, predicted)
            tool_time = 0.0
            if reply.tool_calls and not final:
                tools_started = loop.time()
                done = await self._run_tools(conv, reply, base_tokens)
                tool_time = loop.time() - tools_started
                self.overheads.append(max(0.0, loop.time() - step_started - model_time - tool_time))
                if done:
                    return self._outcome(True, inv.R_SUCCEEDED, _success_message(self.record))
                await self._progress()
                over = self._over_budget()
                if over:
                    return self._outcome(False, *over)
                continue
            # redacted before it is parsed: the summary derived from it must not carry a credential
            text = redact_cut((reply.content or "").strip(), MAX_REPLY_CHARS)
            self.overheads.append(max(0.0, loop.time() - step_started - model_time))
            if text:
                self.record.accept_text(text)
                self.record.findings = _with_canonical_kinds(self.record.findings)
            if final:
                kept = "; the answer forced at the last step is kept" if self.record.has_answer else ""
                return self._outcome(False, inv.R_STEP_LIMIT, f"the step limit ({cfg.max_steps}) was reached{kept}")
            if text:
                return self._outcome(True, inv.R_SUCCEEDED, _success_message(self.record))
            empty_replies += 1
            conv.add({"role": "assistant", "content": ""})
            conv.add({"role": "user", "content": prompts.EMPTY_REPLY_PROMPT})
            await self._progress()
        return self._outcome(False, inv.R_STEP_LIMIT, f"the step limit ({cfg.max_steps}) was reached")

    def _account(self, reply: ModelReply, predicted_prompt: int) -> None:
        estimated = reply.prompt_tokens is None or reply.completion_tokens is None
        prompt = reply.prompt_tokens if reply.prompt_tokens is not None else predicted_prompt
        if reply.completion_tokens is not None:
            completion = reply.completion_tokens
        else:
            completion = estimate_text(reply.content or "") + sum(
                estimate_text(c.name) + estimate_text(c.arguments) for c in reply.tool_calls)
        self.record.usage.add(prompt, completion, estimated=estimated)

    async def _progress(self) -> None:
        if self.on_progress is not None:
            await self.on_progress(self.record)

    async def _run_tools(self, conv: Conversation, reply: ModelReply, base_tokens: int) -> bool:
        """Run the step's tool calls; True when a valid ``submit_findings`` ended the run."""
        calls = reply.tool_calls
        seen: set[str] = set()
        for i, call in enumerate(calls):
            if not call.id or call.id in seen or len(call.id) > MAX_TOOL_NAME:
                call.id = f"call_{self.record.steps}_{i}"
            seen.add(call.id)
        conv.add({"role": "assistant", "content": cut_middle(reply.content or "", MAX_ASSISTANT_CHARS),
                  "tool_calls": [{"id": c.id, "type": "function",
                                  "function": {"name": c.name[:MAX_TOOL_NAME],
                                               "arguments": _valid_json_or_empty(c.arguments)}}
                                 for c in calls]})
        reading = [c for c in calls if c.name != SUBMIT_FINDINGS]
        per_call_chars = self.config.budget.tool_output_chars(base_tokens, max(1, len(reading)))
        outcomes = await asyncio.gather(*(self._call(c.name, c.arguments) for c in calls))
        submitted = False
        for call, outcome in zip(calls, outcomes, strict=True):
            if call.name == SUBMIT_FINDINGS and outcome.error is None:
                submitted = True
            # redaction first: a cut must never expose what a rule needed the rest of the text to see
            if len(outcome.text) > REDACT_IN_THREAD:
                text = await asyncio.to_thread(redact_tool_output, outcome.text)
            else:
                text = redact_tool_output(outcome.text)
            conv.add_tool_result(call.id, call.name, cut_middle(text, per_call_chars))
            self.record.tool_calls.append(inv.ToolCallLog(
                redact_cut(call.name, 100), redact_cut(call.arguments, 2 * MAX_TOOL_ARGUMENTS), outcome.duration_ms,
                len(outcome.text), redact_cut(outcome.error, MAX_MESSAGE) if outcome.error else None))
        return submitted

    async def _call(self, name: str, arguments: str) -> ToolOutcome:
        if name != SUBMIT_FINDINGS:
            return await self.registry.call(self.ctx, name, arguments)
        try:
            submission = inv.parse_submission(arguments)
        except inv.InvalidSubmission as exc:
            message = f"submit_findings was not accepted: {exc}. Fix the arguments and call it again."
            return ToolOutcome(f"error: {message}", error=message)
        self.record.accept(_scrub(submission))
        return ToolOutcome(f"accepted: {len(submission.findings)} finding(s).")


def _scrub(submission: inv.Submission) -> inv.Submission:
    """The answer as it will reach the status and events: credentials redacted (the model only saw
    redacted output, but it may be talked into composing one), before a summary is derived from it.
    Bounds here only cap the cost of redaction; the status applies its own, tighter ones."""
    return submission.model_copy(update={
        "summary": redact_cut(submission.summary, 1000),
        "answer": redact_cut(submission.answer, MAX_ANSWER),
        "findings": _with_canonical_kinds([f.model_copy(update={
            "title": redact_cut(f.title, 1000),
            "detail": redact_cut(f.detail, 4 * MAX_DETAIL),
            "remediation": redact_cut(f.remediation, 4 * MAX_DETAIL) if f.remediation else f.remediation,
            "evidence": [redact_cut(e, 4 * MAX_EVIDENCE) for e in f.evidence],
            "resource": f.resource.model_copy(update={
                "kind": redact_cut(f.resource.kind, 100), "name": redact_cut(f.resource.name, 300),
                "namespace": redact_cut(f.resource.namespace, 100) if f.resource.namespace else None,
            }) if f.resource is not None else None,
        }) for f in submission.findings]),
    })


def _with_canonical_kinds(findings: list[inv.ReportedFinding]) -> list[inv.ReportedFinding]:
    """Resource kinds as Kubernetes spells them ("pod/web-1" reports kind "Pod"), where the table knows them."""
    return [f.model_copy(update={"resource": f.resource.model_copy(update={"kind": canonical_kind(f.resource.kind)})})
            if f.resource is not None and f.resource.kind else f for f in findings]


def _success_message(record: inv.RunRecord) -> str:
    count = len(record.findings)
    return cut_end(f"answered in {record.steps} step(s) with {count} finding(s): {record.summary or ''}".rstrip(": "),
                   1000)


def first_request_estimate(question: str, registry: ToolRegistry, *, system_role: bool = True) -> int:
    """Tokens of the first request (system prompt + question + tool schemas), as the loop estimates it."""
    conv = Conversation.start(prompts.SYSTEM_PROMPT, question, system_role=system_role)
    return conv.tokens() + estimate_tools(registry.specs())

