"""The read-only tools: schemas from typed signatures, the kind table, scope, Secrets refused,
readable errors, client-side filtering, and compact rendering."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import pytest
from pydantic import Field

from inquest.agent import kinds
from inquest.agent.kinds import ToolError, resolve_kind
from inquest.agent.selectors import field_predicate, label_predicate
from inquest.agent.tools import (
    SUBMIT_FINDINGS,
    ToolContext,
    ToolRegistry,
    default_registry,
    make_tool,
)
from inquest.clients.kube import KubeError
from tests.unit.test_agent_fakes import FakeKube, crashloop_scene, manifest

NOW = datetime(2026, 1, 1, 0, 12, tzinfo=UTC)


def ctx_for(kube: FakeKube, scope: list[str] | None = None, impersonate: str | None = None) -> ToolContext:
    return ToolContext(kube, "default", scope=scope or [], impersonate=impersonate, now=lambda: NOW)  # type: ignore[arg-type]


@pytest.fixture()
def scene() -> FakeKube:
    objects, logs = crashloop_scene()
    objects.append(manifest("Pod", "api-1", namespace="other", spec={"containers": [{"name": "c"}]}))
    objects.append(manifest("Secret", "db", stringData={"password": "hunter2"}))
    objects.append(manifest("ConfigMap", "settings", data={"FEATURE": "on"}))
    return FakeKube(objects, logs)


async def call(kube: FakeKube, name: str, args: dict | str, **ctx_kwargs) -> tuple[str, str | None]:
    registry = default_registry()
    outcome = await registry.call(ctx_for(kube, **ctx_kwargs), name, args if isinstance(args, str)
                                  else json.dumps(args))
    return outcome.text, outcome.error


# --------------------------------------------------------------------------- schemas


def test_schemas_are_derived_from_typed_signatures():
    async def sample(ctx: ToolContext, name: Annotated[str, Field(description="the name")], count: int = 3,
                     flag: bool = False, label: str | None = None) -> str:
        """Do a sample thing."""
        return f"{name}:{count}:{flag}:{label}"

    tool = make_tool(sample)
    spec = tool.spec()
    assert spec["function"]["name"] == "sample"
    assert spec["function"]["description"] == "Do a sample thing."
    params = spec["function"]["parameters"]
    assert params["required"] == ["name"]
    assert params["properties"]["name"] == {"type": "string", "description": "the name"}
    assert params["properties"]["count"] == {"type": "integer", "default": 3}
    assert params["properties"]["flag"] == {"type": "boolean"}  # obvious defaults are dropped
    assert params["properties"]["label"] == {"type": "string"}  # Optional flattened
    assert "title" not in json.dumps(params)


def test_registry_offers_every_tool_of_the_issue_with_portable_schemas():
    registry = default_registry()
    assert set(registry.names()) == {"list_resources", "get_resource", "describe_resource", "list_events",
                                     "pod_logs", "list_namespaces", "node_status", "find_resources",
                                     SUBMIT_FINDINGS}
    for spec in registry.specs():
        text = json.dumps(spec)
        assert "$ref" not in text and "$defs" not in text and "anyOf" not in text
        assert spec["function"]["parameters"]["type"] == "object"
    kind_enum = registry.tools["list_resources"].parameters["properties"]["kind"]["enum"]
    assert "secrets" not in kind_enum and "pods" in kind_enum and "ingresses" in kind_enum


async def test_unknown_tool_and_bad_arguments_are_tool_errors(scene):
    text, error = await call(scene, "delete_pod", {"name": "x"})
    assert error and "unknown tool 'delete_pod'" in text and "list_resources" in text
    text, error = await call(scene, "get_resource", '{"kind": "pods", "name": ')
    assert error and "not valid JSON" in text
    text, error = await call(scene, "get_resource", "[1, 2]")
    assert error and "must be a JSON object" in text
    text, error = await call(scene, "get_resource", {"kind": "pods"})
    assert error and "invalid arguments for get_resource" in text and "name" in text
    text, error = await call(scene, "pod_logs", {"pod": "x", "tail_lines": 0})
    assert error and "tail_lines" in text


async def test_a_raising_tool_becomes_a_tool_error():
    async def broken(ctx: ToolContext) -> str:
        """Always fails."""
        raise RuntimeError("boom")

    registry = ToolRegistry([make_tool(broken)])
    outcome = await registry.call(ctx_for(FakeKube()), "broken", "{}")
    assert outcome.error and "RuntimeError: boom" in outcome.text


# --------------------------------------------------------------------------- kinds and scope


def test_kind_table_maps_to_api_paths():
    assert resolve_kind("Pod").collection_path("shop") == "/api/v1/namespaces/shop/pods"
    assert resolve_kind("deploy").object_path("web", "shop") == "/apis/apps/v1/namespaces/shop/deployments/web"
    assert resolve_kind("ingresses").collection_path("a") == "/apis/networking.k8s.io/v1/namespaces/a/ingresses"
    assert resolve_kind("hpa").collection_path("a") == "/apis/autoscaling/v2/namespaces/a/horizontalpodautoscalers"
    assert resolve_kind("cronjobs").collection_path(None) == "/apis/batch/v1/cronjobs"
    assert resolve_kind("nodes").collection_path("ignored") == "/api/v1/nodes"
    assert resolve_kind("deployments.apps").plural == "deployments"
    assert {k.plural for k in kinds.KINDS} >= {"pods", "services", "endpoints", "configmaps", "events", "nodes",
                                               "namespaces", "persistentvolumeclaims", "deployments", "replicasets",
                                               "statefulsets", "daemonsets", "jobs", "cronjobs", "ingresses",
                                               "horizontalpodautoscalers"}
    with pytest.raises(ToolError, match="unknown or unsupported kind"):
        resolve_kind("roles")


class VersionedKube(FakeKube):
    """A server serving only some autoscaling group-versions: any path under another one is a
    plain 404 (as a real apiserver answers "404 page not found"), its discovery documents list HPAs."""

    def __init__(self, served: tuple[str, ...], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.served = served

    async def get_json(self, path, query=None, *, impersonate=None, timeout=30):
        for version in ("autoscaling/v2", "autoscaling/v2beta2", "autoscaling/v1"):
            prefix = f"/apis/{version}"
            if path == prefix or path.startswith(prefix + "/"):
                if version not in self.served:
                    self.calls.append((path, dict(query or {}), impersonate))
                    raise KubeError(404, "Not Found", "404 page not found")
                if path == prefix:
                    self.calls.append((path, dict(query or {}), impersonate))
                    return {"kind": "APIResourceList", "groupVersion": version,
                            "resources": [{"name": "horizontalpodautoscalers", "namespaced": True}]}
        return await super().get_json(path, query, impersonate=impersonate, timeout=timeout)


HPA = manifest("HorizontalPodAutoscaler", "web", spec={"minReplicas": 1, "maxReplicas": 5,
                                                       "scaleTargetRef": {"kind": "Deployment", "name": "web"}})


@pytest.mark.parametrize("served,used", [
    (("autoscaling/v2", "autoscaling/v2beta2", "autoscaling/v1"), "autoscaling/v2"),
    (("autoscaling/v2beta2", "autoscaling/v1"), "autoscaling/v2beta2"),  # Kubernetes 1.20-1.22
    (("autoscaling/v1",), "autoscaling/v1"),
])
async def test_hpas_are_read_through_the_first_served_autoscaling_version(served, used):
    kube = VersionedKube(served, [HPA])
    ctx = ctx_for(kube)
    registry = default_registry()
    listed = await registry.call(ctx, "list_resources", json.dumps({"kind": "hpa"}))
    assert listed.error is None and "web" in listed.text, listed.text
    kube.calls.clear()
    got = await registry.call(ctx, "get_resource", json.dumps({"kind": "hpa", "name": "web"}))
    assert got.error is None and "maxReplicas: 5" in got.text, got.text
    # the version found is remembered: the next read goes straight to it
    assert [c[0] for c in kube.calls] == [f"/apis/{used}/namespaces/default/horizontalpodautoscalers/web"]


async def test_a_missing_hpa_on_a_served_version_is_not_found_not_a_fallback():
    kube = VersionedKube(("autoscaling/v2", "autoscaling/v2beta2", "autoscaling/v1"), [HPA])
    got = await default_registry().call(ctx_for(kube), "get_resource", json.dumps({"kind": "hpa", "name": "gone"}))
    assert got.error is not None and "not found" in got.error
    assert [c[0] for c in kube.calls] == ["/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/gone",
                                          "/apis/autoscaling/v2"]


async def test_no_served_autoscaling_version_is_a_readable_error():
    kube = VersionedKube((), [HPA])
    listed = await default_registry().call(ctx_for(kube), "list_resources", json.dumps({"kind": "hpa"}))
    assert listed.error is not None and "404" in listed.error
    assert "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers" in [c[0] for c in kube.calls]


@pytest.mark.parametrize("tool,args", [
    ("get_resource", {"kind": "secrets", "name": "db"}),
    ("describe_resource", {"kind": "Secret", "name": "db"}),
    ("list_resources", {"kind": "secret"}),
    ("find_resources", {"name_fragment": "db", "kinds": ["secrets"]}),
])
async def test_secrets_are_never_read(scene, tool, args):
    text, error = await call(scene, tool, args)
    assert error and "Secrets are not readable" in text
    assert not any("/secrets" in path for path, _, _ in scene.calls)
    assert "hunter2" not in text


async def test_namespaces_outside_the_scope_are_refused(scene):
    text, error = await call(scene, "list_resources", {"kind": "pods", "namespace": "other"})
    assert error and "outside this investigation's scope" in text and "allowed: default" in text
    text, error = await call(scene, "pod_logs", {"pod": "api-1", "namespace": "kube-system"})
    assert error and "outside" in text
    assert not any("/namespaces/other/" in p or "/kube-system/" in p for p, _, _ in scene.calls)
    text, error = await call(scene, "list_resources", {"kind": "pods", "namespace": "other"}, scope=["other"])
    assert error is None and "api-1" in text


async def test_lists_cover_every_namespace_in_scope(scene):
    text, _ = await call(scene, "list_resources", {"kind": "pods"}, scope=["default", "other"])
    assert "NAMESPACE" in text and "api-1" in text and "checkout-7d9f-abcde" in text
    text, _ = await call(scene, "list_resources", {"kind": "pods"}, scope=["*"])
    assert "api-1" in text
    assert ("/api/v1/pods", {"limit": 500, "labelSelector": None, "fieldSelector": None}, None) in scene.calls


async def test_every_call_carries_the_impersonated_user(scene):
    user = "system:serviceaccount:default:inquest-investigator"
    for name, args in [("list_resources", {"kind": "pods"}), ("describe_resource", {"kind": "pods",
                       "name": "checkout-7d9f-abcde"}), ("pod_logs", {"pod": "checkout-7d9f-abcde"}),
                       ("list_events", {}), ("list_namespaces", {}), ("node_status", {}),
                       ("find_resources", {"name_fragment": "check"})]:
        await call(scene, name, args, impersonate=user)
    assert scene.calls and all(who == user for _, _, who in scene.calls)


# --------------------------------------------------------------------------- the tools on the scene


async def test_list_pods_shows_kubectl_like_status(scene):
    text, error = await call(scene, "list_resources", {"kind": "pods"})
    assert error is None
    header, *rows = text.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE"]
    broken = next(r for r in rows if r.startswith("checkout"))
    assert "0/1" in broken and "CrashLoopBackOff" in broken and "7 (2m ago)" in broken
    assert "api-1" not in text  # another namespace


async def test_selectors_are_applied_client_side_too(scene):
    text, _ = await call(scene, "list_resources", {"kind": "pods", "label_selector": "app=cart"})
    assert "cart-5c8b-xyz12" in text and "checkout" not in text
    assert scene.calls[-1][1]["labelSelector"] == "app=cart"  # and sent to the server
    text, _ = await call(scene, "list_resources", {"kind": "pods", "field_selector": "metadata.name!=cart-5c8b-xyz12"})
    assert "checkout" in text and "cart-5c8b" not in text
    text, _ = await call(scene, "list_resources", {"kind": "pods", "label_selector": "app=nothing"})
    assert text == "No pods matching the selectors found in namespace default."
    text, error = await call(scene, "list_resources", {"kind": "pods", "field_selector": "bogus"})
    assert error and "invalid field selector" in text


def test_label_and_field_selector_semantics():
    obj = {"metadata": {"name": "a", "labels": {"app": "web", "tier": "front"}}, "status": {"phase": "Running"}}
    assert label_predicate("app=web,tier in (front, back),!canary,tier")(obj)
    assert not label_predicate("app notin (web)")(obj)
    assert not label_predicate("app!=web")(obj)
    assert field_predicate("status.phase=Running,metadata.name==a")(obj)
    assert not field_predicate("status.phase!=Running")(obj)


async def test_events_are_filtered_for_the_involved_object_and_warnings(scene):
    text, _ = await call(scene, "list_events", {"involved_kind": "pod", "involved_name": "checkout-7d9f-abcde"})
    assert "BackOff" in text and "pod/checkout-7d9f-abcde" in text and "(x31)" in text
    assert "Pulled" not in text
    text, _ = await call(scene, "list_events", {"warnings_only": True})
    assert "BackOff" in text and "Pulled" not in text
    text, _ = await call(scene, "list_events", {"involved_name": "nothing"})
    assert text.startswith("No matching events")


async def test_describe_pod_has_states_env_references_and_only_its_events(scene):
    text, error = await call(scene, "describe_resource", {"kind": "pods", "name": "checkout-7d9f-abcde"})
    assert error is None
    assert "state: waiting(CrashLoopBackOff: back-off 5m0s restarting failed container=app)" in text
    assert "last state: terminated(Error, exit 1" in text
    assert "DB_PASSWORD from secret db/password" in text  # a reference, never a value
    assert "LOG_LEVEL=info" in text
    assert "BackOff" in text and "Pulled" not in text


async def test_get_resource_is_concise_yaml(scene):
    scene.objects[0]["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Apply"}]
    scene.objects[0]["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": '{"huge": "json"}', "team": "shop"}
    text, error = await call(scene, "get_resource", {"kind": "Pod", "name": "checkout-7d9f-abcde"})
    assert error is None
    assert "managedFields" not in text and "last-applied" not in text and '"huge"' not in text
    assert "team: shop" in text and "name: checkout-7d9f-abcde" in text and "CrashLoopBackOff" in text
    text, error = await call(scene, "get_resource", {"kind": "pods", "name": "nope"})
    assert error and "pods 'nope' not found in namespace 'default'" in text


async def test_pod_logs_previous_grep_and_tail(scene):
    text, error = await call(scene, "pod_logs", {"pod": "checkout-7d9f-abcde", "previous": True})
    assert error is None and "FATAL: DATABASE_URL is not set" in text and "previous instance" in text
    path, query, _ = scene.calls[-1]
    assert path.endswith("/pods/checkout-7d9f-abcde/log")
    assert query["previous"] is True and query["container"] == "app" and query["tailLines"] == 200
    text, _ = await call(scene, "pod_logs", {"pod": "checkout-7d9f-abcde", "previous": True, "grep": "fatal"})
    assert "FATAL" in text and "starting" not in text
    text, _ = await call(scene, "pod_logs", {"pod": "checkout-7d9f-abcde", "previous": True, "tail_lines": 1})
    assert text.splitlines()[1:] == ["FATAL: DATABASE_URL is not set"]


async def test_pod_logs_named_container_and_since_seconds(scene):
    scene.objects.append(manifest("Pod", "web-1", spec={"containers": [{"name": "app"}, {"name": "sidecar"}]}))
    scene.logs["default/web-1/app"] = "app line"
    scene.logs["default/web-1/sidecar"] = "proxy: upstream refused"
    text, error = await call(scene, "pod_logs", {"pod": "web-1", "container": "sidecar", "since_seconds": 600})
    assert error is None and "proxy: upstream refused" in text and "app line" not in text
    _, query, _ = scene.calls[-1]
    assert query["container"] == "sidecar" and query["sinceSeconds"] == 600
    await call(scene, "pod_logs", {"pod": "web-1"})
    _, query, _ = scene.calls[-1]
    assert query["container"] == "app" and not query.get("sinceSeconds")


async def test_pod_logs_failure_is_a_readable_error(scene):
    # The e2e control plane has no kubelet: the log subresource fails there.
    scene.logs["default/cart-5c8b-xyz12/app"] = KubeError(500, "Internal Server Error",
                                                          "dial tcp 10.0.0.7:10250: connect: connection refused")
    text, error = await call(scene, "pod_logs", {"pod": "cart-5c8b-xyz12"})
    assert error and text.startswith("error: could not read logs of pod default/cart-5c8b-xyz12 container app")
    assert "connection refused" in text and "describe_resource" in text
    text, error = await call(scene, "pod_logs", {"pod": "checkout-7d9f-abcde", "container": "sidecar"})
    assert error and "has no container 'sidecar'" in text


async def test_find_namespaces_and_nodes(scene):
    scene.objects.append(manifest("Namespace", "default", namespace=None, status={"phase": "Active"}))
    scene.objects.append(manifest("Namespace", "other", namespace=None))
    scene.objects.append(manifest("Node", "node-1", namespace=None, status={
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "True"}],
        "allocatable": {"cpu": "4", "memory": "16Gi"}, "nodeInfo": {"kubeletVersion": "v1.31.0"}}))
    text, error = await call(scene, "find_resources", {"name_fragment": "CHECK"})
    assert error is None and "pod/checkout-7d9f-abcde -n default" in text and "cart" not in text
    text, _ = await call(scene, "list_namespaces", {})
    rows = {line.split()[0]: line.split()[-1] for line in text.splitlines()[1:]}
    assert rows == {"default": "yes", "other": "no"}
    text, _ = await call(scene, "node_status", {})
    assert "node-1" in text and "Ready,MemoryPressure" in text and "cpu=4,mem=16Gi" in text
    text, _ = await call(scene, "node_status", {"name": "node-1"})
    assert "MemoryPressure=True" in text and "kubelet=v1.31.0" in text


async def test_forbidden_reads_explain_rbac(scene):
    scene.errors["/api/v1/namespaces/default/pods"] = KubeError(403, "Forbidden", 'pods is forbidden: User '
                                                                '"system:serviceaccount:default:x" cannot list')
    text, error = await call(scene, "list_resources", {"kind": "pods"})
    assert error and "403 Forbidden" in text and "RBAC" in text


# --------------------------------------------------------------------------- nothing secret leaves

CANARY = "canary-9f3b2c7e41d84a6f"


@pytest.mark.parametrize("kind", ["secret", "secrets", "Secret", " SECRETS ", "v1/Secret", "Secret.v1.", "secrets.v1",
                                  "core/v1/secrets", "Secret.v1.core", "/api/v1/secrets", "v1.Secret"])
@pytest.mark.parametrize("tool", ["get_resource", "describe_resource", "list_resources", "find_resources"])
async def test_no_spelling_of_secret_reads_a_secret(scene, tool, kind):
    args = {"get_resource": {"kind": kind, "name": "db"}, "describe_resource": {"kind": kind, "name": "db"},
            "list_resources": {"kind": kind}, "find_resources": {"name_fragment": "db", "kinds": ["pods", kind]}}[tool]
    text, error = await call(scene, tool, args)
    assert error and "Secrets are not readable" in text
    assert scene.calls == [] and "hunter2" not in text


@pytest.mark.parametrize("name", ["../secrets/db", "db/../../secrets", "..", ".", "a%2Fb", "x?watch=1", "a b"])
async def test_names_cannot_step_out_of_their_path_segment(scene, name):
    for tool, args in [("get_resource", {"kind": "pods", "name": name}),
                       ("describe_resource", {"kind": "configmaps", "name": name}),
                       ("pod_logs", {"pod": name}),
                       ("list_resources", {"kind": "pods", "namespace": name})]:
        text, error = await call(scene, tool, args, scope=["*"])
        assert error and "not a valid Kubernetes" in text, (tool, text)
    assert scene.calls == []


async def test_events_about_a_secret_show_no_data(scene):
    scene.objects.append(manifest("Event", "db.1", type="Warning", reason="FailedMount",
                                  message='MountVolume.SetUp failed for volume "db" : secret "db" not found',
                                  involvedObject={"kind": "Secret", "name": "db", "namespace": "default"}))
    text, error = await call(scene, "list_events", {"involved_kind": "Secret", "involved_name": "db"})
    assert error is None and 'secret "db" not found' in text and "hunter2" not in text
    assert not any("/secrets" in path for path, _, _ in scene.calls)


def planted_scene() -> FakeKube:
    objects, logs = crashloop_scene()
    pod = objects[0]
    pod["metadata"]["annotations"] = {"example.com/token": CANARY, "team": "shop"}
    pod["spec"]["containers"][0]["env"] += [{"name": "DB_PASSWORD_PLAIN", "value": CANARY},
                                            {"name": "API_KEY", "value": CANARY}]
    pod["spec"]["containers"][0]["args"] = ["--password", CANARY]
    objects.append(manifest("Secret", "db", data={"password": "Y2FuYXJ5"}, stringData={"password": CANARY}))
    objects.append(manifest("ConfigMap", "settings", data={
        "password": CANARY, "app.properties": f"db.url=postgres://app:{CANARY}@db:5432/app\ndb.password={CANARY}\n",
        "deploy.yaml": f"env:\n- name: DB_PASSWORD\n  value: {CANARY}\n", "FEATURE": "on"}))
    logs["default/checkout-7d9f-abcde/app"] = f"GET /api Authorization: Bearer {CANARY}\nstarting\n"
    return FakeKube(objects, logs)


@pytest.mark.parametrize("tool,args", [
    ("get_resource", {"kind": "pods", "name": "checkout-7d9f-abcde"}),
    ("describe_resource", {"kind": "pods", "name": "checkout-7d9f-abcde"}),
    ("get_resource", {"kind": "configmaps", "name": "settings"}),
    ("describe_resource", {"kind": "configmaps", "name": "settings"}),
    ("list_resources", {"kind": "configmaps"}),
    ("find_resources", {"name_fragment": "e"}),
    ("pod_logs", {"pod": "checkout-7d9f-abcde"}),
])
async def test_planted_credentials_never_come_out_of_a_tool_and_the_redactor(tool, args):
    """The tool's own text may still hold a credential that only the text rules catch (the loop
    applies them to every output); objects are redacted by structure before rendering."""
    from inquest.agent.redact import redact_tool_output

    kube = planted_scene()
    text, error = await call(kube, tool, args)
    assert error is None
    assert CANARY not in redact_tool_output(text)
    assert not any("/secrets" in path for path, _, _ in kube.calls)


async def test_secret_key_refs_are_references_and_plain_secret_env_values_are_hidden():
    kube = planted_scene()
    yaml_text, _ = await call(kube, "get_resource", {"kind": "pods", "name": "checkout-7d9f-abcde"})
    described, _ = await call(kube, "describe_resource", {"kind": "pods", "name": "checkout-7d9f-abcde"})
    # the YAML keeps the env var's reference, never a value
    assert "secretKeyRef:\n" in yaml_text and "name: db\n" in yaml_text and "key: password\n" in yaml_text
    assert CANARY not in yaml_text and CANARY not in described  # structural: no text rule needed
    assert "DB_PASSWORD from secret db/password" in described
    assert "DB_PASSWORD_PLAIN=[REDACTED:" in described and "API_KEY=[REDACTED:" in described
    assert "example.com/token: '[REDACTED:secret-field]'" in yaml_text
    cm, _ = await call(kube, "get_resource", {"kind": "configmaps", "name": "settings"})
    assert "password: '[REDACTED:secret-field]'" in cm and "FEATURE: 'on'" in cm


# --------------------------------------------------------------------------- sizes


async def test_a_huge_log_is_read_from_its_end_and_bounded():
    from inquest.agent.tools import LOG_LIMIT_BYTES, MAX_LOG_CHARS, MAX_LOG_LINE

    objects, logs = crashloop_scene()
    line = "2026-01-01T00:00:00Z INFO request served in 12ms by worker 7 of the checkout service\n"
    logs["default/checkout-7d9f-abcde/app"] = line * 120_000 + "x " * 100_000 + f"password={CANARY}\nlast line\n"
    kube = FakeKube(objects, logs)
    text, error = await call(kube, "pod_logs", {"pod": "checkout-7d9f-abcde", "tail_lines": 5000})
    assert error is None and kube.calls[-1][1]["limitBytes"] == LOG_LIMIT_BYTES
    assert len(text) <= MAX_LOG_CHARS + 500
    assert "earlier lines cut" in text and text.endswith("last line")
    assert "x x x x" in text and "chars cut ...]" in text and "password=[REDACTED:key-value]" in text
    assert CANARY not in text  # the long line was redacted before it was cut
    assert max(len(line) for line in text.splitlines()) <= MAX_LOG_LINE


async def test_grep_is_literal_and_cannot_stall_the_operator(scene):
    scene.logs["default/checkout-7d9f-abcde/app"] = (
        "a" * 30_000 + "\nERROR db timeout after 30s\nWARN slow\nfatal: panic in handler\n")
    text, _ = await call(scene, "pod_logs", {"pod": "checkout-7d9f-abcde", "grep": "(a+)+$|fatal"})
    assert text.splitlines()[1:] == ["fatal: panic in handler"]
    text, _ = await call(scene, "pod_logs", {"pod": "checkout-7d9f-abcde", "grep": "error.*timeout|WARN"})
    assert text.splitlines()[1:] == ["ERROR db timeout after 30s", "WARN slow"]
    text, _ = await call(scene, "pod_logs", {"pod": "checkout-7d9f-abcde", "grep": r"timeout after 30s\."})
    assert "no log lines matching" in text


async def test_thousands_of_pods_and_deep_objects_render_bounded():
    from inquest.agent.render import MAX_DEPTH

    pods = [manifest("Pod", f"worker-{i:05d}", spec={"containers": [{"name": "c", "image": "w:1"}]},
                     status={"phase": "Running"}) for i in range(5000)]
    deep: dict = {}
    node = deep
    for _ in range(200):
        node["a"] = {}
        node = node["a"]
    node["password"] = CANARY
    pods.append(manifest("ConfigMap", "deep", data={"x": "y"}, spec=deep,
                         metadata={"annotations": {"nested": json.dumps(deep)}}))
    kube = FakeKube(pods)
    text, error = await call(kube, "list_resources", {"kind": "pods", "limit": 500})
    assert error is None and len(text.splitlines()) == 502 and "(4500 more not shown" in text
    text, error = await call(kube, "get_resource", {"kind": "configmaps", "name": "deep"})
    assert error is None and f"nested deeper than {MAX_DEPTH} levels cut" in text and len(text) < 20_000
    from inquest.agent.redact import redact_tool_output
    assert CANARY not in redact_tool_output(text)
    text, error = await call(kube, "describe_resource", {"kind": "configmaps", "name": "deep"})
    assert error is None and "nested deeper than" in text


def test_reading_the_tail_of_a_50_mb_log_costs_only_the_tail():
    import tracemalloc

    from inquest.agent.tools import MAX_LOG_CHARS, LineFilter, _log_tail

    line = "2026-01-01T00:00:00Z INFO served GET /api/orders in 12ms\n"
    log = line * (50 * 2**20 // len(line)) + "x" * 5_000_000 + "\n"  # and a 5 MB last line
    tracemalloc.start()
    try:
        lines, dropped = _log_tail(log, 5000, None)
        grepped, _ = _log_tail(log, 200, LineFilter("error|panic"), scan=2000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(len(x) + 1 for x in lines) <= MAX_LOG_CHARS and dropped > 0 and grepped == []
    assert peak < 12 * 2**20, peak  # the 5 MB line twice (slice, lowered for grep), not the 50 MB log
