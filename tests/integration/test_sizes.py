"""Size: a huge log, thousands of pods, a deeply nested object, and a model that answers with megabytes.
Tool outputs stay within their budget (a truncation marker says so), memory stays bounded, and the
Investigation's status stays small and inside the CRD's bounds.
"""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

from inquest.agent.budget import MAX_TOOL_TOKENS
from inquest.api.investigation import InvestigationStatus
from inquest.domain.investigation import TOOL_CALLS_IN_STATUS, findings_cut_note
from tests.support.fake_llm import tool_call, tool_calls
from tests.support.investigations import AgentScript
from tests.support.kube import obj

LOG_MB = 50
PODS = 5000
DEPTH = 200
CANARY = "canary-9f3b2c7e41d84a6f"
# Measured peak (tracemalloc, the whole process: KMock serving the log, the Kubernetes client reading
# all of it, the operator): ~203 MiB for the 50 MiB log, ~4x; the tools keep only the tail they show.
# The bound leaves room without hiding a copy per line or per pod.
PEAK_BOUND = 6 * LOG_MB * 2**20
# The worst case the status writer allows: the answer (16k chars), findings within one 22k budget (the
# least severe left out), the last 50 tool-call records shortened to ~300 B. Far under etcd's 1.5 MiB.
STATUS_BOUND = 64 * 2**10


def big_cluster(kube: Any) -> None:
    for i in range(PODS):
        name = f"worker-{i:05d}"
        kube.objects["v1/pods", "default", name] = obj("Pod", name, metadata={"labels": {"app": "worker"}}, spec={
            "containers": [{"name": "app", "image": "shop/worker:1"}]}, status={"phase": "Running"})
    deep: dict[str, Any] = {"password": CANARY}
    for i in range(DEPTH):
        deep = {f"level{DEPTH - i}": deep}
    kube.objects["v1/configmaps", "default", "deep"] = obj("ConfigMap", "deep", data={"nested.json": json.dumps(deep)},
                                                          metadata={"annotations": {"x": json.dumps(deep)}}, spec=deep)
    line = "2026-01-01T00:00:00Z INFO worker-00001 served GET /api/orders/12345 in 12ms (200) cache=hit\n"
    log = line * (LOG_MB * 2**20 // len(line)) + f"ERROR upstream refused, password={CANARY}\n"
    kube["get /api/v1/namespaces/default/pods/worker-00001/log"] << log


def huge_submission() -> dict[str, Any]:
    blob = "x" * 20_000
    return {
        "summary": "s" * 100_000,
        "answer": "the worker is slow because " * 80_000,  # 2 MB of prose
        "findings": [{"severity": ["critical", "warning", "info"][i % 3], "title": "t" * 5000, "detail": blob,
                      "remediation": blob, "evidence": [f"e{j} " + "y" * 2000 for j in range(20)],
                      "resource": {"kind": "k" * 300, "name": "n" * 1000, "namespace": "s" * 300}}
                     for i in range(60)],
    }


async def test_huge_inputs_give_bounded_outputs_memory_and_status(kube, cluster, llm, start_operator, capsys):
    big_cluster(kube)
    flood = [(f"no_such_tool_{i}_" + "z" * 10_000, {"junk": "j" * 10_000}) for i in range(60)]
    script = AgentScript(llm).add(
        tool_call("list_resources", {"kind": "pods", "limit": 500}),
        tool_call("pod_logs", {"pod": "worker-00001", "tail_lines": 5000}),
        tool_calls([("get_resource", {"kind": "configmaps", "name": "deep"}),
                    ("describe_resource", {"kind": "configmaps", "name": "deep"})]),
        tool_calls(flood), tool_calls(flood),
        tool_call("submit_findings", huge_submission()),
    )
    await start_operator()
    await cluster.provider(llm, parameters={"contextWindow": 32768})
    tracemalloc.start()
    try:
        await cluster.investigation("huge", question="Why is the worker slow?")
        status = await cluster.wait_phase("huge", "Succeeded", "Failed", timeout=120)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert status["phase"] == "Succeeded", status.get("conditions")
    # Tool outputs: each within the step's budget, each cut visibly (as the request after its step saw it).
    def fresh(step: int) -> list[str]:
        messages = script.requests[step]["messages"]
        return [m["content"] for m in messages[messages.index(next(m for m in reversed(messages)
                                                                     if m["role"] == "assistant")) + 1:]]
    (pods,), (log,), (deep_get, deep_describe) = fresh(1), fresh(2), fresh(3)
    outputs = [pods, log, deep_get, deep_describe]
    assert all(len(o) <= MAX_TOOL_TOKENS * 5 for r in script.requests for o in
               [m["content"] for m in r["messages"] if m["role"] == "tool"])
    assert "more not shown" in pods and pods.count("\nworker-") <= 500
    assert "chars cut ...]" in log and "ERROR upstream refused, password=[REDACTED:key-value]" in log
    assert "nested deeper than" in deep_get and "nested deeper than" in deep_describe
    log_reads = [str(r.url) for r in list(kube) if str(r.url).split("?")[0].endswith("/worker-00001/log")]
    assert log_reads and all("limitBytes=4194304" in u for u in log_reads)  # a real kubelet stops at 4 MiB
    assert all(CANARY not in r.body_text for r in llm.requests)
    assert max(len(r.body_text) for r in llm.requests if "You are Inquest" in r.body_text) < 32768 * 5
    # The status: within the CRD's bounds and small, however much the model wrote.
    InvestigationStatus.model_validate(status)
    size = len(json.dumps(status))
    parts = {k: len(json.dumps(status.get(k))) for k in ("answer", "findings", "toolCalls", "conditions")}
    assert size < STATUS_BOUND, (size, parts)
    assert len(status["toolCalls"]) == TOOL_CALLS_IN_STATUS and status["toolCalls"][0]["name"] == "[cut]"
    assert status["toolCallCount"] == 4 + 2 * len(flood) + 1  # the reads, the floods, submit_findings
    shown = len(status["findings"])
    assert status["findingCount"] == 60 and 0 < shown < 30 and status["findings"][0]["severity"] == "critical"
    assert len(status["answer"]) <= 16_000 and "chars cut" in status["answer"]
    assert status["answer"].endswith(findings_cut_note(shown, 60))
    assert peak < PEAK_BOUND, peak
    with capsys.disabled():
        print(f"\n[sizes] log {LOG_MB} MiB, {PODS} pods, depth {DEPTH}: tracemalloc peak {peak / 2**20:.1f} MiB, "
              f"status {size / 2**10:.1f} KiB {parts}, tool outputs {[len(o) for o in outputs]} chars")
