"""crds/ is generated from inquest.api and must stay in step; the schemas are structural and refuse
what the API refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import celpy
import jsonschema
import pydantic
import pytest
import yaml

from inquest.api import Investigation, ModelProvider
from inquest.api.crd import PRINTER_COLUMNS, crd_files

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
MANIFESTS = ROOT / "tests" / "manifests"
MODELS = {"ModelProvider": ModelProvider, "Investigation": Investigation}


def load_crds() -> dict[str, dict[str, Any]]:
    crds = {}
    for path in sorted(CRDS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        crds[doc["spec"]["names"]["kind"]] = doc
    return crds


def schema_of(kind: str) -> dict[str, Any]:
    return load_crds()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_crds_directory_is_generated_from_the_models():
    expected = crd_files()
    actual = {p.name: p.read_text() for p in CRDS.glob("*.yaml")}
    assert actual.keys() == expected.keys(), "crds/ holds other files than the models generate"
    for name, text in expected.items():
        assert actual[name] == text, f"crds/{name} is stale: run python -m inquest.api.crd --write crds"


def test_every_crd_is_a_v1_namespaced_crd_with_status_and_category():
    crds = load_crds()
    assert set(crds) == {"ModelProvider", "Investigation"}
    for crd in crds.values():
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert crd["kind"] == "CustomResourceDefinition"
        spec = crd["spec"]
        assert spec["group"] == "inquest.dev"
        assert spec["scope"] == "Namespaced"
        assert "inquest" in spec["names"]["categories"]
        assert crd["metadata"]["name"] == f"{spec['names']['plural']}.inquest.dev"
        (version,) = spec["versions"]
        assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
        assert version["subresources"] == {"status": {}}
    assert load_crds()["ModelProvider"]["spec"]["names"]["shortNames"] == ["mp"]
    assert load_crds()["Investigation"]["spec"]["names"]["shortNames"] == ["inv"]


def test_printer_columns():
    crds = load_crds()

    def columns(kind: str) -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in crds[kind]["spec"]["versions"][0]["additionalPrinterColumns"]}

    mp = columns("ModelProvider")
    assert mp["Model"]["jsonPath"] == ".spec.model"
    assert mp["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert mp["Tools"]["jsonPath"] == '.status.conditions[?(@.type=="ToolCallingSupported")].status'
    assert mp["Endpoint"]["jsonPath"] == ".status.endpoint" and mp["Endpoint"]["priority"] == 1
    assert mp["Age"]["type"] == "date"
    inv = columns("Investigation")
    assert inv["Phase"]["jsonPath"] == ".status.phase"
    assert inv["Provider"]["jsonPath"] == ".status.provider"
    assert inv["Findings"]["jsonPath"] == ".status.findingCount" and inv["Findings"]["type"] == "integer"
    assert inv["Summary"]["jsonPath"] == ".status.summary"
    assert "Age" in inv
    for kind in crds:
        assert list(columns(kind)) == [c["name"] for c in PRINTER_COLUMNS[kind]]


def _walk(node: dict[str, Any], path: str = "") -> list[str]:
    """Structural-schema violations (the rules of apiextensions.k8s.io/v1)."""
    problems = []
    forbidden = {"$ref", "anyOf", "oneOf", "allOf", "not", "definitions", "$defs", "dependencies",
                 "additionalItems", "patternProperties", "uniqueItems"}
    for key in forbidden & node.keys():
        problems.append(f"{path}: {key} is not allowed here")
    if "type" not in node and not node.get("x-kubernetes-preserve-unknown-fields") \
            and not node.get("x-kubernetes-int-or-string"):
        problems.append(f"{path}: no type")
    if node.get("additionalProperties") is False:
        problems.append(f"{path}: additionalProperties: false")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{path}: both properties and additionalProperties")
    for name, child in (node.get("properties") or {}).items():
        problems += _walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        problems += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        problems += _walk(node["additionalProperties"], f"{path}{{}}")
    if "exclusiveMinimum" in node and not isinstance(node["exclusiveMinimum"], bool):
        problems.append(f"{path}: exclusiveMinimum must be a boolean in OpenAPI v3.0")
    return problems


@pytest.mark.parametrize("kind", ["ModelProvider", "Investigation"])
def test_schema_is_structural(kind):
    schema = schema_of(kind)
    assert _walk(schema) == []
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert "spec" in schema["required"]


def test_cel_rules_are_declared():
    mp_tls = schema_of("ModelProvider")["properties"]["spec"]["properties"]["tls"]
    assert "at most one" in mp_tls["x-kubernetes-validations"][0]["message"]
    inv_spec = schema_of("Investigation")["properties"]["spec"]
    assert {"rule": "self == oldSelf", "message": "spec is immutable; create a new Investigation"} in \
        inv_spec["x-kubernetes-validations"]


def test_defaults_are_declared_in_the_schema():
    mp = schema_of("ModelProvider")["properties"]["spec"]["properties"]
    assert mp["requestTimeoutSeconds"]["default"] == 60
    assert mp["maxRetries"]["default"] == 2
    assert mp["probeIntervalSeconds"]["default"] == 300
    assert mp["maxConcurrentInvestigations"]["default"] == 4
    assert mp["tls"]["properties"]["insecureSkipVerify"]["default"] is False
    assert mp["parameters"]["properties"]["supportsSystemMessage"]["default"] is True
    inv = schema_of("Investigation")["properties"]["spec"]["properties"]
    assert inv["limits"]["default"] == {"maxSteps": 20, "timeoutSeconds": 300}
    assert inv["limits"]["properties"]["maxSteps"]["minimum"] == 1
    assert inv["limits"]["properties"]["maxSteps"]["maximum"] == 100
    assert inv["question"]["maxLength"] == 4000


def _manifests(kind: str) -> list[Path]:
    return sorted(MANIFESTS.glob(f"{kind}/*.yaml"))


def _validate_schema(doc: dict[str, Any]) -> None:
    jsonschema.Draft4Validator(schema_of(doc["kind"])).validate(doc)


@pytest.mark.parametrize("path", _manifests("valid"), ids=lambda p: p.name)
def test_valid_manifests_pass_schema_and_models(path):
    doc = yaml.safe_load(path.read_text())
    _validate_schema(doc)
    MODELS[doc["kind"]].model_validate(doc)


@pytest.mark.parametrize("path", _manifests("invalid"), ids=lambda p: p.name)
def test_invalid_manifests_are_refused(path):
    text = path.read_text()
    doc = yaml.safe_load(text)
    cel_only = "(cel-only)" in text.splitlines()[0]
    with pytest.raises(pydantic.ValidationError):
        MODELS[doc["kind"]].model_validate(doc)
    if cel_only:
        _validate_schema(doc)  # the OpenAPI part admits it; a CEL rule refuses it (test_cel_rules_refuse_...)
    else:
        with pytest.raises(jsonschema.ValidationError):
            _validate_schema(doc)


def test_ca_bundle_is_bounded():
    """Too big for a file in the corpus: 256 KiB of caBundle pass, one character more does not."""
    from inquest.api.modelprovider import MAX_CA_BUNDLE

    def doc(size: int) -> dict[str, Any]:
        return {"apiVersion": "inquest.dev/v1alpha1", "kind": "ModelProvider", "metadata": {"name": "x"},
                "spec": {"baseURL": "https://llm/v1", "model": "m", "tls": {"caBundle": "A" * size}}}

    assert MAX_CA_BUNDLE == 262_144
    _validate_schema(doc(MAX_CA_BUNDLE))
    ModelProvider.model_validate(doc(MAX_CA_BUNDLE))
    with pytest.raises(jsonschema.ValidationError, match="is too long"):
        _validate_schema(doc(MAX_CA_BUNDLE + 1))
    with pytest.raises(pydantic.ValidationError):
        ModelProvider.model_validate(doc(MAX_CA_BUNDLE + 1))


def test_corpus_is_not_empty():
    assert len(_manifests("valid")) >= 4 and len(_manifests("invalid")) >= 8


# --------------------------------------------------------------------------- CEL rules, executed
# kube-apiserver 1.25+ evaluates x-kubernetes-validations; the e2e server (1.20) ignores them. cel-python
# runs them here on the same documents. Every rule of both CRDs is within what cel-python evaluates
# (has(), ?:, +, <=, !=, ==); a rule it could not compile or evaluate fails _cel below rather than passing.

Path = tuple[str, ...]  # property names, "[]" for "every item of the list"


def _cel_rules(node: dict[str, Any], path: Path = ()) -> list[tuple[Path, str]]:
    found = [(path, r["rule"]) for r in node.get("x-kubernetes-validations", [])]
    for name, child in (node.get("properties") or {}).items():
        found += _cel_rules(child, (*path, name))
    if isinstance(node.get("items"), dict):
        found += _cel_rules(node["items"], (*path, "[]"))
    return found


def _values_at(value: Any, path: Path) -> list[Any]:
    if not path:
        return [value]
    head, rest = path[0], path[1:]
    if head == "[]":
        return [v for item in (value if isinstance(value, list) else []) for v in _values_at(item, rest)]
    return _values_at(value[head], rest) if isinstance(value, dict) and head in value else []


def _cel(rule: str, self_value: Any, old_self: Any = None) -> bool:
    env = celpy.Environment()
    activation = {"self": celpy.json_to_cel(self_value)}
    if old_self is not None:
        activation["oldSelf"] = celpy.json_to_cel(old_self)
    result = env.program(env.compile(rule)).evaluate(activation)
    assert isinstance(result, celpy.celtypes.BoolType), f"{rule!r} gave {result!r}, not a boolean"
    return bool(result)


def _is_transition_rule(rule: str) -> bool:
    return "oldSelf" in rule  # evaluated on updates only, never on create


def _create_verdicts(doc: dict[str, Any]) -> list[tuple[str, bool]]:
    """(rule, result) of every rule a server evaluates when ``doc`` is created."""
    schema = schema_of(doc["kind"])
    return [(rule, _cel(rule, value)) for path, rule in _cel_rules(schema) if not _is_transition_rule(rule)
            for value in _values_at(doc, path)]


def test_cel_rules_are_the_ones_tested():
    rules = {kind: [r for _, r in _cel_rules(schema_of(kind))] for kind in MODELS}
    assert len(rules["ModelProvider"]) == 2 and rules["Investigation"] == ["self == oldSelf"]
    cel_only = [yaml.safe_load(p.read_text()) for p in _manifests("invalid") if "(cel-only)" in p.read_text()]
    valid = [yaml.safe_load(p.read_text()) for p in _manifests("valid")]
    for rule in rules["ModelProvider"]:  # each create-time rule is seen passing and failing
        assert any((rule, True) in _create_verdicts(d) for d in valid), rule
        assert any((rule, False) in _create_verdicts(d) for d in cel_only), rule


@pytest.mark.parametrize("path", _manifests("valid"), ids=lambda p: p.name)
def test_cel_rules_admit_the_valid_corpus(path):
    verdicts = _create_verdicts(yaml.safe_load(path.read_text()))
    assert all(ok for _, ok in verdicts), verdicts


@pytest.mark.parametrize("path", [p for p in _manifests("invalid") if "(cel-only)" in p.read_text().splitlines()[0]],
                         ids=lambda p: p.name)
def test_cel_rules_refuse_the_cel_only_manifests(path):
    verdicts = _create_verdicts(yaml.safe_load(path.read_text()))
    assert any(not ok for _, ok in verdicts), verdicts


@pytest.mark.parametrize("path", [p for p in _manifests("valid") if "kind: Investigation" in p.read_text()],
                         ids=lambda p: p.name)
def test_cel_keeps_the_investigation_spec_immutable(path):
    ((where, rule),) = _cel_rules(schema_of("Investigation"))
    assert where == ("spec",) and _is_transition_rule(rule)
    spec = yaml.safe_load(path.read_text())["spec"]
    assert _cel(rule, spec, old_self=yaml.safe_load(path.read_text())["spec"])  # an apply without changes
    assert not _cel(rule, {**spec, "question": spec["question"] + " And since when?"}, old_self=spec)
    assert not _cel(rule, {**spec, "limits": {"maxSteps": 99}}, old_self=spec)
    assert not _cel(rule, {**spec, "serviceAccountName": "admin"}, old_self=spec)
