"""Helpers for the e2e tests: applying manifests to the real API server, waiting for conditions.

The tests talk to the server with ``ControlPlane.request`` (raw JSON, never raises), so that what a
test asserts is exactly what the server said.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tests.e2e.controlplane import ControlPlane

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = REPO_ROOT / "crds"

GROUP = "inquest.dev"
VERSION = "v1alpha1"
TABLE_ACCEPT = "application/json;as=Table;v=v1beta1;g=meta.k8s.io"
MERGE_PATCH = "application/merge-patch+json"

# Where each kind lives on the server (kind -> (api prefix, plural)).
KINDS: dict[str, tuple[str, str]] = {
    "ModelProvider": (f"/apis/{GROUP}/{VERSION}", "modelproviders"),
    "Investigation": (f"/apis/{GROUP}/{VERSION}", "investigations"),
    "Namespace": ("/api/v1", "namespaces"),
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "Secret": ("/api/v1", "secrets"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "Pod": ("/api/v1", "pods"),
    "Event": ("/api/v1", "events"),
    "Service": ("/api/v1", "services"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "ReplicaSet": ("/apis/apps/v1", "replicasets"),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles"),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings"),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings"),
    "CustomResourceDefinition": ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions"),
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def collection_path(kind: str, namespace: str | None = None) -> str:
    prefix, plural = KINDS[kind]
    if kind in CLUSTER_SCOPED:
        return f"{prefix}/{plural}"
    if not namespace:
        raise ValueError(f"{kind} is namespaced: give a namespace")
    return f"{prefix}/namespaces/{namespace}/{plural}"


def object_path(kind: str, name: str, namespace: str | None = None) -> str:
    return f"{collection_path(kind, namespace)}/{name}"


def wait_for(check: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.2, what: str = "") -> T:
    """Call ``check`` until it returns a truthy value (returned) or ``timeout`` passes.

    On timeout, an AssertionError carries ``what`` (a str, or a callable producing the diagnostics)
    and the last value or exception seen.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
            if last:
                return last
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or check}; last: {last!r}")
        time.sleep(interval)


# --------------------------------------------------------------------------- manifests


def load_yaml(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def create(cp: ControlPlane, manifest: dict[str, Any], namespace: str | None = None,
           token: str | None = None) -> tuple[int, Any]:
    """POST a manifest (its own namespace unless ``namespace`` is given). Returns (status, body)."""
    kind = manifest["kind"]
    ns = namespace or manifest.get("metadata", {}).get("namespace")
    body = manifest
    if ns and kind not in CLUSTER_SCOPED:
        body = {**manifest, "metadata": {**manifest.get("metadata", {}), "namespace": ns}}
    return cp.request("POST", collection_path(kind, ns), body, token=token)


def create_ok(cp: ControlPlane, manifest: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    status, body = create(cp, manifest, namespace)
    assert status == 201, f"creating {manifest['kind']} {manifest['metadata'].get('name')}: HTTP {status}: {body}"
    return body


def apply(cp: ControlPlane, manifest: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """Create, or replace when it exists (keeping the server's resourceVersion)."""
    status, body = create(cp, manifest, namespace)
    if status == 201:
        return body
    assert status == 409, f"creating {manifest['kind']} {manifest['metadata']['name']}: HTTP {status}: {body}"
    kind, name = manifest["kind"], manifest["metadata"]["name"]
    ns = namespace or manifest.get("metadata", {}).get("namespace")
    path = object_path(kind, name, ns)
    st, current = cp.request("GET", path)
    assert st == 200, f"GET {path}: HTTP {st}: {current}"
    replacement = {**manifest, "metadata": {**manifest["metadata"], "resourceVersion":
                                            current["metadata"]["resourceVersion"]}}
    if ns and kind not in CLUSTER_SCOPED:
        replacement["metadata"]["namespace"] = ns
    st, body = cp.request("PUT", path, replacement)
    assert st == 200, f"replacing {kind} {name}: HTTP {st}: {body}"
    return body


def get(cp: ControlPlane, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    status, body = cp.request("GET", object_path(kind, name, namespace))
    if status == 404:
        return None
    assert status == 200, f"GET {kind} {namespace}/{name}: HTTP {status}: {body}"
    return body


def patch_status(cp: ControlPlane, kind: str, name: str, namespace: str | None, status: dict[str, Any]
                 ) -> dict[str, Any]:
    """Merge-patch ``status`` through the status subresource, as a controller (or kubelet) would."""
    path = object_path(kind, name, namespace) + "/status"
    st, body = cp.request("PATCH", path, {"status": status}, content_type=MERGE_PATCH)
    assert st == 200, f"PATCH {path}: HTTP {st}: {body}"
    return body


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def apply_crd(cp: ControlPlane, path: Path, timeout: float = 30.0) -> dict[str, Any]:
    """Apply a CRD file and wait until the server reports it Established (and serves the resource)."""
    (crd,) = load_yaml(path)
    try:
        apply(cp, crd)
    except AssertionError as exc:
        if 'Invalid value: \\"null\\"' in str(exc) or 'Invalid value: "null"' in str(exc):
            raise AssertionError(f"{exc}\nAn empty string taken for null: this kube-apiserver lacks the go-openapi "
                                 "patch of .ci/build-kube-apiserver.sh (see BUILD_TAG there); rebuild it") from None
        raise
    name = crd["metadata"]["name"]

    def established() -> dict[str, Any] | None:
        current = get(cp, "CustomResourceDefinition", name)
        cond = condition(current, "Established")
        return current if cond and cond.get("status") == "True" else None

    current = wait_for(established, timeout=timeout, what=f"CRD {name} to be Established")
    group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
    version = crd["spec"]["versions"][0]["name"]

    def served() -> bool:
        status, body = cp.request("GET", f"/apis/{group}/{version}")
        return status == 200 and any(r.get("name") == plural for r in body.get("resources", []))

    wait_for(served, timeout=timeout, what=f"{plural}.{group} in discovery")
    return current


def table(cp: ControlPlane, path: str, token: str | None = None) -> dict[str, Any]:
    """The server-side Table view of a list or object, as ``kubectl get`` asks for it."""
    status, body = cp.request("GET", path, token=token, headers={"Accept": TABLE_ACCEPT})
    assert status == 200, f"GET {path} as Table: HTTP {status}: {body}"
    assert body.get("kind") == "Table", body
    return body


def table_rows(tbl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Rows of a Table keyed by object name, each a {column name: cell} dict."""
    names = [c["name"] for c in tbl["columnDefinitions"]]
    rows = {}
    for row in tbl.get("rows") or []:
        cells = dict(zip(names, row["cells"], strict=True))
        rows[str(cells["Name"])] = cells
    return rows


def delete_inquest_objects(cp: ControlPlane, namespace: str) -> None:
    """Delete every ModelProvider and Investigation in ``namespace``, finalizers or not."""
    for kind in ("Investigation", "ModelProvider"):
        path = collection_path(kind, namespace)
        status, listing = cp.request("GET", path)
        if status != 200:
            continue
        for item in listing.get("items") or []:
            item_path = f"{path}/{item['metadata']['name']}"
            if item["metadata"].get("finalizers"):
                cp.request("PATCH", item_path, {"metadata": {"finalizers": None}}, content_type=MERGE_PATCH)
            cp.request("DELETE", item_path)


def bind_investigator(cp: ControlPlane, namespace: str) -> str:
    """What deploy/kustomize/overlays/local does for "default", done for ``namespace``: the
    ``inquest-investigator`` ServiceAccount bound to deploy's ``inquest-investigator`` ClusterRole."""
    docs = load_yaml(REPO_ROOT / "deploy" / "kustomize" / "overlays" / "local" / "investigator-default.yaml")
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects") or []:
            subject["namespace"] = namespace
        apply(cp, doc)
    (sa,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    return str(sa["metadata"]["name"])


def lost_fields(stored: Any, sent: Any, path: str = "spec") -> list[str]:
    """Where the server's copy lost or changed something we sent (pruning of unknown fields)."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [f"{path}: sent an object, stored {stored!r}"]
        problems = []
        for key, value in sent.items():
            if key not in stored:
                problems.append(f"{path}.{key}: pruned by the server (not in the schema?)")
            else:
                problems += lost_fields(stored[key], value, f"{path}.{key}")
        return problems
    if isinstance(sent, list):
        if not isinstance(stored, list) or len(stored) != len(sent):
            return [f"{path}: sent {sent!r}, stored {stored!r}"]
        return [p for i, (a, b) in enumerate(zip(stored, sent, strict=True)) for p in lost_fields(a, b, f"{path}[{i}]")]
    if stored != sent and not (isinstance(sent, int | float) and stored == sent):
        return [f"{path}: sent {sent!r}, stored {stored!r}"]
    return []


def create_tls_provider(cp: ControlPlane, namespace: str, base_url: str, api_key: str, ca_pem: bytes,
                        name: str = "fake") -> str:
    """A Secret ``llm`` (API key and CA) and a ModelProvider trusting only that CA: the fake LLM over TLS."""
    b64 = base64.b64encode
    create_ok(cp, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "llm"},
                   "data": {"api-key": b64(api_key.encode()).decode(), "ca.crt": b64(ca_pem).decode()}}, namespace)
    create_ok(cp, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelProvider", "metadata": {"name": name},
        "spec": {"baseURL": base_url, "model": "test-model",
                 "apiKeySecretRef": {"name": "llm", "key": "api-key"},
                 "tls": {"caSecretRef": {"name": "llm", "key": "ca.crt"}, "useSystemTrustStore": False},
                 "probeIntervalSeconds": 3600},
    }, namespace)
    return name

