"""deploy/kustomize and deploy/Dockerfile: least-privilege RBAC, a locked-down Deployment, and an
image that runs what the Deployment asks for.

The kustomizations are rendered by deploy/kustomize/render.py (pure Python, only the features the
repository uses); when kubectl is on the PATH, its `kubectl kustomize` must produce the same objects.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from inquest.cli import _build_parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "kustomize" / "base"
OVERLAY = DEPLOY / "kustomize" / "overlays" / "local"
DOCKERFILE = DEPLOY / "Dockerfile"
OPERATOR_SA = ("inquest-system", "inquest-operator")
READ = {"get", "list", "watch"}
RBAC_KINDS = {"Role", "ClusterRole"}
BINDING_KINDS = {"RoleBinding", "ClusterRoleBinding"}


def _load_renderer() -> Any:
    spec = importlib.util.spec_from_file_location("kustomize_render", DEPLOY / "kustomize" / "render.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


render = _load_renderer()


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; Kubernetes' strict decoding refuses them."""


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {sorted(dupes)}", node.start_mark)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def load_all_strict(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(text, Loader=_UniqueKeyLoader) if d]


# --------------------------------------------------------------------------- RBAC helpers
# Shared with tests/unit/test_deploy_helm.py: both installs must grant the same, and no more.


def by_kind(manifests: Iterable[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] in kinds]


def one(manifests: Iterable[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def allows(rules: Iterable[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    """Whether the rules grant the verb on every object of the resource (rules limited by resourceNames do not)."""
    return any(group in r.get("apiGroups", []) and resource in r.get("resources", [])
               and verb in r.get("verbs", []) and not r.get("resourceNames") for r in rules)


def named(rules: Iterable[dict[str, Any]], group: str, resource: str, verb: str) -> set[str]:
    """The object names the rules grant the verb on through resourceNames."""
    return {n for r in rules if group in r.get("apiGroups", []) and resource in r.get("resources", [])
            and verb in r.get("verbs", []) for n in r.get("resourceNames") or []}


# The ServiceAccounts the operator may impersonate by default: the default investigator only.
DEFAULT_IMPERSONABLE = frozenset({"inquest-investigator"})


def rules_bound_to(manifests: list[dict[str, Any]], namespace: str, name: str) -> dict[str, list[dict[str, Any]]]:
    """Role name -> rules, for every (Cluster)Role bound to the ServiceAccount namespace/name."""
    roles = {(m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]): m
             for m in by_kind(manifests, *RBAC_KINDS)}
    bound: dict[str, list[dict[str, Any]]] = {}
    for binding in by_kind(manifests, *BINDING_KINDS):
        if {"kind": "ServiceAccount", "name": name, "namespace": namespace} not in binding["subjects"]:
            continue
        ref = binding["roleRef"]
        ns = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        role = roles.get((ref["kind"], ns, ref["name"]))
        assert role is not None, \
            f"{binding['metadata']['name']} binds a {ref['kind']} {ref['name']} that is not installed"
        key = f"{ref['kind']}/{ns or ''}/{ref['name']}"
        bound[key] = role.get("rules", [])
    return bound


def assert_no_wildcards(manifests: list[dict[str, Any]]) -> None:
    roles = by_kind(manifests, *RBAC_KINDS)
    assert roles, "no roles rendered"
    for role in roles:
        assert "aggregationRule" not in role, role["metadata"]["name"]
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                values = rule.get(field, [])
                assert not any("*" in v for v in values), f"{role['metadata']['name']}: wildcard in {field}: {rule}"
            assert "nonResourceURLs" not in rule, role["metadata"]["name"]
            assert rule.get("verbs") and rule.get("resources"), f"{role['metadata']['name']}: empty rule {rule}"
            assert not {"escalate", "bind"} & set(rule["verbs"]), f"{role['metadata']['name']}: {rule}"
            if "impersonate" in rule["verbs"]:
                assert rule.get("resourceNames") and rule["resources"] == ["serviceaccounts"], \
                    f"{role['metadata']['name']}: impersonate only named ServiceAccounts: {rule}"


def tool_reads() -> set[tuple[str, str]]:
    """(API group, resource) of everything the agent's read-only tools request."""
    from inquest.agent.kinds import KINDS

    return {("" if k.api == "v1" else k.api.split("/")[0], k.plural) for k in KINDS} | {("", "pods/log")}


def assert_investigator_is_read_only(rules: list[dict[str, Any]]) -> None:
    assert rules
    for rule in rules:
        assert set(rule["verbs"]) == READ, rule
        assert not any(r.startswith("secrets") for r in rule["resources"]), rule
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    needed = tool_reads()
    assert ("", "secrets") not in needed
    assert not needed - granted, f"the tools read {sorted(needed - granted)}: add them to the investigator role " \
        "(deploy/kustomize/base/rbac-investigator.yaml and deploy/helm/inquest/templates/investigator.yaml)"
    assert not granted - needed, f"the investigator role grants {sorted(granted - needed)}, which no tool reads"


# What the operator does with the API, and must be allowed to (Kopf, handlers, impersonation).
OPERATOR_NEEDS = [
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    ("", "namespaces", "list"),
    ("", "namespaces", "watch"),
    ("", "events", "create"),  # Kopf posts core v1 Events only, one POST each
    *[("inquest.dev", res, verb) for res in ("modelproviders", "investigations")
      for verb in ("get", "list", "watch", "patch", "update")],
    *[("inquest.dev", f"{res}/status", verb) for res in ("modelproviders", "investigations")
      for verb in ("get", "patch", "update")],
    ("inquest.dev", "investigations", "delete"),
    *[("", res, verb) for res in ("secrets", "configmaps") for verb in ("get", "list", "watch")],
    ("", "serviceaccounts", "get"),
    # impersonate on serviceaccounts: by resourceNames only (assert_operator_rights)
]
# What the operator itself must never be able to do.
OPERATOR_MUST_NOT = [
    ("", "serviceaccounts", "impersonate"),  # every ServiceAccount, kube-system's controllers included
    ("", "users", "impersonate"),
    ("", "groups", "impersonate"),
    ("", "secrets", "create"),
    ("", "secrets", "update"),
    ("", "secrets", "patch"),
    ("", "secrets", "delete"),
    ("", "configmaps", "update"),
    ("", "pods", "list"),  # tools read the cluster as the Investigation's ServiceAccount, not as the operator
    ("", "pods/log", "get"),
    ("", "pods/exec", "create"),
    ("inquest.dev", "modelproviders", "delete"),
    ("inquest.dev", "modelproviders", "create"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "create"),
    ("rbac.authorization.k8s.io", "clusterroles", "create"),
    ("", "events", "patch"),  # Kopf never patches Events
    ("events.k8s.io", "events", "create"),  # nor uses the events.k8s.io API
]


def assert_operator_rights(manifests: list[dict[str, Any]], namespace: str, name: str,
                           impersonable: Iterable[str] = DEFAULT_IMPERSONABLE) -> None:
    bound = rules_bound_to(manifests, namespace, name)
    everything = [r for rules in bound.values() for r in rules]
    missing = [need for need in OPERATOR_NEEDS if not allows(everything, *need)]
    assert not missing, f"the operator's ServiceAccount lacks {missing}"
    excess = [deny for deny in OPERATOR_MUST_NOT if allows(everything, *deny)]
    assert not excess, f"the operator's ServiceAccount may {excess}"
    assert named(everything, "", "serviceaccounts", "impersonate") == set(impersonable), \
        "the operator may impersonate exactly the investigator ServiceAccount names"
    for deny in ("users", "groups", "uids", "userextras/scopes"):
        assert not named(everything, "", deny, "impersonate"), f"the operator may impersonate some {deny}"
    assert not any("investigator" in role for role in bound), "the investigator role is bound to the operator"


def impersonator_rules(*names: str) -> list[dict[str, Any]]:
    """The impersonator role: get any ServiceAccount (to report a missing one), impersonate only these."""
    return [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"],
             "resourceNames": list(names)}]


def assert_locked_down(deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod.get("hostNetwork") is not True and pod.get("hostPID") is not True
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc.get("privileged") is not True
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) >= {"cpu", "memory"}, kind
    # a read-only root filesystem still needs a writable /tmp (tempfile, TLS bundles)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def liveness_url(args: list[str]) -> str:
    parsed = _build_parser().parse_args(args)
    assert parsed.command == "run"
    assert parsed.liveness, "the operator must serve Kopf's liveness endpoint"
    return parsed.liveness


def assert_probes_hit_the_liveness_endpoint(deployment: dict[str, Any]) -> None:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    url = urlsplit(liveness_url(container["args"]))
    assert url.hostname == "0.0.0.0", "the probe comes from the kubelet, not from localhost"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == url.path, probe
        port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
        assert port == url.port, probe


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


# --------------------------------------------------------------------------- the renderer itself


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render.render(BASE)


@pytest.fixture(scope="module")
def overlay() -> list[dict[str, Any]]:
    return render.render(OVERLAY)


def _kustomization(tmp_path: Path, body: str, files: dict[str, str] | None = None) -> Path:
    (tmp_path / "kustomization.yaml").write_text(body)
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    return tmp_path


DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ns}
spec:
  template:
    spec:
      containers:
        - {name: a, image: "registry.example:5000/team/app:1.0", args: [x, y]}
        - {name: b, image: "other:2"}
"""


def test_renderer_refuses_kustomize_features_it_does_not_implement(tmp_path):
    _kustomization(tmp_path, "resources: [d.yaml]\nnamePrefix: x-\n", {"d.yaml": DEPLOYMENT})
    with pytest.raises(render.RenderError, match="namePrefix"):
        render.render(tmp_path)


def test_renderer_images_and_json_patches(tmp_path):
    _kustomization(tmp_path, """resources: [d.yaml]
images:
  - {name: registry.example:5000/team/app, newTag: "2.0"}
  - {name: other, newName: mirror/other, digest: "sha256:abc"}
patches:
  - target: {kind: Deployment, name: web}
    patch: |-
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: z}
      - {op: add, path: /spec/template/spec/containers/0/args/0, value: first}
      - {op: replace, path: /spec/template/spec/containers/1/name, value: c}
      - {op: remove, path: /metadata/namespace}
""", {"d.yaml": DEPLOYMENT})
    (dep,) = render.render(tmp_path)
    a, c = dep["spec"]["template"]["spec"]["containers"]
    assert a["image"] == "registry.example:5000/team/app:2.0"
    assert a["args"] == ["first", "x", "y", "z"]
    assert c == {"name": "c", "image": "mirror/other@sha256:abc"}
    assert "namespace" not in dep["metadata"]


def test_renderer_refuses_patches_that_match_nothing_or_miss_a_field(tmp_path):
    _kustomization(tmp_path, """resources: [d.yaml]
patches:
  - target: {kind: Deployment, name: nope}
    patch: "[{op: remove, path: /spec}]"
""", {"d.yaml": DEPLOYMENT})
    with pytest.raises(render.RenderError, match="matches nothing"):
        render.render(tmp_path)
    _kustomization(tmp_path, """resources: [d.yaml]
patches:
  - target: {kind: Deployment}
    patch: "[{op: replace, path: /spec/replicas, value: 2}]"
""")
    with pytest.raises(render.RenderError, match="no such field"):
        render.render(tmp_path)


def test_renderer_refuses_duplicates_and_missing_resources(tmp_path):
    _kustomization(tmp_path, "resources: [d.yaml, d.yaml]\n", {"d.yaml": DEPLOYMENT})
    with pytest.raises(render.RenderError, match="twice"):
        render.render(tmp_path)
    _kustomization(tmp_path, "resources: [missing.yaml]\n")
    with pytest.raises(render.RenderError, match="does not exist"):
        render.render(tmp_path)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed: pure-Python rendering only")
@pytest.mark.parametrize("directory", [BASE, OVERLAY], ids=["base", "overlay-local"])
def test_python_rendering_matches_kubectl_kustomize(directory):
    out = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    theirs = {render.key(m): m for m in load_all_strict(out)}
    mine = {render.key(m): m for m in render.render(directory)}
    assert mine.keys() == theirs.keys()
    for key in mine:
        assert mine[key] == theirs[key], key


# --------------------------------------------------------------------------- the base


def test_every_file_in_the_base_is_listed_and_parses_strictly():
    listed = set(yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    for name in on_disk:
        for doc in load_all_strict((BASE / name).read_text()):
            assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "inquest", name


def test_base_objects(base):
    kinds = sorted((m["kind"], m["metadata"]["name"]) for m in base)
    assert kinds == sorted([
        ("Namespace", "inquest-system"),
        ("ServiceAccount", "inquest-operator"),
        ("Deployment", "inquest-operator"),
        *[(k, f"inquest-{p}") for p in ("framework", "operator", "impersonator") for k in
          ("ClusterRole", "ClusterRoleBinding")],
        ("ClusterRole", "inquest-investigator"),
        ("ClusterRole", "inquest-view"),
        ("ClusterRole", "inquest-edit"),
    ])
    for m in base:
        if m["kind"] in ("ServiceAccount", "Deployment"):
            assert m["metadata"]["namespace"] == "inquest-system"
        assert m["apiVersion"] in ("v1", "apps/v1", "rbac.authorization.k8s.io/v1")


def test_rbac_has_no_wildcards_or_escalation(base, overlay):
    assert_no_wildcards(base)
    assert_no_wildcards(overlay)


def test_roles_have_one_purpose_each(base):
    framework = one(base, "ClusterRole", "inquest-framework")["rules"]
    assert {g for r in framework for g in r["apiGroups"]} == {"apiextensions.k8s.io", ""}
    assert {res for r in framework for res in r["resources"]} == {"customresourcedefinitions", "namespaces", "events"}
    assert [r["verbs"] for r in framework if "events" in r["resources"]] == [["create"]]
    operator = one(base, "ClusterRole", "inquest-operator")["rules"]
    assert {res for r in operator for res in r["resources"]} == {
        "modelproviders", "investigations", "modelproviders/status", "investigations/status", "secrets", "configmaps"}
    impersonator = one(base, "ClusterRole", "inquest-impersonator")["rules"]
    assert impersonator == impersonator_rules(*DEFAULT_IMPERSONABLE)


def test_operator_service_account_has_exactly_what_it_needs(base):
    assert_operator_rights(base, *OPERATOR_SA)
    deployment = one(base, "Deployment", "inquest-operator")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == OPERATOR_SA[1]
    one(base, "ServiceAccount", OPERATOR_SA[1])


def test_the_rights_check_catches_a_missing_and_an_excess_grant(base):
    """assert_operator_rights must fail on a role that lacks one verb or has one verb too many."""
    import copy
    lacking = copy.deepcopy(base)
    for rule in one(lacking, "ClusterRole", "inquest-operator")["rules"]:
        if "secrets" in rule["resources"]:
            rule["verbs"] = ["get", "list"]
    with pytest.raises(AssertionError, match="lacks"):
        assert_operator_rights(lacking, *OPERATOR_SA)
    excess = copy.deepcopy(base)
    one(excess, "ClusterRole", "inquest-impersonator")["rules"].append(
        {"apiGroups": [""], "resources": ["users", "groups"], "verbs": ["impersonate"]})
    with pytest.raises(AssertionError, match="may"):
        assert_operator_rights(excess, *OPERATOR_SA)
    # impersonate without resourceNames: every ServiceAccount of the cluster
    unlimited = copy.deepcopy(base)
    del one(unlimited, "ClusterRole", "inquest-impersonator")["rules"][1]["resourceNames"]
    with pytest.raises(AssertionError, match="may"):
        assert_operator_rights(unlimited, *OPERATOR_SA)
    # one name too many
    wider = copy.deepcopy(base)
    one(wider, "ClusterRole", "inquest-impersonator")["rules"][1]["resourceNames"].append("replicaset-controller")
    with pytest.raises(AssertionError, match="exactly the investigator"):
        assert_operator_rights(wider, *OPERATOR_SA)


def test_investigator_role_is_read_only_and_never_secrets(base):
    role = one(base, "ClusterRole", "inquest-investigator")
    assert_investigator_is_read_only(role["rules"])
    assert not [b for b in by_kind(base, *BINDING_KINDS) if b["roleRef"]["name"] == "inquest-investigator"], \
        "the base binds the investigator role to nobody: Investigations run as their own ServiceAccount"


def test_user_roles_aggregate_and_view_cannot_write(base):
    view = one(base, "ClusterRole", "inquest-view")
    edit = one(base, "ClusterRole", "inquest-edit")
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert set(view["rules"][0]["verbs"]) == READ
    assert "rbac.authorization.k8s.io/aggregate-to-view" not in edit["metadata"]["labels"], \
        "viewers must not create ModelProviders (they would choose which Secret goes to which endpoint)"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"


def test_deployment_is_locked_down(base):
    deployment = one(base, "Deployment", "inquest-operator")
    assert_locked_down(deployment)
    assert_probes_hit_the_liveness_endpoint(deployment)


def test_deployment_runs_one_standalone_operator_cluster_wide(base):
    deployment = one(base, "Deployment", "inquest-operator")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}, "never two standalone operators at once"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = _build_parser().parse_args(container["args"])
    assert args.all_namespaces and args.peering is None
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_deployment_image_is_the_project_version(base):
    (container,) = one(base, "Deployment", "inquest-operator")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"inquest:{project_version()}"


def test_deployment_env_values_are_valid(base):
    (container,) = one(base, "Deployment", "inquest-operator")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert int(env["INQUEST_WATCH_TIMEOUT"]) > 0
    assert float(env["INQUEST_REQUEST_TIMEOUT"]) > 0
    assert all(isinstance(v, str) for v in env.values()), "env values must be strings"


# --------------------------------------------------------------------------- the overlay


def test_local_overlay(overlay, base):
    deployment = one(overlay, "Deployment", "inquest-operator")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "inquest:dev"
    assert container["args"][-1] == "--verbose"
    assert _build_parser().parse_args(container["args"]).verbose
    assert_locked_down(deployment)
    sa = one(overlay, "ServiceAccount", "inquest-investigator")
    assert sa["metadata"]["namespace"] == "default"
    bound = rules_bound_to(overlay, "default", "inquest-investigator")
    assert list(bound) == ["ClusterRole//inquest-investigator"]
    assert_investigator_is_read_only(next(iter(bound.values())))
    assert_operator_rights(overlay, *OPERATOR_SA)
    # the base is untouched by rendering the overlay
    (base_container,) = one(base, "Deployment", "inquest-operator")["spec"]["template"]["spec"]["containers"]
    assert "--verbose" not in base_container["args"]


def test_overlay_uses_only_what_the_python_renderer_implements():
    spec = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    assert set(spec) <= render.SUPPORTED


# --------------------------------------------------------------------------- the Dockerfile


def _dockerfile() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]


def test_dockerfile_is_slim_non_root_and_runs_the_operator(base):
    instructions = _dockerfile()
    args = {v.split("=", 1)[0]: v.split("=", 1)[1] for k, v in instructions if k == "ARG" and "=" in v}
    froms = [v.replace("${PYTHON_IMAGE}", args.get("PYTHON_IMAGE", "")) for k, v in instructions if k == "FROM"]
    assert froms and all(re.match(r"python:3\.1[1-9]-slim", f) for f in froms), froms
    final = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM"):]
    runs = " ".join(v for k, v in final if k == "RUN")
    assert re.search(r"pip install \S*\.whl", runs), "the final stage installs the wheel"
    user = [v for k, v in final if k == "USER"]
    assert user and user[-1].split(":")[0].isdigit(), "USER must be numeric so runAsNonRoot can check it"
    uid = int(user[-1].split(":")[0])
    assert uid != 0
    pod = one(base, "Deployment", "inquest-operator")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == uid
    entrypoint = yaml.safe_load([v for k, v in final if k == "ENTRYPOINT"][-1])
    cmd = yaml.safe_load([v for k, v in final if k == "CMD"][-1])
    assert entrypoint == ["inquest"]
    assert liveness_url(cmd) == liveness_url(pod["containers"][0]["args"])
    exposed = [v for k, v in final if k == "EXPOSE"]
    assert exposed == [str(urlsplit(liveness_url(cmd)).port)]


def test_dockerfile_copies_what_the_wheel_needs_and_the_ignore_file_keeps_it():
    copies = [v.split() for k, v in _dockerfile() if k == "COPY" and not v.startswith("--from")]
    sources = {s.rstrip("/") for c in copies for s in c[:-1]}
    assert sources == {"pyproject.toml", "README.md", "operator"}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["readme"] == "README.md"
    assert project["tool"]["setuptools"]["packages"]["find"]["where"] == ["operator"]
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert ignore[ignore.index("**") + 1:] and all(f"!{s}" in ignore or f"!{s}/" in ignore for s in sources)
    assert "inquest" in project["project"]["scripts"]
