"""docs/reference.md is generated from the CRD schemas and the reason constants and must be current."""

from __future__ import annotations

from pathlib import Path

import pytest

from inquest.api import docs
from inquest.api.crd import build_crd
from inquest.domain import investigation, reasons

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference.md"


def test_reference_is_current():
    assert REFERENCE.read_text() == docs.reference(), \
        "docs/reference.md is stale: cd operator && python -m inquest.api.docs --write ../docs/reference.md"


def test_check_mode_reports_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "reference.md"
    stale.write_text(docs.reference().replace("maxSteps", "maxStep", 1))
    assert docs.main(["--check", str(stale)]) == 1
    assert "stale" in capsys.readouterr().err
    fresh = tmp_path / "fresh.md"
    assert docs.main(["--write", str(fresh)]) == 0
    assert docs.main(["--check", str(fresh)]) == 0


def _fields(node, path):
    yield path
    target = node.get("items", node) if node.get("type") == "array" else node
    for name, child in (target.get("properties") or {}).items():
        yield from _fields(child, f"{path}{'[]' if target is not node else ''}.{name}")


@pytest.mark.parametrize("kind", ["ModelProvider", "Investigation"])
def test_every_crd_field_has_a_row_with_its_default_and_bounds(kind):
    text = REFERENCE.read_text()
    section = text.split(f"## {kind}\n", 1)[1].split("\n## ", 1)[0]
    schema = build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    for part in ("spec", "status"):
        for field in _fields(schema[part], part):
            if field == "status":
                continue
            assert f"| `{field}` |" in section, f"{kind} {field} missing from reference.md"
    rows = {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| `")}
    if kind == "ModelProvider":
        assert "`60`" in rows["`spec.requestTimeoutSeconds`"] and "≤ 3600" in rows["`spec.requestTimeoutSeconds`"]
        assert "**required**" in rows["`spec.baseURL`"]
        assert "*CEL*: at most one of caBundle" in rows["`spec.tls`"]
    else:
        assert "`{maxSteps: 20, timeoutSeconds: 300}`" in rows["`spec.limits`"]
        assert "*CEL*: spec is immutable" in rows["`spec`"]


def test_every_condition_type_and_reason_is_listed():
    text = REFERENCE.read_text()
    section = text.split("## Conditions and reasons", 1)[1]
    for ctype in reasons.CONDITION_TYPES:
        assert f"`{ctype}`" in section
    for reason in reasons.all_reasons():
        assert f"`{reason}`" in section, reason
    for name, value in vars(investigation).items():
        if (name.startswith("R_") or name.startswith("COND_")) and isinstance(value, str):
            assert f"`{value}`" in section.split("### Investigation", 1)[1], value


def test_fallback_descriptions_name_real_fields():
    for kind, entries in docs.FALLBACK.items():
        schema = build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
        known = set(_fields(schema["spec"], "spec")) | set(_fields(schema["status"], "status"))
        assert set(entries) <= known, set(entries) - known
