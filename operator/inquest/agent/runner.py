"""One Investigation's lifecycle, from the first sight of it to its TTL deletion.

``supervise`` is what the Kopf daemon calls: it runs :class:`Runner` as a task and cancels it the
moment Kopf signals the daemon to stop (the object is being deleted, or the operator exits), so a
deleted Investigation never keeps an agent running and never gets a status write afterwards.

The lifecycle (``inquest.domain.investigation.decide_start`` decides at each start):

1. Pending: check that the ServiceAccount the tools will run as exists (``spec.serviceAccountName``,
   default ``inquest-investigator``: never the operator's own identity) and that the operator may
   impersonate it (a SelfSubjectAccessReview: its role names the ServiceAccounts), resolve the provider
   (``providerRef`` or the namespace's default), wait until it is Ready and its connection resolves
   (Secrets, CA), polling both.
2. Pending/Queued: wait for one of the provider's ``maxConcurrentInvestigations`` slots.
3. Running: the agent loop (``inquest.agent.loop``); progress goes to status every few seconds.

One deadline, ``limits.timeoutSeconds`` after this operator process first saw the Investigation,
covers 1 to 3: past it the run fails with ``DeadlineExceeded`` (or the reason it was waiting on in
1), a queued one without ever taking a slot. A run restarted after an operator restart gets a new one.
4. Succeeded/Failed, with the answer, findings, usage and cost; then ``ttlSecondsAfterFinished``.

Status is written with JSON merge patches on the status subresource through the ``KubeClient``.
Conditions this runner does not own (``SpecImmutable``) are kept from the live object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from inquest import GROUP, VERSION
from inquest.agent import prompts
from inquest.agent.budget import ContextBudget
from inquest.agent.loop import Agent, AgentConfig, AgentOutcome
from inquest.agent.model import ChatModel, OpenAIChatModel
from inquest.agent.render import parse_time
from inquest.agent.slots import ProviderSlots
from inquest.agent.tools import ToolContext, shared_registry
from inquest.api.investigation import PLURAL, Investigation
from inquest.api.modelprovider import PLURAL as MP_PLURAL
from inquest.api.modelprovider import ModelProvider
from inquest.clients.kube import KubeClient, KubeError
from inquest.clients.llm import ProviderConnection
from inquest.domain import conditions
from inquest.domain import investigation as inv
from inquest.domain.conditions import Cond
from inquest.domain.text import cut_end, one_line

logger = logging.getLogger("inquest.agent.runner")

OWN_CONDITIONS = frozenset({inv.COND_SUCCEEDED, inv.COND_PROVIDER, inv.COND_SERVICE_ACCOUNT, inv.COND_RESTARTED})
MERGE_PATCH = "application/merge-patch+json"
SELF_SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"

EmitFn = Callable[[str, str, str], None]  # (type, reason, message) -> posts a Kubernetes Event
ConnectFn = Callable[[KubeClient, str, str, Any], Awaitable[ProviderConnection]]
ModelFactory = Callable[[ProviderConnection], ChatModel]


async def default_connect(kube: KubeClient, namespace: str, name: str, spec: Any) -> ProviderConnection:
    from inquest.clients.connection import resolve_connection  # Secrets, CA, client certificate

    return await resolve_connection(kube, namespace, name, spec)


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass
class RunnerSettings:
    provider_poll_seconds: float = 5.0  # how often a Pending Investigation re-checks its provider
    progress_interval: float = 2.0  # at most one progress status write per this many seconds
    # The ServiceAccount an Investigation without spec.serviceAccountName runs as, and the ClusterRole
    # the missing-ServiceAccount message tells users to bind (the Helm chart sets both: names vary).
    default_service_account: str = inv.DEFAULT_SERVICE_ACCOUNT
    investigator_cluster_role: str = inv.INVESTIGATOR_CLUSTER_ROLE
    # The operator's role whose impersonate rule lists the ServiceAccount names it may act as, named in
    # the ServiceAccountNotImpersonable message (the Helm chart prefixes it with the release).
    impersonator_role: str = inv.IMPERSONATOR_CLUSTER_ROLE

    @classmethod
    def from_environment(cls) -> RunnerSettings:
        return cls(provider_poll_seconds=_env_float("INQUEST_PROVIDER_POLL_SECONDS", 5.0),
                   progress_interval=_env_float("INQUEST_PROGRESS_INTERVAL", 2.0),
                   default_service_account=os.environ.get("INQUEST_DEFAULT_SERVICE_ACCOUNT")
                   or inv.DEFAULT_SERVICE_ACCOUNT,
                   investigator_cluster_role=os.environ.get("INQUEST_INVESTIGATOR_CLUSTER_ROLE")
                   or inv.INVESTIGATOR_CLUSTER_ROLE,
                   impersonator_role=os.environ.get("INQUEST_IMPERSONATOR_ROLE") or inv.IMPERSONATOR_CLUSTER_ROLE)


@dataclass
class InvestigationRuntime:
    """Operator-wide state for investigations, kept in ``memo.investigations``."""

    settings: RunnerSettings = field(default_factory=RunnerSettings.from_environment)
    slots: dict[tuple[str, str], ProviderSlots] = field(default_factory=dict)
    active: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # uid -> running task
    connect: ConnectFn = default_connect
    model_factory: ModelFactory = OpenAIChatModel
    on_outcome: Callable[[AgentOutcome], None] | None = None  # metrics hook (the benchmark uses it)

    def slots_for(self, namespace: str, name: str) -> ProviderSlots:
        return self.slots.setdefault((namespace, name), ProviderSlots())


class Gone(Exception):
    """The Investigation no longer exists."""


class Stoppable(Protocol):
    def wait(self) -> Awaitable[Any]: ...


@dataclass
class Target:
    """The Investigation being run, as the daemon saw it, plus a view of its live status."""

    namespace: str
    name: str
    uid: str
    generation: int | None
    investigation: Investigation
    live_status: Callable[[], Mapping[str, Any]]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Target:
        meta = body.get("metadata") or {}
        return cls(namespace=str(meta.get("namespace") or "default"), name=str(meta.get("name")),
                   uid=str(meta.get("uid") or meta.get("name")), generation=meta.get("generation"),
                   investigation=Investigation.model_validate(dict(body)),
                   live_status=lambda: body.get("status") or {})

    @property
    def path(self) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/{PLURAL}/{self.name}"


@dataclass
class ProviderChoice:
    namespace: str
    name: str
    spec: Any  # ModelProviderSpec
    connection: ProviderConnection

    def display(self, own_namespace: str) -> str:
        return self.name if self.namespace == own_namespace else f"{self.namespace}/{self.name}"


@dataclass
class NotReady:
    reason: str
    message: str


def now_iso() -> str:
    return conditions.now_iso()


class Runner:
    def __init__(self, kube: KubeClient, runtime: InvestigationRuntime, target: Target, emit: EmitFn) -> None:
        self.kube = kube
        self.runtime = runtime
        self.target = target
        self.emit = emit
        self.spec = target.investigation.spec
        self.conditions: list[dict[str, Any]] = list((target.live_status() or {}).get("conditions") or [])
        self.restarts = 0
        self.extra: list[Cond] = []
        self._last_progress = 0.0
        self.pricing: Any = None
        self.deadline = 0.0  # loop.time() when limits.timeoutSeconds passes; set as the attempt starts

    # ------------------------------------------------------------------ status writes

    def _base(self) -> dict[str, Any]:
        live = list((self.target.live_status() or {}).get("conditions") or [])
        own = [c for c in self.conditions if c.get("type") in OWN_CONDITIONS]
        return {"conditions": own + [c for c in live if c.get("type") not in OWN_CONDITIONS]}

    async def _patch(self, status: dict[str, Any]) -> None:
        try:
            await self.kube.send_json("PATCH", self.target.path + "/status", {"status": status},
                                      content_type=MERGE_PATCH)
        except KubeError as exc:
            if exc.not_found:
                raise Gone() from None
            raise

    async def _write(self, phase: str, reason: str, message: str, **fields: Any) -> list[conditions.Transition]:
        patch, transitions = inv.status_patch(self._base(), phase=phase, reason=reason, message=message,
                                              generation=self.target.generation, extra=self.extra, **fields)
        await self._patch(patch)
        self.conditions = patch["conditions"]
        return transitions

    async def _fail(self, reason: str, message: str, **fields: Any) -> None:
        await self._write(inv.FAILED, reason, message, completionTime=now_iso(), **fields)
        self.emit(inv.WARNING, inv.EVENT_FAILED, cut_end(f"{reason}: {message}", 1000))

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        try:
            await self._run()
        except Gone:
            logger.debug("investigation %s/%s is gone; stopping", self.target.namespace, self.target.name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must fail the Investigation visibly, not leave it Running forever
            logger.exception("investigation %s/%s failed unexpectedly", self.target.namespace, self.target.name)
            with contextlib.suppress(Exception):
                await self._fail(inv.R_INTERNAL, f"the operator failed: {type(exc).__name__}: {exc}")

    async def _run(self) -> None:
        status = dict(self.target.live_status() or {})
        decision = inv.decide_start(status, self.target.generation)
        self.restarts = decision.restarts
        if decision.action == "finished":
            await self._ttl(status)
            return
        if decision.action == "fail_restart_limit":
            self.extra = [Cond.true(inv.COND_RESTARTED, inv.R_OPERATOR_RESTARTED,
                                    f"the operator restarted during the run {decision.restarts + 1} times")]
            await self._fail(inv.R_RESTART_LIMIT, f"the run was interrupted by an operator restart again, after "
                             f"{decision.restarts} restart(s) from scratch; not retried any more. Create a new "
                             "Investigation to ask again")
            await self._ttl(None)
            return
        if decision.action == "fail_spec_changed":
            await self._fail(inv.R_SPEC_CHANGED, "the spec was edited after the run was accepted (observed "
                             f"generation {status.get('observedGeneration')}, now {self.target.generation}); "
                             "the run is not repeated with the edited spec. Create a new Investigation")
            await self._ttl(None)
            return
        # One deadline over this attempt (limits.timeoutSeconds), from the moment this operator process
        # first saw the Investigation: waiting for the ServiceAccount and provider, Queued and Running all
        # count against it. A run restarted after an operator restart starts from scratch with a new one.
        self.deadline = asyncio.get_running_loop().time() + self.spec.limits.timeout_seconds
        carried = inv.UsageTotals()
        if decision.action == "restart":
            carried = inv.UsageTotals.from_status(status.get("usage"))  # tokens already spent stay counted
            message = (f"the operator restarted during the run; it was restarted from scratch "
                       f"({decision.restarts} of {inv.MAX_RESTARTS} allowed)")
            self.extra = [Cond.true(inv.COND_RESTARTED, inv.R_OPERATOR_RESTARTED, message)]
            self.emit(inv.WARNING, inv.EVENT_RESTARTED, message)
        if decision.action in ("fresh", "restart"):
            await self._write(inv.PENDING, inv.R_PENDING, "checking the ServiceAccount and the model provider",
                              observedGeneration=self.target.generation, restarts=self.restarts or None)
        choice = await self._wait_until_ready()
        if choice is None:
            await self._ttl(None)
            return
        conn = choice.connection
        self.pricing = conn.pricing
        slots = self.runtime.slots_for(choice.namespace, choice.name)

        async def queued(position: int) -> None:
            await self._write(inv.PENDING, inv.R_QUEUED,
                              f"waiting for a slot: ModelProvider {choice.display(self.target.namespace)} runs at "
                              f"most {slots.limit} investigation(s) at once ({position} waiting)")

        try:
            async with asyncio.timeout_at(self.deadline):
                await slots.acquire(choice.spec.max_concurrent_investigations, queued)
        except TimeoutError:  # acquire() gave back a slot handed over as the deadline hit
            await self._fail(inv.R_DEADLINE, f"waited in the queue for a slot of ModelProvider "
                             f"{choice.display(self.target.namespace)} (at most {slots.limit} investigation(s) at "
                             f"once) until limits.timeoutSeconds ({self.spec.limits.timeout_seconds}s) passed; "
                             "the agent never started")
            await self._ttl(None)
            return
        try:
            outcome = await self._run_agent(choice, carried)
        finally:
            slots.release()
        # a provider's error text (ModelAuthenticationFailed...) may echo the key it refused
        outcome.message = conn.redact(outcome.message)
        await self._finish(outcome)
        await self._ttl(None)

    def _set_condition(self, cond: Cond) -> None:
        self.extra = [cond, *[c for c in self.extra if c.type != cond.type]]

    async def _wait_until_ready(self) -> ProviderChoice | None:
        """Pending until the ServiceAccount exists and the provider is usable, re-checking both every
        ``provider_poll_seconds``; ``None`` once ``limits.timeoutSeconds`` passed (the run Failed)."""
        loop = asyncio.get_running_loop()
        deadline = self.deadline
        last: tuple[str, str] | None = None
        while True:
            identity = await self._check_service_account()
            if identity is None:
                verdict: ProviderChoice | NotReady = await self._resolve_provider()
                if isinstance(verdict, ProviderChoice):
                    return verdict
                self._set_condition(Cond.false(inv.COND_PROVIDER, verdict.reason, verdict.message))
                waiting = inv.R_PROVIDER_NOT_READY
            else:
                verdict = identity
                self._set_condition(Cond.false(inv.COND_SERVICE_ACCOUNT, identity.reason, identity.message))
                waiting = identity.reason
            if loop.time() >= deadline:
                await self._fail(waiting, f"{verdict.message}; gave up after "
                                 f"{self.spec.limits.timeout_seconds}s (limits.timeoutSeconds)")
                return None
            if (verdict.reason, verdict.message) != last:
                await self._write(inv.PENDING, waiting, verdict.message)
                if identity is not None:
                    self.emit(inv.WARNING, identity.reason, cut_end(identity.message, 1000))
                last = (verdict.reason, verdict.message)
            await asyncio.sleep(max(0.01, min(self.runtime.settings.provider_poll_seconds,
                                              deadline - loop.time())))

    async def _check_service_account(self) -> NotReady | None:
        """``None`` when the ServiceAccount the tools impersonate exists (read as the operator) and the
        API server says the operator may impersonate it."""
        settings = self.runtime.settings
        namespace = self.target.namespace
        name = inv.service_account_name(self.spec, settings.default_service_account)
        try:
            await self.kube.get_json(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}")
        except KubeError as exc:
            if exc.not_found:
                return NotReady(inv.R_SA_NOT_FOUND, inv.service_account_missing_message(
                    namespace, name, default=settings.default_service_account,
                    cluster_role=settings.investigator_cluster_role))
            return NotReady(inv.R_SA_CHECK_FAILED, cut_end(one_line(
                inv.service_account_unreadable_message(namespace, name, exc.status, str(exc))), 900))
        refused = await self._impersonation_refused(namespace, name)
        if refused is not None:
            return NotReady(inv.R_SA_NOT_IMPERSONABLE, cut_end(one_line(inv.service_account_not_impersonable_message(
                namespace, name, impersonator_role=settings.impersonator_role, detail=refused)), 900))
        self._set_condition(Cond.true(inv.COND_SERVICE_ACCOUNT, inv.R_SA_FOUND, "the tools run as "
                                      f"system:serviceaccount:{namespace}:{name}"))
        return None

    async def _impersonation_refused(self, namespace: str, name: str) -> str | None:
        """``None`` unless a SelfSubjectAccessReview says the operator may not impersonate the
        ServiceAccount; then the server's reason (often empty).

        The operator's role lists the ServiceAccount names it may impersonate (``resourceNames``), so a
        name outside that list would fail every tool call with 403: better one clear condition first.
        The review is an answer about the operator's own rights that any authenticated user may ask for
        (``system:basic-user``); when the question itself fails (an API server without the API, an RBAC
        that removed it), the run goes on, and a real refusal shows up in the tool results.
        """
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": {"verb": "impersonate", "group": "", "resource": "serviceaccounts",
                                                  "namespace": namespace, "name": name}}}
        try:
            answer = await self.kube.send_json("POST", SELF_SUBJECT_ACCESS_REVIEWS, review)
        except KubeError as exc:
            logger.debug("%s/%s: cannot ask whether the operator may impersonate ServiceAccount %s/%s (%s); "
                         "going on", self.target.namespace, self.target.name, namespace, name, exc)
            return None
        status = answer.get("status") if isinstance(answer, Mapping) else None
        if not isinstance(status, Mapping) or status.get("allowed") is not False:  # allowed, or no answer
            return None
        return cut_end(one_line(str(status.get("reason") or status.get("evaluationError") or "")), 200)

    async def _resolve_provider(self) -> ProviderChoice | NotReady:
        own = self.target.namespace
        ref = self.spec.provider_ref
        if ref is not None:
            namespace, name = ref.namespace or own, ref.name
            try:
                obj = await self.kube.get_json(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{MP_PLURAL}/{name}")
            except KubeError as exc:
                if exc.not_found:
                    return NotReady(inv.R_PROVIDER_NOT_FOUND, f"ModelProvider {namespace}/{name} does not exist")
                return NotReady(inv.R_PROVIDER_NOT_READY, f"cannot read ModelProvider {namespace}/{name}: {exc}")
        else:
            namespace = own
            try:
                listing = await self.kube.get_json(f"/apis/{GROUP}/{VERSION}/namespaces/{own}/{MP_PLURAL}",
                                                   {"labelSelector": f"{inv.DEFAULT_PROVIDER_LABEL}=true"})
            except KubeError as exc:
                return NotReady(inv.R_PROVIDER_NOT_READY, f"cannot list ModelProviders in {own}: {exc}")
            items = list((listing or {}).get("items") or [])
            chosen, note = inv.choose_default_provider(items)
            if chosen is None:
                return NotReady(inv.R_NO_DEFAULT_PROVIDER,
                                f"spec.providerRef is not set and no ModelProvider in namespace {own} is labelled "
                                f"{inv.DEFAULT_PROVIDER_LABEL}=true")
            if note:
                logger.info("%s/%s: %s", own, self.target.name, note)
            name = chosen
            obj = next(i for i in items if (i.get("metadata") or {}).get("name") == chosen)
        where = f"ModelProvider {namespace}/{name}"
        try:
            provider = ModelProvider.model_validate(obj)
        except ValidationError as exc:
            return NotReady(inv.R_PROVIDER_NOT_READY,
                            f"{where} has an invalid spec: {inv.describe_validation_error(exc)}")
        if not inv.provider_allowed(namespace, own, provider.spec.allowed_namespaces):
            return NotReady(inv.R_PROVIDER_NOT_ALLOWED, f"{where} does not list namespace {own} in "
                            "spec.allowedNamespaces")
        status = (obj.get("status") or {})
        if not conditions.is_true(status.get("conditions"), "Ready"):
            ready = conditions.find(status.get("conditions"), "Ready")
            why = f": {ready.get('reason')}: {ready.get('message')}".rstrip(": ") if ready else \
                " (not validated yet)"
            return NotReady(inv.R_PROVIDER_NOT_READY, cut_end(one_line(f"{where} is not Ready{why}"), 900))
        try:
            connection = await self.runtime.connect(self.kube, namespace, name, provider.spec)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a ConnectionProblem carries reason and message
            reason = str(getattr(exc, "reason", "") or inv.R_PROVIDER_NOT_READY)
            message = str(getattr(exc, "message", "") or exc)
            return NotReady(reason, cut_end(one_line(f"{where}: {message}"), 900))
        return ProviderChoice(namespace, name, provider.spec, connection)

    async def _run_agent(self, choice: ProviderChoice, carried: inv.UsageTotals) -> AgentOutcome:
        conn = choice.connection
        target, spec = self.target, self.spec
        self.extra = [Cond.true(inv.COND_PROVIDER, inv.R_PROVIDER_READY,
                                f"ModelProvider {choice.namespace}/{choice.name} is Ready"),
                      *[c for c in self.extra if c.type != inv.COND_PROVIDER]]
        record = inv.RunRecord(usage=inv.UsageTotals(carried.prompt_tokens, carried.completion_tokens))
        running = f"investigating with model {conn.model}"
        unenforceable = None
        if spec.limits.max_cost is not None and choice.spec.pricing is None:  # the connection's would be $0
            unenforceable = inv.cost_unenforceable_message(spec.limits.max_cost, choice.display(target.namespace))
            running = f"{running}; {unenforceable}"
        await self._write(inv.RUNNING, inv.R_RUNNING, running,
                          startTime=now_iso(), completionTime=None, provider=choice.display(target.namespace),
                          model=conn.model, summary=None, answer=None, findings=None, findingCount=None,
                          observedGeneration=target.generation, restarts=self.restarts or None,
                          **inv.progress_fields(record, conn.pricing))
        if unenforceable is not None:
            self.emit(inv.WARNING, inv.EVENT_COST_UNENFORCEABLE, unenforceable)
        self.emit(inv.NORMAL, inv.EVENT_STARTED,
                  f"asking {conn.model} through ModelProvider {choice.display(target.namespace)}")
        namespaces = inv.scope_namespaces(target.namespace, spec)
        ctx = ToolContext(self.kube, target.namespace, scope=namespaces,
                          impersonate=inv.impersonation_user(target.namespace, spec,
                                                             self.runtime.settings.default_service_account))
        config = AgentConfig(
            max_steps=spec.limits.max_steps, deadline=self.deadline,
            budget=ContextBudget.for_window(conn.context_window, conn.parameters.max_output_tokens),
            max_tokens=spec.limits.max_tokens, max_cost=spec.limits.max_cost, pricing=conn.pricing,
            request_timeout=float(conn.timeout_seconds), max_retries=conn.max_retries,
            system_role=conn.parameters.supports_system_message)
        question = prompts.user_message(spec.question, namespaces, spec.scope.resources if spec.scope else ())
        model = self.runtime.model_factory(conn)
        try:
            return await Agent(model, shared_registry(), ctx, config, record, self._progress).run(question)
        finally:
            await model.close()

    async def _progress(self, record: inv.RunRecord) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_progress < self.runtime.settings.progress_interval:
            return
        self._last_progress = loop.time()
        await self._patch(inv.progress_fields(record, self.pricing))

    async def _finish(self, outcome: AgentOutcome) -> None:
        record = outcome.record
        fields = inv.progress_fields(record, self.pricing)
        if outcome.succeeded:
            await self._write(inv.SUCCEEDED, outcome.reason, outcome.message, completionTime=now_iso(), **fields)
            summary = record.summary or "answered"
            self.emit(inv.NORMAL, inv.EVENT_SUCCEEDED,
                      cut_end(f"{len(record.findings)} finding(s): {summary}", 1000))
        else:
            await self._fail(outcome.reason, outcome.message, **fields)
        if self.runtime.on_outcome is not None:
            self.runtime.on_outcome(outcome)

    async def _ttl(self, status: Mapping[str, Any] | None) -> None:
        ttl = self.spec.ttl_seconds_after_finished
        if ttl is None:
            return
        status = status if status is not None else {}
        finished = parse_time(status.get("completionTime")) or datetime.now(UTC)
        delay = (finished - datetime.now(UTC)).total_seconds() + ttl
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            await self.kube.send_json("DELETE", self.target.path,
                                      {"apiVersion": "v1", "kind": "DeleteOptions",
                                       "preconditions": {"uid": self.target.uid},
                                       "propagationPolicy": "Background"})
            logger.info("deleted %s/%s: ttlSecondsAfterFinished (%ss) passed", self.target.namespace,
                        self.target.name, ttl)
        except KubeError as exc:
            if not exc.not_found:
                raise


async def supervise(kube: KubeClient, runtime: InvestigationRuntime, body: Mapping[str, Any], stopped: Stoppable,
                    emit: EmitFn) -> None:
    """Run one Investigation until it is done, or until ``stopped`` fires (deletion, operator exit).

    On a stop the run is cancelled at once and nothing more is written: an operator exit leaves the
    status as it was (the next operator restarts the run), a deletion leaves nothing to write to.
    """
    try:
        target = Target.from_body(body)
    except ValidationError as exc:  # only on a server without the CRD's schema validation
        meta = body.get("metadata") or {}
        emit(inv.WARNING, inv.EVENT_INVALID_SPEC, cut_end(inv.describe_validation_error(exc), 1000))
        logger.warning("investigation %s/%s has an invalid spec: %s", meta.get("namespace"), meta.get("name"), exc)
        return
    runner = Runner(kube, runtime, target, emit)
    task = asyncio.create_task(runner.run(), name=f"investigation {target.namespace}/{target.name}")
    runtime.active[target.uid] = task
    stop = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if runtime.active.get(target.uid) is task:
            del runtime.active[target.uid]


__all__ = ["InvestigationRuntime", "Runner", "RunnerSettings", "Target", "supervise"]
