"""Label and field selectors, applied client-side as well as sent to the server.

The API server filters too; filtering again here keeps results right where a server (or an
emulator) ignores a selector, and lets tools filter on what the server cannot (e.g. events of one
involved object on older servers).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from inquest.agent.kinds import ToolError

Predicate = Callable[[Mapping[str, Any]], bool]

_SET_EXPR = re.compile(r"^\s*(?P<key>[^\s!=]+)\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")
_KEY = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?)$")


def _split(selector: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _check_key(key: str, selector: str) -> str:
    if not _KEY.match(key):
        raise ToolError(f"invalid selector {selector!r}: bad key {key!r}")
    return key


def label_predicate(selector: str | None) -> Predicate:
    """``app=web,tier!=db,env in (prod,staging),!canary,release``."""
    if not selector or not selector.strip():
        return lambda obj: True
    # Each requirement as (key, operator, values): "in", "notin", "=", "!=", "exists", "!exists".
    reqs: list[tuple[str, str, frozenset[str]]] = []
    for req in _split(selector):
        m = _SET_EXPR.match(req)
        if m:
            values = frozenset(v.strip() for v in m.group("values").split(",") if v.strip())
            reqs.append((_check_key(m.group("key"), selector), m.group("op"), values))
        elif "!=" in req:
            key, value = (s.strip() for s in req.split("!=", 1))
            reqs.append((_check_key(key, selector), "!=", frozenset({value})))
        elif "=" in req:
            key, value = (s.strip() for s in req.replace("==", "=").split("=", 1))
            reqs.append((_check_key(key, selector), "=", frozenset({value})))
        elif req.startswith("!"):
            reqs.append((_check_key(req[1:].strip(), selector), "!exists", frozenset()))
        else:
            reqs.append((_check_key(req, selector), "exists", frozenset()))

    def check(labels: Mapping[str, str], key: str, op: str, values: frozenset[str]) -> bool:
        if op in ("in", "="):
            return labels.get(key) in values
        if op in ("notin", "!="):
            return labels.get(key) not in values
        if op == "exists":
            return key in labels
        return key not in labels

    def predicate(obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(check(labels, key, op, values) for key, op, values in reqs)

    return predicate


def field_value(obj: Mapping[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    if isinstance(node, bool):
        return str(node).lower()
    return str(node)


def field_predicate(selector: str | None) -> Predicate:
    """``status.phase!=Running,spec.nodeName=node-1,metadata.name=web``."""
    if not selector or not selector.strip():
        return lambda obj: True
    reqs: list[tuple[str, str, bool]] = []  # (path, value, negated)
    for req in _split(selector):
        if "!=" in req:
            path, value = (s.strip() for s in req.split("!=", 1))
            negate = True
        elif "=" in req:
            path, value = (s.strip() for s in req.replace("==", "=").split("=", 1))
            negate = False
        else:
            raise ToolError(f"invalid field selector {selector!r}: use path=value or path!=value")
        if not re.match(r"^[A-Za-z][A-Za-z0-9.]*$", path):
            raise ToolError(f"invalid field selector {selector!r}: bad field {path!r}")
        reqs.append((path, value, negate))

    def predicate(obj: Mapping[str, Any]) -> bool:
        return all((field_value(obj, path) != value) if negate else (field_value(obj, path) == value)
                   for path, value, negate in reqs)

    return predicate
