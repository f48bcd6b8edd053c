"""The static table of kinds the tools may read, and their API paths.

Secrets are deliberately absent: no tool reads them, whatever the identity's RBAC allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import quote


class ToolError(Exception):
    """A failure a tool reports back to the model as its result (never crashes the run)."""


@dataclass(frozen=True)
class Kind:
    plural: str
    kind: str
    api: str  # "v1" for the core group, else "group/version"
    namespaced: bool
    aliases: tuple[str, ...] = ()
    # Older group-versions to read it through when a server does not serve ``api`` (tried in order).
    fallbacks: tuple[str, ...] = ()

    @property
    def versions(self) -> tuple[str, ...]:
        return (self.api, *self.fallbacks)

    def at(self, api: str) -> Kind:
        """This kind read through another group-version."""
        return replace(self, api=api)

    def discovery_path(self) -> str:
        """The group-version's resource list (readable by every authenticated user)."""
        return self._prefix()

    def _prefix(self) -> str:
        return "/api/v1" if self.api == "v1" else f"/apis/{self.api}"

    def collection_path(self, namespace: str | None) -> str:
        if self.namespaced and namespace:
            return f"{self._prefix()}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        return f"{self._prefix()}/{self.plural}"

    def object_path(self, name: str, namespace: str | None) -> str:
        return f"{self.collection_path(namespace)}/{quote(name, safe='')}"


KINDS: tuple[Kind, ...] = (
    Kind("pods", "Pod", "v1", True, ("pod", "po")),
    Kind("services", "Service", "v1", True, ("service", "svc")),
    Kind("endpoints", "Endpoints", "v1", True, ("endpoint", "ep")),
    Kind("configmaps", "ConfigMap", "v1", True, ("configmap", "cm")),
    Kind("events", "Event", "v1", True, ("event", "ev")),
    Kind("nodes", "Node", "v1", False, ("node", "no")),
    Kind("namespaces", "Namespace", "v1", False, ("namespace", "ns")),
    Kind("persistentvolumeclaims", "PersistentVolumeClaim", "v1", True, ("persistentvolumeclaim", "pvc")),
    Kind("deployments", "Deployment", "apps/v1", True, ("deployment", "deploy")),
    Kind("replicasets", "ReplicaSet", "apps/v1", True, ("replicaset", "rs")),
    Kind("statefulsets", "StatefulSet", "apps/v1", True, ("statefulset", "sts")),
    Kind("daemonsets", "DaemonSet", "apps/v1", True, ("daemonset", "ds")),
    Kind("jobs", "Job", "batch/v1", True, ("job",)),
    Kind("cronjobs", "CronJob", "batch/v1", True, ("cronjob", "cj")),
    Kind("ingresses", "Ingress", "networking.k8s.io/v1", True, ("ingress", "ing")),
    # autoscaling/v2 is served from Kubernetes 1.23; 1.20-1.22 serve v2beta2 (and v1)
    Kind("horizontalpodautoscalers", "HorizontalPodAutoscaler", "autoscaling/v2", True,
         ("horizontalpodautoscaler", "hpa"), ("autoscaling/v2beta2", "autoscaling/v1")),
)

KIND_NAMES: tuple[str, ...] = tuple(k.plural for k in KINDS)
_BY_NAME: dict[str, Kind] = {}
for _k in KINDS:
    for _alias in (_k.plural, _k.kind.lower(), *_k.aliases):
        _BY_NAME[_alias] = _k

SECRET_NAMES = frozenset({"secret", "secrets"})
SECRETS_REFUSED = ("Secrets are not readable by Inquest's tools (by design: their values must never reach a "
                   "model). Reason about Secrets from references instead: pod env/volume references, events "
                   "such as 'secret not found'.")

# The kinds find_resources searches when the model names none (most likely to match a name).
SEARCH_KINDS: tuple[str, ...] = ("pods", "deployments", "statefulsets", "daemonsets", "replicasets", "jobs",
                                 "cronjobs", "services", "ingresses", "configmaps", "persistentvolumeclaims",
                                 "horizontalpodautoscalers", "nodes")


def resolve_kind(text: str) -> Kind:
    """A kind from a plural, singular, Kind or short name ("Pod", "pods", "po", "deployments.apps")."""
    key = (text or "").strip().lower()
    if SECRET_NAMES & set(re.split(r"[\s/.,:]+", key)):  # "v1/Secret", "Secret.v1.", "core/v1/secrets"
        raise ToolError(SECRETS_REFUSED)
    if "." in key:
        key = key.split(".", 1)[0]
    if key.endswith("/v1"):
        key = key.rsplit("/", 1)[0]
    if key in SECRET_NAMES:
        raise ToolError(SECRETS_REFUSED)
    kind = _BY_NAME.get(key)
    if kind is None:
        raise ToolError(f"unknown or unsupported kind {text!r}; readable kinds: {', '.join(KIND_NAMES)}")
    return kind


def kind_of(obj_kind: str) -> Kind | None:
    return _BY_NAME.get((obj_kind or "").lower())


def canonical_kind(text: str) -> str:
    """The Kubernetes Kind for a kind a model wrote ("pod", "pods", "deploy", "hpa" -> "Pod",
    "Pod", "Deployment", "HorizontalPodAutoscaler"); anything the table does not know is kept as it is."""
    try:
        return resolve_kind(text).kind
    except ToolError:
        key = (text or "").strip().lower()
        return "Secret" if key in SECRET_NAMES else text
