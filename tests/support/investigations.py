"""Helpers for Investigation tests against KMock and the fake LLM: the scripted agent model and
HTTP access to the emulated cluster (fixtures ``cluster`` and the fast polling are in
tests/integration/conftest.py)."""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

from inquest.agent.prompts import PROMPT_MARKER
from inquest.clients.kube import KubeClient
from inquest.domain import conditions
from tests.conftest import eventually
from tests.support.fake_llm import auto_tool_probe, text
from tests.support.kube import INV, MP, obj

API = "/apis/inquest.dev/v1alpha1/namespaces"
class AgentScript:
    """The fake LLM's default responder: agent requests pop scripted items, everything else (the
    ModelProvider's probes) gets the fake's automatic tool-probe answer."""

    def __init__(self, llm: Any) -> None:
        self.items: deque[Any] = deque()
        self.requests: list[dict[str, Any]] = []
        self.fallback: Any = None
        llm.default = self

    def add(self, *items: Any) -> AgentScript:
        self.items.extend(items)
        return self

    def __call__(self, request: dict[str, Any]) -> Any:
        messages = request.get("messages") or []
        if messages and str(messages[0].get("content", "")).startswith(PROMPT_MARKER):
            self.requests.append(request)
            if self.items:
                return self.items.popleft()
            if self.fallback is not None:
                return self.fallback
            return text("no more scripted answers")
        return auto_tool_probe(request)


class Cluster:
    """HTTP access to KMock (so the operator's watches see the changes) plus readers."""

    def __init__(self, kube: Any, client: KubeClient) -> None:
        self.kube = kube
        self.client = client

    async def create(self, path: str, body: dict[str, Any]) -> None:
        await self.client.send_json("POST", path, body)

    async def provider(self, llm: Any, name: str = "local", *, default: bool = True, ready: bool = True,
                       base_url: str | None = None, namespace: str = "default", **spec: Any) -> None:
        labels = {"inquest.dev/default": "true"} if default else {}
        body = obj("ModelProvider", name, namespace, api_version="inquest.dev/v1alpha1",
                   metadata={"labels": labels, "resourceVersion": "1"},
                   spec={"baseURL": base_url or llm.base_url, "model": "test-model",
                         "parameters": {"contextWindow": 4096},
                         "pricing": {"inputPerMillionTokens": 2, "outputPerMillionTokens": 10}, **spec})
        await self.create(f"{API}/{namespace}/modelproviders", body)
        if ready:
            await eventually(lambda: self.provider_ready(name, namespace), timeout=15)

    def provider_ready(self, name: str, namespace: str = "default") -> bool:
        status = self.kube.objects[MP, namespace, name].get("status") or {}
        return conditions.is_true(status.get("conditions"), "Ready")

    async def investigation(self, name: str, question: str = "Why does checkout keep restarting?",
                            **spec: Any) -> None:
        body = obj("Investigation", name, api_version="inquest.dev/v1alpha1",
                   metadata={"uid": f"uid-inv-{name}-{time.monotonic_ns()}", "resourceVersion": "1"},
                   spec={"question": question, **spec})
        await self.create(f"{API}/default/investigations", body)

    def status(self, name: str) -> dict[str, Any]:
        return json.loads(json.dumps(dict(self.kube.objects[INV, "default", name]).get("status") or {},
                                     default=dict))

    def exists(self, name: str) -> bool:
        try:
            return not self.kube.objects[INV, "default", name].deleted
        except KeyError:
            return False

    async def wait_phase(self, name: str, *phases: str, timeout: float = 15) -> dict[str, Any]:
        def check() -> dict[str, Any]:
            status = self.status(name)
            assert status.get("phase") in phases, status.get("phase")
            return status
        return await eventually(check, timeout=timeout)  # type: ignore[no-any-return]

    def status_writes(self, name: str) -> list[Any]:
        return [r for r in list(self.kube) if str(r.method).lower().endswith("patch")
                and f"/investigations/{name}/status" in str(r.url)]


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    found = conditions.find(status.get("conditions"), type_)
    assert found is not None, f"no {type_} condition in {status.get('conditions')}"
    return dict(found)


def tool_names(status: dict[str, Any]) -> list[str]:
    return [c["name"] for c in status.get("toolCalls") or []]


def cluster_events(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    """Events posted about ``name`` (from the recorded requests: KMock keeps a single object for all
    the events Kopf posts with generateName)."""
    posted = [r.data for r in list(cluster.kube) if str(r.method).lower().endswith("post")
              and str(r.url).split("?")[0].endswith("/events") and isinstance(r.data, dict)]
    found = [e for e in posted if (e.get("involvedObject") or {}).get("name") == name]
    assert any(e.get("reason") in ("InvestigationSucceeded", "InvestigationFailed") for e in found), found
    return found
