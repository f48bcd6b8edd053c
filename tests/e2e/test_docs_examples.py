"""Every Kubernetes object in docs/'s YAML examples is accepted by a real API server, whole.

Server-side dry run (``?dryRun=All``): the server validates and defaults exactly as for a real create
(schemas, admission) and persists nothing, so an example's ClusterRole cannot replace deploy/'s.
Each object goes to a fresh namespace under a fresh name (its namespace may not exist here).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.controlplane import ControlPlane
from tests.e2e.harness import CLUSTER_SCOPED, KINDS, REPO_ROOT, collection_path, lost_fields, unique

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
OUR_KINDS = {"ModelProvider", "Investigation"}


def _examples() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted((REPO_ROOT / "docs").glob("*.md")):
        for index, match in enumerate(FENCE.finditer(path.read_text())):
            text = match.group(2)
            if match.group(1) == "yaml" and not text.lstrip().startswith("# values.yaml"):  # Helm values
                found.append((Path(path).name, index, text))
    return found


EXAMPLES = _examples()


def test_docs_have_examples_of_our_kinds() -> None:
    kinds = {doc.get("kind") for _, _, text in EXAMPLES for doc in yaml.safe_load_all(text) if doc}
    assert OUR_KINDS <= kinds, kinds


@pytest.mark.parametrize("name, index, text", EXAMPLES, ids=[f"{n}#{i}" for n, i, _ in EXAMPLES])
def test_docs_example_is_accepted(controlplane: ControlPlane, namespace: str, name: str, index: int,
                                  text: str) -> None:
    for doc in [d for d in yaml.safe_load_all(text) if d]:
        kind = doc["kind"]
        assert kind in KINDS, f"{name}#{index}: no e2e route for kind {kind}; add it to tests/e2e/harness.KINDS"
        body: dict[str, Any] = {**doc, "metadata": {**doc["metadata"], "name": unique("doc")}}
        if kind not in CLUSTER_SCOPED:
            body["metadata"]["namespace"] = namespace
        status, created = controlplane.request("POST", collection_path(kind, namespace) + "?dryRun=All", body)
        assert status == 201, f"{name}#{index}: {kind} {doc['metadata']['name']} refused: HTTP {status}: {created}"
        if kind in OUR_KINDS:
            assert lost_fields(created["spec"], doc["spec"]) == [], f"{name}#{index}: {kind} lost fields"
