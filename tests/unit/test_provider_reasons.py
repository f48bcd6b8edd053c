"""Every reason the ModelProvider code can emit is a constant of inquest.domain.reasons, and every one
of them is documented in docs/troubleshooting.md."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest

from inquest.domain import investigation, reasons

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "troubleshooting.md"
SOURCES = [
    ROOT / "operator/inquest/domain/provider.py",
    ROOT / "operator/inquest/domain/certificates.py",
    ROOT / "operator/inquest/clients/connection.py",
    ROOT / "operator/inquest/clients/probe.py",
    ROOT / "operator/inquest/clients/providers.py",
    ROOT / "operator/inquest/handlers/modelprovider.py",
]
# callable -> position of its reason argument
REASON_ARG = {"Cond.true": 1, "Cond.false": 1, "Cond.unknown": 1, "Cond": 2, "Problem": 1,
              "CertificateProblem": 0, "EventSpec": 1, "ConnectionProblem": 1}


def test_reasons_are_camel_case_and_unique():
    values = sorted(reasons.all_reasons())
    assert len(values) > 40
    for value in values:
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", value), value
    names = [k for k, v in vars(reasons).items() if k.isupper() and isinstance(v, str)]
    assert len(names) == len({vars(reasons)[n] for n in names}) + 2  # only the two reason=type names repeat


@pytest.mark.parametrize("reason", sorted(reasons.all_reasons()))
def test_every_reason_is_documented(reason):
    assert f"`{reason}`" in DOC.read_text(), f"docs/troubleshooting.md has no row for `{reason}`"


def test_every_documented_reason_exists():
    doc = DOC.read_text()
    rows = re.findall(r"^\| `([A-Z][A-Za-z]+)`", doc, flags=re.MULTILINE)
    assert rows, "no reason rows found"
    unknown = sorted(set(rows) - reasons.all_reasons() - investigation.all_reasons()  # both kinds' sections
                     - set(investigation.EVENT_TYPES))  # and the Investigation Events table
    assert unknown == [], f"documented but never emitted: {unknown}"


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
        return f"{node.func.value.id}.{node.func.attr}"
    return None


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_reason_is_a_string_literal(path):
    """Reasons come from the constants (so the doc test above sees all of them)."""
    offenders = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        position = REASON_ARG.get(_callee(node) or "")
        if position is None or len(node.args) <= position:
            continue
        arg = node.args[position]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            offenders.append(f"line {node.lineno}: {arg.value!r}")
    assert offenders == []


def test_the_literal_check_catches_literals(tmp_path):
    source = "Cond.false(reasons.READY, 'Oops', 'x')\nProblem(reasons.READY, reasons.INVALID_URL, 'ok')\n"
    found = [_callee(n) for n in ast.walk(ast.parse(source))
             if isinstance(n, ast.Call) and isinstance(n.args[REASON_ARG[_callee(n) or ""]], ast.Constant)]
    assert found == ["Cond.false"]


def test_needs_edit_reasons_are_reasons():
    assert reasons.NEEDS_EDIT <= reasons.all_reasons()
    assert set(reasons.BLOCKED_BY.values()) <= reasons.all_reasons()
    assert set(reasons.BLOCKED_BY) <= set(reasons.CHECKS)


def _reasons_named_in(function: object) -> set[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))  # type: ignore[arg-type]
    return {getattr(reasons, n.attr) for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "reasons"}


def _section(heading: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n### {heading}\n")
    return text[start:text.index("\n### ", start + 1)]


def test_tool_calling_section_names_every_reason_the_tool_check_can_set():
    """_tool_verdict passes a failed connection's reason through (_connection_failure): DNSFailure,
    ConnectionRefused, TLSError... on ToolCallingSupported, where a user looking it up must find it."""
    from inquest.clients import probe

    possible = (_reasons_named_in(probe._Probe._tool_verdict) | _reasons_named_in(probe._connection_failure)) - {
        reasons.TOOL_CALLING_SUPPORTED}
    assert {reasons.CONNECTION_REFUSED, reasons.TIMEOUT, reasons.TOOL_CALLS_IGNORED} <= possible
    section = _section("ToolCallingSupported")
    assert sorted(r for r in possible if f"`{r}`" not in section) == []
