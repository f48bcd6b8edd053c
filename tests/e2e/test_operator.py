"""The operator as deployed: ``inquest run --all-namespaces`` in a subprocess, authenticated as
deploy/kustomize/base's ServiceAccount with only the RBAC that deploy/ grants it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, Deployed
from tests.e2e.controlplane import ControlPlane
from tests.e2e.harness import GROUP, VERSION, bind_investigator, condition, create_ok, get, unique, wait_for
from tests.e2e.processes import OperatorProcess

OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"


def _refused_provider(name: str) -> dict[str, Any]:
    """A provider whose endpoint refuses connections: the operator's verdict comes fast."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelProvider",
        "metadata": {"name": name},
        "spec": {"baseURL": "http://127.0.0.1:9/v1", "model": "m"},
    }


def events_for(cp: ControlPlane, namespace: str, name: str) -> list[dict[str, Any]]:
    status, body = cp.request("GET", f"/api/v1/namespaces/{namespace}/events"
                                     f"?fieldSelector=involvedObject.name%3D{name}")
    assert status == 200, body
    return body["items"]


@pytest.mark.parametrize("identity", ["admin", "deploy-serviceaccount"])
def test_operator_reconciles_a_provider(controlplane: ControlPlane, namespace: str, identity: str,
                                        operator_factory: Callable[..., OperatorProcess]) -> None:
    """Watch, status subresource, Events: as the cluster admin and as deploy/'s ServiceAccount."""
    op = operator_factory(admin=identity == "admin")
    name = unique("refused")
    create_ok(controlplane, _refused_provider(name), namespace)

    def verdict() -> dict[str, Any] | None:
        mp = get(controlplane, "ModelProvider", name, namespace)
        cond = condition(mp, "EndpointReachable")
        return mp if cond and cond["status"] == "False" else None

    mp = wait_for(verdict, timeout=30, what=f"ModelProvider {name} to be probed" + op.diagnostics())
    reachable = condition(mp, "EndpointReachable")
    assert reachable is not None and reachable["reason"] == "ConnectionRefused", reachable
    assert "127.0.0.1:9" in reachable["message"], reachable
    ready = condition(mp, "Ready")
    assert ready is not None and ready["status"] == "False", mp["status"]
    assert mp["status"]["phase"] == "NotReady"
    assert mp["status"]["endpoint"] == "http://127.0.0.1:9/v1/chat/completions"
    assert ready["observedGeneration"] == mp["metadata"]["generation"]

    # the Events the operator posted, under its own identity
    events = wait_for(lambda: events_for(controlplane, namespace, name), timeout=10,
                      what="an Event about the provider" + op.diagnostics())
    assert any(e["type"] == "Warning" and e["reason"] == "ConnectionRefused" for e in events), events

    assert not op.problems(), op.problems()
    assert op.stop() == 0, "the operator did not exit cleanly on SIGINT" + op.diagnostics()


def test_deploy_roles_are_least_privilege(controlplane: ControlPlane, deployed: Deployed, namespace: str) -> None:
    """What deploy/ grants the operator is enough (test above) and not more (here), per the API server."""

    def allowed(user: str, verb: str, resource: str, group: str = "", ns: str | None = namespace,
                subresource: str = "") -> bool:
        attributes: dict[str, Any] = {"verb": verb, "resource": resource, "group": group}
        if ns:
            attributes["namespace"] = ns
        if subresource:
            attributes["subresource"] = subresource
        status, review = controlplane.request(
            "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
             "spec": {"user": user, "groups": ["system:serviceaccounts", "system:authenticated",
                                               f"system:serviceaccounts:{OPERATOR_NAMESPACE}"],
                      "resourceAttributes": attributes}})
        assert status == 201, review
        return bool(review["status"].get("allowed"))

    op = OPERATOR_USER
    # needed
    assert allowed(op, "watch", "investigations", GROUP, ns=None)
    assert allowed(op, "patch", "modelproviders", GROUP, subresource="status")
    assert allowed(op, "list", "secrets", ns=None)
    assert allowed(op, "create", "events")
    assert allowed(op, "impersonate", "serviceaccounts")
    # not needed, not granted
    assert not allowed(op, "create", "pods")
    assert not allowed(op, "update", "secrets")
    assert not allowed(op, "delete", "modelproviders", GROUP)
    assert not allowed(op, "impersonate", "users", ns=None)
    assert not allowed(op, "impersonate", "groups", ns=None)
    assert not allowed(op, "create", "clusterrolebindings", "rbac.authorization.k8s.io", ns=None)

    # the investigator role, bound in a namespace, reads but never Secrets
    investigator = f"system:serviceaccount:{namespace}:inquest-investigator"
    bind_investigator(controlplane, namespace)
    assert allowed(investigator, "list", "pods")
    assert allowed(investigator, "get", "pods", subresource="log")
    assert allowed(investigator, "list", "deployments", "apps")
    assert not allowed(investigator, "get", "secrets")
    assert not allowed(investigator, "list", "secrets")
    assert not allowed(investigator, "delete", "pods")
    assert not allowed(investigator, "list", "pods", ns="kube-system")  # only where it is bound



def test_watches_resume_across_server_timeouts(controlplane: ControlPlane, namespace: str,
                                               operator_factory: Callable[..., OperatorProcess]) -> None:
    """The API server ends every watch after 1 s (INQUEST_WATCH_TIMEOUT): Kopf resumes each from the
    last resourceVersion it saw, and creations and spec edits made later still reach the handlers."""
    op = operator_factory(env={"INQUEST_WATCH_TIMEOUT": "1"})

    def probed(name: str, generation: int) -> bool:
        cond = condition(get(controlplane, "ModelProvider", name, namespace), "EndpointReachable")
        return bool(cond and cond["status"] == "False" and cond["observedGeneration"] == generation)

    first = unique("first")
    create_ok(controlplane, _refused_provider(first), namespace)
    wait_for(lambda: probed(first, 1), timeout=30, what=f"{first} probed" + op.diagnostics())

    time.sleep(2.5)  # a few watch requests have ended and resumed meanwhile
    second = unique("second")
    create_ok(controlplane, _refused_provider(second), namespace)
    wait_for(lambda: probed(second, 1), timeout=30, what=f"{second} probed after resumed watches" + op.diagnostics())

    time.sleep(1.5)
    st, body = controlplane.request(
        "PATCH", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/modelproviders/{first}",
        {"spec": {"baseURL": "http://127.0.0.1:7/v1"}}, content_type="application/merge-patch+json")
    assert st == 200 and body["metadata"]["generation"] == 2, body
    mp = wait_for(lambda: probed(first, 2) and get(controlplane, "ModelProvider", first, namespace), timeout=30,
                  what=f"{first} re-validated after a spec edit" + op.diagnostics())
    assert mp["status"]["endpoint"] == "http://127.0.0.1:7/v1/chat/completions"
    assert not op.problems(), op.problems()
