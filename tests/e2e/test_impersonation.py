"""Impersonation on the real API server: an Investigation's tools read the cluster with the rights of
its own ServiceAccount, never the operator's (deploy/'s RBAC), and a missing ServiceAccount stops the
run before any tool call.

The operator sends only ``Impersonate-User: system:serviceaccount:NS:NAME``; the API server adds that
ServiceAccount's groups itself. The group test below proves it: RBAC bound to the group
``system:serviceaccounts:NS`` (and to nothing else) lets the Investigation read.

deploy/ lets the operator impersonate only ServiceAccounts named ``inquest-investigator``
(``resourceNames``): the tests grant their other ServiceAccounts the way docs/security.md tells admins
to, and check that without such a grant the run waits (ServiceAccountNotImpersonable) and that the
operator may impersonate no ServiceAccount of kube-system.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.agent_script import ScriptedModel, marker_question
from tests.e2e.conftest import OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT
from tests.e2e.controlplane import ControlPlane
from tests.e2e.harness import (
    GROUP,
    VERSION,
    condition,
    create_ok,
    create_tls_provider,
    get,
    unique,
    wait_for,
)
from tests.e2e.processes import OperatorProcess
from tests.e2e.workloads import Scene, build_scene
from tests.support.certs import TestPKI
from tests.support.fake_llm import FakeLLM, text, tool_call

API_KEY = "sk-e2e-imp-" + "5c1e9a7b3d2f"
RBAC = "rbac.authorization.k8s.io"
INVESTIGATOR_ROLE = "inquest-investigator"  # deploy/kustomize/base/rbac-investigator.yaml
OPERATOR = {"kind": "ServiceAccount", "name": OPERATOR_SERVICE_ACCOUNT, "namespace": OPERATOR_NAMESPACE}
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"


@dataclass
class Tenants:
    own: str  # where the Investigations live (and their ServiceAccounts)
    other: str  # broken workloads the narrow identity may not read
    grouped: str  # readable only through the group system:serviceaccounts:<own>
    scene: Scene
    model: ScriptedModel
    cluster_bindings: list[str]
    cluster_roles: list[str]


def _service_account(cp: ControlPlane, namespace: str, name: str) -> str:
    create_ok(cp, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}, namespace)
    return name


def _role_binding(cp: ControlPlane, namespace: str, name: str, subject: dict[str, Any]) -> None:
    create_ok(cp, {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": name},
                   "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": INVESTIGATOR_ROLE},
                   "subjects": [subject]}, namespace)


@pytest.fixture
def tenants(controlplane: ControlPlane, namespace: str, pki: TestPKI, fake_llm_tls: FakeLLM,
            deployed: Any) -> Iterator[Tenants]:
    """Three namespaces, a ModelProvider in the first, and the ClusterRoleBindings removed afterwards."""
    cp = controlplane
    model = ScriptedModel()
    fake_llm_tls.default = model
    fake_llm_tls.api_key = API_KEY
    other, grouped = unique("e2e-other"), unique("e2e-grouped")
    cp.create_namespace(other)
    cp.create_namespace(grouped)
    scene = build_scene(cp, other)
    create_tls_provider(cp, namespace, fake_llm_tls.base_url, API_KEY, pki.ca.cert_pem)
    t = Tenants(namespace, other, grouped, scene, model, [], [])
    yield t
    for name in t.cluster_bindings:
        cp.request("DELETE", f"/apis/{RBAC}/v1/clusterrolebindings/{name}")
    for name in t.cluster_roles:
        cp.request("DELETE", f"/apis/{RBAC}/v1/clusterroles/{name}")


def _allow_impersonation(cp: ControlPlane, t: Tenants, *names: str) -> None:
    """docs/security.md, "Running as another ServiceAccount": a ClusterRole with impersonate on these
    resourceNames, bound to the operator's ServiceAccount."""
    name = unique("inquest-impersonate-extra")
    create_ok(cp, {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": name},
                   "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"],
                              "resourceNames": list(names)}]})
    t.cluster_roles.append(name)
    create_ok(cp, {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
                   "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": name}, "subjects": [OPERATOR]})
    t.cluster_bindings.append(name)


def _allow_impersonation_in(cp: ControlPlane, namespace: str, sa: str) -> None:
    """docs/security.md, one namespace only: a Role and RoleBinding where the ServiceAccount lives."""
    name = f"inquest-impersonate-{sa}"
    create_ok(cp, {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": name},
                   "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"],
                              "resourceNames": [sa]}]}, namespace)
    create_ok(cp, {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": name},
                   "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": name}, "subjects": [OPERATOR]}, namespace)


def _may(cp: ControlPlane, user: str, verb: str, resource: str, namespace: str, name: str = "") -> bool:
    """The real API server's answer (a SubjectAccessReview, asked as the admin) for a ServiceAccount user."""
    attributes = {"verb": verb, "group": "", "resource": resource, "namespace": namespace}
    if name:
        attributes["name"] = name
    sa_namespace = user.split(":")[2]
    status, review = cp.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa_namespace}",
                                          "system:authenticated"],
                 "resourceAttributes": attributes}})
    assert status == 201, review
    return bool(review["status"]["allowed"])


def _investigation(t: Tenants, name: str, marker: str, service_account: str | None, *namespaces: str,
                   **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"question": marker_question(marker, "Which pods are failing?"),
                            "providerRef": {"name": "fake"}, **spec}
    if service_account:
        body["serviceAccountName"] = service_account
    if namespaces:
        body["scope"] = {"namespaces": list(namespaces)}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Investigation", "metadata": {"name": name}, "spec": body}


def _wait_phase(cp: ControlPlane, op: OperatorProcess, namespace: str, name: str, *phases: str,
                timeout: float = 60.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get(cp, "Investigation", name, namespace)
        return obj if obj and (obj.get("status") or {}).get("phase") in phases else None

    try:
        return wait_for(check, timeout=timeout, what=f"Investigation {name} to be {'/'.join(phases)}")
    except AssertionError as exc:
        obj = get(cp, "Investigation", name, namespace) or {}
        raise AssertionError(f"{exc}\nstatus: {obj.get('status')}{op.diagnostics()}") from None


def _list_pods(namespace: str) -> Any:
    return tool_call("list_resources", {"kind": "pods", "namespace": namespace})


def _unexpected_problems(op: OperatorProcess, *expected: str) -> list[str]:
    """The operator's problem lines, less the refusals a test provoked on purpose (``expected``)."""
    return [line for line in op.problems() if not any(e in line for e in expected)]


def test_tools_read_with_the_service_accounts_rbac(controlplane: ControlPlane, tenants: Tenants,
                                                   operator_factory: Callable[..., OperatorProcess]) -> None:
    cp, t, model = controlplane, tenants, tenants.model
    # narrow: bound in its own namespace only; wide: bound cluster-wide; grouped: no binding of its own,
    # only its namespace's ServiceAccount group is bound, in a third namespace
    narrow = _service_account(cp, t.own, "narrow")
    _role_binding(cp, t.own, "narrow", {"kind": "ServiceAccount", "name": narrow, "namespace": t.own})
    wide = _service_account(cp, t.own, "wide")
    crb = unique("inquest-e2e-wide")
    create_ok(cp, {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": crb},
                   "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": INVESTIGATOR_ROLE},
                   "subjects": [{"kind": "ServiceAccount", "name": wide, "namespace": t.own}]})
    t.cluster_bindings.append(crb)
    grouped = _service_account(cp, t.own, "grouped")
    _role_binding(cp, t.grouped, "own-namespace-group",
                  {"kind": "Group", "apiGroup": RBAC, "name": f"system:serviceaccounts:{t.own}"})
    _allow_impersonation(cp, t, narrow, wide, grouped)  # none of them is named inquest-investigator
    create_ok(cp, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "grouped-pod"},
                   "spec": {"automountServiceAccountToken": False, "containers": [{"name": "app",
                                                                                   "image": "busybox"}]}},
              t.grouped)

    op = operator_factory()
    markers = {"narrow": unique("narrow"), "wide": unique("wide"), "grouped": unique("grouped")}
    model.add(markers["narrow"], _list_pods(t.other), _list_pods(t.own), text("narrow is done"))
    model.add(markers["wide"], _list_pods(t.other), text("wide is done"))
    model.add(markers["grouped"], _list_pods(t.grouped), _list_pods(t.other), text("grouped is done"))
    scope = (t.own, t.other, t.grouped)  # all in scope: only RBAC may refuse
    for who, sa in (("narrow", narrow), ("wide", wide), ("grouped", grouped)):
        create_ok(cp, _investigation(t, f"as-{who}", markers[who], sa, *scope), t.own)
    done = {who: _wait_phase(cp, op, t.own, f"as-{who}", "Succeeded", "Failed") for who in markers}

    # narrow: the real API server refused the other namespace, and said so to the model
    (refused, own_pods) = model.result_of(markers["narrow"], "list_resources")
    user = f"system:serviceaccount:{t.own}:{narrow}"
    assert "403 Forbidden" in refused and "forbidden" in refused, refused
    assert f'User "{user}" cannot list resource "pods" in API group "" in the namespace "{t.other}"' in refused
    assert "not allowed to read this (RBAC)" in refused, refused
    assert not any(pod in refused for pod in t.scene.broken), refused
    assert "403" not in own_pods and "forbidden" not in own_pods.lower(), own_pods  # its own namespace is fine
    status = done["narrow"]["status"]
    assert status["phase"] == "Succeeded", status  # a refused tool call does not fail the run
    assert "403" in status["toolCalls"][0]["error"] and "error" not in status["toolCalls"][1], status["toolCalls"]
    identity = condition(done["narrow"], "ServiceAccountReady")
    assert identity and identity["status"] == "True" and user in identity["message"], identity

    # wide: the same call, as a ServiceAccount with a ClusterRoleBinding, reads the other namespace
    (listed,) = model.result_of(markers["wide"], "list_resources")
    assert "forbidden" not in listed.lower(), listed
    for pod, reason in t.scene.broken.items():
        assert pod in listed and reason in listed, listed
    assert done["wide"]["status"]["phase"] == "Succeeded"

    # grouped: only Impersonate-User was sent, yet the group binding applied: the server added the groups
    (via_group, not_bound) = model.result_of(markers["grouped"], "list_resources")
    assert "grouped-pod" in via_group and "forbidden" not in via_group.lower(), via_group
    assert "403 Forbidden" in not_bound, not_bound  # and nothing more than its bindings

    # the only refusals the operator met were the two provoked ones (narrow's and grouped's reads of the
    # other namespace): every request it made as itself was allowed
    provoked = f'"GET /api/v1/namespaces/{t.other}/pods?limit=500 HTTP/1.1" 403'
    assert sum(provoked in line for line in op.problems()) == 2, op.problems()
    assert not _unexpected_problems(op, provoked), op.problems()
    assert not model.unrouted, model.unrouted
    op.stop()


def test_the_operator_may_impersonate_only_the_investigator_service_account(controlplane: ControlPlane,
                                                                            namespace: str, deployed: Any) -> None:
    """The API server's own verdict on deploy/'s RBAC: impersonate the investigator ServiceAccount of
    any namespace, and no other ServiceAccount: none of kube-system's controllers, which would make
    the operator's token as good as cluster-admin."""
    cp = controlplane
    for ns in (namespace, "kube-system", "default"):
        assert _may(cp, OPERATOR_USER, "impersonate", "serviceaccounts", ns, "inquest-investigator"), ns
    for sa in ("replicaset-controller", "clusterrole-aggregation-controller", "namespace-controller", "default"):
        assert not _may(cp, OPERATOR_USER, "impersonate", "serviceaccounts", "kube-system", sa), sa
    assert not _may(cp, OPERATOR_USER, "impersonate", "serviceaccounts", namespace, "default")
    assert not _may(cp, OPERATOR_USER, "impersonate", "serviceaccounts", namespace)  # any, unnamed
    assert not _may(cp, OPERATOR_USER, "impersonate", "users", "")
    assert not _may(cp, OPERATOR_USER, "impersonate", "groups", "")
    # reading a ServiceAccount to report a missing one stays allowed for any name
    assert _may(cp, OPERATOR_USER, "get", "serviceaccounts", "kube-system", "replicaset-controller")

    # the documented per-namespace grant opens exactly that name in exactly that namespace
    lent = _service_account(cp, namespace, unique("lent"))
    assert not _may(cp, OPERATOR_USER, "impersonate", "serviceaccounts", namespace, lent)
    _allow_impersonation_in(cp, namespace, lent)
    assert _may(cp, OPERATOR_USER, "impersonate", "serviceaccounts", namespace, lent)
    assert not _may(cp, OPERATOR_USER, "impersonate", "serviceaccounts", "kube-system", lent)
    assert not _may(cp, OPERATOR_USER, "impersonate", "serviceaccounts", "default", lent)


def test_a_service_account_the_operator_may_not_impersonate_is_a_condition(
        controlplane: ControlPlane, tenants: Tenants, operator_factory: Callable[..., OperatorProcess]) -> None:
    """A ServiceAccount that exists but that deploy/'s RBAC does not let the operator act as: the run
    waits (ServiceAccountNotImpersonable, per the operator's SelfSubjectAccessReview) instead of
    failing every tool call with 403, and starts by itself once the documented grant is made."""
    cp, t, model = controlplane, tenants, tenants.model
    lent = _service_account(cp, t.own, "team-reader")
    _role_binding(cp, t.own, "team-reader", {"kind": "ServiceAccount", "name": lent, "namespace": t.own})
    op = operator_factory()
    marker = unique("not-impersonable")
    model.add(marker, _list_pods(t.own), text("ran once the operator could act as team-reader"))
    create_ok(cp, _investigation(t, "as-team-reader", marker, lent), t.own)

    def waiting() -> dict[str, Any] | None:
        obj = get(cp, "Investigation", "as-team-reader", t.own) or {}
        cond = condition(obj, "ServiceAccountReady")
        return obj if cond and cond["reason"] == "ServiceAccountNotImpersonable" else None

    obj = wait_for(waiting, timeout=30, what="ServiceAccountNotImpersonable" + op.diagnostics())
    assert obj["status"]["phase"] == "Pending", obj["status"]
    assert condition(obj, "Succeeded")["reason"] == "ServiceAccountNotImpersonable"  # type: ignore[index]
    message = condition(obj, "ServiceAccountReady")["message"]  # type: ignore[index]
    assert f"the operator may not impersonate ServiceAccount {t.own}/{lent}" in message, message
    assert f'add "{lent}" to resourceNames of the impersonate rule on serviceaccounts of the operator\'s role ' \
        "inquest-impersonator" in message, message
    st, events = cp.request("GET", f"/api/v1/namespaces/{t.own}/events")
    assert st == 200 and any(e["reason"] == "ServiceAccountNotImpersonable" and e["type"] == "Warning"
                             for e in events["items"]), events
    assert model.requests.get(marker, []) == []  # nothing was read, the model was never asked

    _allow_impersonation_in(cp, t.own, lent)  # what the message says to do, for this namespace only
    done = _wait_phase(cp, op, t.own, "as-team-reader", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert condition(done, "ServiceAccountReady")["reason"] == "ServiceAccountFound"  # type: ignore[index]
    (listed,) = model.result_of(marker, "list_resources")
    assert "forbidden" not in listed.lower(), listed
    assert not op.problems(), op.problems()  # the review was allowed to the operator: no 403 anywhere
    op.stop()


def test_a_missing_service_account_is_a_condition(controlplane: ControlPlane, tenants: Tenants,
                                                  operator_factory: Callable[..., OperatorProcess]) -> None:
    """No ServiceAccount, no run: Pending with ServiceAccountNotFound (never the operator's own rights);
    once it is created and bound, the run starts by itself."""
    cp, t, model = controlplane, tenants, tenants.model
    op = operator_factory()
    marker = unique("late-sa")
    model.add(marker, _list_pods(t.own), text("ran as the late ServiceAccount"))
    create_ok(cp, _investigation(t, "no-sa-yet", marker, None), t.own)  # the default: inquest-investigator

    def waiting() -> dict[str, Any] | None:
        obj = get(cp, "Investigation", "no-sa-yet", t.own) or {}
        cond = condition(obj, "ServiceAccountReady")
        return obj if cond and cond["reason"] == "ServiceAccountNotFound" else None

    obj = wait_for(waiting, timeout=30, what="ServiceAccountNotFound" + op.diagnostics())
    assert obj["status"]["phase"] == "Pending", obj["status"]
    message = condition(obj, "ServiceAccountReady")["message"]  # type: ignore[index]
    assert f"ServiceAccount {t.own}/inquest-investigator does not exist" in message, message
    assert f"kubectl create serviceaccount inquest-investigator -n {t.own}" in message, message
    assert condition(obj, "Succeeded")["reason"] == "ServiceAccountNotFound"  # type: ignore[index]
    st, events = cp.request("GET", f"/api/v1/namespaces/{t.own}/events")
    assert st == 200 and any(e["reason"] == "ServiceAccountNotFound" and e["type"] == "Warning"
                             for e in events["items"]), events
    assert model.requests.get(marker, []) == []  # the model was never asked: nothing was read

    # what the message says to do
    _service_account(cp, t.own, "inquest-investigator")
    _role_binding(cp, t.own, "inquest-investigator",
                  {"kind": "ServiceAccount", "name": "inquest-investigator", "namespace": t.own})
    done = _wait_phase(cp, op, t.own, "no-sa-yet", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert condition(done, "ServiceAccountReady")["reason"] == "ServiceAccountFound"  # type: ignore[index]
    (listed,) = model.result_of(marker, "list_resources")
    assert "forbidden" not in listed.lower(), listed

    # a name that never appears fails after limits.timeoutSeconds, with the same reason
    create_ok(cp, _investigation(t, "never", unique("never"), "does-not-exist", limits={"timeoutSeconds": 2}),
              t.own)
    failed = _wait_phase(cp, op, t.own, "never", "Failed", "Succeeded", timeout=30)
    cond = condition(failed, "Succeeded")
    assert cond and cond["status"] == "False" and cond["reason"] == "ServiceAccountNotFound", failed["status"]
    assert not op.problems(), op.problems()  # deploy/ lets the operator read ServiceAccounts: no 403
    op.stop()
