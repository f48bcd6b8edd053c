#!/usr/bin/env python3
"""Render deploy/kustomize without kustomize, for tests and for machines without kubectl.

Only the kustomize features this repository uses are implemented, and any other field in a
kustomization.yaml is an error, so the output is either what ``kubectl kustomize`` produces (up to
document order) or nothing at all:

- ``resources``: YAML files (one or more documents) and directories holding a kustomization.yaml;
- ``images``: ``name`` with ``newName``, ``newTag`` and/or ``digest``;
- ``patches``: JSON 6902 patches (``add``, ``replace``, ``remove``), inline or from a file, with a
  ``target`` selecting by group, version, kind, name and namespace.

    python deploy/kustomize/render.py deploy/kustomize/overlays/local   # prints the YAML stream
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "images", "patches"}
Manifest = dict[str, Any]


class RenderError(ValueError):
    """The kustomization uses something this renderer does not implement, or is broken."""


def render(directory: str | Path) -> list[Manifest]:
    """The manifests a kustomization directory produces, in resource order."""
    root = Path(directory)
    path = root / "kustomization.yaml"
    if not path.is_file():
        raise RenderError(f"{root}: no kustomization.yaml")
    spec = yaml.safe_load(path.read_text()) or {}
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise RenderError(f"{path}: unsupported fields {sorted(unknown)}")
    manifests: list[Manifest] = []
    for entry in spec.get("resources") or []:
        target = root / entry
        if target.is_dir():
            manifests += render(target)
        elif target.is_file():
            manifests += [d for d in yaml.safe_load_all(target.read_text()) if d]
        else:
            raise RenderError(f"{path}: resource {entry!r} does not exist")
    _check_unique(manifests, path)
    for image in spec.get("images") or []:
        _set_image(manifests, image)
    for patch in spec.get("patches") or []:
        _apply_patch(manifests, patch, root)
    return manifests


def key(manifest: Manifest) -> tuple[str, str, str, str]:
    meta = manifest.get("metadata") or {}
    return (manifest.get("apiVersion", ""), manifest.get("kind", ""), meta.get("namespace") or "",
            meta.get("name", ""))


def _check_unique(manifests: list[Manifest], where: Path) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for m in manifests:
        if key(m) in seen:
            raise RenderError(f"{where}: {key(m)} is declared twice")
        seen.add(key(m))


def _split_image(image: str) -> tuple[str, str | None, str | None]:
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = None
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        image, tag = image[:colon], image[colon + 1:]
    return image, tag, digest


def _set_image(manifests: list[Manifest], rule: dict[str, Any]) -> None:
    unknown = set(rule) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise RenderError(f"images: unsupported fields {sorted(unknown)}")
    for manifest in manifests:
        pod = (((manifest.get("spec") or {}).get("template") or {}).get("spec")) or {}
        for container in (pod.get("containers") or []) + (pod.get("initContainers") or []):
            name, tag, digest = _split_image(container.get("image", ""))
            if name != rule["name"]:
                continue
            name = rule.get("newName", name)
            if "digest" in rule:
                tag, digest = None, rule["digest"]
            elif "newTag" in rule:
                tag, digest = rule["newTag"], None
            container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _matches(manifest: Manifest, target: dict[str, Any]) -> bool:
    group, _, version = manifest.get("apiVersion", "").rpartition("/")
    meta = manifest.get("metadata") or {}
    actual = {"group": group, "version": version, "kind": manifest.get("kind"), "name": meta.get("name"),
              "namespace": meta.get("namespace")}
    unknown = set(target) - set(actual)
    if unknown:
        raise RenderError(f"patch target: unsupported fields {sorted(unknown)}")
    return all(actual[k] == v for k, v in target.items())


def _apply_patch(manifests: list[Manifest], patch: dict[str, Any], root: Path) -> None:
    unknown = set(patch) - {"target", "patch", "path"}
    if unknown or "target" not in patch or ("patch" in patch) == ("path" in patch):
        raise RenderError(f"patches: need a target and exactly one of patch and path: {patch}")
    text = patch["patch"] if "patch" in patch else (root / patch["path"]).read_text()
    operations = yaml.safe_load(text)
    if not isinstance(operations, list):
        raise RenderError("patches: only JSON 6902 patches (a list of operations) are supported")
    hits = [m for m in manifests if _matches(m, patch["target"])]
    if not hits:
        raise RenderError(f"patches: target {patch['target']} matches nothing")
    for manifest in hits:
        for op in operations:
            _json_patch(manifest, op)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise RenderError(f"JSON pointer {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _json_patch(doc: Manifest, op: dict[str, Any]) -> None:
    kind = op.get("op")
    if kind not in ("add", "replace", "remove"):
        raise RenderError(f"JSON patch op {kind!r} is not supported")
    *parents, last = _pointer(op["path"])
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    value = copy.deepcopy(op.get("value"))
    if isinstance(node, list):
        if kind == "add":
            node.insert(len(node) if last == "-" else int(last), value)
        elif kind == "replace":
            node[int(last)] = value
        else:
            del node[int(last)]
    else:
        if kind != "add" and last not in node:
            raise RenderError(f"JSON patch {kind} {op['path']}: no such field")
        if kind == "remove":
            del node[last]
        else:
            node[last] = value


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    sys.stdout.write(yaml.safe_dump_all(render(argv[0]), sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
