"""Smoke tests of the e2e control plane (real etcd + kube-apiserver v1.20)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.e2e.controlplane import ControlPlane

CRD_GROUP = "e2e.example.com"
CRD_PLURAL = "widgets"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def namespace(controlplane: ControlPlane) -> str:
    ns = _name("smoke")
    controlplane.create_namespace(ns)  # + "default" ServiceAccount
    return ns


def test_version_is_1_20(admin_api: client.ApiClient, controlplane: ControlPlane) -> None:
    info = client.VersionApi(admin_api).get_code()
    assert info.git_version.startswith("v1.20."), info.git_version
    assert info.major == "1" and info.minor == "20"
    status, body = controlplane.request("GET", "/version")
    assert status == 200 and body["gitVersion"] == info.git_version


def test_configmap_roundtrip(admin_api: client.ApiClient) -> None:
    core = client.CoreV1Api(admin_api)
    ns = _name("cm")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    assert core.read_namespace(ns).status.phase == "Active"
    core.create_namespaced_config_map(
        ns,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="settings", labels={"app": "inquest"}),
            data={"key": "value", "multi": "a\nb\n"},
        ),
    )
    cm = core.read_namespaced_config_map("settings", ns)
    assert cm.data == {"key": "value", "multi": "a\nb\n"}
    assert cm.metadata.labels == {"app": "inquest"}
    assert cm.metadata.uid and cm.metadata.resource_version
    listed = core.list_namespaced_config_map(ns, label_selector="app=inquest")
    assert [c.metadata.name for c in listed.items] == ["settings"]


def _widget_crd() -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{CRD_PLURAL}.{CRD_GROUP}"},
        "spec": {
            "group": CRD_GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": CRD_PLURAL,
                "singular": "widget",
                "kind": "Widget",
                "listKind": "WidgetList",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["message"],
                                    "properties": {
                                        "message": {"type": "string"},
                                        "replicas": {"type": "integer", "minimum": 0},
                                    },
                                },
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                            "required": ["spec"],
                        }
                    },
                }
            ],
        },
    }


def _wait_established(controlplane: ControlPlane, name: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        status, body = controlplane.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        assert status == 200, body
        conds = {c["type"]: c["status"] for c in body.get("status", {}).get("conditions") or []}
        if conds.get("Established") == "True":
            # discovery of the new group/version can lag the condition a little
            if controlplane.request("GET", f"/apis/{CRD_GROUP}/v1")[0] == 200:
                return body
        time.sleep(0.2)
    raise AssertionError(f"CRD {name} not Established within {timeout} s: {body.get('status')}")


def test_crd_established_and_validated(admin_api: client.ApiClient, controlplane: ControlPlane, namespace: str) -> None:
    ext = client.ApiextensionsV1Api(admin_api)
    crd_name = f"{CRD_PLURAL}.{CRD_GROUP}"
    try:
        ext.create_custom_resource_definition(_widget_crd(), _preload_content=False)
    except ApiException as exc:  # the session-wide server may already have it
        if exc.status != 409:
            raise
    crd = _wait_established(controlplane, crd_name)
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"

    objs = client.CustomObjectsApi(admin_api)
    created = objs.create_namespaced_custom_object(
        CRD_GROUP,
        "v1",
        namespace,
        CRD_PLURAL,
        {
            "apiVersion": f"{CRD_GROUP}/v1",
            "kind": "Widget",
            "metadata": {"name": "good"},
            "spec": {"message": "hello", "replicas": 2},
        },
    )
    assert created["metadata"]["uid"]
    got = objs.get_namespaced_custom_object(CRD_GROUP, "v1", namespace, CRD_PLURAL, "good")
    assert got["spec"] == {"message": "hello", "replicas": 2}

    # the status subresource works too
    got["status"] = {"phase": "Ready"}
    objs.replace_namespaced_custom_object_status(CRD_GROUP, "v1", namespace, CRD_PLURAL, "good", got)
    got = objs.get_namespaced_custom_object(CRD_GROUP, "v1", namespace, CRD_PLURAL, "good")
    assert got["status"] == {"phase": "Ready"}

    with pytest.raises(ApiException) as excinfo:
        objs.create_namespaced_custom_object(
            CRD_GROUP,
            "v1",
            namespace,
            CRD_PLURAL,
            {
                "apiVersion": f"{CRD_GROUP}/v1",
                "kind": "Widget",
                "metadata": {"name": "bad"},
                "spec": {"replicas": 1},
            },
        )
    assert excinfo.value.status == 422
    err = json.loads(excinfo.value.body)
    assert err["reason"] == "Invalid"
    assert "spec.message" in err["message"], err["message"]
    assert any(c.get("field") == "spec.message" for c in err["details"]["causes"]), err


def test_service_account_token_authenticates(
    admin_api: client.ApiClient, controlplane: ControlPlane, namespace: str
) -> None:
    core = client.CoreV1Api(admin_api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="robot"))
    )
    token = controlplane.token_for_service_account(namespace, "robot")
    assert token.count(".") == 2  # a JWT

    # authenticated (403 Forbidden, not 401 Unauthorized): RBAC grants it nothing
    status, body = controlplane.request("GET", "/api/v1/namespaces", token=token)
    assert status == 403, body
    assert f"system:serviceaccount:{namespace}:robot" in body["message"]

    # a bogus token is not authenticated
    status, _ = controlplane.request("GET", "/api/v1/namespaces", token=token[:-4] + "AAAA")
    assert status == 401

    # the server's own view of the token
    status, review = controlplane.request(
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}},
    )
    assert status == 201, review
    assert review["status"]["authenticated"] is True
    assert review["status"]["user"]["username"] == f"system:serviceaccount:{namespace}:robot"

    # what the SA may do: nothing yet ...
    sa_api = controlplane.api_client(token)
    try:
        authz = client.AuthorizationV1Api(sa_api)
        review_body = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(namespace=namespace, verb="list", resource="pods")
            )
        )
        assert authz.create_self_subject_access_review(review_body).status.allowed is False

        # ... until RBAC grants it (RBAC works without a controller-manager)
        rbac = client.RbacAuthorizationV1Api(admin_api)
        rbac.create_namespaced_role(
            namespace,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "pod-reader"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
            },
        )
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "robot-pod-reader"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": namespace}],
            },
        )
        deadline = time.monotonic() + 10
        while True:
            allowed = authz.create_self_subject_access_review(review_body).status.allowed
            if allowed or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert allowed is True
        assert client.CoreV1Api(sa_api).list_namespaced_pod(namespace).items == []
    finally:
        sa_api.close()


def test_pod_status_subresource(admin_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(admin_api)
    core.create_namespaced_pod(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "crashy", "labels": {"app": "crashy"}},
            "spec": {
                "automountServiceAccountToken": False,
                "containers": [{"name": "app", "image": "registry.example/crashy:1"}],
            },
        },
    )
    pod = core.read_namespaced_pod("crashy", namespace)
    assert pod.status.phase == "Pending"  # no scheduler, no kubelet

    now = "2024-01-01T00:00:00Z"
    core.patch_namespaced_pod_status(
        "crashy",
        namespace,
        {
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
                "containerStatuses": [
                    {
                        "name": "app",
                        "image": "registry.example/crashy:1",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 5,
                        "started": False,
                        "state": {
                            "waiting": {
                                "reason": "CrashLoopBackOff",
                                "message": "back-off 5m0s restarting failed container",
                            }
                        },
                        "lastState": {
                            "terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}
                        },
                    }
                ],
            }
        },
    )

    pod = core.read_namespaced_pod_status("crashy", namespace)
    assert pod.status.phase == "Running"
    (cs,) = pod.status.container_statuses
    assert cs.name == "app"
    assert cs.restart_count == 5
    assert cs.state.waiting.reason == "CrashLoopBackOff"
    assert cs.last_state.terminated.exit_code == 1
    # spec untouched by the status write
    assert core.read_namespaced_pod("crashy", namespace).spec.containers[0].name == "app"
