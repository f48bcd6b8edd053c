"""deploy/helm/inquest: values, schema and templates.

There is no helm binary on this machine. The templates are rendered by deploy/helm/render/render.go:
Helm's own engine (Go text/template + Sprig v3 + Helm's include/tpl/required/toYaml/fromYaml and
value merging), built with Debian's golang-go, golang-github-masterminds-sprig-dev and
golang-github-ghodss-yaml-dev. Without those packages the rendering tests are skipped (the static
tests still run); with a helm binary on the PATH, `helm lint` and `helm template` are checked too.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from inquest.api import ModelProvider
from inquest.cli import _build_parser
from tests.unit.test_crds import schema_of
from tests.unit.test_deploy import (
    BASE,
    DEFAULT_IMPERSONABLE,
    OPERATOR_NEEDS,
    allows,
    assert_investigator_is_read_only,
    assert_locked_down,
    assert_no_wildcards,
    assert_operator_rights,
    assert_probes_hit_the_liveness_endpoint,
    by_kind,
    impersonator_rules,
    load_all_strict,
    named,
    one,
    project_version,
    render,
    rules_bound_to,
)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "inquest"
RENDERER = ROOT / "deploy" / "helm" / "render" / "render.go"
GOCODE = Path("/usr/share/gocode/src")
NS = "inquest-system"


def values_schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def default_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def validate_values(values: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(values_schema()).validate(values)


# --------------------------------------------------------------------------- static checks (always run)


def test_chart_metadata_matches_the_project():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "inquest" and chart["type"] == "application"
    assert chart["appVersion"] == project_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
    assert chart["kubeVersion"].startswith(">=1.20")


def test_chart_crds_are_the_generated_crds():
    chart_crds = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    repo_crds = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    assert chart_crds.keys() == repo_crds.keys()
    for name, text in repo_crds.items():
        assert chart_crds[name] == text, (
            f"deploy/helm/inquest/crds/{name} is stale: "
            "cd operator && python -m inquest.api.crd --write ../deploy/helm/inquest/crds")


def test_values_schema_is_valid_and_accepts_the_defaults():
    jsonschema.Draft7Validator.check_schema(values_schema())
    validate_values(default_values())


HOLMES_STYLE = {
    "additionalEnvVars": [
        {"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llm-key", "key": "api-key"}}},
        {"name": "HTTPS_PROXY", "value": "http://proxy.internal:3128"},
    ],
    "certificate": "TFMwdExTMUNSVWRKVGlCRFJWSlVTVVpKUTBGVVJTMHRMUzB0Q2c9PQ==",
    "modelList": {
        "gpt-4o": {"api_key": "{{ env.OPENAI_API_KEY }}", "model": "openai/gpt-4o",
                   "api_base": "https://llm-gateway.example.com/v1", "temperature": 0},
        "local-llama": {"model": "openai/qwen2.5-7b-instruct", "api_base": "http://llama-server.llm.svc:8080/v1",
                        "api_key_secret": {"name": "llm-key", "key": "api-key"}, "context_window": 8192,
                        "max_output_tokens": 1024, "default": True, "certificate": "b3duLWNh",
                        "allowed_namespaces": ["shop"],
                        "spec": {"pricing": {"inputPerMillionTokens": 0.1}, "requestTimeoutSeconds": 120}},
    },
    "investigator": {"namespaces": ["shop", "payments"]},
}


def test_schema_accepts_holmesgpt_style_values():
    validate_values(HOLMES_STYLE)


@pytest.mark.parametrize("entry, why", [
    ({"model": "m", "api_base": "http://h/v1", "api_key": "sk-plain-text-key"}, "literal key"),
    ({"model": "m", "api_base": "http://h/v1", "api_key": "{{ env.K }}",
      "api_key_secret": {"name": "s", "key": "k"}}, "two key sources"),
    ({"model": "m", "api_base": "http://h/v1", "api_version": "2024-02-01"}, "unknown field"),
    ({"model": "m"}, "no api_base"),
    ({"model": "m", "api_base": "ftp://h"}, "not http"),
    ({"model": "m", "api_base": "http://h/v1", "temperature": 3}, "temperature out of range"),
])
def test_schema_refuses_bad_model_entries(entry, why):
    with pytest.raises(jsonschema.ValidationError):
        validate_values({"modelList": {"p": entry}})


def test_schema_refuses_unknown_top_level_values():
    with pytest.raises(jsonschema.ValidationError):
        validate_values({"replicaCount": 2})


def _template_text() -> str:
    return "\n".join(p.read_text() for p in sorted((CHART / "templates").iterdir()))


def test_every_values_reference_exists_and_every_value_is_used():
    text = _template_text()
    refs = set(re.findall(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text))
    values = default_values()
    for ref in refs:
        node: Any = values
        for part in ref.strip(".").split("."):
            assert isinstance(node, dict) and part in node, f".Values{ref} is not in values.yaml"
            node = node[part]
    used_top = {ref.strip(".").split(".")[0] for ref in refs}
    assert set(values) <= used_top, f"values never used by a template: {set(values) - used_top}"
    assert set(values_schema()["properties"]) - {"global"} == set(values)


def test_template_actions_are_balanced():
    for path in (CHART / "templates").iterdir():
        text = path.read_text()
        assert text.count("{{") == text.count("}}"), path.name
        opened = len(re.findall(r"{{-?\s*(?:if|range|with|define)\b", text))
        closed = len(re.findall(r"{{-?\s*end\s*-?}}", text))
        assert opened == closed, f"{path.name}: {opened} blocks opened, {closed} closed"


# --------------------------------------------------------------------------- rendering


def _build_renderer(workdir: Path) -> Path | None:
    go = shutil.which("go")
    if go is None or not (GOCODE / "github.com/Masterminds/sprig").is_dir() \
            or not (GOCODE / "github.com/ghodss/yaml").is_dir():
        return None
    gopath = workdir / "gopath"
    src = gopath / "src" / "inquestrender"
    src.mkdir(parents=True)
    shutil.copy(RENDERER, src / "render.go")
    # Debian ships Sprig v3 and semver v3 without their /v3 import path: link them in (GOPATH mode).
    for module in ("sprig", "semver"):
        link = gopath / "src" / "github.com" / "Masterminds" / module / "v3"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(GOCODE / "github.com" / "Masterminds" / module)
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": f"{gopath}{os.pathsep}{GOCODE.parent}",
           "GOCACHE": str(workdir / "gocache"), "CGO_ENABLED": "0", "GOFLAGS": ""}
    binary = workdir / "render"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=src, env=env, check=True, capture_output=True,
                   timeout=600)
    return binary


@pytest.fixture(scope="session")
def renderer(tmp_path_factory) -> Path:
    binary = _build_renderer(tmp_path_factory.mktemp("helm-render"))
    if binary is None:
        pytest.skip("no helm renderer: install golang-go, golang-github-masterminds-sprig-dev and "
                    "golang-github-ghodss-yaml-dev")
    return binary


class RenderFailed(Exception):
    pass


def helm_template(renderer: Path, tmp_path: Path, values: dict[str, Any] | None = None, *,
                  name: str = "inquest", namespace: str = NS, notes: bool = False) -> str:
    args = [str(renderer), "-chart", str(CHART), "-name", name, "-namespace", namespace]
    if values is not None:
        validate_values(values)  # what helm does before rendering
        path = tmp_path / f"values-{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(yaml.safe_dump(values))
        args += ["-f", str(path)]
    if notes:
        args.append("-notes")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if proc.returncode:
        raise RenderFailed(proc.stderr)
    return proc.stdout


def manifests(text: str) -> list[dict[str, Any]]:
    return load_all_strict(text)


def test_renderer_reports_template_errors(renderer, tmp_path):
    """The renderer is not a pass-through: a broken template is an error (checked on a copy)."""
    broken = tmp_path / "chart"
    shutil.copytree(CHART, broken)
    (broken / "templates" / "deployment.yaml").write_text("{{ .Values.image.nope.deeper }}\n")
    proc = subprocess.run([str(renderer), "-chart", str(broken)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "nil pointer" in proc.stderr


def test_default_render_has_the_same_objects_and_rights_as_the_kustomize_base(renderer, tmp_path):
    helm = manifests(helm_template(renderer, tmp_path))
    kustomize = [m for m in render.render(BASE) if m["kind"] != "Namespace"]  # helm --create-namespace
    assert sorted((m["kind"], m["metadata"]["name"]) for m in helm) == \
        sorted((m["kind"], m["metadata"]["name"]) for m in kustomize)
    for role in by_kind(kustomize, "ClusterRole"):
        theirs = one(helm, "ClusterRole", role["metadata"]["name"])
        assert theirs["rules"] == role["rules"], role["metadata"]["name"]
        for label, value in role["metadata"]["labels"].items():
            if label.startswith("rbac.authorization.k8s.io/"):
                assert theirs["metadata"]["labels"][label] == value
    k_dep, h_dep = one(kustomize, "Deployment", "inquest-operator"), one(helm, "Deployment", "inquest-operator")
    (k_c,), (h_c,) = k_dep["spec"]["template"]["spec"]["containers"], h_dep["spec"]["template"]["spec"]["containers"]
    for field in ("args", "env", "ports", "livenessProbe", "readinessProbe", "resources", "securityContext",
                  "volumeMounts", "image"):
        assert h_c[field] == k_c[field], field
    for field in ("securityContext", "volumes", "serviceAccountName", "nodeSelector"):
        assert h_dep["spec"]["template"]["spec"][field] == k_dep["spec"]["template"]["spec"][field], field
    assert h_dep["spec"]["strategy"] == k_dep["spec"]["strategy"] and h_dep["spec"]["replicas"] == 1


IMPERSONATOR_RULES = impersonator_rules(*DEFAULT_IMPERSONABLE)


def test_default_render_is_least_privilege_and_locked_down(renderer, tmp_path):
    objs = manifests(helm_template(renderer, tmp_path))
    assert_no_wildcards(objs)
    assert_operator_rights(objs, NS, "inquest-operator")
    assert_investigator_is_read_only(one(objs, "ClusterRole", "inquest-investigator")["rules"])
    # Investigations: the operator checks their ServiceAccount exists (get) and acts as it (impersonate),
    # nothing more: no users, no groups, and only the investigator ServiceAccount's name
    assert one(objs, "ClusterRole", "inquest-impersonator")["rules"] == IMPERSONATOR_RULES
    deployment = one(objs, "Deployment", "inquest-operator")
    assert_locked_down(deployment)
    assert_probes_hit_the_liveness_endpoint(deployment)
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert not by_kind(objs, "ModelProvider")


def test_release_name_prefixes_every_cluster_scoped_name(renderer, tmp_path):
    objs = manifests(helm_template(renderer, tmp_path, name="ops", namespace="tools"))
    names = {m["metadata"]["name"] for m in by_kind(objs, "ClusterRole", "ClusterRoleBinding")}
    assert names and all(n.startswith("ops-inquest-") for n in names)
    assert_operator_rights(objs, "tools", "ops-inquest-operator")


def test_model_list_becomes_valid_model_providers(renderer, tmp_path):
    objs = manifests(helm_template(renderer, tmp_path, HOLMES_STYLE))
    providers = {m["metadata"]["name"]: m for m in by_kind(objs, "ModelProvider")}
    assert set(providers) == {"gpt-4o", "local-llama"}
    for mp in providers.values():
        jsonschema.Draft4Validator(schema_of("ModelProvider")).validate(mp)
        ModelProvider.model_validate(mp)
        assert mp["metadata"]["namespace"] == NS
    gpt, llama = providers["gpt-4o"], providers["local-llama"]
    assert gpt["spec"] == {
        "baseURL": "https://llm-gateway.example.com/v1", "model": "openai/gpt-4o",
        "apiKeySecretRef": {"name": "llm-key", "key": "api-key"},  # resolved through additionalEnvVars
        "parameters": {"temperature": 0},
        "tls": {"caBundle": HOLMES_STYLE["certificate"]},  # the global certificate
    }
    assert "inquest.dev/default" not in gpt["metadata"]["labels"]
    assert llama["metadata"]["labels"]["inquest.dev/default"] == "true"
    assert llama["spec"]["tls"] == {"caBundle": "b3duLWNh"}  # its own certificate wins
    assert llama["spec"]["parameters"] == {"contextWindow": 8192, "maxOutputTokens": 1024}
    assert llama["spec"]["allowedNamespaces"] == ["shop"]
    assert llama["spec"]["pricing"] == {"inputPerMillionTokens": 0.1}
    assert llama["spec"]["requestTimeoutSeconds"] == 120
    env = one(objs, "Deployment", "inquest-operator")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert HOLMES_STYLE["additionalEnvVars"][1] in env  # the proxy reaches the operator
    # the key's entry only became gpt-4o's apiKeySecretRef: it stays out of the operator's environment
    assert "OPENAI_API_KEY" not in {e["name"] for e in env}


@pytest.mark.parametrize("change, message", [
    ({"api_key": "{{ env.MISSING }}"}, "additionalEnvVars has no MISSING"),
    ({"api_key": "{{ env.HTTPS_PROXY }}"}, "additionalEnvVars has no HTTPS_PROXY with valueFrom.secretKeyRef"),
])
def test_model_list_key_errors_say_what_to_do(renderer, tmp_path, change, message):
    values = copy.deepcopy(HOLMES_STYLE)
    values["modelList"]["gpt-4o"].update(change)
    with pytest.raises(RenderFailed, match=re.escape(message)):
        helm_template(renderer, tmp_path, values)


def test_a_literal_key_is_refused_by_the_template_too(renderer, tmp_path):
    """helm --skip-schema-validation would bypass values.schema.json: the template refuses as well."""
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump({"modelList": {"p": {"model": "m", "api_base": "http://h/v1",
                                                          "api_key": "sk-123"}}}))
    proc = subprocess.run([str(renderer), "-chart", str(CHART), "-f", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    assert "never puts a key in a ModelProvider" in proc.stderr and "sk-123" not in proc.stderr


def test_watch_namespaces_namespace_the_operator_rbac(renderer, tmp_path):
    values = {"watchNamespaces": ["shop", "payments"],
              "modelList": {"llama": {"model": "m", "api_base": "http://h/v1", "namespace": "shop"}}}
    objs = manifests(helm_template(renderer, tmp_path, values))
    args = one(objs, "Deployment", "inquest-operator")["spec"]["template"]["spec"]["containers"][0]["args"]
    parsed = _build_parser().parse_args(args)
    assert parsed.namespace == ["shop", "payments"] and not parsed.all_namespaces
    assert {m["metadata"]["name"] for m in by_kind(objs, "ClusterRole")} == {
        "inquest-framework", "inquest-investigator", "inquest-view", "inquest-edit"}
    roles = by_kind(objs, "Role")
    assert sorted((r["metadata"]["namespace"], r["metadata"]["name"]) for r in roles) == sorted(
        (ns, f"inquest-{p}") for ns in ("shop", "payments") for p in ("operator", "impersonator"))
    assert_no_wildcards(objs)
    bound = rules_bound_to(objs, NS, "inquest-operator")
    for ns in ("shop", "payments"):
        in_ns = bound[f"Role/{ns}/inquest-operator"] + bound[f"Role/{ns}/inquest-impersonator"] + \
            bound["ClusterRole//inquest-framework"]
        missing = [need for need in OPERATOR_NEEDS if not allows(in_ns, *need)]
        assert not missing, (ns, missing)
    assert all(r["rules"] == IMPERSONATOR_RULES for r in roles if r["metadata"]["name"] == "inquest-impersonator")
    cluster_wide = [r for key, rules in bound.items() if key.startswith("ClusterRole/") for r in rules]
    assert not allows(cluster_wide, "", "secrets", "get"), "Secrets must be readable in the watched namespaces only"
    assert not allows(cluster_wide, "", "serviceaccounts", "impersonate")
    assert not named(cluster_wide, "", "serviceaccounts", "impersonate")


def test_a_model_provider_outside_the_watched_namespaces_is_an_error(renderer, tmp_path):
    values = {"watchNamespaces": ["shop"], "modelList": {"llama": {"model": "m", "api_base": "http://h/v1"}}}
    with pytest.raises(RenderFailed, match="namespace inquest-system is not in watchNamespaces"):
        helm_template(renderer, tmp_path, values)


def test_glob_watch_namespaces_keep_cluster_roles(renderer, tmp_path):
    objs = manifests(helm_template(renderer, tmp_path, {"watchNamespaces": ["team-*"]}))
    assert not by_kind(objs, "Role")
    assert_operator_rights(objs, NS, "inquest-operator")


def test_investigator_namespaces_get_a_bound_service_account(renderer, tmp_path):
    objs = manifests(helm_template(renderer, tmp_path, HOLMES_STYLE))
    for ns in ("shop", "payments"):
        sa = [m for m in by_kind(objs, "ServiceAccount") if m["metadata"]["namespace"] == ns]
        assert [s["metadata"]["name"] for s in sa] == ["inquest-investigator"]
        bound = rules_bound_to(objs, ns, "inquest-investigator")
        assert list(bound) == ["ClusterRole//inquest-investigator"]
        assert_investigator_is_read_only(bound["ClusterRole//inquest-investigator"])


def test_values_override_image_resources_and_service_account(renderer, tmp_path):
    values = {"image": {"repository": "registry.example/inquest", "tag": "1.2.3", "pullPolicy": "Always"},
              "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
              "serviceAccount": {"name": "custom", "annotations": {"example.com/role": "x"}},
              "verbose": True, "rbac": {"aggregateToDefaultRoles": False},
              "tolerations": [{"key": "dedicated", "operator": "Exists"}]}
    objs = manifests(helm_template(renderer, tmp_path, values))
    pod = one(objs, "Deployment", "inquest-operator")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/inquest:1.2.3" and container["imagePullPolicy"] == "Always"
    assert container["resources"] == values["resources"]
    assert _build_parser().parse_args(container["args"]).verbose
    assert pod["serviceAccountName"] == "custom" and pod["tolerations"] == values["tolerations"]
    assert one(objs, "ServiceAccount", "custom")["metadata"]["annotations"] == {"example.com/role": "x"}
    assert_operator_rights(objs, NS, "custom")
    assert not [r for r in by_kind(objs, "ClusterRole") if r["metadata"]["name"].endswith(("-view", "-edit"))]


@pytest.mark.parametrize("watch", [[], ["shop"]], ids=["cluster-wide", "namespaced"])
def test_impersonable_service_accounts_add_names_and_nothing_else(renderer, tmp_path, watch):
    """investigator.impersonableServiceAccounts extends resourceNames of the impersonate rule: the operator
    may act as those ServiceAccounts (and the default investigator one) and as no other."""
    values = {"watchNamespaces": watch, "investigator": {"serviceAccountName": "triage",
                                                         "impersonableServiceAccounts": ["cluster-reader",
                                                                                         "triage", "ops.reader"]}}
    objs = manifests(helm_template(renderer, tmp_path, values))
    assert_no_wildcards(objs)
    kind = "Role" if watch else "ClusterRole"
    (role,) = [r for r in by_kind(objs, kind) if r["metadata"]["name"] == "inquest-impersonator"]
    assert role["rules"] == impersonator_rules("triage", "cluster-reader", "ops.reader")  # no duplicate
    if not watch:
        assert_operator_rights(objs, NS, "inquest-operator", impersonable={"triage", "cluster-reader", "ops.reader"})
    # the default values: the investigator ServiceAccount alone
    default = one(manifests(helm_template(renderer, tmp_path)), "ClusterRole", "inquest-impersonator")
    assert named(default["rules"], "", "serviceaccounts", "impersonate") == set(DEFAULT_IMPERSONABLE)


@pytest.mark.parametrize("names", [["*"], ["Bad_Name"], ["a", "a"], "cluster-reader"])
def test_the_schema_refuses_impersonable_names_that_are_not_service_account_names(names):
    with pytest.raises(jsonschema.ValidationError):
        validate_values({"investigator": {"impersonableServiceAccounts": names}})


def test_rbac_create_false_renders_no_rbac(renderer, tmp_path):
    objs = manifests(helm_template(renderer, tmp_path, {"rbac": {"create": False}}))
    assert not by_kind(objs, "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


def test_notes_tell_how_to_grant_an_investigator(renderer, tmp_path):
    text = helm_template(renderer, tmp_path, HOLMES_STYLE, notes=True)
    notes = text.split("# Source: inquest/templates/NOTES.txt", 1)[1].split("\n---", 1)[0]
    assert "create rolebinding inquest-investigator" in notes and "--clusterrole=inquest-investigator" in notes
    assert "investigator.impersonableServiceAccounts" in notes and "ServiceAccountNotImpersonable" in notes
    assert "gpt-4o, local-llama" in notes and "watches every namespace" in notes


@pytest.mark.skipif(shutil.which("helm") is None, reason="no helm binary on this machine")
def test_helm_itself_agrees(renderer, tmp_path):
    values = tmp_path / "holmes.yaml"
    values.write_text(yaml.safe_dump(HOLMES_STYLE))
    subprocess.run(["helm", "lint", str(CHART), "-f", str(values)], check=True, capture_output=True, timeout=120)
    out = subprocess.run(["helm", "template", "inquest", str(CHART), "-n", NS, "-f", str(values)], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    mine = manifests(helm_template(renderer, tmp_path, HOLMES_STYLE))
    key = render.key
    assert sorted(map(key, manifests(out))) == sorted(map(key, mine))


def test_the_operator_is_told_the_charts_investigator_names(renderer, tmp_path):
    """investigator.serviceAccountName is what Investigations without one run as, and the
    missing-ServiceAccount hint names the release's own ClusterRole."""
    objs = manifests(helm_template(renderer, tmp_path, {"investigator": {"serviceAccountName": "triage"}},
                                   name="ops"))
    (container,) = one(objs, "Deployment", "ops-inquest-operator")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["INQUEST_DEFAULT_SERVICE_ACCOUNT"] == "triage"
    role = one(objs, "ClusterRole", env["INQUEST_INVESTIGATOR_CLUSTER_ROLE"])
    assert {"pods/log"} <= {r for rule in role["rules"] for r in rule["resources"]}
    # the ServiceAccountNotImpersonable message names the release's impersonator role, which lists "triage"
    impersonator = one(objs, "ClusterRole", env["INQUEST_IMPERSONATOR_ROLE"])
    assert named(impersonator["rules"], "", "serviceaccounts", "impersonate") == {"triage"}
