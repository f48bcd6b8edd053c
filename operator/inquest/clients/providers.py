"""ModelProvider validation runs: resolve references, probe, write the status, schedule the next run.

One ``ProviderRegistry`` per operator (in Kopf's memo) keeps, per provider, a lock (one validation
at a time, so the status is never overwritten by an older run), the time of the next probe, a wake-up
event, and the status last written. Every path goes through ``validate``:

- the create/update/resume handlers call it directly;
- a per-provider prober task (``ProviderRegistry.ensure_prober``, started by those handlers) calls it
  when the next probe is due: after ``probeIntervalSeconds`` when Ready, with exponential backoff when
  NotReady, never when Invalid (until the spec or a referenced object changes);
- the Secret/ConfigMap watch calls ``registry.request(...)`` which wakes the prober at once.

The prober is a plain asyncio task rather than a Kopf timer or daemon: those make Kopf put a
finalizer on every ModelProvider, so deleting one would hang while the operator is down, for a
task that holds nothing to clean up. The task stops when the provider is deleted (watch event) and
when the operator stops (cleanup handler).

The status goes to the status subresource with a JSON merge patch (``None`` deletes a field).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from inquest import GROUP
from inquest.api.modelprovider import PLURAL
from inquest.clients import connection, probe
from inquest.clients.kube import KubeClient, KubeError
from inquest.domain import provider, reasons
from inquest.domain.provider import EventSpec, ProbeReport

logger = logging.getLogger(__name__)

VERSION = "v1alpha1"
ENV_PROBE_INTERVAL = "INQUEST_PROBE_INTERVAL_SECONDS"  # overrides every provider's probeIntervalSeconds
ENV_RETRY_BASE = "INQUEST_RETRY_BASE_SECONDS"  # first backoff delay of a NotReady provider (default 5)


def _env_float(name: str, default: float | None) -> float | None:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return max(0.05, float(raw))
    except ValueError:
        logger.warning("ignoring %s=%r: not a number", name, raw)
        return default


def probe_interval(spec_interval: float) -> float:
    return _env_float(ENV_PROBE_INTERVAL, None) or spec_interval


def retry_base() -> float:
    return _env_float(ENV_RETRY_BASE, 5.0) or 5.0


@dataclass
class ProviderState:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    requested: bool = False  # a referenced Secret/ConfigMap changed: validate at once
    next_due: float | None = None  # loop time of the next probe; None: only when asked
    failures: int = 0  # consecutive NotReady verdicts (backoff)
    status: dict[str, Any] | None = None  # the status last written
    warned: set[str] = field(default_factory=set)  # CA fingerprints already warned about
    runs: int = 0
    body: Mapping[str, Any] | None = None  # the object as last validated (the prober re-reads its spec)
    task: asyncio.Task[None] | None = None


class ProviderRegistry:
    """Per-provider bookkeeping, shared by the handlers, the prober daemons and the Secret watch."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], ProviderState] = {}

    def state(self, namespace: str, name: str) -> ProviderState:
        key = (namespace, name)
        if key not in self._states:
            self._states[key] = ProviderState()
        return self._states[key]

    def request(self, namespace: str, name: str) -> None:
        """Re-validate the provider as soon as possible (a referenced object changed)."""
        state = self.state(namespace, name)
        state.requested = True
        state.wake.set()

    def forget(self, namespace: str, name: str) -> None:
        """The provider is gone: stop its prober and drop its state."""
        state = self._states.pop((namespace, name), None)
        if state is not None and state.task is not None:
            state.task.cancel()

    def close(self) -> None:
        for key in list(self._states):
            self.forget(*key)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._states

    def ensure_prober(self, kube: KubeClient, namespace: str, name: str, on_outcome: OutcomeCallback) -> None:
        """Start the provider's prober task unless it runs. Call it from within the operator (Kopf
        handlers): the task inherits the context that ``kopf.event`` needs. Nothing happens for a
        provider that was never validated or was deleted meanwhile."""
        state = self._states.get((namespace, name))
        if state is None:
            return
        if state.task is None or state.task.done():
            state.task = asyncio.create_task(run_prober(kube, self, namespace, name, on_outcome),
                                             name=f"inquest prober {namespace}/{name}")


@dataclass
class Outcome:
    """What one validation did: the status written and the Events to post."""

    status: dict[str, Any]
    events: list[EventSpec]
    phase: str
    next_delay: float | None


def status_path(namespace: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status"


async def write_status(kube: KubeClient, namespace: str, name: str, status: Mapping[str, Any]) -> bool:
    """Merge-patch the status subresource. False when the provider is gone."""
    try:
        await kube.send_json("PATCH", status_path(namespace, name), {"status": dict(status)},
                             content_type="application/merge-patch+json")
    except KubeError as exc:
        if exc.not_found:
            return False
        raise
    return True


def _meta(body: Mapping[str, Any]) -> tuple[str, str, int | None]:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or ""), meta.get("generation")


def _unvalidated(status: Mapping[str, Any] | None, generation: int | None) -> bool:
    """No verdict yet, or one about an older spec."""
    status = status or {}
    return not status.get("conditions") or status.get("observedGeneration") != generation


async def validate(
    kube: KubeClient,
    registry: ProviderRegistry,
    body: Mapping[str, Any],
    *,
    write: bool = True,
    announce: bool | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Outcome | None:
    """Validate one provider end to end; write its status unless ``write`` is false (Kopf handlers
    return it through ``patch.status`` instead, in the same patch as Kopf's own bookkeeping). With
    ``announce`` (default: ``write``) a new or changed provider first shows phase NotReady, Ready
    Unknown (Probing), written at once. None when the provider was deleted meanwhile."""
    namespace, name, generation = _meta(body)
    state = registry.state(namespace, name)
    async with state.lock:
        state.requested = False
        state.runs += 1
        state.body = body
        raw_spec = body.get("spec") or {}
        old_status = state.status if state.status is not None else dict(body.get("status") or {})
        endpoint = provider.endpoint_of(raw_spec)
        spec, problems = provider.parse_spec(raw_spec)

        if (write if announce is None else announce) and spec is not None and _unvalidated(old_status, generation):
            # A new or changed provider: say at once that it is being validated, since the probe may take a
            # few requestTimeoutSeconds. The handlers ask for it although they do not ``write``: their patch
            # lands only when they return, after the probe.
            early = provider.probing_status(old_status, generation=generation, endpoint=endpoint, now=now())
            if not await write_status(kube, namespace, name, early):
                return None
            old_status = early

        resolution: connection.Resolution | None = None
        report: ProbeReport | None = None
        if spec is not None:
            resolution = await connection.resolve(kube, namespace, name, spec, now=now())
            problems = problems + resolution.problems
            if resolution.connection is not None:
                report = await probe.probe(resolution.connection)

        ca = resolution.ca_certificates if resolution is not None else []
        verdict = provider.evaluate(
            problems=problems,
            references=resolution.references if resolution is not None else 0,
            resolved=resolution is not None,
            report=report,
            ca_certificates=ca,
            model=spec.model if spec is not None else None,
            endpoint=endpoint,
            now=now(),
        )
        status, transitions = provider.build_status(old_status, verdict, generation=generation, endpoint=endpoint,
                                                    ca_certificates=ca, report=report, now=now())
        if write and not await write_status(kube, namespace, name, status):
            return None
        state.status = {k: v for k, v in ({**old_status, **status}).items() if v is not None}

        events = provider.events_for(transitions)
        for fingerprint, event in provider.expiry_events(ca, now=now()):
            if fingerprint not in state.warned:
                state.warned.add(fingerprint)
                events.append(event)

        state.failures = state.failures + 1 if verdict.phase == "NotReady" else 0
        interval = probe_interval(float(spec.probe_interval_seconds if spec is not None else 300))
        delay = provider.next_delay(verdict.retry, failures=state.failures, interval=interval, base=retry_base())
        loop = asyncio.get_running_loop()
        state.next_due = None if delay is None else loop.time() + delay
        state.wake.set()  # the prober recomputes its sleep
        ready = verdict.get(reasons.READY)
        logger.debug("validated ModelProvider %s/%s: %s (%s: %s), next probe in %s s", namespace, name,
                     verdict.phase, ready.reason, ready.message, "never" if delay is None else f"{delay:g}")
        return Outcome(status=status, events=events, phase=verdict.phase, next_delay=delay)


OutcomeCallback = Callable[[Mapping[str, Any], Outcome], None]


async def run_prober(
    kube: KubeClient, registry: ProviderRegistry, namespace: str, name: str, on_outcome: OutcomeCallback
) -> None:
    """Validate the provider whenever due or asked, hand each outcome (and the body it was made
    from) to ``on_outcome``, until cancelled or the provider disappears."""
    state = registry.state(namespace, name)
    loop = asyncio.get_running_loop()
    while True:
        due = state.requested or (state.next_due is not None and loop.time() >= state.next_due)
        if due and state.body is not None:
            try:
                outcome = await validate(kube, registry, state.body)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a background task must survive anything
                # KubeError, OSError, a client closed at shutdown... Never a secret: messages name objects.
                logger.warning("validation of ModelProvider %s/%s failed: %s; retrying in %g s",
                               namespace, name, exc, retry_base())
                state.next_due = loop.time() + retry_base()
                state.requested = False
                continue
            if outcome is None:  # deleted
                registry.forget(namespace, name)
                return
            on_outcome(state.body, outcome)
            continue
        timeout = None if state.next_due is None else max(0.0, state.next_due - loop.time())
        try:
            await asyncio.wait_for(state.wake.wait(), timeout)
        except TimeoutError:
            pass
        state.wake.clear()
