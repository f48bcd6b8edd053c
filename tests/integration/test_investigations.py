"""Investigations end to end: the operator in-process against KMock and the fake LLM.

Objects the operator must notice are created through the API (KMock's watch streams only see
what goes through HTTP). The fake LLM serves the ModelProvider's validation probes with its default
responder, and the agent's requests (recognised by the system prompt) from the scripted queue of
:class:`AgentScript`, so probes never consume the script.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from inquest.api.investigation import InvestigationStatus
from tests.conftest import eventually
from tests.support.fake_llm import fault, hang, rate_limited, text, tool_call
from tests.support.investigations import API, AgentScript, cluster_events, condition, tool_names
from tests.support.kube import (
    INVESTIGATOR,
    POST_ACCESS_REVIEW,
    access_reviews,
    add_service_account,
    answer_access_reviews,
    impersonated_users,
    obj,
)

SUBMIT = {
    "summary": "checkout crash-loops: DATABASE_URL is not set",
    "answer": "checkout exits with code 1 at start: the DATABASE_URL variable is missing from its Deployment.",
    "findings": [{"severity": "critical", "title": "checkout-7d9f-abcde crash-loops",
                  "resource": "default/Pod/checkout-7d9f-abcde", "evidence": ["FATAL: DATABASE_URL is not set"],
                  "remediation": "Set DATABASE_URL in the checkout Deployment."}],
}


def crashloop_objects(kube: Any) -> None:
    kube.objects["v1/pods", "default", "checkout-7d9f-abcde"] = obj("Pod", "checkout-7d9f-abcde", metadata={
        "labels": {"app": "checkout"}}, spec={"nodeName": "node-1", "containers": [{"name": "app",
                                                                                      "image": "shop/checkout:1.4.2"}]},
        status={"phase": "Running", "containerStatuses": [{
            "name": "app", "ready": False, "restartCount": 7,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed"}},
            "lastState": {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": "2026-01-01T00:10:00Z"}}}]})
    kube.objects["v1/pods", "default", "cart-1"] = obj("Pod", "cart-1", spec={"containers": [{"name": "app"}]},
                                                      status={"phase": "Running"})
    kube.objects["v1/events", "default", "checkout.1"] = obj(
        "Event", "checkout.1", type="Warning", reason="BackOff", message="Back-off restarting failed container",
        count=12, lastTimestamp="2026-01-01T00:11:00Z",
        involvedObject={"kind": "Pod", "name": "checkout-7d9f-abcde", "namespace": "default"})
    kube.objects["v1/events", "default", "cart.1"] = obj(
        "Event", "cart.1", type="Normal", reason="Started", message="Started container",
        involvedObject={"kind": "Pod", "name": "cart-1", "namespace": "default"})
    kube["get /api/v1/namespaces/default/pods/checkout-7d9f-abcde/log"] << (
        "starting checkout 1.4.2\nFATAL: DATABASE_URL is not set\n")


def usage(prompt: int, completion: int) -> tuple[int, int]:
    """Token usage the fake LLM reports for a reply."""
    return (prompt, completion)


# --------------------------------------------------------------------------- the run


async def test_crashloop_investigation_succeeds_with_findings_usage_and_cost(kube, cluster, llm, start_operator):
    crashloop_objects(kube)
    script = AgentScript(llm).add(
        tool_call("list_resources", {"kind": "pods"}, usage=usage(1000, 50)),
        tool_call("pod_logs", {"pod": "checkout-7d9f-abcde", "previous": True}, usage=usage(1200, 50)),
        tool_call("list_events", {"involved_name": "checkout-7d9f-abcde"}, usage=usage(1400, 50)),
        tool_call("submit_findings", SUBMIT, usage=usage(1600, 250)),
    )
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("why-crash")
    status = await cluster.wait_phase("why-crash", "Succeeded")

    InvestigationStatus.model_validate(status)
    assert status["summary"] == SUBMIT["summary"] and status["answer"] == SUBMIT["answer"]
    assert status["findingCount"] == 1
    (finding,) = status["findings"]
    assert finding["severity"] == "critical" and finding["evidence"] == ["FATAL: DATABASE_URL is not set"]
    assert finding["resource"] == {"kind": "Pod", "name": "checkout-7d9f-abcde", "namespace": "default"}
    assert status["usage"] == {"promptTokens": 5200, "completionTokens": 400, "totalTokens": 5600,
                               "cost": 0.0144}  # 5200 * $2/M + 400 * $10/M
    assert status["steps"] == 4
    assert tool_names(status) == ["list_resources", "pod_logs", "list_events", "submit_findings"]
    assert all("error" not in c for c in status["toolCalls"])
    assert (status["provider"], status["model"]) == ("local", "test-model")
    assert status["startTime"] and status["completionTime"] and status["observedGeneration"] == 1
    assert condition(status, "Succeeded")["status"] == "True"
    assert condition(status, "ProviderReady")["status"] == "True"

    requests = script.requests
    assert len(requests) == 4
    assert {t["function"]["name"] for t in requests[0]["tools"]} >= {"list_resources", "pod_logs", "submit_findings"}
    tool_results = [m["content"] for m in requests[3]["messages"] if m["role"] == "tool"]
    assert "CrashLoopBackOff" in tool_results[0] and "cart-1" in tool_results[0]
    assert "FATAL: DATABASE_URL is not set" in tool_results[1]
    assert "BackOff" in tool_results[2] and "Started" not in tool_results[2]  # only the pod's own events
    log_reads = [r for r in list(kube) if "/log" in str(r.url)]
    assert log_reads and "previous=true" in str(log_reads[-1].url)

    reasons = [e["reason"] for e in await eventually(lambda: cluster_events(cluster, "why-crash"), timeout=5)]
    assert "InvestigationStarted" in reasons and "InvestigationSucceeded" in reasons


async def test_tool_errors_go_back_to_the_model_and_a_plain_text_answer_is_kept(kube, cluster, llm, start_operator):
    kube["get /api/v1/namespaces/default/pods/ghost/log"] << 404
    script = AgentScript(llm).add(
        tool_call("get_resource", '{"kind": "pods", "name": '),
        tool_call("exec_into_pod", {"pod": "x"}),
        tool_call("pod_logs", {"pod": "ghost"}),
        tool_call("get_resource", {"kind": "secrets", "name": "db"}),
        text("No workload in default is failing; the pods you asked about do not exist."),
    )
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("robust")
    status = await cluster.wait_phase("robust", "Succeeded")
    errors = [c.get("error", "") for c in status["toolCalls"]]
    assert "not valid JSON" in errors[0] and "unknown tool 'exec_into_pod'" in errors[1]
    assert "pods 'ghost' not found" in errors[2] and "Secrets are not readable" in errors[3]
    assert status["summary"] == "No workload in default is failing; the pods you asked about do not exist."
    assert status["findingCount"] == 0 and status["findings"] == []
    assert not [r for r in list(kube) if "/namespaces/default/secrets" in str(r.url)]
    assert len(script.requests) == 5


async def test_rate_limit_then_success(cluster, llm, start_operator):
    script = AgentScript(llm).add(rate_limited(1), text("Everything is fine."))
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("patient")
    status = await cluster.wait_phase("patient", "Succeeded")
    assert status["answer"] == "Everything is fine." and len(script.requests) == 2
    refused, answered = [r for r in llm.requests if r.path.endswith("/chat/completions")][-2:]
    assert refused.status == 429 and answered.at - refused.at >= 1.0  # Retry-After: 1 was honoured


async def test_server_errors_retry_then_unauthorized_fails_fast(cluster, llm, start_operator):
    script = AgentScript(llm).add(fault(503), text("ok after a retry"))
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("retry")
    await cluster.wait_phase("retry", "Succeeded")
    assert len(script.requests) == 2
    script.add(fault(401, {"error": {"message": "Incorrect API key provided: sk-...abcd", "type": "auth"}}))
    await cluster.investigation("denied")
    status = await cluster.wait_phase("denied", "Failed")
    cond = condition(status, "Succeeded")
    assert cond["reason"] == "ModelAuthenticationFailed" and "Incorrect API key provided" in cond["message"]
    assert len(script.requests) == 3  # no retry


async def test_a_provider_error_that_echoes_the_key_is_redacted(kube, cluster, llm_factory, start_operator):
    """Some servers put the key they refused in the error text: it must not reach status or Events."""
    key = "inquest-echoed-" + "7f3a9c2e5b1d4f6a"  # no credential shape: only knowing the key finds it
    llm = await llm_factory(api_key=key)
    kube.objects["v1/secrets", "default", "llm-key"] = obj("Secret", "llm-key", stringData={"api-key": key})
    AgentScript(llm).add(fault(401, {"error": {"message": f"Incorrect API key provided: {key}", "type": "auth"}}))
    await start_operator()
    await cluster.provider(llm, apiKeySecretRef={"name": "llm-key", "key": "api-key"})
    await cluster.investigation("echo")
    status = await cluster.wait_phase("echo", "Failed")
    cond = condition(status, "Succeeded")
    assert cond["reason"] == "ModelAuthenticationFailed" and "Incorrect API key provided: [redacted]" in cond["message"]
    assert key not in json.dumps(status) and key[-6:] not in json.dumps(status)
    events = await eventually(lambda: cluster_events(cluster, "echo"), timeout=5)
    assert events and key not in json.dumps(events)


async def test_a_retried_error_that_echoes_the_key_stays_out_of_the_log(kube, cluster, llm_factory, start_operator,
                                                                        caplog):
    """A 5xx quoting the key is logged before the retry: the log line must not carry it."""
    key = "inquest-echoed-" + "c4e8a1f07d2b9e35"
    llm = await llm_factory(api_key=key)
    kube.objects["v1/secrets", "default", "llm-key"] = obj("Secret", "llm-key", stringData={"api-key": key})
    AgentScript(llm).add(fault(503, {"error": {"message": f"upstream refused key {key}"}}), text("done"))
    caplog.set_level(logging.DEBUG)
    await start_operator()
    await cluster.provider(llm, apiKeySecretRef={"name": "llm-key", "key": "api-key"})
    await cluster.investigation("echo-retry")
    await cluster.wait_phase("echo-retry", "Succeeded")
    assert "upstream refused key [redacted]" in caplog.text
    assert key not in caplog.text


async def test_deadline_fails_the_run_and_keeps_progress(cluster, llm, start_operator):
    AgentScript(llm).add(tool_call("list_resources", {"kind": "pods"}), hang(30))
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("slow", limits={"timeoutSeconds": 2})
    status = await cluster.wait_phase("slow", "Failed")
    assert condition(status, "Succeeded")["reason"] == "DeadlineExceeded"
    assert status["steps"] == 1 and tool_names(status) == ["list_resources"]
    reasons = [e["reason"] for e in await eventually(lambda: cluster_events(cluster, "slow"), timeout=5)]
    assert "InvestigationFailed" in reasons


async def test_max_steps_forces_a_final_answer_without_tools(cluster, llm, start_operator):
    script = AgentScript(llm).add(
        tool_call("list_resources", {"kind": "pods"}),
        tool_call("list_events", {}),
        text(json.dumps(SUBMIT)),
    )
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("short", limits={"maxSteps": 3})
    status = await cluster.wait_phase("short", "Failed")
    assert condition(status, "Succeeded")["reason"] == "StepLimitReached"
    assert status["summary"] == SUBMIT["summary"] and status["findingCount"] == 1
    assert ["tools" in r for r in script.requests] == [True, True, False]


# --------------------------------------------------------------------------- lifecycle


async def test_operator_restart_mid_run_restarts_once_from_scratch(cluster, llm, start_operator):
    script = AgentScript(llm).add(tool_call("list_resources", {"kind": "pods"}), hang(60))
    first = await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("interrupted")
    await eventually(lambda: len(script.requests) == 2 and cluster.status("interrupted")["phase"] == "Running")
    await first.stop()
    assert cluster.status("interrupted")["phase"] == "Running"  # an exit writes nothing

    script.add(tool_call("list_events", {}), tool_call("submit_findings", SUBMIT))
    await start_operator()
    status = await cluster.wait_phase("interrupted", "Succeeded")
    assert status["restarts"] == 1
    restarted = condition(status, "Restarted")
    assert (restarted["status"], restarted["reason"]) == ("True", "OperatorRestarted")
    assert tool_names(status) == ["list_events", "submit_findings"]  # from scratch
    assert len(script.requests) == 4


async def test_a_finished_investigation_is_never_run_again(cluster, llm, start_operator):
    script = AgentScript(llm).add(text("done"))
    first = await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("once")
    before = await cluster.wait_phase("once", "Succeeded")
    await first.stop()
    await start_operator()
    await asyncio.sleep(1.0)  # give a wrongly resumed run the time to show up
    assert len(script.requests) == 1
    assert cluster.status("once")["completionTime"] == before["completionTime"]


async def test_a_second_interruption_fails_the_run(kube, cluster, llm, start_operator):
    await start_operator()
    await cluster.provider(llm)
    body = obj("Investigation", "flaky", api_version="inquest.dev/v1alpha1", spec={"question": "q"},
               metadata={"resourceVersion": "1"},
               status={"phase": "Running", "restarts": 1, "observedGeneration": 1})
    await cluster.create(f"{API}/default/investigations", body)
    status = await cluster.wait_phase("flaky", "Failed")
    assert condition(status, "Succeeded")["reason"] == "RestartLimitExceeded"


async def test_deleting_a_running_investigation_cancels_it_at_once(kube, cluster, llm, start_operator):
    script = AgentScript(llm).add(hang(60))
    handle = await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("doomed")
    await eventually(lambda: script.requests and cluster.status("doomed").get("phase") == "Running")
    assert cluster.exists("doomed")
    runtime = handle.memo.investigations
    assert len(runtime.active) == 1
    await cluster.client.send_json("DELETE", f"{API}/default/investigations/doomed", None)
    deleted_at = len(list(kube))
    await eventually(lambda: not cluster.exists("doomed"), timeout=10)
    await eventually(lambda: not runtime.active, timeout=5)
    await asyncio.sleep(0.5)
    late = [r for r in list(kube)[deleted_at:] if str(r.method).lower().endswith("patch")
            and "/investigations/doomed/status" in str(r.url)]
    assert late == []


async def test_spec_edits_are_refused_and_not_rerun(kube, cluster, llm, start_operator):
    script = AgentScript(llm).add(text("first answer"))
    handle = await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("fixed")
    await cluster.wait_phase("fixed", "Succeeded")
    # Edit once the run is over (its daemon gone). Kopf drops its finalizer only when a later watch
    # event arrives, so the finalizer may or may not still be there: the edit must be refused either way.
    await eventually(lambda: not handle.memo.investigations.active)
    await asyncio.sleep(0.5)
    await cluster.client.send_json("PATCH", f"{API}/default/investigations/fixed",
                                   {"spec": {"question": "something else?"}},
                                   content_type="application/merge-patch+json")

    def refused() -> dict[str, Any]:
        return condition(cluster.status("fixed"), "SpecImmutable")

    cond = await eventually(refused, timeout=30)
    assert (cond["status"], cond["reason"]) == ("True", "SpecChangeRefused")
    await asyncio.sleep(0.5)
    status = cluster.status("fixed")
    assert status["phase"] == "Succeeded" and status["answer"] == "first answer"
    assert len(script.requests) == 1


async def test_a_spec_edit_while_running_is_refused_and_the_run_keeps_its_question(cluster, llm, start_operator):
    script = AgentScript(llm).add(tool_call("list_resources", {"kind": "pods"}), hang(2, text("original answer")))
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("moving", question="Why does checkout keep restarting?")
    await eventually(lambda: len(script.requests) == 2 and cluster.status("moving")["phase"] == "Running")
    await cluster.client.send_json("PATCH", f"{API}/default/investigations/moving",
                                   {"spec": {"question": "What about cart?"}},
                                   content_type="application/merge-patch+json")
    status = await cluster.wait_phase("moving", "Succeeded")
    await asyncio.sleep(0.5)  # any late write of the runner or the handler lands
    status = cluster.status("moving")
    cond = condition(status, "SpecImmutable")
    assert (cond["status"], cond["reason"]) == ("True", "SpecChangeRefused")
    assert status["phase"] == "Succeeded" and status["answer"] == "original answer"
    assert len(script.requests) == 2 and not script.items
    questions = [m["content"] for r in script.requests for m in r["messages"] if m["role"] == "user"]
    assert questions and all("Why does checkout keep restarting?" in q and "cart" not in q for q in questions)


async def test_concurrency_limit_queues_the_rest(cluster, llm, start_operator):
    script = AgentScript(llm).add(hang(1.5, text("first")), text("second"))
    await start_operator()
    await cluster.provider(llm, maxConcurrentInvestigations=1)
    await cluster.investigation("one")
    await eventually(lambda: cluster.status("one").get("phase") == "Running")
    await cluster.investigation("two")

    def queued() -> bool:
        cond = condition(cluster.status("two"), "Succeeded")
        assert cluster.status("two")["phase"] == "Pending" and cond["reason"] == "Queued", cond
        return "at most 1 investigation" in cond["message"]

    await eventually(queued)
    assert cluster.status("one")["phase"] == "Running"
    first = await cluster.wait_phase("one", "Succeeded")
    second = await cluster.wait_phase("two", "Succeeded")
    assert (first["answer"], second["answer"]) == ("first", "second")
    assert second["startTime"] >= first["completionTime"]
    assert len(script.requests) == 2


async def test_a_queued_investigation_fails_at_its_deadline_without_a_slot(cluster, llm, start_operator):
    script = AgentScript(llm).add(hang(5, text("first")), text("second"))
    await start_operator()
    await cluster.provider(llm, maxConcurrentInvestigations=1)
    await cluster.investigation("one")
    await eventually(lambda: cluster.status("one").get("phase") == "Running")
    await cluster.investigation("two", limits={"timeoutSeconds": 2})
    second = await cluster.wait_phase("two", "Failed")
    cond = condition(second, "Succeeded")
    assert cond["reason"] == "DeadlineExceeded" and "waited in the queue" in cond["message"], cond
    assert "startTime" not in second and cluster.status("one")["phase"] == "Running"
    first = await cluster.wait_phase("one", "Succeeded")
    assert first["answer"] == "first"
    assert len(script.requests) == 1  # the queued one never reached the model


async def test_max_cost_without_provider_pricing_is_reported_as_unenforceable(cluster, llm, start_operator):
    AgentScript(llm).add(text("done"))
    await start_operator()
    await cluster.provider(llm, pricing=None)
    await cluster.investigation("priceless", limits={"maxCost": 0.01})
    status = await cluster.wait_phase("priceless", "Succeeded")
    running = [w.data["status"]["conditions"] for w in cluster.status_writes("priceless")
               if (w.data.get("status") or {}).get("phase") == "Running" and "conditions" in w.data["status"]]
    messages = [condition({"conditions": c}, "Succeeded")["message"] for c in running]
    assert messages and all("limits.maxCost ($0.01) is not enforced: ModelProvider local has no spec.pricing"
                            in m for m in messages), messages
    events = {e["reason"]: e for e in await eventually(lambda: cluster_events(cluster, "priceless"), timeout=5)}
    assert events["CostBudgetUnenforceable"]["type"] == "Warning"
    assert "no spec.pricing" in events["CostBudgetUnenforceable"]["message"]
    assert status["usage"]["cost"] == 0


async def test_max_cost_with_provider_pricing_posts_no_unenforceable_event(cluster, llm, start_operator):
    AgentScript(llm).add(text("done"))
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("priced", limits={"maxCost": 0.01})
    await cluster.wait_phase("priced", "Succeeded")
    reasons = [e["reason"] for e in await eventually(lambda: cluster_events(cluster, "priced"), timeout=5)]
    assert "CostBudgetUnenforceable" not in reasons and "InvestigationStarted" in reasons


async def test_ttl_deletes_finished_investigations(cluster, llm, start_operator):
    AgentScript(llm).add(text("done"))
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("ephemeral", ttlSecondsAfterFinished=3)
    await cluster.wait_phase("ephemeral", "Succeeded")
    assert cluster.exists("ephemeral")  # kept for at least 2 s (completionTime has a 1 s resolution)
    await eventually(lambda: not cluster.exists("ephemeral"), timeout=10)


# --------------------------------------------------------------------------- the provider


async def test_provider_not_ready_then_ready(kube, cluster, llm, start_operator):
    script = AgentScript(llm).add(text("answered once the provider was Ready"))
    await start_operator()
    await cluster.provider(llm, ready=False, base_url="http://127.0.0.1:9/v1")
    await cluster.investigation("waits")

    def pending() -> bool:
        status = cluster.status("waits")
        assert status.get("phase") == "Pending"
        ready = condition(status, "ProviderReady")
        assert (ready["status"], ready["reason"]) == ("False", "ProviderNotReady")
        assert condition(status, "Succeeded")["reason"] == "ProviderNotReady"
        return "ModelProvider default/local is not Ready" in ready["message"]

    await eventually(pending, timeout=15)
    assert script.requests == []
    await cluster.client.send_json("PATCH", f"{API}/default/modelproviders/local", {"spec": {"baseURL": llm.base_url}},
                                   content_type="application/merge-patch+json")
    status = await cluster.wait_phase("waits", "Succeeded", timeout=20)
    assert status["answer"] == "answered once the provider was Ready"


async def test_no_provider_fails_after_the_timeout(cluster, start_operator):
    await start_operator()
    await cluster.investigation("orphan", limits={"timeoutSeconds": 1})
    status = await cluster.wait_phase("orphan", "Failed")
    assert condition(status, "Succeeded")["reason"] == "ProviderNotReady"
    ready = condition(status, "ProviderReady")
    assert ready["reason"] == "NoDefaultProvider" and "inquest.dev/default=true" in ready["message"]


async def test_provider_ref_to_a_missing_provider(cluster, start_operator):
    await start_operator()
    await cluster.investigation("lost", providerRef={"name": "nope"}, limits={"timeoutSeconds": 1})
    status = await cluster.wait_phase("lost", "Failed")
    assert condition(status, "ProviderReady")["reason"] == "ProviderNotFound"


# --------------------------------------------------------------------------- identity and scope

DEFAULT_USER = f"system:serviceaccount:default:{INVESTIGATOR}"


async def test_tools_impersonate_the_default_service_account(kube, cluster, llm, start_operator):
    crashloop_objects(kube)
    script = AgentScript(llm).add(
        tool_call("list_resources", {"kind": "pods"}),
        tool_call("pod_logs", {"pod": "checkout-7d9f-abcde"}),
        tool_call("list_resources", {"kind": "pods", "namespace": "kube-system"}),
        tool_call("submit_findings", SUBMIT),
    )
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("as-investigator")
    status = await cluster.wait_phase("as-investigator", "Succeeded")

    # every read of the tools carried the ServiceAccount's name; the operator's own calls carried none
    assert impersonated_users(kube, "/checkout-7d9f-abcde/log") == [DEFAULT_USER]
    reads = impersonated_users(kube, "/namespaces/default/pods")
    assert len(reads) >= 2 and set(reads) == {DEFAULT_USER}
    assert impersonated_users(kube, f"/serviceaccounts/{INVESTIGATOR}") == [None]  # the check, as the operator
    # and the question whether it may act as it: about the operator's own rights, so never impersonated
    assert impersonated_users(kube, "/selfsubjectaccessreviews") == [None]
    assert access_reviews(kube) == [{"verb": "impersonate", "group": "", "resource": "serviceaccounts",
                                     "namespace": "default", "name": INVESTIGATOR}]
    assert set(impersonated_users(kube, "/investigations/as-investigator/status")) == {None}
    assert set(impersonated_users(kube, "/modelproviders")) == {None}
    identity = condition(status, "ServiceAccountReady")
    assert (identity["status"], identity["reason"]) == ("True", "ServiceAccountFound")
    assert DEFAULT_USER in identity["message"]

    # scope.namespaces (default: the own namespace) is enforced before any request is made
    refused = [m["content"] for m in script.requests[3]["messages"] if m["role"] == "tool"][2]
    assert "namespace 'kube-system' is outside this investigation's scope (allowed: default)" in refused
    assert impersonated_users(kube, "/namespaces/kube-system") == []
    assert "outside" in status["toolCalls"][2]["error"]


async def test_tools_impersonate_the_named_service_account(kube, cluster, llm, start_operator):
    add_service_account(kube, "reader")
    AgentScript(llm).add(tool_call("list_resources", {"kind": "configmaps"}), text("nothing to report"))
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("as-reader", serviceAccountName="reader")
    status = await cluster.wait_phase("as-reader", "Succeeded")
    assert impersonated_users(kube, "/namespaces/default/configmaps") == ["system:serviceaccount:default:reader"]
    assert impersonated_users(kube, "/serviceaccounts/reader") == [None]
    assert impersonated_users(kube, f"/serviceaccounts/{INVESTIGATOR}") == []
    assert "system:serviceaccount:default:reader" in condition(status, "ServiceAccountReady")["message"]


async def test_a_missing_service_account_keeps_the_run_pending_until_it_exists(kube, cluster, llm, start_operator):
    del kube.objects["v1/serviceaccounts", "default", INVESTIGATOR]
    script = AgentScript(llm).add(tool_call("list_resources", {"kind": "pods"}), text("ran once it existed"))
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("no-identity")

    def pending() -> dict[str, Any]:
        status = cluster.status("no-identity")
        assert status.get("phase") == "Pending"
        identity = condition(status, "ServiceAccountReady")
        assert (identity["status"], identity["reason"]) == ("False", "ServiceAccountNotFound")
        succeeded = condition(status, "Succeeded")
        assert (succeeded["status"], succeeded["reason"]) == ("Unknown", "ServiceAccountNotFound")
        return identity

    identity = await eventually(pending, timeout=15)
    assert f"ServiceAccount default/{INVESTIGATOR} does not exist" in identity["message"]
    assert f"kubectl create serviceaccount {INVESTIGATOR} -n default" in identity["message"]
    assert (f"kubectl create rolebinding {INVESTIGATOR} --clusterrole=inquest-investigator "
            f"--serviceaccount=default:{INVESTIGATOR} -n default") in identity["message"]
    await asyncio.sleep(0.6)  # a few polls: still nothing ran, nothing was read as anybody
    assert cluster.status("no-identity")["phase"] == "Pending"
    assert script.requests == [] and impersonated_users(kube, "/namespaces/default/pods") == []
    warnings = [r.data for r in list(kube) if str(r.method).lower().endswith("post")
                and str(r.url.path).endswith("/events") and isinstance(r.data, dict)
                and r.data.get("reason") == "ServiceAccountNotFound"]
    assert warnings and warnings[0]["type"] == "Warning"

    add_service_account(kube)
    status = await cluster.wait_phase("no-identity", "Succeeded", timeout=20)
    assert status["answer"] == "ran once it existed"
    assert condition(status, "ServiceAccountReady")["reason"] == "ServiceAccountFound"
    assert impersonated_users(kube, "/namespaces/default/pods") == [DEFAULT_USER]


async def test_a_missing_service_account_fails_after_the_timeout(cluster, llm, start_operator):
    script = AgentScript(llm)
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("ghost-identity", serviceAccountName="ghost", limits={"timeoutSeconds": 1})
    status = await cluster.wait_phase("ghost-identity", "Failed")
    failed = condition(status, "Succeeded")
    assert (failed["status"], failed["reason"]) == ("False", "ServiceAccountNotFound")
    assert "ServiceAccount default/ghost does not exist" in failed["message"]
    assert "gave up after 1s (limits.timeoutSeconds)" in failed["message"]
    assert condition(status, "ServiceAccountReady")["reason"] == "ServiceAccountNotFound"
    assert script.requests == []


async def test_an_unreadable_service_account_is_a_condition_not_a_fallback(kube, cluster, llm, start_operator):
    kube[f"get /api/v1/namespaces/default/serviceaccounts/{INVESTIGATOR}"] << 403
    script = AgentScript(llm)
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("check-refused", limits={"timeoutSeconds": 1})
    status = await cluster.wait_phase("check-refused", "Failed")
    assert condition(status, "Succeeded")["reason"] == "ServiceAccountCheckFailed"
    identity = condition(status, "ServiceAccountReady")
    assert (identity["status"], identity["reason"]) == ("False", "ServiceAccountCheckFailed")
    assert f"the operator may not read ServiceAccount default/{INVESTIGATOR}" in identity["message"]
    assert "get and impersonate on serviceaccounts" in identity["message"]
    assert script.requests == []


async def test_a_service_account_the_operator_may_not_impersonate_keeps_the_run_pending(kube, cluster, llm,
                                                                                          start_operator):
    """The operator's role names the ServiceAccounts it may act as: for any other the API server's
    SelfSubjectAccessReview says no, and the run waits with a condition that says what to grant."""
    add_service_account(kube, "reader")
    grant = {"reader": False}
    answer_access_reviews(kube, lambda attributes: grant.get(attributes["name"], True), default=False)
    script = AgentScript(llm).add(tool_call("list_resources", {"kind": "pods"}), text("ran once allowed"))
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("as-reader", serviceAccountName="reader")

    def pending() -> dict[str, Any]:
        status = cluster.status("as-reader")
        assert status.get("phase") == "Pending"
        identity = condition(status, "ServiceAccountReady")
        assert (identity["status"], identity["reason"]) == ("False", "ServiceAccountNotImpersonable")
        assert condition(status, "Succeeded")["reason"] == "ServiceAccountNotImpersonable"
        return identity

    message = (await eventually(pending, timeout=15))["message"]
    assert "the operator may not impersonate ServiceAccount default/reader" in message
    assert ('add "reader" to resourceNames of the impersonate rule on serviceaccounts of the operator\'s role '
            "inquest-impersonator") in message
    assert "investigator.impersonableServiceAccounts" in message
    assert "a Role in default with verbs [impersonate] on serviceaccounts, resourceNames [reader]" in message
    await asyncio.sleep(0.6)  # a few polls: nothing ran, nothing was read as anybody
    assert cluster.status("as-reader")["phase"] == "Pending"
    assert script.requests == [] and impersonated_users(kube, "/namespaces/default/pods") == []
    assert all(review == {"verb": "impersonate", "group": "", "resource": "serviceaccounts",
                          "namespace": "default", "name": "reader"} for review in access_reviews(kube))
    assert len(access_reviews(kube)) >= 2  # asked again on every poll
    warnings = await eventually(lambda: [r.data for r in list(kube) if str(r.method).lower().endswith("post")
                                         and str(r.url.path).endswith("/events") and isinstance(r.data, dict)
                                         and r.data.get("reason") == "ServiceAccountNotImpersonable"], timeout=5)
    assert warnings[0]["type"] == "Warning" and warnings[0]["involvedObject"]["name"] == "as-reader"

    grant["reader"] = True  # what the message says to do, done
    status = await cluster.wait_phase("as-reader", "Succeeded", timeout=20)
    assert status["answer"] == "ran once allowed"
    assert condition(status, "ServiceAccountReady")["reason"] == "ServiceAccountFound"
    assert impersonated_users(kube, "/namespaces/default/pods") == ["system:serviceaccount:default:reader"]


async def test_a_service_account_never_made_impersonable_fails_after_the_timeout(kube, cluster, llm,
                                                                                start_operator):
    answer_access_reviews(kube, lambda attributes: False, "no RBAC policy matched", default=False)
    script = AgentScript(llm)
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("refused-identity", limits={"timeoutSeconds": 1})
    status = await cluster.wait_phase("refused-identity", "Failed")
    failed = condition(status, "Succeeded")
    assert (failed["status"], failed["reason"]) == ("False", "ServiceAccountNotImpersonable")
    assert f"may not impersonate ServiceAccount default/{INVESTIGATOR} (no RBAC policy matched)" in failed["message"]
    assert "gave up after 1s (limits.timeoutSeconds)" in failed["message"]
    assert script.requests == []


@pytest.mark.parametrize("failure", [403, 404, 500])
async def test_a_failing_access_review_does_not_block_the_run(kube, cluster, llm, start_operator, caplog, failure):
    """When the question itself fails (RBAC without system:basic-user, a server without the API), the
    run goes on: a real refusal would show in the tool results."""
    kube[POST_ACCESS_REVIEW] << failure
    AgentScript(llm).add(tool_call("list_resources", {"kind": "pods"}), text("ran without the review"))
    await start_operator()
    await cluster.provider(llm)
    await cluster.investigation("unreviewed")
    status = await cluster.wait_phase("unreviewed", "Succeeded", "Failed")
    assert status["phase"] == "Succeeded" and status["answer"] == "ran without the review"
    assert condition(status, "ServiceAccountReady")["reason"] == "ServiceAccountFound"
    assert len(access_reviews(kube)) == 1 and impersonated_users(kube, "/namespaces/default/pods") == [DEFAULT_USER]
    assert any("cannot ask whether the operator may impersonate ServiceAccount default/inquest-investigator"
               in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


@pytest.mark.parametrize("allowed, usable", [
    (["default"], True),
    (["*"], True),
    (["payments", "default-2"], False),
    ([], False),
])
async def test_a_provider_in_another_namespace_needs_allowed_namespaces(cluster, llm, start_operator, allowed,
                                                                       usable):
    script = AgentScript(llm).add(text("answered through a shared provider"))
    await start_operator()
    await cluster.provider(llm, "shared", namespace="llm", default=False, allowedNamespaces=allowed)
    await cluster.investigation("borrowing", providerRef={"name": "shared", "namespace": "llm"},
                                limits={"timeoutSeconds": 2})
    status = await cluster.wait_phase("borrowing", "Succeeded", "Failed", timeout=20)
    ready = condition(status, "ProviderReady")
    if usable:
        assert status["phase"] == "Succeeded" and status["provider"] == "llm/shared"
        assert ready["status"] == "True" and len(script.requests) == 1
    else:
        assert status["phase"] == "Failed" and condition(status, "Succeeded")["reason"] == "ProviderNotReady"
        assert (ready["status"], ready["reason"]) == ("False", "ProviderNotAllowed")
        assert "ModelProvider llm/shared does not list namespace default in spec.allowedNamespaces" \
            in ready["message"]
        assert script.requests == []
