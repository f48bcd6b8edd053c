"""crds/ is generated from inquest.api and must stay in step; the schemas are structural and refuse
what the API refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
        _validate_schema(doc)  # the OpenAPI part admits it; the CEL rule (see test above) refuses it
    else:
        with pytest.raises(jsonschema.ValidationError):
            _validate_schema(doc)


def test_corpus_is_not_empty():
    assert len(_manifests("valid")) >= 4 and len(_manifests("invalid")) >= 8
