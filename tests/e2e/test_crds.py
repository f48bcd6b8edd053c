"""Our CRDs on a real kube-apiserver (v1.20): they install, validate, default, prune and print.

The server enforces the OpenAPI part of the schemas (types, patterns, bounds, required fields,
defaults, pruning) and the printer columns; it ignores CEL rules (x-kubernetes-validations), so the
manifests marked "(cel-only)" are checked on the schema level only (tests/unit/test_crds.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.e2e.controlplane import ControlPlane
from tests.e2e.harness import (
    CRD_DIR,
    GROUP,
    REPO_ROOT,
    VERSION,
    collection_path,
    create,
    create_ok,
    get,
    lost_fields,
    object_path,
    patch_status,
    table,
    table_rows,
    unique,
)

MANIFESTS = REPO_ROOT / "tests" / "manifests"
CRD_FILES = sorted(CRD_DIR.glob("*.yaml"))


def _manifests(kind: str) -> list[Path]:
    return sorted((MANIFESTS / kind).glob("*.yaml"))


def _is_cel_only(path: Path) -> bool:
    return "(cel-only)" in path.read_text().splitlines()[0]


def _crd_file(kind: str) -> dict[str, Any]:
    for path in CRD_FILES:
        doc = yaml.safe_load(path.read_text())
        if doc["spec"]["names"]["kind"] == kind:
            return doc
    raise AssertionError(f"no CRD for {kind} in crds/")


# --------------------------------------------------------------------------- installation


def test_crds_are_established_and_discoverable(controlplane: ControlPlane, inquest_crds: dict[str, dict]) -> None:
    assert set(inquest_crds) == {"ModelProvider", "Investigation"}
    assert len(CRD_FILES) == 2
    for kind, applied in inquest_crds.items():
        crd = get(controlplane, "CustomResourceDefinition", applied["metadata"]["name"])
        assert crd is not None
        conditions = {c["type"]: c for c in crd["status"]["conditions"]}
        assert conditions["Established"]["status"] == "True", conditions
        assert conditions["NamesAccepted"]["status"] == "True", conditions
        # a non-structural schema would be flagged here (and defaults/pruning would not work)
        assert "NonStructuralSchema" not in conditions, conditions["NonStructuralSchema"]
        assert crd["status"]["acceptedNames"]["kind"] == kind

    status, discovery = controlplane.request("GET", f"/apis/{GROUP}/{VERSION}")
    assert status == 200, discovery
    resources = {r["name"]: r for r in discovery["resources"]}
    assert resources["modelproviders"]["kind"] == "ModelProvider"
    assert resources["modelproviders"]["shortNames"] == ["mp"]
    assert resources["investigations"]["shortNames"] == ["inv"]
    for plural in ("modelproviders", "investigations"):
        assert resources[plural]["namespaced"] is True
        assert resources[plural]["categories"] == ["inquest"]
        assert f"{plural}/status" in resources, sorted(resources)


def test_reapplying_the_crds_is_harmless(controlplane: ControlPlane, inquest_crds: dict[str, dict]) -> None:
    """`kubectl apply -f crds/` a second time (an upgrade) is accepted and keeps them Established."""
    from tests.e2e.harness import apply_crd

    for path in CRD_FILES:
        crd = apply_crd(controlplane, path)
        assert crd["metadata"]["generation"] >= 1


# --------------------------------------------------------------------------- valid manifests


@pytest.mark.parametrize("path", _manifests("valid"), ids=lambda p: p.name)
def test_valid_manifest_is_accepted_whole(controlplane: ControlPlane, namespace: str, path: Path) -> None:
    (manifest,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
    created = create_ok(controlplane, manifest, namespace)
    assert created["metadata"]["namespace"] == namespace
    assert lost_fields(created["spec"], manifest["spec"]) == []
    stored = get(controlplane, manifest["kind"], manifest["metadata"]["name"], namespace)
    assert stored is not None and stored["spec"] == created["spec"]


def test_corpus_is_not_empty() -> None:
    valid, invalid = _manifests("valid"), _manifests("invalid")
    assert {yaml.safe_load(p.read_text())["kind"] for p in valid} == {"ModelProvider", "Investigation"}
    assert len([p for p in invalid if not _is_cel_only(p)]) >= 6


# --------------------------------------------------------------------------- invalid manifests

# jsonschema keyword -> what kube-apiserver 1.20 says for it (k8s.io/kube-openapi/pkg/validation/errors)
SERVER_WORDING = {
    "required": "Required value",
    "pattern": "should match",
    "minimum": "greater than or equal to",
    "maximum": "less than or equal to",
    "minLength": "at least",
    "maxLength": "at most",
    "minItems": "at least",
    "maxItems": "at most",
    "enum": "Unsupported value",
    "type": "in body must be of type",
}


def _expected_violations(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(field path, keyword) of every schema violation, as the CRD in crds/ defines them."""
    schema = _crd_file(doc["kind"])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    found = []
    for error in jsonschema.Draft4Validator(schema).iter_errors(doc):
        parts = [str(p) for p in error.absolute_path]
        while parts and parts[-1].isdigit():  # v1.20 names the list, not the item: spec.allowedNamespaces
            parts.pop()
        if error.validator == "required":
            missing = [r for r in error.validator_value if r not in error.instance]
            found += [(".".join([*parts, m]), "required") for m in missing]
        else:
            found.append((".".join(parts), str(error.validator)))
    return found


@pytest.mark.parametrize("path", [p for p in _manifests("invalid") if not _is_cel_only(p)], ids=lambda p: p.name)
def test_invalid_manifest_is_refused_naming_the_field(controlplane: ControlPlane, namespace: str, path: Path) -> None:
    (manifest,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
    expected = _expected_violations(manifest)
    assert expected, f"{path.name}: the schema in crds/ admits it, yet it is not marked (cel-only)"

    status, body = create(controlplane, manifest, namespace)
    assert status == 422, f"{path.name}: expected 422 Invalid, got HTTP {status}: {body}"
    assert body["reason"] == "Invalid", body
    assert body["details"]["kind"] == manifest["kind"], body
    causes = body["details"].get("causes") or []
    for field, keyword in expected:
        matching = [c for c in causes if c.get("field") == field]
        assert matching, f"{path.name}: no cause names {field!r}; server said: {body['message']}"
        assert field in body["message"], body["message"]
        wording = SERVER_WORDING.get(keyword)
        if wording:
            assert any(wording in c.get("message", "") for c in matching) or wording in body["message"], (
                f"{path.name}: {field} violates {keyword!r}, but the server said: {body['message']}"
            )
    assert get(controlplane, manifest["kind"], manifest["metadata"]["name"], namespace) is None


@pytest.mark.parametrize("path", [p for p in _manifests("invalid") if _is_cel_only(p)], ids=lambda p: p.name)
def test_cel_only_manifest_passes_the_openapi_part(controlplane: ControlPlane, namespace: str, path: Path) -> None:
    """The "(cel-only)" mark is truthful: only the CEL rule refuses it, which v1.20 does not evaluate.

    (A v1.25+ server refuses it; the rule itself is tested in tests/unit/test_crds.py.)
    """
    (manifest,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
    status, body = create(controlplane, manifest, namespace)
    assert status == 201, f"{path.name} is marked (cel-only) but the OpenAPI schema refuses it: {body}"


def test_ca_bundle_length_is_bounded(controlplane: ControlPlane, namespace: str) -> None:
    """The caBundle bound (too big for a file in the corpus): 256 KiB pass, one character more is refused."""
    from inquest.api.modelprovider import MAX_CA_BUNDLE

    def provider(name: str, size: int) -> dict[str, Any]:
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelProvider", "metadata": {"name": name},
                "spec": {"baseURL": "https://llm.example.com/v1", "model": "m", "tls": {"caBundle": "A" * size}}}

    create_ok(controlplane, provider("at-limit", MAX_CA_BUNDLE), namespace)
    status, body = create(controlplane, provider("over-limit", MAX_CA_BUNDLE + 1), namespace)
    assert status == 422, body
    assert "spec.tls.caBundle" in body["message"] and "at most 262144" in body["message"], body["message"]


# --------------------------------------------------------------------------- defaults and pruning


def test_server_applies_investigation_defaults(controlplane: ControlPlane, namespace: str) -> None:
    base = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Investigation"}
    minimal = create_ok(controlplane, {**base, "metadata": {"name": "minimal"}, "spec": {"question": "why?"}},
                        namespace)
    assert minimal["spec"]["limits"] == {"maxSteps": 20, "timeoutSeconds": 300}

    partial = create_ok(
        controlplane,
        {**base, "metadata": {"name": "partial"}, "spec": {"question": "why?", "limits": {"maxSteps": 5}}},
        namespace,
    )
    assert partial["spec"]["limits"] == {"maxSteps": 5, "timeoutSeconds": 300}
    # defaults are persisted, not only shown in the create response
    stored = get(controlplane, "Investigation", "minimal", namespace)
    assert stored is not None and stored["spec"]["limits"] == {"maxSteps": 20, "timeoutSeconds": 300}


def test_server_applies_modelprovider_defaults(controlplane: ControlPlane, namespace: str) -> None:
    created = create_ok(
        controlplane,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelProvider",
            "metadata": {"name": "llm"},
            "spec": {
                "baseURL": "https://llm.example.com/v1",
                "model": "m",
                "tls": {},
                "parameters": {},
                "pricing": {"inputPerMillionTokens": 1.5},
            },
        },
        namespace,
    )
    spec = created["spec"]
    assert spec["requestTimeoutSeconds"] == 60
    assert spec["maxRetries"] == 2
    assert spec["probeIntervalSeconds"] == 300
    assert spec["maxConcurrentInvestigations"] == 4
    assert spec["tls"] == {"insecureSkipVerify": False, "useSystemTrustStore": True}
    assert spec["parameters"] == {"supportsSystemMessage": True}
    assert spec["pricing"] == {"inputPerMillionTokens": 1.5, "outputPerMillionTokens": 0}


def test_server_prunes_unknown_fields(controlplane: ControlPlane, namespace: str) -> None:
    """A typo in a field name does not survive (structural schema, no preserve-unknown-fields)."""
    created = create_ok(
        controlplane,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelProvider",
            "metadata": {"name": "typo"},
            "spec": {"baseURL": "https://llm.example.com/v1", "model": "m", "baseUrl": "https://other/v1",
                     "tls": {"caBundel": "x"}},
        },
        namespace,
    )
    assert "baseUrl" not in created["spec"]
    assert "caBundel" not in created["spec"]["tls"]
    assert created["spec"]["baseURL"] == "https://llm.example.com/v1"


def test_empty_strings_are_strings(controlplane: ControlPlane, namespace: str) -> None:
    """An empty string is a valid string value (conditions with message "" are everywhere)."""
    created = create(controlplane, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelProvider", "metadata": {"name": "empty"},
        "spec": {"baseURL": "https://llm.example.com/v1", "model": "m", "headers": [{"name": "X-Empty", "value": ""}]},
    }, namespace)
    assert created[0] == 201, (
        "the API server refuses an empty string: a kube-apiserver built without the go-openapi null-check "
        f"patch of .ci/build-kube-apiserver.sh (BUILD_TAG); rebuild it. Server said: {created[1]}"
    )
    assert created[1]["spec"]["headers"] == [{"name": "X-Empty", "value": ""}]


# --------------------------------------------------------------------------- status subresource


def test_status_is_a_subresource(controlplane: ControlPlane, namespace: str) -> None:
    """Users cannot set status through the object, and the operator's status writes cannot touch spec."""
    inv = create_ok(
        controlplane,
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Investigation", "metadata": {"name": "sub"},
         "spec": {"question": "why?"}, "status": {"phase": "Succeeded"}},
        namespace,
    )
    assert "status" not in inv or not inv["status"], inv.get("status")
    path = object_path("Investigation", "sub", namespace)
    st, body = controlplane.request("PATCH", path, {"status": {"phase": "Succeeded"}},
                                    content_type="application/merge-patch+json")
    assert st == 200 and not body.get("status"), body.get("status")

    st, body = controlplane.request("PATCH", path + "/status",
                                    {"spec": {"question": "changed?"}, "status": {"phase": "Running"}},
                                    content_type="application/merge-patch+json")
    assert st == 200, body
    assert body["status"]["phase"] == "Running"
    assert body["spec"]["question"] == "why?"
    assert body["metadata"]["generation"] == inv["metadata"]["generation"]  # status writes do not bump it

    # the status schema is enforced too
    st, body = controlplane.request("PATCH", path + "/status", {"status": {"phase": "Exploded"}},
                                    content_type="application/merge-patch+json")
    assert st == 422 and "status.phase" in body["message"], body


# --------------------------------------------------------------------------- printer columns (kubectl get)


def _columns(tbl: dict[str, Any]) -> list[tuple[str, int]]:
    return [(c["name"], c.get("priority", 0)) for c in tbl["columnDefinitions"]]


def test_modelprovider_table_shows_printer_columns(controlplane: ControlPlane, namespace: str) -> None:
    name = unique("mp")
    create_ok(
        controlplane,
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelProvider", "metadata": {"name": name},
         "spec": {"baseURL": "https://llm.example.com/v1", "model": "qwen2.5-7b-instruct"}},
        namespace,
    )
    plural_path = collection_path("ModelProvider", namespace)

    before = table_rows(table(controlplane, plural_path))[name]
    assert before["Model"] == "qwen2.5-7b-instruct"
    assert before["Ready"] is None and before["Phase"] is None  # nothing probed yet: kubectl shows <none>

    now = "2024-05-01T10:00:00Z"
    patch_status(controlplane, "ModelProvider", name, namespace, {
        "phase": "Ready",
        "endpoint": "https://llm.example.com/v1/chat/completions",
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Ready", "message": "", "lastTransitionTime": now},
            {"type": "ToolCallingSupported", "status": "False", "reason": "ToolCallsIgnored",
             "message": "the model answered in text", "lastTransitionTime": now},
        ],
    })

    tbl = table(controlplane, plural_path)
    assert _columns(tbl) == [("Name", 0), ("Model", 0), ("Ready", 0), ("Tools", 0), ("Phase", 1),
                             ("Endpoint", 1), ("Age", 0)]
    row = table_rows(tbl)[name]
    assert row["Model"] == "qwen2.5-7b-instruct"
    assert row["Ready"] == "True"
    assert row["Tools"] == "False"
    assert row["Phase"] == "Ready"
    assert row["Endpoint"] == "https://llm.example.com/v1/chat/completions"
    assert isinstance(row["Age"], str) and row["Age"].endswith(("s", "m"))  # e.g. "3s"

    # the single-object view (kubectl get mp NAME) and the short name's all-namespaces list agree
    single = table(controlplane, object_path("ModelProvider", name, namespace))
    assert table_rows(single)[name]["Ready"] == "True"
    everywhere = table(controlplane, f"/apis/{GROUP}/{VERSION}/modelproviders")
    assert table_rows(everywhere)[name]["Tools"] == "False"


def test_investigation_table_shows_printer_columns(controlplane: ControlPlane, namespace: str) -> None:
    name = unique("inv")
    question = "What pods are failing in shop, and why?"
    create_ok(
        controlplane,
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Investigation", "metadata": {"name": name},
         "spec": {"question": question}},
        namespace,
    )
    now = "2024-05-01T10:00:00Z"
    patch_status(controlplane, "Investigation", name, namespace, {
        "phase": "Succeeded",
        "provider": f"{namespace}/llama",
        "model": "qwen2.5-7b-instruct",
        "summary": "checkout crash-loops: DATABASE_URL is unset",
        "findings": [
            {"severity": "critical", "title": "checkout crash-loops",
             "resource": {"kind": "Pod", "namespace": namespace, "name": "checkout-7d9f"}},
            {"severity": "info", "title": "one restart of cart"},
        ],
        "findingCount": 2,
        "startTime": now,
        "completionTime": now,
        "conditions": [{"type": "Complete", "status": "True", "reason": "Succeeded", "message": "",
                        "lastTransitionTime": now}],
    })
    path = collection_path("Investigation", namespace)
    tbl = table(controlplane, path)
    assert _columns(tbl) == [("Name", 0), ("Phase", 0), ("Provider", 0), ("Findings", 0), ("Summary", 0),
                             ("Question", 1), ("Age", 0)]
    assert [c["type"] for c in tbl["columnDefinitions"] if c["name"] == "Findings"] == ["integer"]
    row = table_rows(tbl)[name]
    assert row["Phase"] == "Succeeded"
    assert row["Provider"] == f"{namespace}/llama"
    assert row["Findings"] == 2
    assert row["Summary"] == "checkout crash-loops: DATABASE_URL is unset"
    assert row["Question"] == question
    assert isinstance(row["Age"], str) and row["Age"]

    # the columns declared in crds/ are exactly those the server renders
    declared = _crd_file("Investigation")["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [(c["name"], c.get("priority", 0)) for c in declared] == _columns(tbl)[1:]


def test_table_columns_match_crd_files(controlplane: ControlPlane, namespace: str) -> None:
    for kind in ("ModelProvider", "Investigation"):
        declared = _crd_file(kind)["spec"]["versions"][0]["additionalPrinterColumns"]
        tbl = table(controlplane, collection_path(kind, namespace))
        assert _columns(tbl)[0] == ("Name", 0)
        assert _columns(tbl)[1:] == [(c["name"], c.get("priority", 0)) for c in declared]
        assert [c["type"] for c in tbl["columnDefinitions"][1:]] == [c["type"] for c in declared]
