"""Investigations end to end: broken workloads on the real API server, the operator (deploy/'s
ServiceAccount) running the agent, its tools impersonating the namespace's investigator
ServiceAccount (deploy/'s ClusterRole), and a scripted model behind the fake LLM over TLS."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.agent_script import ScriptedModel, marker_question, submit_broken_pods
from tests.e2e.controlplane import ControlPlane
from tests.e2e.harness import (
    GROUP,
    VERSION,
    bind_investigator,
    collection_path,
    condition,
    create_ok,
    create_tls_provider,
    get,
    table,
    table_rows,
    unique,
    wait_for,
)
from tests.e2e.processes import OperatorProcess
from tests.e2e.workloads import Scene, build_scene
from tests.support.certs import TestPKI
from tests.support.fake_llm import FakeLLM, hang, tool_call

API_KEY = "sk-e2e-inv-" + "0b7e4d1c9a2f"


@dataclass
class Setup:
    namespace: str
    provider: str
    investigator: str
    scene: Scene
    model: ScriptedModel
    llm: FakeLLM


@pytest.fixture
def scripted(fake_llm_tls: FakeLLM) -> Iterator[ScriptedModel]:
    model = ScriptedModel()
    fake_llm_tls.default = model
    fake_llm_tls.api_key = API_KEY
    yield model


@pytest.fixture
def setup(controlplane: ControlPlane, namespace: str, pki: TestPKI, fake_llm_tls: FakeLLM,
          scripted: ScriptedModel) -> Setup:
    """Broken workloads, the investigator identity, and a ModelProvider (not yet validated)."""
    scene = build_scene(controlplane, namespace)
    investigator = bind_investigator(controlplane, namespace)
    provider = create_tls_provider(controlplane, namespace, fake_llm_tls.base_url, API_KEY, pki.ca.cert_pem)
    return Setup(namespace, provider, investigator, scene, scripted, fake_llm_tls)


def investigation(s: Setup, name: str, marker: str, question: str, **limits: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"question": marker_question(marker, question), "providerRef": {"name": s.provider},
                            "serviceAccountName": s.investigator}
    if limits:
        spec["limits"] = limits
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Investigation", "metadata": {"name": name}, "spec": spec}


def read(cp: ControlPlane, s: Setup, name: str) -> dict[str, Any]:
    obj = get(cp, "Investigation", name, s.namespace)
    assert obj is not None, f"Investigation {name} is gone"
    return obj


def wait_phase(cp: ControlPlane, op: OperatorProcess, s: Setup, name: str, *phases: str,
               timeout: float = 60.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = read(cp, s, name)
        return obj if (obj.get("status") or {}).get("phase") in phases else None

    try:
        return wait_for(check, timeout=timeout, what=f"Investigation {name} to be {'/'.join(phases)}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nstatus: {read(cp, s, name).get('status')}{op.diagnostics()}") from None


def events_of(cp: ControlPlane, namespace: str, name: str, reason: str | None = None) -> list[dict[str, Any]]:
    status, body = cp.request("GET", f"/api/v1/namespaces/{namespace}/events"
                                     f"?fieldSelector=involvedObject.kind%3DInvestigation,involvedObject.name%3D{name}")
    assert status == 200, body
    return [e for e in body["items"] if reason is None or e["reason"] == reason]


def assert_found_the_broken_pods(obj: dict[str, Any], s: Setup, op: OperatorProcess) -> None:
    status = obj["status"]
    context = f"\nstatus: {status}{op.diagnostics()}"
    assert status["phase"] == "Succeeded", context
    succeeded = condition(obj, "Succeeded")
    assert succeeded is not None and succeeded["status"] == "True", context
    findings = status.get("findings") or []
    named = {(f.get("resource") or {}).get("name"): f for f in findings}
    assert set(named) == set(s.scene.broken), f"findings name {sorted(named)}, broken: {sorted(s.scene.broken)}" \
        + context
    for pod, reason in s.scene.broken.items():
        finding = named[pod]
        assert finding["severity"] == "critical", finding
        assert (finding.get("resource") or {}).get("kind", "").lower() == "pod", finding
        assert reason in finding["title"], finding
        assert any(pod in line for line in finding.get("evidence") or []), finding
    assert s.scene.healthy_pod not in repr(findings)
    assert status["findingCount"] == len(findings) == 3, context
    assert s.scene.crashloop_pod in status["summary"], context
    assert status["provider"] == s.provider and status["model"] == "test-model", context
    usage = status["usage"]
    assert usage["totalTokens"] == usage["promptTokens"] + usage["completionTokens"] > 0, usage
    assert status["startTime"] <= status["completionTime"], context
    assert status["observedGeneration"] == obj["metadata"]["generation"], context


# --------------------------------------------------------------------------- the run


def test_investigation_finds_the_broken_pods(controlplane: ControlPlane, setup: Setup,
                                             operator: OperatorProcess) -> None:
    s, model, cp = setup, setup.model, controlplane
    marker = unique("crash")
    model.add(
        marker,
        tool_call("list_resources", {"kind": "pods", "namespace": s.namespace}),
        tool_call("describe_resource", {"kind": "Pod", "name": s.scene.crashloop_pod, "namespace": s.namespace}),
        tool_call("list_events", {"namespace": s.namespace, "warnings_only": True}),
        tool_call("pod_logs", {"pod": s.scene.crashloop_pod, "namespace": s.namespace, "previous": True}),
        tool_call("get_resource", {"kind": "Secret", "name": "llm", "namespace": s.namespace}),
        tool_call("list_resources", {"kind": "deployments", "namespace": s.namespace}),
        submit_broken_pods,
    )
    name = "why-failing"
    create_ok(cp, investigation(s, name, marker, "What pods are failing, and why?"), s.namespace)
    obj = wait_phase(cp, operator, s, name, "Succeeded", "Failed")
    assert_found_the_broken_pods(obj, s, operator)
    assert model.remaining(marker) == 0 and model.calls[marker].count("exhausted") == 0, model.calls[marker]

    # what the tools read from the real API server, as the investigator ServiceAccount
    pods = "\n".join(model.result_of(marker, "list_resources"))
    for pod, reason in s.scene.broken.items():
        assert pod in pods and reason in pods, pods
    assert s.scene.healthy_pod in pods
    (described,) = model.result_of(marker, "describe_resource")
    assert "CrashLoopBackOff" in described and s.scene.crashloop_pod in described, described
    assert "Back-off restarting failed container" in described, described  # its events
    (events,) = model.result_of(marker, "list_events")
    assert "Failed to pull image" in events and "Started container" not in events, events  # warnings only
    (logs,) = model.result_of(marker, "pod_logs")  # no kubelet: the error goes back to the model
    assert "could not read logs" in logs or "error" in logs.lower(), logs
    (secret,) = model.result_of(marker, "get_resource")
    assert API_KEY not in secret and base64.b64encode(API_KEY.encode()).decode() not in secret, secret
    assert "checkout" in "\n".join(model.result_of(marker, "list_resources")[1:]), "deployments not listed"
    for request in model.requests[marker]:
        assert API_KEY not in repr(request), "the API key was sent to the model"

    # the status log of tool calls, the Events, kubectl get
    status = obj["status"]
    names = [c["name"] for c in status.get("toolCalls") or []]
    assert names[:6] == ["list_resources", "describe_resource", "list_events", "pod_logs", "get_resource",
                         "list_resources"], names
    assert status["toolCalls"][3].get("error"), status["toolCalls"][3]  # pod_logs failed, the run went on
    assert status["steps"] >= 7, status
    assert len(events_of(cp, s.namespace, name, "InvestigationSucceeded")) == 1
    assert len(events_of(cp, s.namespace, name, "InvestigationStarted")) == 1
    row = table_rows(table(cp, collection_path("Investigation", s.namespace)))[name]
    assert (row["Phase"], row["Provider"], row["Findings"]) == ("Succeeded", s.provider, 3), row
    assert s.scene.crashloop_pod in row["Summary"], row
    assert not operator.problems(), operator.problems()


# --------------------------------------------------------------------------- operator restarts


def test_operator_killed_mid_investigation(controlplane: ControlPlane, setup: Setup,
                                           operator: OperatorProcess) -> None:
    """SIGKILL while the model is thinking: after the restart the run starts again from scratch, once,
    finishes once with a whole status; finished Investigations are never run again."""
    s, model, cp = setup, setup.model, controlplane

    # one Investigation finishes before the crash
    done_marker = unique("done")
    model.add(done_marker, tool_call("list_resources", {"kind": "pods", "namespace": s.namespace}),
              submit_broken_pods)
    create_ok(cp, investigation(s, "finished-first", done_marker, "What is failing?"), s.namespace)
    finished = wait_phase(cp, operator, s, "finished-first", "Succeeded", "Failed")
    assert_found_the_broken_pods(finished, s, operator)
    done_requests = len(model.requests[done_marker])

    # another one is mid-run when the operator dies
    marker = unique("killed")
    model.add(
        marker,
        tool_call("list_resources", {"kind": "pods", "namespace": s.namespace}),
        hang(120),  # the model "thinks" until long after the kill
        # after the restart, from scratch:
        tool_call("list_resources", {"kind": "pods", "namespace": s.namespace}),
        tool_call("list_events", {"namespace": s.namespace, "warnings_only": True}),
        submit_broken_pods,
    )
    name = "interrupted"
    create_ok(cp, investigation(s, name, marker, "Why is checkout down?"), s.namespace)
    wait_for(lambda: len(model.requests[marker]) >= 2, timeout=60,
             what="the model call that hangs" + operator.diagnostics())
    running = read(cp, s, name)
    assert running["status"]["phase"] == "Running", running["status"]
    assert operator.kill() == -9
    assert read(cp, s, name)["status"]["phase"] == "Running"  # nobody is left to say otherwise

    operator.start()
    obj = wait_phase(cp, operator, s, name, "Succeeded", "Failed")
    assert_found_the_broken_pods(obj, s, operator)
    status = obj["status"]
    assert status.get("restarts") == 1, status
    restarted = condition(obj, "Restarted")
    assert restarted is not None and restarted["status"] == "True", status["conditions"]
    assert restarted["reason"] == "OperatorRestarted", restarted
    # once: one answer, one success Event, the script used up exactly (2 calls before, 3 after the kill)
    assert model.remaining(marker) == 0 and model.calls[marker].count("exhausted") == 0, model.calls[marker]
    assert len(model.requests[marker]) == 5, model.calls[marker]
    assert len(events_of(cp, s.namespace, name, "InvestigationSucceeded")) == 1
    assert len(events_of(cp, s.namespace, name, "InvestigationRestarted")) == 1
    # the status is the second run's, whole: its tool calls, not a mix of both runs
    assert [c["name"] for c in status["toolCalls"]][:2] == ["list_resources", "list_events"], status["toolCalls"]
    assert status["steps"] == 3, status
    assert status["usage"]["promptTokens"] > 0

    # the finished one was left alone
    assert read(cp, s, "finished-first")["status"] == finished["status"]
    assert len(model.requests[done_marker]) == done_requests

    # a clean restart (SIGINT) runs neither again; a new Investigation proves the operator caught up
    before = {n: read(cp, s, n)["status"] for n in ("finished-first", name)}
    assert operator.stop() == 0, operator.diagnostics()
    operator.start()
    late_marker = unique("late")
    model.add(late_marker, tool_call("list_resources", {"kind": "pods", "namespace": s.namespace}),
              submit_broken_pods)
    create_ok(cp, investigation(s, "after-restart", late_marker, "Anything failing now?"), s.namespace)
    assert_found_the_broken_pods(wait_phase(cp, operator, s, "after-restart", "Succeeded", "Failed"), s, operator)
    for n, old in before.items():
        assert read(cp, s, n)["status"] == old, f"{n} changed after a restart"
    assert len(model.requests[marker]) == 5 and len(model.requests[done_marker]) == done_requests
    assert len(events_of(cp, s.namespace, name, "InvestigationSucceeded")) == 1
    assert len(events_of(cp, s.namespace, "finished-first", "InvestigationSucceeded")) == 1
    assert not model.unrouted, model.unrouted


# --------------------------------------------------------------------------- lifecycle on a real server


def test_deleting_a_running_investigation(controlplane: ControlPlane, setup: Setup,
                                          operator: OperatorProcess) -> None:
    """The delete goes through at once (Kopf's finalizer released, the agent cancelled mid-call)."""
    s, model, cp = setup, setup.model, controlplane
    marker = unique("deleted")
    model.add(marker, hang(120), submit_broken_pods)
    name = "deleted-mid-run"
    create_ok(cp, investigation(s, name, marker, "What is failing?"), s.namespace)
    wait_for(lambda: len(model.requests[marker]) == 1, timeout=30, what="the first model call" + operator.diagnostics())
    assert read(cp, s, name)["metadata"].get("finalizers"), "no finalizer: a deletion could not stop the agent"
    st, body = cp.request("DELETE", f"{collection_path('Investigation', s.namespace)}/{name}")
    assert st == 200, body
    wait_for(lambda: get(cp, "Investigation", name, s.namespace) is None, timeout=20,
             what=f"{name} to be gone" + operator.diagnostics())
    assert len(model.requests[marker]) == 1 and model.remaining(marker) == 1, model.calls[marker]
    assert operator.running
    late_writes = [line for line in operator.output().splitlines()
                   if f"/investigations/{name}/status HTTP/1.1\" 404" in line]
    assert not late_writes, "status written after the deletion:\n" + "\n".join(late_writes)


def test_finished_investigations_spec_edit_and_ttl(controlplane: ControlPlane, setup: Setup,
                                                   operator: OperatorProcess) -> None:
    """v1.20 ignores the CRD's CEL immutability rule, so the operator refuses a spec edit itself; and a
    finished Investigation with ttlSecondsAfterFinished is deleted by the operator (deploy/ grants it)."""
    s, model, cp = setup, setup.model, controlplane
    edited, expiring = unique("edited"), unique("expiring")
    model.add(edited, tool_call("list_resources", {"kind": "pods", "namespace": s.namespace}), submit_broken_pods)
    model.add(expiring, tool_call("list_resources", {"kind": "pods", "namespace": s.namespace}), submit_broken_pods)
    create_ok(cp, investigation(s, "edited", edited, "What is failing?"), s.namespace)
    short_lived = investigation(s, "expiring", expiring, "What is failing?")
    short_lived["spec"]["ttlSecondsAfterFinished"] = 2
    create_ok(cp, short_lived, s.namespace)

    done = wait_phase(cp, operator, s, "edited", "Succeeded", "Failed")
    assert_found_the_broken_pods(done, s, operator)
    st, body = cp.request("PATCH", f"{collection_path('Investigation', s.namespace)}/edited",
                          {"spec": {"question": marker_question(edited, "Something else?")}},
                          content_type="application/merge-patch+json")
    assert st == 200 and body["metadata"]["generation"] == 2, body  # the server lets it through (no CEL)

    def refused() -> dict[str, Any] | None:
        obj = read(cp, s, "edited")
        cond = condition(obj, "SpecImmutable")
        return obj if cond and cond["status"] == "True" else None

    obj = wait_for(refused, timeout=20, what="the SpecImmutable condition" + operator.diagnostics())
    assert obj["status"]["phase"] == "Succeeded"
    assert obj["status"]["findings"] == done["status"]["findings"]
    assert len(model.requests[edited]) == 2, "the edit made it run again"
    assert events_of(cp, s.namespace, "edited", "SpecChangeRefused"), "no Warning event about the refused edit"

    # the other one finished too, and then went away on its own
    wait_for(lambda: get(cp, "Investigation", "expiring", s.namespace) is None, timeout=30,
             what="the TTL deletion" + operator.diagnostics())
    assert len(model.requests[expiring]) == 2
    assert events_of(cp, s.namespace, "expiring", "InvestigationSucceeded")
