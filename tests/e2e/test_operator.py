"""The operator as deployed: the Deployment's ``inquest run ...`` args and env in a subprocess,
authenticated as deploy/kustomize/base's ServiceAccount with only the RBAC that deploy/ grants it.

The watch tests run on a control plane of their own that writes an audit log of every watch request
(the URL with its ``timeoutSeconds`` and ``resourceVersion``), one of them with the watch cache off so
that compacting etcd makes the operator's resourceVersion expire (410 Gone).
"""

from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import OPERATOR_ENV, OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, Deployed
from tests.e2e.controlplane import ControlPlane
from tests.e2e.harness import (
    CRD_DIR,
    GROUP,
    VERSION,
    apply_crd,
    bind_investigator,
    condition,
    create_ok,
    get,
    unique,
    wait_for,
)
from tests.e2e.processes import OperatorProcess, shipped_operator

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

    # the endpoint behind the Deployment's liveness and readiness probes answers while it runs...
    assert op.liveness_url is not None and op.liveness_url.startswith("http://127.0.0.1:")
    assert op.health() == 200, "GET " + op.liveness_url + op.diagnostics()
    assert not op.problems(), op.problems()
    assert op.stop() == 0, "the operator did not exit cleanly on SIGINT" + op.diagnostics()
    # ...and it was the operator's: nobody answers once it stopped
    assert op.health(timeout=2) is None


def test_operator_runs_what_the_deployment_ships(tmp_path: Path) -> None:
    """The e2e operator's command line is the Deployment's args (liveness moved to loopback) plus
    --verbose and --kubeconfig; its environment holds the Deployment's env."""
    shipped = shipped_operator()
    op = OperatorProcess(tmp_path / "kubeconfig", tmp_path / "op.log", env={"INQUEST_WATCH_TIMEOUT": "1"})
    op.liveness_url = "http://127.0.0.1:1234/healthz"
    command = op.command()
    assert command[3:3 + len(shipped.argv)] == list(shipped.argv_with_liveness(op.liveness_url)), command
    assert command[3 + len(shipped.argv):] == ["--verbose", "--kubeconfig", str(tmp_path / "kubeconfig")]
    assert shipped.env and all(op.env[k] == v for k, v in shipped.env.items() if k != "INQUEST_WATCH_TIMEOUT")
    assert op.env["INQUEST_WATCH_TIMEOUT"] == "1"  # a test's setting wins over the shipped one


def test_deployment_probes_call_the_liveness_endpoint() -> None:
    """The kubelet's liveness and readiness probes GET the path and port that ``--liveness`` serves,
    on an address the kubelet can reach (not loopback)."""
    shipped = shipped_operator()
    assert shipped.liveness, f"the Deployment's args serve no --liveness endpoint: {shipped.argv}"
    url = urllib.parse.urlsplit(shipped.liveness)
    assert url.scheme == "http" and url.port is not None, shipped.liveness
    assert url.hostname not in ("127.0.0.1", "localhost", "::1"), "the kubelet probes the pod's IP"
    ports = {p.get("name"): p["containerPort"] for p in shipped.container.get("ports") or []}
    for kind in ("livenessProbe", "readinessProbe"):
        probe = shipped.container.get(kind) or {}
        get_ = probe.get("httpGet")
        assert get_, f"{kind} is not an httpGet probe: {probe}"
        port = get_["port"]
        port = ports.get(port) if isinstance(port, str) else port
        assert port == url.port, f"{kind} calls port {get_['port']} ({port}), --liveness serves {url.port}"
        assert get_.get("path") == url.path, f"{kind} calls {get_.get('path')}, --liveness serves {url.path}"
        assert get_.get("scheme", "HTTP") == "HTTP", probe


def test_deploy_roles_are_least_privilege(controlplane: ControlPlane, deployed: Deployed, namespace: str) -> None:
    """What deploy/ grants the operator is enough (test above) and not more (here), per the API server."""

    def allowed(user: str, verb: str, resource: str, group: str = "", ns: str | None = namespace,
                subresource: str = "", name: str = "") -> bool:
        attributes: dict[str, Any] = {"verb": verb, "resource": resource, "group": group}
        if ns:
            attributes["namespace"] = ns
        if name:
            attributes["name"] = name
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
    assert allowed(op, "impersonate", "serviceaccounts", name="inquest-investigator")
    # not needed, not granted
    assert not allowed(op, "impersonate", "serviceaccounts")
    assert not allowed(op, "impersonate", "serviceaccounts", ns="kube-system", name="replicaset-controller")
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



# --------------------------------------------------------------------------- watches on an audited server

AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: Metadata
    verbs: [watch]
    resources: [{group: inquest.dev}]
  - level: None
"""


@contextmanager
def audited_controlplane(directory: Path, *extra_args: str) -> Iterator[tuple[ControlPlane, str, Path]]:
    """A control plane of its own (about 5 s) that audits every finished watch of our resources, with
    our CRDs and a namespace; (control plane, namespace, audit log)."""
    directory.mkdir(parents=True, exist_ok=True)
    policy = directory / "audit-policy.yaml"
    policy.write_text(AUDIT_POLICY)
    cp = ControlPlane(extra_apiserver_args=(f"--audit-policy-file={policy}",
                                            f"--audit-log-path={directory / 'audit.log'}",
                                            "--audit-log-mode=blocking", *extra_args))
    with cp:
        for path in sorted(CRD_DIR.glob("*.yaml")):
            apply_crd(cp, path)
        ns = unique("watch")
        cp.create_namespace(ns)
        yield cp, ns, directory / "audit.log"


def watch_requests(audit_log: Path, resource: str, user: str = "admin") -> list[dict[str, list[str]]]:
    """Query parameters of every finished watch of ``resource`` by ``user``, in the order they ended."""
    path = audit_log
    found = []
    for line in path.read_text().splitlines() if path.exists() else []:
        event = json.loads(line)
        if (event.get("verb") == "watch" and event.get("stage") == "ResponseComplete"
                and (event.get("objectRef") or {}).get("resource") == resource
                and (event.get("user") or {}).get("username") == user):
            found.append(urllib.parse.parse_qs(urllib.parse.urlsplit(event["requestURI"]).query))
    return found


def _probed(cp: ControlPlane, namespace: str, name: str, generation: int = 1) -> bool:
    cond = condition(get(cp, "ModelProvider", name, namespace), "EndpointReachable")
    return bool(cond and cond["status"] == "False" and cond["observedGeneration"] == generation)


def _operator(cp: ControlPlane, tmp_path: Path, env: dict[str, str]) -> OperatorProcess:
    assert cp.kubeconfig_path is not None
    return OperatorProcess(cp.kubeconfig_path, tmp_path / "operator.log", env={**OPERATOR_ENV, **env}).start()


def test_watches_resume_across_server_timeouts(tmp_path: Path) -> None:
    """The API server ends every watch after 1 s (INQUEST_WATCH_TIMEOUT): Kopf resumes each from the
    last resourceVersion it saw, and creations and spec edits made later still reach the handlers."""
    with audited_controlplane(tmp_path / "cp") as (cp, namespace, audit):
        op = _operator(cp, tmp_path, {"INQUEST_WATCH_TIMEOUT": "1"})
        try:
            first = unique("first")
            created = create_ok(cp, _refused_provider(first), namespace)
            wait_for(lambda: _probed(cp, namespace, first), timeout=30, what=f"{first} probed" + op.diagnostics())

            # every watch asked the server to end it after 1 s, and the next one resumed where the
            # last ended: from a resourceVersion, at or past the provider's creation once it was seen
            created_rv = int(created["metadata"]["resourceVersion"])
            def resumed_past_creation() -> list[dict[str, list[str]]]:
                w = watch_requests(audit, "modelproviders")
                return w if any(int(q.get("resourceVersion", ["0"])[0]) >= created_rv for q in w[1:]) else []

            watches = wait_for(resumed_past_creation, timeout=15, what="a watch of modelproviders resumed after "
                               "the provider's creation" + op.diagnostics())
            assert len(watches) >= 2, watches
            assert all(q.get("timeoutSeconds") == ["1"] for q in watches), watches
            assert all(q.get("resourceVersion") for q in watches[1:]), watches
            versions = [int(q["resourceVersion"][0]) for q in watches[1:]]
            assert versions == sorted(versions), f"a watch resumed from an older resourceVersion: {versions}"

            # created after those watches ended: only a resumed watch can bring it to the handlers
            second = unique("second")
            second_rv = int(create_ok(cp, _refused_provider(second), namespace)["metadata"]["resourceVersion"])
            wait_for(lambda: _probed(cp, namespace, second), timeout=30,
                     what=f"{second} probed after resumed watches" + op.diagnostics())
            wait_for(lambda: any(int(q["resourceVersion"][0]) >= second_rv
                                 for q in watch_requests(audit, "modelproviders")[1:]),
                     timeout=15, what=f"a watch resumed past {second}'s creation" + op.diagnostics())

            st, body = cp.request(
                "PATCH", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/modelproviders/{first}",
                {"spec": {"baseURL": "http://127.0.0.1:7/v1"}}, content_type="application/merge-patch+json")
            assert st == 200 and body["metadata"]["generation"] == 2, body
            wait_for(lambda: _probed(cp, namespace, first, 2), timeout=30,
                     what=f"{first} re-validated after a spec edit" + op.diagnostics())
            mp = get(cp, "ModelProvider", first, namespace)
            assert mp is not None and mp["status"]["endpoint"] == "http://127.0.0.1:7/v1/chat/completions"
            assert watch_requests(audit, "investigations"), "the investigations watch never ended and resumed"
            assert not op.problems(), op.problems()
        finally:
            op.stop()


def _etcd(cp: ControlPlane, call: str, body: dict[str, Any]) -> dict[str, Any]:
    """etcd's v3 JSON gateway (no etcdctl needed)."""
    assert cp.etcd_url is not None
    req = urllib.request.Request(f"{cp.etcd_url}/v3/{call}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return dict(json.load(resp))


def test_watch_restarts_after_its_resource_version_expires(tmp_path: Path) -> None:
    """etcd compacted past the resourceVersion the operator resumes from: the server answers its next
    watch with 410 Gone, Kopf lists again and watches on, and a provider created afterwards is handled.

    The watch cache is off on this server, so watches are served by etcd and its compaction shows
    (with the cache, 410 comes once the cache's window has moved on, which takes far longer)."""
    with audited_controlplane(tmp_path / "cp", "--watch-cache=false") as (cp, namespace, audit):
        op = _operator(cp, tmp_path, {"INQUEST_WATCH_TIMEOUT": "1"})
        try:
            # no ModelProvider yet: the operator resumes from the resourceVersion of its first list
            listed = wait_for(lambda: watch_requests(audit, "modelproviders"), timeout=15,
                              what="a finished watch of modelproviders" + op.diagnostics())
            resumed_from = int(listed[0]["resourceVersion"][0])
            before = len(op.output(op.starts))
            for i in range(2):  # other writes move etcd's revision past it
                cm = create_ok(cp, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"bump-{i}"},
                                    "data": {}}, namespace)
            revision = int(cm["metadata"]["resourceVersion"])
            assert revision >= resumed_from + 2, (resumed_from, revision)
            _etcd(cp, "kv/compaction", {"revision": revision, "physical": True})
            assert int(_etcd(cp, "kv/range", {"key": base64.b64encode(b"/").decode()})["header"]["revision"]) \
                >= revision

            marker = "Restarting the watch-stream for modelproviders.v1alpha1.inquest.dev"  # Kopf, on 410
            wait_for(lambda: marker in op.output(op.starts)[before:], timeout=15,
                     what="Kopf to restart the modelproviders watch after 410 Gone" + op.diagnostics())

            name = unique("after-gone")
            create_ok(cp, _refused_provider(name), namespace)
            wait_for(lambda: _probed(cp, namespace, name), timeout=30,
                     what=f"{name} probed after the watch restarted" + op.diagnostics())
            # and it watches on from its new list, past the compaction
            wait_for(lambda: any(int(q.get("resourceVersion", ["0"])[0]) >= revision
                                 for q in watch_requests(audit, "modelproviders")),
                     timeout=15, what=f"a watch of modelproviders from past the compaction at {revision}"
                     + op.diagnostics())
            assert not op.problems(), op.problems()
        finally:
            op.stop()
