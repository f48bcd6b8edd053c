"""The read-only tool registry: typed Python functions, JSON-schema'd from their signatures.

Each tool is ``async def name(ctx: ToolContext, <typed params>) -> str``. The registry derives a
pydantic model from the signature (``Annotated[type, Field(description=...)]`` per parameter), a
compact JSON schema from that model (titles dropped, ``$ref`` inlined, optionals flattened: small
schemas keep the first request small), validates the model's arguments with it, and turns every
failure into a readable tool result: a tool error never crashes the run.

All Kubernetes reads go through ``ToolContext``, which enforces the Investigation's namespace
scope and passes the impersonated identity to :meth:`KubeClient.get_json`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from inquest.agent import render
from inquest.agent.kinds import KIND_NAMES, SEARCH_KINDS, Kind, ToolError, kind_of, resolve_kind
from inquest.agent.selectors import field_predicate, label_predicate
from inquest.clients.kube import KubeClient, KubeError
from inquest.domain.investigation import describe_validation_error
from inquest.domain.redaction import redact_cut, redact_object
from inquest.domain.text import cut_end

SUBMIT_FINDINGS = "submit_findings"
SERVER_LIST_LIMIT = 500
DEFAULT_TOOL_TIMEOUT = 30.0
# Logs: what the server may send (a real kubelet honours limitBytes), the longest line kept whole
# and the most characters pod_logs returns (the loop cuts further, to the step's token budget).
LOG_LIMIT_BYTES = 4 * 1024 * 1024
MAX_LOG_LINE = 4_000
MAX_LOG_CHARS = 256_000
# A name or namespace is one path segment: nothing that could step out of it.
_UNSAFE_NAME = re.compile(r"[/\\%?#\s\x00-\x1f]")


# --------------------------------------------------------------------------- context


@dataclass
class ToolContext:
    """What a tool may touch: the Kubernetes API (as ``impersonate``) within ``scope`` namespaces."""

    kube: KubeClient
    namespace: str  # the Investigation's own
    scope: Sequence[str] = ()  # allowed namespaces; "*" allows all; empty = own namespace only
    impersonate: str | None = None
    now: Callable[[], datetime] = render.now_utc
    timeout: float = DEFAULT_TOOL_TIMEOUT
    served: dict[str, str] = field(default_factory=dict)  # plural -> the group-version found served

    @property
    def allowed(self) -> list[str]:
        return list(self.scope) or [self.namespace]

    @property
    def everywhere(self) -> bool:
        return "*" in self.allowed

    @property
    def default_namespace(self) -> str:
        return self.namespace if self.everywhere or self.namespace in self.allowed else self.allowed[0]

    def check_namespace(self, namespace: str | None) -> str:
        ns = (namespace or "").strip() or self.default_namespace
        check_name(ns, "namespace")
        if self.everywhere or ns in self.allowed:
            return ns
        raise ToolError(f"namespace {ns!r} is outside this investigation's scope (allowed: "
                        f"{', '.join(self.allowed)}); spec.scope.namespaces lists what may be read")

    def list_namespaces_for(self, namespace: str | None) -> list[str | None]:
        """Namespaces a list should cover: the one asked for, or every allowed one (``None`` = all)."""
        ns = (namespace or "").strip()
        if ns and ns not in ("*", "all", "-A", "--all-namespaces"):
            return [self.check_namespace(ns)]
        if self.everywhere:
            return [None]
        return list(self.allowed)

    async def get(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        """JSON from the API, with credential values already hidden (before anything renders it)."""
        data = await self.kube.get_json(path, query, impersonate=self.impersonate, timeout=self.timeout)
        return redact_object(data)

    async def get_text(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        return await self.kube.get_text(path, query, impersonate=self.impersonate, timeout=self.timeout)

    async def read(self, kind: Kind, path: Callable[[Kind], str], query: Mapping[str, Any] | None = None) -> Any:
        """``get`` of ``path(kind)`` through the first group-version of ``kind`` this server serves.

        A 404 falls back to the kind's next version only when the group-version itself is not served
        (its discovery document 404s too, or does not list the resource): a missing object is a 404
        as well, and must stay one. The version found is remembered for the rest of the run.
        """
        first = self.served.get(kind.plural, kind.api)
        versions = [first, *(v for v in kind.versions if v != first)]
        for i, version in enumerate(versions):
            try:
                data = await self.get(path(kind.at(version)), query)
            except KubeError as exc:
                if not exc.not_found or i == len(versions) - 1 or await self._serves(kind.at(version)):
                    raise
                continue
            self.served[kind.plural] = version
            return data
        raise AssertionError("unreachable: the last version returns or raises")

    async def _serves(self, kind: Kind) -> bool:
        try:
            doc = await self.get(kind.discovery_path())
        except KubeError as exc:
            return not exc.not_found  # another failure says nothing: keep the original 404
        resources = doc.get("resources") if isinstance(doc, dict) else None
        if not isinstance(resources, list):
            return True
        return any(isinstance(r, dict) and r.get("name") == kind.plural for r in resources)

    async def list(self, kind: Kind, namespace: str | None, query: Mapping[str, Any] | None = None
                   ) -> list[dict[str, Any]]:
        data = await self.read(kind, lambda k: k.collection_path(namespace),
                               {"limit": SERVER_LIST_LIMIT, **(query or {})})
        items = [i for i in ((data.get("items") if isinstance(data, dict) else None) or []) if isinstance(i, dict)]
        for item in items:  # list items carry no kind; renderers and the model like to know
            item.setdefault("kind", kind.kind)
        return items


def check_name(name: str, what: str = "name") -> str:
    """A resource name or namespace as one URL path segment; raises :class:`ToolError` otherwise."""
    if name in (".", "..") or _UNSAFE_NAME.search(name):
        raise ToolError(f"{what} {name[:80]!r} is not a valid Kubernetes {what}")
    return name


def kube_error_text(exc: KubeError, what: str) -> str:
    hint = {
        401: "the operator's credentials were refused",
        403: "the investigation's identity is not allowed to read this (RBAC)",
        404: "it does not exist (check the name and namespace, or use find_resources)",
    }.get(exc.status, "")
    text = f"{what}: {exc.status} {exc.reason}".rstrip()
    if exc.message:
        text += f": {exc.message}"
    return text + (f" ({hint})" if hint else "")


# --------------------------------------------------------------------------- registry


@dataclass
class Tool:
    name: str
    description: str
    fn: Callable[..., Awaitable[str]]
    args_model: type[BaseModel]
    parameters: dict[str, Any]

    def spec(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


@dataclass
class ToolOutcome:
    text: str
    error: str | None = None
    duration_ms: int = 0


def compact_schema(schema: Mapping[str, Any], *, lean: bool = True) -> dict[str, Any]:
    """pydantic's JSON schema made small and portable: no titles, ``$ref`` inlined, ``X | None`` -> X.

    ``lean`` also drops numeric and length bounds: the arguments are still validated against them and
    a violation comes back as a readable tool error, while every schema token is paid on every call.
    """
    defs = dict(schema.get("$defs") or {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, Mapping):
            return node
        if "$ref" in node:
            target = defs[str(node["$ref"]).rsplit("/", 1)[-1]]
            return walk({**target, **{k: v for k, v in node.items() if k != "$ref"}})
        if "anyOf" in node:
            options = [o for o in node["anyOf"] if o.get("type") != "null"]
            if len(options) == 1:
                rest = {k: v for k, v in node.items() if k not in ("anyOf", "default")}
                return walk({**options[0], **rest})
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("title", "$defs"):
                continue
            if key == "default" and value in (None, False, "", []):
                continue  # the obvious defaults cost tokens and say nothing
            if key in ("minLength", "maxLength", "minimum", "maximum") and lean:
                continue  # still validated; the error message tells the model the bound
            if key == "additionalProperties" and value is False:
                continue
            if key == "properties":
                out[key] = {name: walk(sub) for name, sub in value.items()}
            else:
                out[key] = walk(value)
        return out

    return walk(schema)  # type: ignore[no-any-return]


class ToolRegistry:
    """Named tools; :meth:`call` runs one from a model's raw (JSON text) arguments."""

    def __init__(self, tools: Sequence[Tool] = ()) -> None:
        self.tools: dict[str, Tool] = {t.name: t for t in tools}

    def add(self, tool: Tool) -> None:
        self.tools[tool.name] = tool

    def specs(self) -> list[dict[str, Any]]:
        return [t.spec() for t in self.tools.values()]

    def names(self) -> list[str]:
        return list(self.tools)

    def parse(self, name: str, arguments: str | None) -> tuple[Tool, BaseModel]:
        """The tool and its validated arguments; raises :class:`ToolError` with a message for the model."""
        tool = self.tools.get(name)
        if tool is None:
            raise ToolError(f"unknown tool {cut_end(str(name), 80)!r}; available tools: {', '.join(self.tools)}")
        text = (arguments or "").strip()
        try:
            raw = json.loads(text) if text else {}
        except json.JSONDecodeError as exc:
            raise ToolError(f"arguments for {name} are not valid JSON ({exc.msg} at char {exc.pos}); "
                            f"send a JSON object matching the tool's parameters") from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ToolError(f"arguments for {name} must be a JSON object, not {type(raw).__name__}")
        try:
            return tool, tool.args_model.model_validate(raw)
        except ValidationError as exc:
            raise ToolError(f"invalid arguments for {name}: {describe_validation_error(exc)}") from None

    async def call(self, ctx: ToolContext, name: str, arguments: str | None) -> ToolOutcome:
        started = time.monotonic()
        try:
            tool, args = self.parse(name, arguments)
            text = await asyncio.wait_for(tool.fn(ctx, **dict(args)), timeout=ctx.timeout * 2)
            outcome = ToolOutcome(text if text.strip() else "(empty result)")
        except ToolError as exc:
            outcome = ToolOutcome(f"error: {exc}", error=str(exc))
        except KubeError as exc:
            message = kube_error_text(exc, f"{name} failed")
            outcome = ToolOutcome(f"error: {message}", error=message)
        except TimeoutError:
            message = f"{name} timed out after {ctx.timeout * 2:.0f}s"
            outcome = ToolOutcome(f"error: {message}", error=message)
        except Exception as exc:  # a bug in a tool must not end the investigation
            message = f"{name} failed unexpectedly: {type(exc).__name__}: {exc}"
            outcome = ToolOutcome(f"error: {message}", error=message)
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        return outcome


def make_tool(fn: Callable[..., Awaitable[str]], *, name: str | None = None,
              description: str | None = None) -> Tool:
    """A :class:`Tool` from ``async def fn(ctx, <typed params>) -> str``; its docstring is the description."""
    hints = get_type_hints(fn, include_extras=True)
    params = list(inspect.signature(fn).parameters.values())[1:]  # skip ctx
    fields: dict[str, Any] = {}
    for p in params:
        annotation = hints.get(p.name, Any)
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (annotation, default)
    model = create_model(  # type: ignore[call-overload]
        f"{fn.__name__}_args", __config__=ConfigDict(extra="ignore"), **fields)
    desc = description or " ".join((inspect.getdoc(fn) or "").split())
    return Tool(name or fn.__name__, desc, fn, model, compact_schema(model.model_json_schema()))


# --------------------------------------------------------------------------- parameter types

KindEnumParam = Annotated[str, Field(json_schema_extra={"enum": list(KIND_NAMES)})]
KindParam = Annotated[str, Field(description="as in list_resources")]
NameParam = Annotated[str, Field(min_length=1, max_length=253)]
NamespaceParam = Annotated[str | None, Field(description="default: the investigation's namespace")]


def _namespaced(kind: Kind, ctx: ToolContext, namespace: str | None) -> str | None:
    return ctx.check_namespace(namespace) if kind.namespaced else None


def _not_found(kind: Kind, name: str, namespace: str | None) -> ToolError:
    where = f" in namespace {namespace!r}" if namespace else ""
    return ToolError(f"{kind.plural} {name!r} not found{where}; use list_resources or find_resources to see "
                     f"what exists")


async def _get_object(ctx: ToolContext, kind: Kind, name: str, namespace: str | None) -> dict[str, Any]:
    check_name(name)
    try:
        obj = await ctx.read(kind, lambda k: k.object_path(name, namespace))
    except KubeError as exc:
        if exc.not_found:
            raise _not_found(kind, name, namespace) from None
        raise
    if not isinstance(obj, dict) or (obj.get("kind") and obj.get("kind") != kind.kind):
        raise _not_found(kind, name, namespace)
    obj.setdefault("kind", kind.kind)
    return obj


def _involves(ev: Mapping[str, Any], kind: str | None, name: str | None, uid: str | None = None) -> bool:
    io = ev.get("involvedObject") or ev.get("regarding") or {}
    if uid and io.get("uid") and io.get("uid") != uid:
        return False
    if name and io.get("name") != name:
        return False
    if kind:
        wanted = kind_of(kind)
        got = str(io.get("kind") or "")
        if (wanted.kind if wanted else kind).lower() != got.lower():
            return False
    return True


async def _events(ctx: ToolContext, namespace: str | None, *, kind: str | None = None, name: str | None = None,
                  uid: str | None = None, warnings_only: bool = False) -> list[dict[str, Any]]:
    selectors = []
    if name:
        selectors.append(f"involvedObject.name={name}")
    if kind:
        k = kind_of(kind)
        selectors.append(f"involvedObject.kind={k.kind if k else kind}")
    if warnings_only:
        selectors.append("type=Warning")
    query = {"fieldSelector": ",".join(selectors)} if selectors else None
    items = await ctx.list(resolve_kind("events"), namespace, query)
    return [e for e in items if _involves(e, kind, name, uid) and (not warnings_only or e.get("type") == "Warning")]


# --------------------------------------------------------------------------- the tools


async def list_resources(
    ctx: ToolContext,
    kind: KindEnumParam,
    namespace: Annotated[str | None, Field(description="default: all namespaces in scope")] = None,
    label_selector: Annotated[str | None, Field(description="e.g. app=web")] = None,
    field_selector: Annotated[str | None, Field(description="e.g. status.phase!=Running")] = None,
    limit: Annotated[int, Field(ge=1, le=500)] = 50,
) -> str:
    """List resources of a kind as a table (kubectl get)."""
    k = resolve_kind(kind)
    labels, fields_ = label_predicate(label_selector), field_predicate(field_selector)
    query = {"labelSelector": label_selector or None, "fieldSelector": field_selector or None}
    namespaces = ctx.list_namespaces_for(namespace) if k.namespaced else [None]
    results = await asyncio.gather(*(ctx.list(k, ns, query) for ns in namespaces))
    items = [i for batch in results for i in batch if labels(i) and fields_(i)]
    where = ("namespace " + ", ".join(str(n) for n in namespaces)) if k.namespaced and namespaces != [None] else \
        "the cluster"
    if not items:
        sel = " matching the selectors" if label_selector or field_selector else ""
        return f"No {k.plural}{sel} found in {where}."
    if k.plural == "events":
        items = [dict(e) for e in render.sort_events(items)]
        shown = items[-limit:]
    else:
        items.sort(key=lambda o: (render.meta(o).get("namespace") or "", render.name_of(o)))
        shown = items[:limit]
    text = render.list_table(k, shown, ctx.now(), with_namespace=len(namespaces) > 1 or namespaces == [None])
    if len(items) > len(shown):
        text += f"\n({len(items) - len(shown)} more not shown; narrow with a selector or raise limit)"
    return text


async def get_resource(ctx: ToolContext, kind: KindParam, name: NameParam, namespace: NamespaceParam = None) -> str:
    """One resource as concise YAML (managedFields and last-applied removed)."""
    k = resolve_kind(kind)
    ns = _namespaced(k, ctx, namespace)
    return render.concise_yaml(await _get_object(ctx, k, name, ns))


async def describe_resource(ctx: ToolContext, kind: KindParam, name: NameParam,
                            namespace: NamespaceParam = None) -> str:
    """Status digest of one resource plus its events (kubectl describe)."""
    k = resolve_kind(kind)
    ns = _namespaced(k, ctx, namespace)
    obj = await _get_object(ctx, k, name, ns)
    event_ns = ns if k.namespaced else ("default" if ctx.everywhere or "default" in ctx.allowed else None)
    events: list[dict[str, Any]] = []
    if event_ns is not None:
        try:
            events = await _events(ctx, event_ns, kind=k.kind, name=name, uid=render.meta(obj).get("uid"))
        except KubeError:
            events = []
    return render.describe(k, obj, events, ctx.now())


async def list_events(
    ctx: ToolContext,
    namespace: Annotated[str | None, Field(description="default: all namespaces in scope")] = None,
    involved_kind: Annotated[str | None, Field(description="e.g. Pod")] = None,
    involved_name: str | None = None,
    warnings_only: bool = False,
    limit: Annotated[int, Field(ge=1, le=200)] = 40,
) -> str:
    """Recent events, oldest first; filter by involved object or warnings."""
    namespaces = ctx.list_namespaces_for(namespace)
    batches = await asyncio.gather(*(_events(ctx, ns, kind=involved_kind, name=involved_name,
                                             warnings_only=warnings_only) for ns in namespaces))
    events = render.sort_events([e for batch in batches for e in batch])
    if not events:
        return "No matching events (events expire after about an hour)."
    shown = events[-limit:]
    now = ctx.now()
    with_ns = len(namespaces) > 1 or namespaces == [None]
    headers = (["NAMESPACE"] if with_ns else []) + ["LAST", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    rows = [([render.meta(e).get("namespace") or ""] if with_ns else []) + render.event_line(e, now) for e in shown]
    text = render.table(headers, rows)
    if len(events) > len(shown):
        text = f"({len(events) - len(shown)} older events not shown)\n" + text
    return text


async def pod_logs(
    ctx: ToolContext,
    pod: NameParam,
    namespace: NamespaceParam = None,
    container: str | None = None,
    previous: Annotated[bool, Field(description="the crashed previous instance")] = False,
    tail_lines: Annotated[int, Field(ge=1, le=5000)] = 200,
    since_seconds: Annotated[int | None, Field(ge=1)] = None,
    grep: Annotated[str | None, Field(description="text, case-insensitive; a|b either, a.*b both in order",
                                      max_length=500)] = None,
) -> str:
    """Logs of a pod's container."""
    kind = resolve_kind("pods")
    ns = ctx.check_namespace(namespace)
    obj = await _get_object(ctx, kind, pod, ns)
    names = [str(c.get("name")) for c in (obj.get("spec") or {}).get("containers") or []]
    init_names = [str(c.get("name")) for c in (obj.get("spec") or {}).get("initContainers") or []]
    note = ""
    if container is None:
        default = (render.meta(obj).get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
        container = default if default in names else (names[0] if names else None)
        if len(names) > 1:
            note = f" (containers: {', '.join(names)})"
    elif container not in names + init_names:
        raise ToolError(f"pod {ns}/{pod} has no container {container!r}; containers: {', '.join(names + init_names)}")
    pattern = LineFilter(grep) if grep else None
    query = {"container": container, "previous": previous or None,
             "tailLines": max(tail_lines, 2000) if pattern else tail_lines, "sinceSeconds": since_seconds,
             "limitBytes": LOG_LIMIT_BYTES}
    what = f"logs of pod {ns}/{pod} container {container}{' (previous instance)' if previous else ''}"
    try:
        text = await ctx.get_text(kind.object_path(pod, ns) + "/log", query)
    except KubeError as exc:
        hint = (" The previous instance's logs exist only after a restart." if previous else "")
        hint += " describe_resource shows container states, exit codes and events without the kubelet."
        raise ToolError(kube_error_text(exc, f"could not read {what}") + hint) from None
    lines, dropped = _log_tail(text, tail_lines, pattern, scan=int(query["tailLines"] or tail_lines))
    del text
    if not lines:
        return f"{what}{note}: no log lines" + (f" matching {grep!r}" if grep else "") + "."
    header = f"{what}{note}, last {len(lines)} lines" + (f" matching {grep!r}" if grep else "") + ":"
    if dropped:
        header += f"\n[... {dropped} earlier lines cut to {MAX_LOG_CHARS} chars ...]"
    return header + "\n" + "\n".join(lines)


class LineFilter:
    """``grep`` without a regex engine: the model (which a log line may have talked into anything)
    must not be able to stall the operator with a catastrophic pattern. ``a|b`` matches either
    alternative, ``a.*b`` both parts in order, everything else literally; case-insensitive; linear.
    """

    def __init__(self, expression: str) -> None:
        unescaped = re.sub(r"\\(.)", r"\1", expression.lower())
        self.alternatives = [[p for p in alt.split(".*") if p] for alt in unescaped.split("|")]
        self.alternatives = [alt for alt in self.alternatives if alt] or [[unescaped]]

    def search(self, line: str) -> bool:
        lowered = line.lower()
        for parts in self.alternatives:
            pos = 0
            for part in parts:
                pos = lowered.find(part, pos)
                if pos < 0:
                    break
                pos += len(part)
            else:
                return True
        return False


def _log_tail(text: str, count: int, pattern: LineFilter | None, scan: int | None = None) -> tuple[list[str], int]:
    """The last ``count`` lines (matching ``pattern``, among the last ``scan`` lines: what the
    server was asked for, should it send more) within ``MAX_LOG_CHARS``, each line within
    ``MAX_LOG_LINE``; and how many lines the character bound dropped.

    Walks back from the end, so a log of any size costs only what is scanned; a long line is
    redacted before it is cut.
    """
    kept: list[str] = []
    size = 0
    dropped = 0
    scanned = 0
    end = len(text)
    while end > 0 and text[end - 1] in "\r\n":
        end -= 1
    while end > 0 and len(kept) < count and (scan is None or scanned < scan):
        scanned += 1
        start = text.rfind("\n", 0, end) + 1
        line = text[start:end].rstrip("\r")
        end = start - 1
        if pattern is not None and not pattern.search(line):
            continue
        if len(line) > MAX_LOG_LINE:
            line = redact_cut(line, MAX_LOG_LINE)
        if size + len(line) + 1 > MAX_LOG_CHARS:
            dropped = 1
            break
        kept.append(line)
        size += len(line) + 1
    if dropped:  # count the rest only while it is cheap: lines, not their content
        dropped = min(count - len(kept), text.count("\n", 0, max(0, end)) + 1)
    kept.reverse()
    return kept, dropped


async def list_namespaces(ctx: ToolContext) -> str:
    """Namespaces of the cluster, and which ones this investigation may read."""
    kind = resolve_kind("namespaces")
    items = await ctx.list(kind, None)
    items.sort(key=render.name_of)
    now = ctx.now()
    rows = [[render.name_of(n), (n.get("status") or {}).get("phase", "Active"),
             render.age(render.meta(n).get("creationTimestamp"), now),
             "yes" if ctx.everywhere or render.name_of(n) in ctx.allowed else "no"] for n in items]
    return render.table(["NAME", "STATUS", "AGE", "IN-SCOPE"], rows) if rows else "No namespaces visible."


async def node_status(ctx: ToolContext, name: Annotated[str | None, Field(description="default: all nodes")] = None
                      ) -> str:
    """Node readiness, pressure, capacity and taints."""
    kind = resolve_kind("nodes")
    if name:
        return render.describe(kind, await _get_object(ctx, kind, name, None), [], ctx.now())
    nodes = await ctx.list(kind, None)
    if not nodes:
        return "No nodes visible."
    now = ctx.now()
    rows = []
    for n in sorted(nodes, key=render.name_of):
        alloc = (n.get("status") or {}).get("allocatable") or {}
        taints = ",".join(f"{t.get('key')}:{t.get('effect')}" for t in (n.get("spec") or {}).get("taints") or [])
        rows.append([render.name_of(n), render._node_status(n), render._node_roles(n),
                     render.age(render.meta(n).get("creationTimestamp"), now),
                     ((n.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion"),
                     f"cpu={alloc.get('cpu', '?')},mem={alloc.get('memory', '?')}", taints or "<none>"])
    return render.table(["NAME", "STATUS", "ROLES", "AGE", "VERSION", "ALLOCATABLE", "TAINTS"], rows)


async def find_resources(
    ctx: ToolContext,
    name_fragment: Annotated[str, Field(min_length=1, max_length=253)],
    namespace: Annotated[str | None, Field(description="default: all namespaces in scope")] = None,
    kinds: Annotated[list[str] | None, Field(description="default: common kinds")] = None,
) -> str:
    """Find resources whose name contains a fragment, across kinds."""
    wanted = [resolve_kind(k) for k in (kinds or SEARCH_KINDS)]
    namespaces = ctx.list_namespaces_for(namespace)
    fragment = name_fragment.lower()
    jobs: list[tuple[Kind, str | None]] = []
    for k in dict.fromkeys(wanted):
        jobs.extend((k, ns) for ns in (namespaces if k.namespaced else [None]))

    async def search(k: Kind, ns: str | None) -> list[dict[str, Any]] | KubeError:
        try:
            return await ctx.list(k, ns)
        except KubeError as exc:
            return exc

    results = await asyncio.gather(*(search(k, ns) for k, ns in jobs))
    found: list[str] = []
    skipped: set[str] = set()
    for (k, _ns), result in zip(jobs, results, strict=True):
        if isinstance(result, KubeError):
            skipped.add(f"{k.plural} ({'not served' if result.status == 404 else result.status})")
            continue
        for obj in result:
            if fragment in render.name_of(obj).lower():
                where = render.meta(obj).get("namespace")
                found.append(f"{k.kind.lower()}/{render.name_of(obj)}" + (f" -n {where}" if where else ""))
    text = "\n".join(sorted(found)[:100]) if found else f"No resource name contains {name_fragment!r}."
    if len(found) > 100:
        text += f"\n({len(found) - 100} more not shown)"
    if skipped:
        text += "\n(could not search: " + ", ".join(sorted(skipped)) + ")"
    return text


# --------------------------------------------------------------------------- submit_findings (schema only)


class _FindingArg(BaseModel):
    severity: Literal["critical", "warning", "info"]
    title: str
    detail: str = ""
    resource: Annotated[str, Field(description="kind/name or namespace/kind/name")] = ""
    evidence: Annotated[list[str], Field(description="quotes from tool output")] = []
    remediation: str = ""


class SubmitFindingsArgs(BaseModel):
    summary: Annotated[str, Field(description="one line")]
    answer: str
    findings: list[_FindingArg] = []


async def _submit_placeholder(ctx: ToolContext, **_: Any) -> str:  # the loop intercepts this tool
    raise ToolError("submit_findings is handled by the agent loop")


def submit_findings_tool() -> Tool:
    return Tool(SUBMIT_FINDINGS, "Final answer; ends the investigation.",
                _submit_placeholder, SubmitFindingsArgs, compact_schema(SubmitFindingsArgs.model_json_schema()))


READ_TOOLS: tuple[Callable[..., Awaitable[str]], ...] = (
    list_resources, get_resource, describe_resource, list_events, pod_logs, list_namespaces, node_status,
    find_resources,
)


def default_registry() -> ToolRegistry:
    """The read-only cluster tools plus ``submit_findings``."""
    registry = ToolRegistry([make_tool(fn) for fn in READ_TOOLS])
    registry.add(submit_findings_tool())
    return registry


@dataclass
class _Cache:
    registry: ToolRegistry | None = None
    specs: list[dict[str, Any]] = field(default_factory=list)


_cache = _Cache()


def shared_registry() -> ToolRegistry:
    """One registry for the process: building schemas is pure and the tools are stateless."""
    if _cache.registry is None:
        _cache.registry = default_registry()
    return _cache.registry
