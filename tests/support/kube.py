"""A KMock Kubernetes emulator declaring the resources Inquest reads and owns."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import kmock

VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]

# (api path prefix "group/version" or "v1", plural, kind, namespaced, subresources)
RESOURCES: list[tuple[str, str, str, bool, list[str]]] = [
    ("v1", "namespaces", "Namespace", False, ["status"]),
    ("v1", "pods", "Pod", True, ["status", "log"]),
    ("v1", "events", "Event", True, []),
    ("v1", "configmaps", "ConfigMap", True, []),
    ("v1", "secrets", "Secret", True, []),
    ("v1", "services", "Service", True, ["status"]),
    ("v1", "endpoints", "Endpoints", True, []),
    ("v1", "nodes", "Node", False, ["status"]),
    ("v1", "serviceaccounts", "ServiceAccount", True, []),
    ("v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ["status"]),
    ("apps/v1", "deployments", "Deployment", True, ["status", "scale"]),
    ("apps/v1", "replicasets", "ReplicaSet", True, ["status", "scale"]),
    ("apps/v1", "statefulsets", "StatefulSet", True, ["status", "scale"]),
    ("apps/v1", "daemonsets", "DaemonSet", True, ["status"]),
    ("batch/v1", "jobs", "Job", True, ["status"]),
    ("batch/v1", "cronjobs", "CronJob", True, ["status"]),
    ("events.k8s.io/v1", "events", "Event", True, []),
    ("apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition", False, ["status"]),
    ("inquest.dev/v1alpha1", "modelproviders", "ModelProvider", True, ["status"]),
    ("inquest.dev/v1alpha1", "investigations", "Investigation", True, ["status"]),
]

MP = "inquest.dev/v1alpha1/modelproviders"
INV = "inquest.dev/v1alpha1/investigations"


def declare_resources(emulator: kmock.KubernetesEmulator) -> None:
    for api, plural, kind, namespaced, subresources in RESOURCES:
        emulator.resources[f"{api}/{plural}"] = {
            "kind": kind,
            "namespaced": namespaced,
            "verbs": VERBS,
            "subresources": subresources,
            "categories": ["inquest"] if api.startswith("inquest.dev") else [],
        }
    answer_access_reviews(emulator)


# The operator asks whether it may impersonate an Investigation's ServiceAccount before a run.
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
POST_ACCESS_REVIEW = f"post {ACCESS_REVIEWS}"
_REVIEW_KEY = ("authorization.k8s.io/v1/selfsubjectaccessreviews", None, None)


def answer_access_reviews(emulator: kmock.KubernetesEmulator,
                          allowed: Callable[[dict[str, Any]], bool] = lambda attributes: True,
                          reason: str = "", *, default: bool = True) -> None:
    """Answer every SelfSubjectAccessReview as the API server would: ``allowed(resourceAttributes)``.

    ``default`` answers below any reaction a test adds (declare_resources allows everything that way);
    otherwise this reaction takes precedence over the default. ``kube[POST_ACCESS_REVIEW] << 403``
    makes the review itself fail.
    """

    def answer(request: Any) -> dict[str, Any]:
        # KMock stores every POSTed object under its name; a review has none and is never stored by a
        # real server, so the next one would be a 409 conflict: forget it.
        with contextlib.suppress(KeyError):
            del emulator.objects[_REVIEW_KEY]
        spec = (request.data if isinstance(request.data, dict) else {}).get("spec") or {}
        status: dict[str, Any] = {"allowed": allowed(spec.get("resourceAttributes") or {})}
        if reason and not status["allowed"]:
            status["reason"] = reason
        return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}

    (emulator ** -1 if default else emulator)[POST_ACCESS_REVIEW] << answer


def access_reviews(emulator: kmock.KubernetesEmulator) -> list[dict[str, Any]]:
    """The resourceAttributes of every SelfSubjectAccessReview the operator posted."""
    return [((r.data or {}).get("spec") or {}).get("resourceAttributes") or {} for r in list(emulator)
            if str(r.method).lower().endswith("post") and str(r.url.path) == ACCESS_REVIEWS]


def obj(
    kind: str, name: str, namespace: str | None = "default", *, api_version: str = "v1", **fields: Any
) -> dict[str, Any]:
    """A manifest with metadata filled the way a real server would (uid, generation, timestamps)."""
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{kind.lower()}-{name}", "generation": 1,
                            "creationTimestamp": "2026-01-01T00:00:00Z"}
    if namespace is not None:
        meta["namespace"] = namespace
    meta.update(fields.pop("metadata", {}))
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **fields}


INVESTIGATOR = "inquest-investigator"  # the default spec.serviceAccountName
IMPERSONATE_USER = "Impersonate-User"


def add_service_account(emulator: kmock.KubernetesEmulator, name: str = INVESTIGATOR,
                        namespace: str = "default") -> dict[str, Any]:
    """A ServiceAccount the operator finds (Investigations run only once theirs exists).

    Stored directly: the operator reads it with a GET when it prepares a run, it never watches them.
    """
    manifest = obj("ServiceAccount", name, namespace)
    emulator.objects["v1/serviceaccounts", namespace, name] = manifest
    return manifest


def impersonated_users(emulator: kmock.KubernetesEmulator, path_part: str) -> list[str | None]:
    """The Impersonate-User header of every recorded request whose path contains ``path_part``."""
    return [dict(r.headers).get(IMPERSONATE_USER) for r in list(emulator) if path_part in str(r.url.path)]
