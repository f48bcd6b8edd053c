"""docs/ says what the code does: every YAML example is a valid object, every `kubectl get` output has
the real columns, every URL example resolves the way the operator resolves it, every environment
variable is documented, and every link and repository path exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from inquest.api.crd import PRINTER_COLUMNS
from inquest.domain import endpoints
from tests.unit.test_crds import MODELS, schema_of

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
DOC_FILES = sorted(DOCS.glob("*.md"))
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
CORE_KINDS = {"Secret", "ConfigMap", "ServiceAccount", "Namespace", "RoleBinding", "Role", "ClusterRole",
              "ClusterRoleBinding", "Deployment", "Service"}
SHORT = {"mp": "ModelProvider", "modelprovider": "ModelProvider", "modelproviders": "ModelProvider",
         "inv": "Investigation", "investigation": "Investigation", "investigations": "Investigation"}


def blocks(language: str) -> list[tuple[str, int, str]]:
    """(file name, block number, text) of every fenced block in docs/ and README.md with this info string."""
    found = []
    for path in [*DOC_FILES, ROOT / "README.md"]:
        for i, match in enumerate(FENCE.finditer(path.read_text())):
            if match.group(1) == language:
                found.append((path.name, i, match.group(2)))
    return found


YAML_BLOCKS = blocks("yaml")


def _is_values(text: str) -> bool:
    return text.lstrip().startswith("# values.yaml")


@pytest.mark.parametrize("name, index, text", YAML_BLOCKS, ids=[f"{n}#{i}" for n, i, _ in YAML_BLOCKS])
def test_yaml_example_is_valid(name, index, text):
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    assert docs, "empty YAML example"
    if _is_values(text):
        schema = json.loads((ROOT / "deploy/helm/inquest/values.schema.json").read_text())
        for doc in docs:
            jsonschema.Draft7Validator(schema).validate(doc)
        return
    for doc in docs:
        assert isinstance(doc, dict) and {"apiVersion", "kind", "metadata"} <= doc.keys(), \
            f"not a Kubernetes object (start Helm values with '# values.yaml'): {doc}"
        assert DNS1123.match(doc["metadata"]["name"]), doc["metadata"]["name"]
        namespace = doc["metadata"].get("namespace")
        assert namespace is None or DNS1123.match(namespace)
        kind = doc["kind"]
        if kind in MODELS:
            assert doc["apiVersion"] == "inquest.dev/v1alpha1"
            jsonschema.Draft4Validator(schema_of(kind)).validate(doc)
            MODELS[kind].model_validate(doc)
        else:
            assert kind in CORE_KINDS, f"no validation for kind {kind} in docs"
            if kind == "Secret":
                assert all(isinstance(v, str) for v in (doc.get("stringData") or {}).values())


def test_ca_bundles_in_examples_are_real_certificate_authorities():
    """The operator would mark a made-up caBundle InvalidCertificate: examples carry a real CA."""
    from inquest.domain.certificates import load_ca_bundle

    bundles = [doc["spec"]["tls"]["caBundle"] for _, _, text in YAML_BLOCKS for doc in yaml.safe_load_all(text)
               if isinstance(doc, dict) and doc.get("kind") == "ModelProvider"
               and (doc.get("spec") or {}).get("tls", {}).get("caBundle")]
    assert bundles, "no example shows spec.tls.caBundle"
    for bundle in bundles:
        load_ca_bundle(bundle, source="spec.tls.caBundle")  # raises with the reason when it is not


def test_examples_cover_both_kinds_and_every_doc_that_should_have_them():
    kinds = {d["kind"] for _, _, t in YAML_BLOCKS if not _is_values(t) for d in yaml.safe_load_all(t) if d}
    assert {"ModelProvider", "Investigation", "Secret"} <= kinds
    per_file = {n for n, _, _ in YAML_BLOCKS}
    assert {"quickstart.md", "providers.md", "configuration.md"} <= per_file
    assert sum(1 for n, _, _ in YAML_BLOCKS if n == "providers.md") >= 8


def test_a_broken_example_would_be_caught():
    """The validation above is not a formality: the same checks refuse a typo'd field."""
    doc = yaml.safe_load("""apiVersion: inquest.dev/v1alpha1
kind: ModelProvider
metadata: {name: x}
spec: {baseURL: "http://h/v1", model: m, apiKeySecretRef: {name: s}}
""")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema_of("ModelProvider")).validate(doc)


# --------------------------------------------------------------------------- kubectl get output


def _expected_header(kind: str, wide: bool, all_namespaces: bool) -> list[str]:
    columns = [c["name"].upper() for c in PRINTER_COLUMNS[kind] if wide or not c.get("priority")]
    return (["NAMESPACE"] if all_namespaces else []) + ["NAME", *columns]


def kubectl_get_outputs() -> list[tuple[str, str, list[str]]]:
    """(file, command, output lines) for every `$ kubectl get` of our kinds in console blocks."""
    found = []
    for name, _, text in blocks("console"):
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("$ kubectl get "):
                continue
            output = []
            for following in lines[i + 1:]:
                if following.startswith("$ "):
                    break
                output.append(following)
            found.append((name, line[2:], output))
    return found


GET_OUTPUTS = kubectl_get_outputs()


@pytest.mark.parametrize("name, command, output", GET_OUTPUTS, ids=[f"{n}: {c}" for n, c, _ in GET_OUTPUTS])
def test_kubectl_get_output_has_the_real_columns(name, command, output):
    args = command.split()[2:]
    kinds = [SHORT[r] for r in args[0].split(",")]
    wide = "wide" in args
    all_ns = "-A" in args or "--all-namespaces" in args
    tables: list[list[str]] = [[]]
    for line in output:
        if line.strip():
            tables[-1].append(line)
        elif tables[-1]:
            tables.append([])
    tables = [t for t in tables if t]
    assert len(tables) == len(kinds)
    for kind, table in zip(kinds, tables, strict=True):
        header, *rows = table
        assert header.split() == _expected_header(kind, wide, all_ns), f"{command}: {header}"
        starts = [m.start() for m in re.finditer(r"\S+", header)]
        for row in rows:
            first = row.split()[0 if not all_ns else 1]
            if len(kinds) > 1:
                assert first.startswith(f"{kind.lower()}.inquest.dev/"), row
            # kubectl aligns every value under its header
            for start in starts[1:]:
                assert row[start - 1] == " ", f"misaligned column at {start}: {row!r}"


def test_the_quickstart_shows_both_kinds_as_kubectl_prints_them():
    commands = [c for n, c, _ in GET_OUTPUTS if n == "quickstart.md"]
    assert "kubectl get mp,inv" in commands and "kubectl get mp -o wide" in commands


# --------------------------------------------------------------------------- providers.md tables


def _table_rows(text: str, header_start: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([re.sub(r"^`|`$", "", c.strip()) for c in line.strip("|").split("|")])
    return rows


def test_url_examples_resolve_as_documented():
    rows = _table_rows((DOCS / "providers.md").read_text(), "| `spec.baseURL` |")
    assert len(rows) >= 4
    for base, chat, models in rows:
        resolved = endpoints.resolve(base)
        assert (resolved.chat_url, resolved.models_url) == (chat, models), base


def test_model_name_examples_are_sent_as_documented():
    rows = _table_rows((DOCS / "providers.md").read_text(), "| `spec.model` |")
    assert rows
    for model, sent in rows:
        assert endpoints.wire_model_name(model) == sent


# --------------------------------------------------------------------------- configuration.md


def _code_env_vars() -> set[str]:
    """Every variable the operator's code reads: INQUEST_ names wherever they appear, and any other
    name read through os.environ / os.getenv (SSL_CERT_FILE...). The CLI's own are checked below."""
    found = set()
    for path in (ROOT / "operator" / "inquest").rglob("*.py"):
        if path.name == "cli.py":
            continue
        text = path.read_text()
        found |= set(re.findall(r"[\"'](INQUEST_[A-Z0-9_]+)[\"']", text))
        found |= set(re.findall(r"os\.(?:environ\.get|getenv)\(\s*[\"']([A-Z][A-Z0-9_]+)[\"']", text))
        found |= set(re.findall(r"os\.environ\[[\"']([A-Z][A-Z0-9_]+)[\"']\]", text))
    return found


def test_every_environment_variable_is_documented_in_one_place():
    text = (DOCS / "configuration.md").read_text()
    in_code = _code_env_vars()
    documented = {v for v in re.findall(r"`([A-Z][A-Z0-9_]+)`", text) if v.startswith("INQUEST_") or v in in_code}
    assert in_code, "the operator reads no INQUEST_ variables? the scan is broken"
    assert not in_code - documented, f"read by the operator, missing from docs/configuration.md: {in_code - documented}"
    assert not documented - in_code, f"documented but read nowhere: {documented - in_code}"
    set_by_deploy = set(re.findall(r"- name: ([A-Z][A-Z0-9_]+)", (ROOT / "deploy/kustomize/base/deployment.yaml")
                                   .read_text()))
    set_by_deploy |= set(re.findall(r"- name: ([A-Z][A-Z0-9_]+)",
                                    (ROOT / "deploy/helm/inquest/templates/deployment.yaml").read_text()))
    assert set_by_deploy and all(f"`{v}`" in text for v in set_by_deploy), set_by_deploy
    assert "`KUBECONFIG`" in text


def test_every_variable_the_cli_reads_is_documented():
    text = (DOCS / "configuration.md").read_text()
    source = (ROOT / "operator" / "inquest" / "cli.py").read_text()
    read = set(re.findall(r"environ\.get\(\"([A-Z][A-Z0-9_]+)\"", source))
    assert {"OPENAI_API_BASE", "OPENAI_API_KEY", "CERTIFICATE", "MODEL"} <= read
    assert all(f"`{v}`" in text for v in read), read


@pytest.mark.parametrize("command", ["check", "ask"])
def test_documented_cli_flags_exist(command):
    from inquest.cli import _build_parser

    parser = _build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    flags = {opt for action in parser._actions for opt in action.option_strings}
    text = (DOCS / "configuration.md").read_text()
    section = text.split("## `inquest check` and `inquest ask`", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`(--?[A-Za-z][a-z-]*)", section))
    assert flags - {"-h", "--help"} <= documented, flags - documented


def test_inquest_check_output_in_the_docs_looks_like_the_real_one():
    from inquest.domain import reasons

    shown = [text for _, _, text in blocks("console") if "$ inquest check" in text]
    assert shown
    for text in shown:
        lines = text.splitlines()
        start = next(i for i, ln in enumerate(lines) if ln.startswith("CONDITION"))
        assert lines[start].split() == ["CONDITION", "STATUS", "REASON", "MESSAGE"]
        rows = [ln.split() for ln in lines[start + 1:] if ln.strip()][:len(reasons.CONDITION_TYPES)]
        assert [r[0] for r in rows] == [reasons.READY, *reasons.CHECKS]
        assert all(r[1] in ("True", "False", "Unknown") and r[2] in reasons.all_reasons() for r in rows), rows
        assert lines[-1].strip() in ("Ready", "NotReady", "Invalid")


def test_documented_run_flags_exist():
    from inquest.cli import _build_parser

    run = _build_parser()._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    flags = {opt for action in run._actions for opt in action.option_strings}
    text = (DOCS / "configuration.md").read_text()
    table = text.split("## `inquest run`", 1)[1].split("##", 1)[0]
    documented = set(re.findall(r"`(--?[A-Za-z][a-z-]*)", table))
    assert documented <= flags, documented - flags
    assert flags - {"-h", "--help"} <= documented, f"undocumented flags: {flags - {'-h', '--help'} - documented}"


# --------------------------------------------------------------------------- links and paths


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", path.read_text(), re.M)}


def _links() -> list[tuple[str, str]]:
    out = []
    for path in DOC_FILES:
        text = re.sub(r"``.*?``|`[^`\n]*`", "", FENCE.sub("", path.read_text()))
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if not re.match(r"https?://", target):
                out.append((path.name, target))
    return out


@pytest.mark.parametrize("name, target", _links(), ids=[f"{n}->{t}" for n, t in _links()])
def test_relative_links_resolve(name, target):
    file, _, anchor = target.partition("#")
    path = (DOCS / file) if file else DOCS / name
    assert path.exists(), f"{name} links to missing {target}"
    if anchor:
        assert anchor in _anchors(path), f"{name} links to missing anchor {target}"


def test_readme_links_resolve_and_lead_to_the_quickstart():
    text = FENCE.sub("", (ROOT / "README.md").read_text())
    targets = [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"https?://", t)]
    assert "docs/quickstart.md" in targets
    for target in targets:
        assert (ROOT / target.partition("#")[0]).exists(), f"README.md links to missing {target}"


def test_repository_paths_named_in_docs_exist():
    for path in DOC_FILES:
        for ref in re.findall(r"`((?:deploy|crds|docs|operator|tests)/[\w./-]*)`", path.read_text()):
            assert (ROOT / ref.split(" ")[0]).exists(), f"{path.name} names {ref}, which does not exist"


# --------------------------------------------------------------------------- security.md


def test_security_redaction_table_is_what_the_rules_do():
    """Every example of the table goes through the real rules and comes out as documented; every rule
    has an example."""
    from inquest.domain.redaction import RULES, redact

    rows = _table_rows((DOCS / "security.md").read_text(), "| rule | matches | example |")
    assert len(rows) >= len(RULES)
    documented: set[str] = set()
    for names, _, example, shown in rows:
        assert redact(example) == shown, f"{example!r} is sent as {redact(example)!r}, the doc says {shown!r}"
        listed = set(re.findall(r"[a-z][a-z0-9-]+", names.replace("none", "")))
        assert listed == set(re.findall(r"\[REDACTED:([a-z0-9-]+)\]", shown)), (names, shown)
        documented |= listed
    assert documented == {r.name for r in RULES}


def test_security_structural_redaction_table_is_what_redact_object_does():
    from inquest.domain.redaction import redact_object

    rows = _table_rows((DOCS / "security.md").read_text(), "| field in an object |")
    assert len(rows) >= 4
    for _, example, shown in rows:
        assert redact_object(json.loads(example)) == json.loads(shown), example


def test_security_lists_the_investigator_roles_kinds():
    text = " ".join((DOCS / "security.md").read_text().split())
    listed = text.split("plus `pods/log`:", 1)[1].split(". Never Secrets", 1)[0]
    kinds = {k.strip() for k in re.split(r",|\band\b", listed) if k.strip()}
    role = yaml.safe_load((ROOT / "deploy/kustomize/base/rbac-investigator.yaml").read_text())
    granted = {r for rule in role["rules"] for r in rule["resources"]} - {"pods/log"}
    assert kinds == granted, kinds ^ granted


def test_security_names_the_defaults_the_code_uses():
    from inquest.domain import investigation as inv

    text = (DOCS / "security.md").read_text()
    assert f"**`{inv.DEFAULT_SERVICE_ACCOUNT}`**" in text
    for reason in (inv.R_SA_NOT_FOUND, inv.R_PROVIDER_NOT_ALLOWED):
        assert f"`{reason}`" in text
    assert inv.service_account_missing_message("shop", inv.DEFAULT_SERVICE_ACCOUNT).split("&& ")[1] \
        .replace(" -n shop", "") in " ".join(text.replace("\\\n", "").split())



def test_security_states_the_bounds_the_code_uses():
    from inquest.agent import loop, render, tools
    from inquest.domain import investigation as inv

    text = " ".join((DOCS / "security.md").read_text().split())
    for phrase in (f"{tools.LOG_LIMIT_BYTES:,} bytes", f"at most {tools.MAX_LOG_CHARS:,} characters",
                   f"longer than {tools.MAX_LOG_LINE:,} characters is redacted whole and then cut to "
                   f"{tools.MAX_LOG_LINE:,}", f"deeper than {render.MAX_DEPTH} levels",
                   f"longer than {render.MAX_VALUE_CHARS:,} characters is redacted and then cut to "
                   f"{render.MAX_VALUE_CHARS:,}", f"first {render.MAX_LIST_ITEMS} items",
                   f"longer than {loop.MAX_REPLAYED_ARGUMENTS:,} characters, or not valid JSON, are replaced by `{{}}`",
                   f"cut to {inv.TOOL_ARGUMENTS_IN_STATUS} characters (the last {inv.TOOL_CALLS_IN_STATUS} calls"):
        assert phrase in text, phrase
