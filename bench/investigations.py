"""Benchmark: N Investigations at once through the in-process operator, against KMock and a
zero-latency scripted model (the fake LLM), each making ``--tools`` tool calls before it submits.

    python bench/investigations.py [-n 200] [--tools 10]

KMock and the fake LLM run in a child process, so that the operator's process (Kopf, the agents, the
Kubernetes and OpenAI clients) is what is measured. Prints wall time, the agent loop's own step
overhead (p50/p95: a step's time outside the model call and the tool calls, so a sliver of the
operator's work), the operator's CPU time per agent step (everything it did, divided by the steps:
the honest per-step cost), throughput, the requests the
operator sent, CPU time of each process over the run, idle and peak RSS, and the size of the first
model request in tokens. Both processes share the machine's cores: on 2 cores the wall time is bound
by the sum of their CPU times as much as by either one.
Figures only: nothing here asserts a time.

Profile both processes (py-spy is not a dependency; ``pip install py-spy`` in the venv)::

    py-spy record --subprocesses --gil -r 200 -f raw -o /tmp/bench.txt -- python bench/investigations.py
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextvars
import logging
import multiprocessing
import os
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

import jsonpatch  # noqa: E402  (Kopf's and KMock's)
import kmock  # noqa: E402
import kopf  # noqa: E402
import kubernetes.client  # noqa: E402
from tests.conftest import OperatorHandle, operator_settings  # noqa: E402
from tests.support.fake_llm import FakeLLM, auto_tool_probe, text, tool_call  # noqa: E402
from tests.support.kube import add_service_account, declare_resources, obj  # noqa: E402

import inquest.main  # noqa: E402,F401  (registers the handlers)
from inquest.agent.loop import AgentOutcome  # noqa: E402
from inquest.agent.prompts import PROMPT_MARKER  # noqa: E402
from inquest.agent.runner import InvestigationRuntime  # noqa: E402
from inquest.clients import Clients, KubeClient  # noqa: E402
from inquest.domain import conditions  # noqa: E402

API = "/apis/inquest.dev/v1alpha1/namespaces/default"


def rss_mb() -> float:
    """Current resident set size (Linux /proc), in MB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class ScriptedAgentModel:
    """Agent requests: ``tools`` tool calls (list pods), then submit_findings. Probes: the default."""

    def __init__(self, tools: int) -> None:
        self.tools = tools
        self.calls = 0

    def __call__(self, request: dict[str, Any]) -> Any:
        messages = request.get("messages") or []
        if not (messages and str(messages[0].get("content", "")).startswith(PROMPT_MARKER)):
            return auto_tool_probe(request)
        self.calls += 1
        done = sum(1 for m in messages if m.get("role") == "tool")
        if done < self.tools:
            return tool_call("list_resources", {"kind": "pods"}, usage=(900, 20))
        if "tools" not in request:
            return text("forced answer")
        return tool_call("submit_findings", {"summary": "web-3 crash-loops", "answer": "web-3 exits with 1.",
                                             "findings": [{"severity": "critical", "title": "web-3 crash-loops",
                                                           "resource": "pod/web-3"}]}, usage=(900, 60))


def serve(pipe: Any, tools: int) -> None:
    """The child process: KMock and the fake LLM, off the operator's process and GIL."""
    asyncio.run(_serve(pipe, tools))


class CurrentRequestLog(list[Any]):
    """KMock's request log, made to hold only the request that the current task is serving.

    KMock matches a request against its reactions by walking its whole request log with each
    reaction's filter: a run grows quadratic and measures the emulator, not the operator. The
    benchmark asserts nothing on the log, so ``append`` keeps the request in a context variable (the
    task serving it) instead, and counts it by verb and resource.
    """

    def __init__(self) -> None:
        super().__init__()
        self.current: contextvars.ContextVar[Any] = contextvars.ContextVar("kmock_request", default=None)
        self.counting = False
        self.tally: collections.Counter[str] = collections.Counter()

    def append(self, request: Any) -> None:
        self.current.set(request)
        if self.counting:
            what = request.resource.plural if request.resource is not None else request.url.path
            verb = str(request.action.value if request.action is not None else request.method.value).lower()
            self.tally[f"{verb} {what}{'/' + request.subresource if request.subresource else ''}"] += 1

    def __iter__(self) -> Iterator[Any]:
        request = self.current.get()
        return iter(() if request is None else (request,))


class Emulator(kmock.KubernetesEmulator):
    """KMock with two API server behaviours Kopf relies on to not repeat its own patches.

    - Every create and update sets a new ``metadata.resourceVersion``: Kopf waits for the echo of
      its own patch by that version, and its JSON patches test it. Without it (KMock keeps none)
      Kopf takes the events queued before its patch for the current state and patches again: the
      annotation and the finalizer removal went out 3-6 times per Investigation.
    - A JSON patch that does not apply (such a failed test) is refused with 422, as kube-apiserver
      does, which Kopf takes as a conflict; KMock answers 500, which Kopf retries with backoff.
    """

    version = 0

    async def _handle(self, request: Any) -> Any:
        if request.resource is not None and request.action in (kmock.action.CREATE, kmock.action.UPDATE):
            self.version += 1
            if isinstance(request.data, dict):  # an object or a merge patch
                request.data.setdefault("metadata", {})["resourceVersion"] = str(self.version)
            elif isinstance(request.data, list):  # a JSON patch
                request.data.append({"op": "add", "path": "/metadata/resourceVersion", "value": str(self.version)})
        return await super()._handle(request)

    async def _render_error(self, exc: Exception) -> Any:
        if isinstance(exc, jsonpatch.JsonPatchException):
            exc = kmock.KubernetesError(status=422, reason="Invalid", message=str(exc))
        return await super()._render_error(exc)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _serve(pipe: Any, tools: int) -> None:
    model = ScriptedAgentModel(tools)
    async with Emulator() as kube, kmock.Server(kube), FakeLLM(default=model) as llm:
        kube._requests = log = CurrentRequestLog()
        declare_resources(kube)
        add_service_account(kube)  # the identity the tools run as: Investigations wait until it exists
        for i in range(10):
            kube.objects["v1/pods", "default", f"web-{i}"] = obj("Pod", f"web-{i}", spec={"containers": [
                {"name": "app", "image": "web:1"}]}, status={"phase": "Running"})
        pipe.send((str(kube.url).rstrip("/"), llm.base_url))
        cpu_started = cpu_seconds()
        while (message := await asyncio.to_thread(pipe.recv)) != "stop":
            if message == "start":
                log.counting, model.calls, cpu_started = True, 0, cpu_seconds()
            else:  # "report"
                pipe.send((model.calls, cpu_seconds() - cpu_started, dict(log.tally)))


class RetryCounter(logging.Filter):
    """Counts (and hides) Kopf's retried API requests (none expected: see ``Emulator``)."""

    def __init__(self) -> None:
        super().__init__()
        self.retries = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Request attempt"):
            self.retries += 1
            return False
        return True


async def main(n: int, tools: int, concurrency: int, kube_workers: int | None) -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kopf").setLevel(logging.ERROR)
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    retries = RetryCounter()
    logging.getLogger("kopf.objects").addFilter(retries)
    outcomes: list[AgentOutcome] = []
    parent, child = multiprocessing.get_context("spawn").Pipe()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(child, tools), daemon=True)
    server.start()
    kube_url, llm_url = await asyncio.to_thread(parent.recv)
    cfg = kubernetes.client.Configuration(host=kube_url)
    # The operator's own defaults (Clients.from_environment) unless --kube-workers says otherwise.
    client = KubeClient(cfg) if kube_workers is None else KubeClient(cfg, max_workers=kube_workers)
    runtime = InvestigationRuntime(on_outcome=outcomes.append)  # called in the operator's thread
    memo = kopf.Memo(clients=Clients(kube=client), investigations=runtime)
    settings = operator_settings()
    # The tests wait at most 0.1 s for the echo of Kopf's own patches (KMock keeps no resourceVersion);
    # the Emulator keeps one, so the operator's own value applies (Kopf's default).
    settings.persistence.consistency_timeout = kopf.OperatorSettings().persistence.consistency_timeout
    handle = OperatorHandle(memo, settings)
    idle_before = rss_mb()
    load = os.getloadavg()
    await handle.start()

    async def phases() -> dict[str, str | None]:
        listing = await client.get_json(f"{API}/investigations")
        return {i["metadata"]["name"]: (i.get("status") or {}).get("phase") for i in listing["items"]}

    try:
        await client.send_json("POST", f"{API}/modelproviders", obj(
            "ModelProvider", "bench", api_version="inquest.dev/v1alpha1",
            metadata={"labels": {"inquest.dev/default": "true"}, "resourceVersion": "1"},
            spec={"baseURL": llm_url, "model": "test-model", "parameters": {"contextWindow": 4096},
                  "maxConcurrentInvestigations": concurrency,
                  "pricing": {"inputPerMillionTokens": 0.5, "outputPerMillionTokens": 1.5}}))
        deadline = time.monotonic() + 30
        while True:
            provider = await client.get_json(f"{API}/modelproviders/bench")
            if conditions.is_true((provider.get("status") or {}).get("conditions"), "Ready"):
                break
            if time.monotonic() > deadline:
                raise SystemExit("the benchmark provider never became Ready")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        idle = rss_mb()

        parent.send("start")
        started = time.monotonic()
        cpu_started = time.process_time()
        await asyncio.gather(*(client.send_json("POST", f"{API}/investigations", obj(
            "Investigation", f"inv-{i:04d}", api_version="inquest.dev/v1alpha1",
            metadata={"uid": f"uid-inv-{i}", "resourceVersion": "1"},
            spec={"question": "Why is web-3 crash-looping?", "limits": {"maxSteps": tools + 2}}))
            for i in range(n)))
        created = time.monotonic() - started
        # Every run that reaches the agent reports its outcome after its last status write: wait for
        # those in-process rather than listing 200 Investigations over and over (that would load both
        # processes with the harness's own JSON); list now and then for runs that end before the agent.
        listed = started
        while True:
            await asyncio.sleep(0.02)
            if len(outcomes) < n and time.monotonic() - listed < 2:
                continue
            listed = time.monotonic()
            final = await phases()
            if len(final) == n and all(p in ("Succeeded", "Failed") for p in final.values()):
                break
            if time.monotonic() - started > 600:
                raise SystemExit(f"not finished after 600 s: {list(final.values()).count('Succeeded')} succeeded")
        wall = time.monotonic() - started
        operator_cpu = time.process_time() - cpu_started
        parent.send("report")
        calls, server_cpu, requests = await asyncio.to_thread(parent.recv)
    finally:
        await handle.stop()
        client.close()
        if server.is_alive():
            parent.send("stop")
        server.join(5)

    values = list(final.values())
    overheads = [o * 1000 for outcome in outcomes for o in outcome.step_overheads]
    steps = sum(outcome.record.steps for outcome in outcomes)
    first_tokens = outcomes[0].first_request_tokens if outcomes else 0
    print(f"investigations      {n} ({values.count('Succeeded')} Succeeded, {values.count('Failed')} Failed), "
          f"{tools} tool calls + submit_findings each, maxConcurrentInvestigations {concurrency}")
    print(f"cpu cores           {os.cpu_count()} (KMock and the fake LLM run in a second process); load average "
          f"{load[0]:.1f} before the run (other processes on the machine lengthen the wall time)")
    print(f"created in          {created:.2f} s")
    print(f"wall time           {wall:.2f} s (first create -> all finished)")
    print(f"model calls         {calls} ({steps} agent steps)")
    print(f"throughput          {n / wall:.1f} investigations/s, {steps / wall:.0f} steps/s")
    print(f"loop step overhead  p50 {percentile(overheads, 50):.2f} ms, p95 {percentile(overheads, 95):.2f} ms "
          f"(wall time per step in the agent loop's own bookkeeping only: not the model client, tool calls, "
          f"Kubernetes client, status writes or Kopf; mean {statistics.fmean(overheads) if overheads else 0:.2f} ms)")
    print(f"operator cpu/step   {operator_cpu / max(1, steps) * 1000:.2f} ms (all operator CPU / agent steps: Kopf, "
          "status writes, the model and Kubernetes clients, tools, the loop, and the benchmark's creates)")
    total = sum(requests.values())
    top = ", ".join(f"{count / n:.1f} {what}" for what, count in
                    sorted(requests.items(), key=lambda item: -item[1])[:6])
    print(f"kube requests       {total} ({total / n:.1f} per investigation: {top}); "
          f"{retries.retries} Kopf retries")
    print(f"cpu time            operator process {operator_cpu:.1f} s (with the benchmark's own creates), "
          f"KMock + fake LLM process {server_cpu:.1f} s")
    print(f"operator RSS        before start {idle_before:.0f} MB, idle {idle:.0f} MB, peak {peak_rss_mb():.0f} MB")
    print(f"first request       {first_tokens} tokens (estimate: system prompt + tool schemas + question)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=200, help="investigations at once (default 200)")
    parser.add_argument("--tools", type=int, default=10, help="tool calls per investigation (default 10)")
    parser.add_argument("--concurrency", type=int, default=100,
                        help="the provider's maxConcurrentInvestigations (default 100, the CRD's maximum)")
    parser.add_argument("--kube-workers", type=int, default=None,
                        help="threads of the operator's KubeClient (default: the operator's default)")
    args = parser.parse_args()
    if os.environ.get("BENCH_SWITCH"):
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH"]))
    asyncio.run(main(args.n, args.tools, args.concurrency, args.kube_workers))
