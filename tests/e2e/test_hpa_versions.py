"""HorizontalPodAutoscalers on Kubernetes 1.20, which serves autoscaling/v2beta2 and v1 but not v2:
the tools fall back to the first version the server serves."""

from __future__ import annotations

import json

import kubernetes

from inquest.agent.tools import ToolContext, default_registry
from inquest.clients.kube import KubeClient, load_configuration


async def test_list_and_get_hpa_fall_back_to_a_served_autoscaling_version(controlplane, admin_api, namespace):
    kubernetes.client.AutoscalingV1Api(admin_api).create_namespaced_horizontal_pod_autoscaler(namespace, {
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {"minReplicas": 1, "maxReplicas": 5,
                 "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}})
    kube = KubeClient(load_configuration(controlplane.kubeconfig_path))
    try:
        ctx = ToolContext(kube, namespace)  # type: ignore[arg-type]
        registry = default_registry()
        listed = await registry.call(ctx, "list_resources", json.dumps({"kind": "hpa"}))
        assert listed.error is None and "web" in listed.text, listed.text
        assert ctx.served["horizontalpodautoscalers"] == "autoscaling/v2beta2"  # 1.20 has no autoscaling/v2
        got = await registry.call(ctx, "get_resource", json.dumps({"kind": "hpa", "name": "web"}))
        assert got.error is None and "maxReplicas: 5" in got.text, got.text
        missing = await registry.call(ctx, "get_resource", json.dumps({"kind": "hpa", "name": "gone"}))
        assert missing.error is not None and "not found" in missing.error
    finally:
        kube.close()
