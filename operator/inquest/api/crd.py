"""Generate the CustomResourceDefinitions in crds/ from the pydantic models.

The models are the one source of truth; ``python -m inquest.api.crd --write crds`` regenerates
the YAML, and a test fails when the committed files differ from what this module produces.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from inquest import GROUP, VERSION
from inquest.api import investigation, modelprovider

CATEGORY = "inquest"

def _convert(node: Any, defs: dict[str, Any]) -> Any:
    """Turn pydantic's JSON Schema into a Kubernetes structural OpenAPI v3 schema."""
    if isinstance(node, list):
        return [_convert(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs)
    if "anyOf" in node:  # Optional[X] -> X (omission is how Kubernetes says "unset")
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express union in a structural schema: {node}")
        rest = {k: v for k, v in node.items() if k not in ("anyOf", "default") or (k == "default" and v is not None)}
        return _convert({**options[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "additionalProperties" and value is False:
            continue  # structural schemas prune unknown fields instead
        if key == "default" and value is None:
            continue
        if key == "default" and value in ([], {}, ""):
            continue  # empty defaults only add noise to every stored object
        if key == "default" and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if v is not None}
            continue
        if key == "exclusiveMinimum" and not isinstance(value, bool):
            out["minimum"] = value
            out["exclusiveMinimum"] = True
            continue
        if key == "format" and value not in ("date-time", "int32", "int64", "double", "float", "byte"):
            continue
        if key == "properties":
            out[key] = {name: _convert(schema, defs) for name, schema in value.items()}
            continue
        out[key] = _convert(value, defs)
    return out


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema = _convert(raw, defs)
    props = schema["properties"]
    props.pop("apiVersion", None)
    props.pop("kind", None)
    # metadata, apiVersion and kind are validated by the API server itself.
    return {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            **props,
        },
    }


def _condition_column(name: str, ctype: str, priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {
        "name": name,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="{ctype}")].status',
    }
    if priority:
        column["priority"] = priority
    return column


PRINTER_COLUMNS: dict[str, list[dict[str, Any]]] = {
    modelprovider.KIND: [
        {"name": "Model", "type": "string", "jsonPath": ".spec.model"},
        _condition_column("Ready", "Ready"),
        _condition_column("Tools", "ToolCallingSupported"),
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "priority": 1},
        {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ],
    investigation.KIND: [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Provider", "type": "string", "jsonPath": ".status.provider"},
        {"name": "Findings", "type": "integer", "jsonPath": ".status.findingCount"},
        {"name": "Summary", "type": "string", "jsonPath": ".status.summary"},
        {"name": "Question", "type": "string", "jsonPath": ".spec.question", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ],
}

RESOURCES = {
    modelprovider.KIND: (modelprovider.ModelProvider, modelprovider.PLURAL, modelprovider.SINGULAR,
                         modelprovider.SHORT_NAMES),
    investigation.KIND: (investigation.Investigation, investigation.PLURAL, investigation.SINGULAR,
                         investigation.SHORT_NAMES),
}


def build_crd(kind: str) -> dict[str, Any]:
    model, plural, singular, short_names = RESOURCES[kind]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": singular,
                "shortNames": list(short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS[kind],
                    "schema": {"openAPIV3Schema": openapi_schema(model)},
                }
            ],
        },
    }


def crd_files() -> dict[str, str]:
    """File name -> YAML text for every CRD, keys in model order."""
    header = "# Generated by `python -m inquest.api.crd --write crds` from operator/inquest/api. Do not edit.\n"
    return {
        f"{GROUP}_{RESOURCES[kind][1]}.yaml": header + yaml.safe_dump(build_crd(kind), sort_keys=False, width=100)
        for kind in RESOURCES
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", metavar="DIR", help="write the CRD files into DIR")
    parser.add_argument("--check", metavar="DIR", help="exit 1 when DIR differs from the models")
    args = parser.parse_args(argv)
    files = crd_files()
    if args.write:
        for name, text in files.items():
            Path(args.write, name).write_text(text)
        return 0
    if args.check:
        stale = [n for n, t in files.items()
                 if not Path(args.check, n).exists() or Path(args.check, n).read_text() != t]
        for name in stale:
            print(f"{args.check}/{name} is stale: run python -m inquest.api.crd --write {args.check}", file=sys.stderr)
        return 1 if stale else 0
    for text in files.values():
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
