"""inquest.clients.providers: the registry, the prober task's scheduling, and validate() without network."""

from __future__ import annotations

import asyncio
from typing import Any

from inquest.clients import providers
from inquest.clients.kube import KubeError
from inquest.clients.providers import Outcome, ProviderRegistry, probe_interval, retry_base, validate
from inquest.domain import reasons
from tests.conftest import eventually


def body(name: str = "p", **spec: Any) -> dict[str, Any]:
    spec.setdefault("baseURL", "http://h:99999/v1")  # invalid port (the schema admits it): no network call
    spec.setdefault("model", "m")
    return {"apiVersion": "inquest.dev/v1alpha1", "kind": "ModelProvider",
            "metadata": {"name": name, "namespace": "ns", "uid": "u", "generation": 4}, "spec": spec}


class RecordingKube:
    def __init__(self, missing: bool = False) -> None:
        self.sent: list[tuple[str, str, Any, str | None]] = []
        self.missing = missing

    async def send_json(self, method: str, path: str, payload: Any, *, content_type: str | None = None) -> Any:
        self.sent.append((method, path, payload, content_type))
        if self.missing:
            raise KubeError(404, "NotFound", "gone")
        return {}


async def test_validate_invalid_spec_writes_status_and_never_schedules():
    kube, registry = RecordingKube(), ProviderRegistry()
    outcome = await validate(kube, registry, body())  # type: ignore[arg-type]
    assert outcome is not None and outcome.phase == "Invalid" and outcome.next_delay is None
    early, (method, path, payload, ctype) = kube.sent  # a new provider first shows "Probing"
    assert early[2]["status"]["conditions"][0]["reason"] == reasons.PROBING
    assert (method, ctype) == ("PATCH", "application/merge-patch+json")
    assert path == "/apis/inquest.dev/v1alpha1/namespaces/ns/modelproviders/p/status"
    status = payload["status"]
    assert status["phase"] == "Invalid" and status["observedGeneration"] == 4 and status["endpoint"] is None
    assert [e.reason for e in outcome.events] == [reasons.INVALID_URL, reasons.INVALID_URL]  # Ready + check
    state = registry.state("ns", "p")
    assert state.next_due is None and state.status is not None and state.body is not None
    # the next run merges with what was written: nothing flips, no events
    again = await validate(kube, registry, body(), write=False)  # type: ignore[arg-type]
    assert again is not None and again.events == [] and len(kube.sent) == 2


async def test_handler_path_writes_probing_first_for_new_and_changed_specs_only():
    """The Kopf handlers' way (write=False, announce=True): the verdict goes into Kopf's patch, but
    "Probing" is written at once. Without announce (inquest check, offline) nothing is written."""
    kube, registry = RecordingKube(), ProviderRegistry()
    await validate(kube, registry, body(), write=False)  # type: ignore[arg-type]
    assert kube.sent == []
    registry = ProviderRegistry()
    await validate(kube, registry, body(), write=False, announce=True)  # type: ignore[arg-type]
    ((_, _, payload, _),) = kube.sent
    assert payload["status"]["phase"] == "NotReady" and payload["status"]["observedGeneration"] == 4
    assert payload["status"]["conditions"][0]["reason"] == reasons.PROBING
    await validate(kube, registry, body(), write=False, announce=True)  # type: ignore[arg-type]  # same generation
    assert len(kube.sent) == 1
    changed = body()
    changed["metadata"]["generation"] = 5
    await validate(kube, registry, changed, write=False, announce=True)  # type: ignore[arg-type]
    assert len(kube.sent) == 2 and kube.sent[1][2]["status"]["observedGeneration"] == 5
    assert kube.sent[1][2]["status"]["conditions"][0]["reason"] == reasons.PROBING


async def test_validate_of_a_deleted_provider():
    outcome = await validate(RecordingKube(missing=True), ProviderRegistry(), body())  # type: ignore[arg-type]
    assert outcome is None


async def test_prober_runs_when_asked_and_when_due(monkeypatch):
    runs: list[str] = []
    registry = ProviderRegistry()

    async def fake_validate(kube: Any, reg: ProviderRegistry, b: Any, **_: Any) -> Outcome:
        state = reg.state("ns", "p")
        state.requested = False
        runs.append(b["metadata"]["name"])
        delay = 0.05 if len(runs) < 3 else None  # due twice more, then only when asked
        state.next_due = None if delay is None else asyncio.get_running_loop().time() + delay
        return Outcome(status={}, events=[], phase="NotReady", next_delay=delay)

    monkeypatch.setattr(providers, "validate", fake_validate)
    seen: list[Outcome] = []
    state = registry.state("ns", "p")
    state.body = body()
    registry.ensure_prober(None, "ns", "p", lambda b, o: seen.append(o))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert runs == []  # nothing due, nothing asked: the handlers validate first
    registry.request("ns", "p")
    await eventually(lambda: len(runs) == 3, timeout=2)
    await asyncio.sleep(0.2)
    assert len(runs) == 3  # Invalid-like: no further runs until asked
    registry.request("ns", "p")
    await eventually(lambda: len(runs) == 4, timeout=2)
    assert len(seen) == 4
    task = state.task
    registry.forget("ns", "p")
    await asyncio.sleep(0)
    assert task is not None and (task.cancelled() or task.done())
    assert ("ns", "p") not in registry


async def test_prober_survives_errors(monkeypatch):
    monkeypatch.setenv(providers.ENV_RETRY_BASE, "0.05")
    calls = 0
    registry = ProviderRegistry()

    async def flaky(kube: Any, reg: ProviderRegistry, b: Any, **_: Any) -> Outcome | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("cannot schedule new futures after shutdown")
        return None  # deleted

    monkeypatch.setattr(providers, "validate", flaky)
    registry.state("ns", "p").body = body()
    registry.request("ns", "p")
    registry.ensure_prober(None, "ns", "p", lambda b, o: None)  # type: ignore[arg-type]
    await eventually(lambda: ("ns", "p") not in registry, timeout=2)
    assert calls == 2


def test_environment_knobs(monkeypatch):
    monkeypatch.delenv(providers.ENV_PROBE_INTERVAL, raising=False)
    monkeypatch.delenv(providers.ENV_RETRY_BASE, raising=False)
    assert probe_interval(300) == 300 and retry_base() == 5
    monkeypatch.setenv(providers.ENV_PROBE_INTERVAL, "0.5")
    monkeypatch.setenv(providers.ENV_RETRY_BASE, "nonsense")
    assert probe_interval(300) == 0.5 and retry_base() == 5

