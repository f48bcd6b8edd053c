"""Fakes shared by the agent unit tests (no tests here): an in-memory Kubernetes read API, a scripted
chat model, and a CrashLoopBackOff scene. Pure Python, no network."""

from __future__ import annotations

import copy
import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from inquest.agent.model import ModelError, ModelReply, ToolCallRequest
from inquest.clients.kube import KubeError

_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$"
)


class FakeKube:
    """Serves GETs from a list of manifests; records (path, query, impersonate) of every call.

    Like KMock it ignores selectors; ``errors`` maps a path to a KubeError to raise; ``logs`` maps
    "ns/pod/container[/previous]" to text or a KubeError.
    """

    PLURALS = {"Pod": "pods", "Event": "events", "Deployment": "deployments", "Node": "nodes",
               "Namespace": "namespaces", "ConfigMap": "configmaps", "Service": "services",
               "ReplicaSet": "replicasets", "Secret": "secrets"}

    def __init__(self, objects: Sequence[Mapping[str, Any]] = (), logs: Mapping[str, Any] | None = None,
                 errors: Mapping[str, KubeError] | None = None) -> None:
        self.objects = [copy.deepcopy(dict(o)) for o in objects]
        self.logs = dict(logs or {})
        self.errors = dict(errors or {})
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []

    def _plural(self, obj: Mapping[str, Any]) -> str:
        return self.PLURALS.get(str(obj.get("kind")), str(obj.get("kind", "")).lower() + "s")

    async def get_json(self, path: str, query: Mapping[str, Any] | None = None, *, impersonate: str | None = None,
                       timeout: float | None = 30) -> Any:
        self.calls.append((path, dict(query or {}), impersonate))
        if path in self.errors:
            raise self.errors[path]
        m = _PATH.match(path)
        if not m:
            raise KubeError(404, "Not Found", f"no route {path}")
        plural, ns, name = m.group("plural"), m.group("ns"), m.group("name")
        matches = [o for o in self.objects if self._plural(o) == plural
                   and (ns is None or (o.get("metadata") or {}).get("namespace") == ns)]
        if name is None:
            return {"kind": "List", "items": [copy.deepcopy(o) for o in matches]}
        for o in matches:
            if o["metadata"]["name"] == name:
                return copy.deepcopy(o)
        raise KubeError(404, "Not Found", f'{plural} "{name}" not found')

    async def get_text(self, path: str, query: Mapping[str, Any] | None = None, *, impersonate: str | None = None,
                       timeout: float | None = 30) -> str:
        self.calls.append((path, dict(query or {}), impersonate))
        m = _PATH.match(path)
        assert m and m.group("sub") == "log", path
        key = f"{m.group('ns')}/{m.group('name')}/{(query or {}).get('container')}"
        if (query or {}).get("previous"):
            key += "/previous"
        value = self.logs.get(key)
        if isinstance(value, KubeError):
            raise value
        if value is None:
            raise KubeError(400, "Bad Request", f"no logs for {key}")
        lines = str(value).splitlines()
        tail = (query or {}).get("tailLines")
        return "\n".join(lines[-int(tail):] if tail else lines) + "\n"


def manifest(kind: str, name: str, namespace: str | None = "default", **fields: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "creationTimestamp": "2026-01-01T00:00:00Z"}
    if namespace:
        meta["namespace"] = namespace
    meta.update(fields.pop("metadata", {}))
    return {"apiVersion": "v1", "kind": kind, "metadata": meta, **fields}


def crashloop_scene() -> tuple[list[dict[str, Any]], dict[str, str]]:
    """A Deployment whose pod crash-loops because DATABASE_URL is unset; a healthy neighbour."""
    broken = manifest("Pod", "checkout-7d9f-abcde", metadata={"labels": {"app": "checkout"}}, spec={
        "nodeName": "node-1",
        "containers": [{"name": "app", "image": "shop/checkout:1.4.2", "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        ]}],
    }, status={
        "phase": "Running",
        "containerStatuses": [{
            "name": "app", "ready": False, "restartCount": 7,
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                                  "message": "back-off 5m0s restarting failed container=app"}},
            "lastState": {"terminated": {"reason": "Error", "exitCode": 1,
                                         "finishedAt": "2026-01-01T00:10:00Z"}},
        }],
    })
    healthy = manifest("Pod", "cart-5c8b-xyz12", metadata={"labels": {"app": "cart"}}, spec={
        "nodeName": "node-1", "containers": [{"name": "app", "image": "shop/cart:2.0"}],
    }, status={"phase": "Running", "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0,
                                                          "state": {"running": {}}}]})
    backoff = manifest("Event", "checkout-7d9f-abcde.1", type="Warning", reason="BackOff",
                       message="Back-off restarting failed container app", count=31,
                       lastTimestamp="2026-01-01T00:11:00Z",
                       involvedObject={"kind": "Pod", "name": "checkout-7d9f-abcde", "namespace": "default",
                                       "uid": "uid-checkout-7d9f-abcde"})
    other = manifest("Event", "cart-5c8b-xyz12.1", type="Normal", reason="Pulled", message="image pulled",
                     lastTimestamp="2026-01-01T00:01:00Z",
                     involvedObject={"kind": "Pod", "name": "cart-5c8b-xyz12", "namespace": "default"})
    logs = {"default/checkout-7d9f-abcde/app/previous": "starting checkout 1.4.2\n"
                                                        "FATAL: DATABASE_URL is not set\n",
            "default/checkout-7d9f-abcde/app": "starting checkout 1.4.2\n"}
    return [broken, healthy, backoff, other], logs


# --------------------------------------------------------------------------- scripted model


def text_reply(content: str, usage: tuple[int, int] | None = (100, 20)) -> ModelReply:
    return ModelReply(content=content, prompt_tokens=usage[0] if usage else None,
                      completion_tokens=usage[1] if usage else None, finish_reason="stop")


def tools_reply(*calls: tuple[str, Mapping[str, Any] | str], usage: tuple[int, int] | None = (100, 20)
                ) -> ModelReply:
    return ModelReply(content=None, tool_calls=[
        ToolCallRequest(id=f"call_{i}", name=name, arguments=args if isinstance(args, str) else json.dumps(args))
        for i, (name, args) in enumerate(calls)],
        prompt_tokens=usage[0] if usage else None, completion_tokens=usage[1] if usage else None,
        finish_reason="tool_calls")


Item = ModelReply | ModelError | Callable[[list[dict[str, Any]], Any], Any]


class ScriptedModel:
    """A ChatModel answering from a script; records every request (messages, tools, max_tokens)."""

    name = "scripted-model"

    def __init__(self, *items: Item, default: Item | None = None) -> None:
        self.items = list(items)
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self.closed = False

    async def complete(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None, *,
                       max_tokens: int | None, timeout: float) -> ModelReply:
        self.requests.append({"messages": copy.deepcopy(list(messages)), "tools": tools, "max_tokens": max_tokens,
                              "timeout": timeout})
        item = self.items.pop(0) if self.items else self.default
        if item is None:
            raise AssertionError("the scripted model ran out of replies")
        if callable(item) and not isinstance(item, ModelReply | ModelError):
            item = item(list(messages), tools)
            if inspect.isawaitable(item):
                item = await item
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, ModelReply)
        return copy.deepcopy(item)

    async def close(self) -> None:
        self.closed = True
