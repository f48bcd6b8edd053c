"""Broken workloads written straight into the API server (no kubelet, no controllers): Deployments,
ReplicaSets and Pods with the status a kubelet would report, and the Events it would post."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

from tests.e2e.controlplane import ControlPlane
from tests.e2e.harness import create_ok, patch_status


def _ts(minutes_ago: float = 0) -> str:
    stamp = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=minutes_ago)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Scene:
    """The names of what ``build_scene`` created."""

    namespace: str
    deployment: str
    crashloop_pod: str
    oom_pod: str
    imagepull_pod: str
    healthy_pod: str

    @property
    def broken(self) -> dict[str, str]:
        """Broken pod -> the reason a kubelet would show for it."""
        return {self.crashloop_pod: "CrashLoopBackOff", self.oom_pod: "OOMKilled",
                self.imagepull_pod: "ImagePullBackOff"}


def _pod(name: str, labels: dict[str, str], image: str, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if owner:
        meta["ownerReferences"] = [owner]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "automountServiceAccountToken": False,  # no token controller: a mounted token would not exist
            "nodeName": "node-1",
            "containers": [{"name": "app", "image": image,
                            "resources": {"limits": {"memory": "64Mi"}, "requests": {"memory": "64Mi"}}}],
        },
    }


def _container_status(image: str, *, ready: bool, restarts: int, state: dict[str, Any],
                      last: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": "app", "image": image, "imageID": "", "ready": ready, "restartCount": restarts,
            "started": ready, "state": state, "lastState": last or {}}


def _pod_status(phase: str, ready: bool, container: dict[str, Any]) -> dict[str, Any]:
    now = _ts(30)
    return {
        "phase": phase,
        "hostIP": "10.0.0.10",
        "podIP": "10.244.0.7",
        "startTime": now,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now,
             **({} if ready else {"reason": "ContainersNotReady",
                                  "message": "containers with unready status: [app]"})},
        ],
        "containerStatuses": [container],
    }


def _event(namespace: str, pod: dict[str, Any], type_: str, reason: str, message: str, count: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{pod['metadata']['name']}.{uuid.uuid4().hex[:12]}"},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": namespace,
                           "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"],
                           "fieldPath": "spec.containers{app}"},
        "type": type_,
        "reason": reason,
        "message": message,
        "count": count,
        "firstTimestamp": _ts(30),
        "lastTimestamp": _ts(1),
        "source": {"component": "kubelet", "host": "node-1"},
        "reportingComponent": "kubelet",
        "reportingInstance": "node-1",
    }


def build_scene(cp: ControlPlane, namespace: str) -> Scene:
    """checkout (Deployment -> ReplicaSet -> Pod) crash-loops, cache is OOM-killed, web cannot pull its
    image, and api is healthy; Warning Events as a kubelet posts them."""
    labels = {"app": "checkout"}
    image = "registry.example/shop/checkout:1.4.2"
    deployment = create_ok(cp, {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"automountServiceAccountToken": False,
                                  "containers": [{"name": "app", "image": image}]}},
        },
    }, namespace)
    patch_status(cp, "Deployment", "checkout", namespace, {
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": 1, "updatedReplicas": 1, "unavailableReplicas": 1,
        "conditions": [
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
             "message": "Deployment does not have minimum availability.",
             "lastUpdateTime": _ts(30), "lastTransitionTime": _ts(30)},
            {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
             "message": 'ReplicaSet "checkout-5d8c7b9f4" is progressing.',
             "lastUpdateTime": _ts(30), "lastTransitionTime": _ts(30)},
        ],
    })
    rs = create_ok(cp, {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "checkout-5d8c7b9f4", "labels": {**labels, "pod-template-hash": "5d8c7b9f4"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout",
                                          "uid": deployment["metadata"]["uid"], "controller": True}]},
        "spec": {"replicas": 1,
                 "selector": {"matchLabels": {**labels, "pod-template-hash": "5d8c7b9f4"}},
                 "template": {"metadata": {"labels": {**labels, "pod-template-hash": "5d8c7b9f4"}},
                              "spec": {"automountServiceAccountToken": False,
                                       "containers": [{"name": "app", "image": image}]}}},
    }, namespace)
    rs_owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs["metadata"]["name"],
                "uid": rs["metadata"]["uid"], "controller": True}

    # checkout: exits 1 at start, restarted again and again
    crash = create_ok(cp, _pod("checkout-5d8c7b9f4-x7k2p", {**labels, "pod-template-hash": "5d8c7b9f4"}, image,
                               rs_owner), namespace)
    patch_status(cp, "Pod", crash["metadata"]["name"], namespace, _pod_status("Running", False, _container_status(
        image, ready=False, restarts=7,
        state={"waiting": {"reason": "CrashLoopBackOff",
                           "message": "back-off 5m0s restarting failed container=app "
                                      "pod=checkout-5d8c7b9f4-x7k2p"}},
        last={"terminated": {"exitCode": 1, "reason": "Error", "startedAt": _ts(3), "finishedAt": _ts(3)}})))

    # cache: killed by the kernel for exceeding its memory limit
    cache_image = "registry.example/shop/cache:7.2"
    oom = create_ok(cp, _pod("cache-0", {"app": "cache"}, cache_image), namespace)
    patch_status(cp, "Pod", "cache-0", namespace, _pod_status("Running", False, _container_status(
        cache_image, ready=False, restarts=4,
        state={"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": _ts(2), "finishedAt": _ts(1)}},
        last={"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": _ts(6), "finishedAt": _ts(5)}})))

    # web: a typo in the image tag
    web_image = "registry.example/shop/web:1.9.O"
    pull = create_ok(cp, _pod("web-6b7f9c-qz8tm", {"app": "web"}, web_image), namespace)
    patch_status(cp, "Pod", pull["metadata"]["name"], namespace, _pod_status("Pending", False, _container_status(
        web_image, ready=False, restarts=0,
        state={"waiting": {"reason": "ImagePullBackOff",
                           "message": f'Back-off pulling image "{web_image}"'}})))

    # api: fine
    api_image = "registry.example/shop/api:2.0.1"
    healthy = create_ok(cp, _pod("api-7c9d8-hk2lp", {"app": "api"}, api_image), namespace)
    patch_status(cp, "Pod", healthy["metadata"]["name"], namespace, _pod_status("Running", True, _container_status(
        api_image, ready=True, restarts=0, state={"running": {"startedAt": _ts(30)}})))

    for ev in (
        _event(namespace, crash, "Warning", "BackOff", "Back-off restarting failed container", 31),
        _event(namespace, oom, "Warning", "BackOff", "Back-off restarting failed container", 4),
        _event(namespace, pull, "Warning", "Failed",
               f'Failed to pull image "{web_image}": rpc error: code = NotFound desc = failed to pull and unpack '
               f'image "{web_image}": not found', 6),
        _event(namespace, pull, "Normal", "BackOff", f'Back-off pulling image "{web_image}"', 25),
        _event(namespace, healthy, "Normal", "Started", "Started container app", 1),
    ):
        create_ok(cp, ev, namespace)

    return Scene(namespace, "checkout", crash["metadata"]["name"], "cache-0", pull["metadata"]["name"],
                 healthy["metadata"]["name"])
