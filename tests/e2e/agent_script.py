"""A scripted model for e2e Investigations, served by the fake LLM.

``ScriptedModel`` is installed as the FakeLLM's default responder. It answers ModelProvider probes
(recognised by the probe's tool) like a tool-calling model, and every Investigation's requests from
that Investigation's own script, chosen by a marker in its question: several Investigations and the
provider's re-probes may call the server at once, in any order.

``submit_broken_pods`` is a script step that is not canned: it reads the tool results the operator
sent back (what the real API server returned to the impersonated tools) and reports the pods whose
STATUS column shows a failure. So "the findings name the broken pod" holds only if the tools really
read the cluster.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

from inquest.clients.probe import PROBE_TOOL_NAME
from tests.support.fake_llm import Item, auto_tool_probe, text, tool_call

Step: TypeAlias = "Item | Callable[[dict[str, Any], ScriptedModel, str], Item]"
FAILING_STATES = ("CrashLoopBackOff", "OOMKilled", "ImagePullBackOff", "ErrImagePull", "Error")


def _messages_text(request: dict[str, Any]) -> str:
    parts = []
    for message in request.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "\n".join(parts)


def is_probe(request: dict[str, Any]) -> bool:
    return any((t.get("function") or {}).get("name") == PROBE_TOOL_NAME for t in request.get("tools") or [])


class ScriptedModel:
    """Routes each chat request to the script of the Investigation whose marker its messages hold."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.scripts: dict[str, deque[Step]] = {}
        self.requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.probes = 0
        self.unrouted: list[dict[str, Any]] = []
        self.calls: dict[str, list[str]] = defaultdict(list)  # marker -> kinds of answers given

    def add(self, marker: str, *steps: Step) -> None:
        with self._lock:
            self.scripts.setdefault(marker, deque()).extend(steps)

    def remaining(self, marker: str) -> int:
        return len(self.scripts.get(marker, ()))

    def __call__(self, request: dict[str, Any]) -> Item:
        if is_probe(request):
            with self._lock:
                self.probes += 1
            return auto_tool_probe(request)
        body = _messages_text(request)
        with self._lock:
            marker = next((m for m in self.scripts if m in body), None)
            if marker is None:
                self.unrouted.append(request)
                return text("unscripted request")
            self.requests[marker].append(request)
            step = self.scripts[marker].popleft() if self.scripts[marker] else None
        if step is None:
            self.calls[marker].append("exhausted")
            return text(f"script for {marker} is exhausted")
        item = step(request, self, marker) if callable(step) else step
        self.calls[marker].append(type(item).__name__)
        return item

    # ---- what the operator sent back ------------------------------------------------

    def tool_results(self, marker: str) -> dict[str, str]:
        """tool_call_id -> result text, over every request of this Investigation."""
        results: dict[str, str] = {}
        for request in self.requests.get(marker, []):
            for message in request.get("messages") or []:
                if message.get("role") == "tool" and isinstance(message.get("content"), str):
                    results[str(message.get("tool_call_id"))] = message["content"]
        return results

    def tool_calls_made(self, marker: str) -> dict[str, tuple[str, dict[str, Any]]]:
        """tool_call_id -> (name, arguments) of the calls the model made, as the operator echoed them."""
        calls: dict[str, tuple[str, dict[str, Any]]] = {}
        for request in self.requests.get(marker, []):
            for message in request.get("messages") or []:
                for call in message.get("tool_calls") or []:
                    fn = call.get("function") or {}
                    try:
                        args = json.loads(fn.get("arguments") or "{}")
                    except ValueError:
                        args = {"_raw": fn.get("arguments")}
                    calls[str(call.get("id"))] = (str(fn.get("name")), args)
        return calls

    def result_of(self, marker: str, tool: str) -> list[str]:
        calls = self.tool_calls_made(marker)
        return [out for ident, out in self.tool_results(marker).items() if calls.get(ident, ("",))[0] == tool]


def broken_pods_in(outputs: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Pods whose STATUS column (a kubectl-like table) shows a failure: name -> (status, table line)."""
    found: dict[str, tuple[str, str]] = {}
    for output in outputs:
        header: list[str] | None = None
        for line in output.splitlines():
            cols = line.split()
            if "NAME" in cols and "STATUS" in cols:
                header = cols
                continue
            if header is None or len(cols) < len(header) - 1:
                continue
            name = cols[header.index("NAME")]
            status = cols[header.index("STATUS")] if header.index("STATUS") < len(cols) else ""
            if any(state in status for state in FAILING_STATES):
                found[name] = (status, line.strip())
    return found


def submit_broken_pods(request: dict[str, Any], model: ScriptedModel, marker: str) -> Item:
    """submit_findings with one critical finding per broken pod seen in the list_resources output."""
    listings = model.result_of(marker, "list_resources")
    events = "\n".join(model.result_of(marker, "list_events"))
    broken = broken_pods_in(listings)
    findings = []
    for name, (status, line) in sorted(broken.items()):
        evidence = [line] + [ev.strip() for ev in events.splitlines() if f"pod/{name}" in ev][:2]
        findings.append({
            "severity": "critical",
            "title": f"pod {name} is {status}",
            "detail": f"{name} shows {status} in the pod list",
            "resource": f"pod/{name}",
            "evidence": evidence,
            "remediation": "see the evidence",
        })
    names = ", ".join(sorted(broken)) or "none"
    return tool_call("submit_findings", {
        "summary": f"{len(broken)} failing pod(s): {names}"[:180],
        "answer": "Failing pods: " + names,
        "findings": findings,
    })


def marker_question(marker: str, question: str) -> str:
    """A question carrying its routing marker (kept readable: it shows in kubectl get -o wide)."""
    assert re.fullmatch(r"[a-z0-9-]+", marker), marker
    return f"{question} [{marker}]"
