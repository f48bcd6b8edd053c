"""pyproject.toml declares every distribution the operator's code imports (a transitive install is no promise)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "inquest"


def _imported_top_level_modules() -> set[str]:
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"inquest", "__future__"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_distribution_is_a_runtime_dependency():
    declared = {_normalise(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0])
                for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    providers = importlib.metadata.packages_distributions()
    modules = _imported_top_level_modules()
    assert {"kopf", "openai", "httpx2", "yarl"} <= modules  # the scan sees the imports it is meant to check
    missing = {m: providers.get(m) for m in modules
               if not {_normalise(d) for d in providers.get(m, [m])} & declared}
    assert not missing, f"imported but not in [project] dependencies: {missing}"
