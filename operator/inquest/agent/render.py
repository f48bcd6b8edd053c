"""Kubernetes objects as compact text for a model: kubectl-like tables, concise YAML, describe digests.

Compact matters: every character here is paid for in context. Tables drop what kubectl -o wide
adds only for humans; YAML drops managedFields, the last-applied annotation and bookkeeping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

from inquest.agent.kinds import Kind
from inquest.domain.redaction import FIELD_MARKER, is_secret_name, redact, redact_cut

NOISY_ANNOTATIONS = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision-history",
)
NOISY_METADATA = ("managedFields", "resourceVersion", "selfLink", "generateName")
MAX_CELL = 80
# Bounds of a rendered object: a hostile or broken object (200 levels deep, a 50 MB value, a
# list of 100,000 addresses) renders as a bounded text, every cut marked.
MAX_DEPTH = 24
MAX_VALUE_CHARS = 16_000
MAX_LIST_ITEMS = 200


# --------------------------------------------------------------------------- small helpers


def parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def age(value: Any, now: datetime) -> str:
    """kubectl's short ages: 45s, 12m, 5h, 3d, 2y."""
    stamp = parse_time(value)
    if stamp is None:
        return "?"
    seconds = int((now - stamp).total_seconds())
    if seconds < 0:
        return "0s"
    for unit, size in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (unit in ("m",) and seconds >= size):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name") or "?")


def _cell(value: Any) -> str:
    text = " ".join(str(value if value not in (None, "") else "-").split())
    if len(text) <= MAX_CELL:
        return text
    text = redact(text)  # before the cut: "token=ab…" would no longer look like a credential
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [[_cell(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    for row in cells:
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
    return "\n".join(lines)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (config files in a ConfigMap) as ``|`` blocks: readable, and each line
    stays a line for the redaction rules instead of one escaped string."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(data: Any) -> str:
    # No folding of long lines (width): a fold between "password:" and its value would hide the
    # pair from the redaction rules; the output is cut to its budget later anyway.
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=2**31,
                     allow_unicode=True)


def bounded(value: Any, depth: int = 0) -> Any:
    """A copy of parsed JSON within :data:`MAX_DEPTH`, :data:`MAX_VALUE_CHARS` and :data:`MAX_LIST_ITEMS`."""
    if isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            return f"[... nested deeper than {MAX_DEPTH} levels cut ...]"
        return {k: bounded(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            return f"[... nested deeper than {MAX_DEPTH} levels cut ...]"
        items = [bounded(v, depth + 1) for v in value[:MAX_LIST_ITEMS]]
        if len(value) > MAX_LIST_ITEMS:
            items.append(f"[... {len(value) - MAX_LIST_ITEMS} more items cut ...]")
        return items
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return redact_cut(value, MAX_VALUE_CHARS)
    return value


def clean(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A bounded copy without managedFields, last-applied annotations and bookkeeping fields."""
    out: dict[str, Any] = bounded(dict(obj))
    md = out.get("metadata")
    if isinstance(md, dict):
        for key in NOISY_METADATA:
            md.pop(key, None)
        annotations = md.get("annotations")
        if isinstance(annotations, dict):
            for key in NOISY_ANNOTATIONS:
                annotations.pop(key, None)
            if not annotations:
                md.pop("annotations")
    return out


def concise_yaml(obj: Mapping[str, Any]) -> str:
    return to_yaml(clean(obj))


# --------------------------------------------------------------------------- status digests


def container_state(state: Mapping[str, Any] | None) -> str:
    """``running``, ``waiting(CrashLoopBackOff: back-off 5m0s…)``, ``terminated(Error, exit 1)``."""
    state = state or {}
    if "running" in state:
        return "running"
    if "waiting" in state:
        w = state.get("waiting") or {}
        msg = f": {w['message']}" if w.get("message") else ""
        return f"waiting({w.get('reason') or '?'}{msg})"
    if "terminated" in state:
        t = state.get("terminated") or {}
        parts = [str(t.get("reason") or "Terminated"), f"exit {t.get('exitCode', '?')}"]
        if t.get("signal"):
            parts.append(f"signal {t['signal']}")
        if t.get("finishedAt"):
            parts.append(f"at {t['finishedAt']}")
        if t.get("message"):
            parts.append(str(t["message"]))
        return f"terminated({', '.join(parts)})"
    return "unknown"


def pod_status(pod: Mapping[str, Any]) -> str:
    """The STATUS column of ``kubectl get pods``."""
    status = pod.get("status") or {}
    reason = str(status.get("reason") or status.get("phase") or "Unknown")
    if meta(pod).get("deletionTimestamp"):
        return "Terminating"
    inits = status.get("initContainerStatuses") or []
    for i, cs in enumerate(inits):
        state = cs.get("state") or {}
        term = state.get("terminated")
        if term and term.get("exitCode") == 0:
            continue
        if term:
            return f"Init:{term.get('reason') or 'ExitCode:' + str(term.get('exitCode'))}"
        waiting = state.get("waiting")
        if waiting and waiting.get("reason") not in (None, "PodInitializing"):
            return f"Init:{waiting['reason']}"
        return f"Init:{i}/{len(inits)}"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated"):
            term = state["terminated"]
            reason = term.get("reason") or (f"Signal:{term['signal']}" if term.get("signal")
                                            else f"ExitCode:{term.get('exitCode')}")
    return reason


def _pod_ready(pod: Mapping[str, Any]) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or []) or len(statuses)
    ready = sum(1 for cs in statuses if cs.get("ready"))
    return f"{ready}/{total}"


def _pod_restarts(pod: Mapping[str, Any], now: datetime) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    last = max((parse_time(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
                for cs in statuses), default=None, key=lambda t: t or datetime.min.replace(tzinfo=UTC))
    return f"{restarts} ({age(last.isoformat(), now)} ago)" if restarts and last else str(restarts)


def _images(template_spec: Mapping[str, Any] | None) -> str:
    return ",".join(str(c.get("image") or "?") for c in (template_spec or {}).get("containers") or [])


def _conditions_brief(conditions: Sequence[Mapping[str, Any]] | None, *, only_bad: bool = False) -> str:
    out = []
    for c in conditions or []:
        bad = c.get("status") != "True"
        if c.get("type") in ("DiskPressure", "MemoryPressure", "PIDPressure", "NetworkUnavailable",
                             "ReplicaFailure", "Failed", "Stalled"):
            bad = c.get("status") == "True"
        if only_bad and not bad:
            continue
        reason = f"({c['reason']})" if c.get("reason") else ""
        out.append(f"{c.get('type')}={c.get('status')}{reason}")
    return ",".join(out)


def _node_status(node: Mapping[str, Any]) -> str:
    conds = {c.get("type"): c.get("status") for c in (node.get("status") or {}).get("conditions") or []}
    state = "Ready" if conds.get("Ready") == "True" else "NotReady" if "Ready" in conds else "Unknown"
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    pressures = [t for t in ("DiskPressure", "MemoryPressure", "PIDPressure", "NetworkUnavailable")
                 if conds.get(t) == "True"]
    return ",".join([state, *pressures])


def _node_roles(node: Mapping[str, Any]) -> str:
    roles = [k.split("/", 1)[1] for k in (meta(node).get("labels") or {})
             if k.startswith("node-role.kubernetes.io/") and "/" in k]
    return ",".join(r for r in roles if r) or "<none>"


def _ports(svc: Mapping[str, Any]) -> str:
    out = []
    for p in (svc.get("spec") or {}).get("ports") or []:
        text = f"{p.get('port')}"
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        text += f"/{p.get('protocol') or 'TCP'}"
        if p.get("targetPort") not in (None, p.get("port")):
            text += f"->{p['targetPort']}"
        out.append(text)
    return ",".join(out)


def _selector(sel: Mapping[str, Any] | None) -> str:
    if not sel:
        return "<none>"
    labels = sel.get("matchLabels", sel) if isinstance(sel, Mapping) else {}
    if not isinstance(labels, Mapping):
        return "<complex>"
    return ",".join(f"{k}={v}" for k, v in labels.items() if isinstance(v, str)) or "<complex>"


def _endpoints(ep: Mapping[str, Any]) -> str:
    ready: list[str] = []
    not_ready = 0
    for subset in ep.get("subsets") or []:
        ports = [str(p.get("port")) for p in subset.get("ports") or []] or [""]
        for addr in subset.get("addresses") or []:
            ready.extend(f"{addr.get('ip')}:{p}" if p else str(addr.get("ip")) for p in ports)
        not_ready += len(subset.get("notReadyAddresses") or [])
    text = ",".join(ready[:6]) + (f" +{len(ready) - 6} more" if len(ready) > 6 else "") if ready else "<none>"
    return text + (f" ({not_ready} not ready)" if not_ready else "")


def _job_status(job: Mapping[str, Any]) -> str:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "Failed", "Suspended"):
            return str(c["type"]) + (f"({c['reason']})" if c.get("reason") and c["type"] == "Failed" else "")
    return "Running" if (job.get("status") or {}).get("active") else "Pending"


def event_object(ev: Mapping[str, Any]) -> str:
    io = ev.get("involvedObject") or ev.get("regarding") or {}
    return f"{str(io.get('kind') or '?').lower()}/{io.get('name') or '?'}"


def event_time(ev: Mapping[str, Any]) -> str:
    series = ev.get("series") or {}
    return str(ev.get("lastTimestamp") or series.get("lastObservedTime") or ev.get("eventTime")
               or ev.get("firstTimestamp") or meta(ev).get("creationTimestamp") or "")


def event_line(ev: Mapping[str, Any], now: datetime) -> list[str]:
    count = ev.get("count") or (ev.get("series") or {}).get("count") or 1
    message = str(ev.get("message") or ev.get("note") or "").strip()
    if int(count) > 1:
        message += f" (x{count})"
    return [age(event_time(ev), now), str(ev.get("type") or "Normal"), str(ev.get("reason") or ""),
            event_object(ev), message]


def sort_events(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(events, key=lambda e: parse_time(event_time(e)) or datetime.min.replace(tzinfo=UTC))


# --------------------------------------------------------------------------- list tables


def list_table(kind: Kind, items: Sequence[Mapping[str, Any]], now: datetime, *, with_namespace: bool) -> str:
    """A kubectl-like table for ``items`` of ``kind``."""
    headers, rowfn = _COLUMNS.get(kind.plural, (["AGE"], lambda o, n: [age(meta(o).get("creationTimestamp"), n)]))
    if kind.plural == "events":
        items = sort_events(items)
    lead = ["NAMESPACE", "NAME"] if with_namespace and kind.namespaced else ["NAME"]
    rows = []
    for obj in items:
        first = [meta(obj).get("namespace") or "", name_of(obj)] if len(lead) == 2 else [name_of(obj)]
        rows.append(first + rowfn(obj, now))
    if kind.plural == "events":  # the name of an event is noise; its object says what it is about
        lead = lead[:-1]
        rows = [r[: len(lead)] + r[len(lead) + 1:] for r in rows]
    return table(lead + headers, rows)


def _created(obj: Mapping[str, Any], now: datetime) -> str:
    return age(meta(obj).get("creationTimestamp"), now)


_COLUMNS: dict[str, tuple[list[str], Any]] = {
    "pods": (["READY", "STATUS", "RESTARTS", "AGE", "NODE"],
             lambda o, n: [_pod_ready(o), pod_status(o), _pod_restarts(o, n), _created(o, n),
                           (o.get("spec") or {}).get("nodeName")]),
    "deployments": (["READY", "UP-TO-DATE", "AVAILABLE", "AGE", "IMAGES", "PROBLEMS"],
                    lambda o, n: [f"{(o.get('status') or {}).get('readyReplicas') or 0}/"
                                  f"{(o.get('spec') or {}).get('replicas', 1)}",
                                  (o.get("status") or {}).get("updatedReplicas") or 0,
                                  (o.get("status") or {}).get("availableReplicas") or 0, _created(o, n),
                                  _images(((o.get("spec") or {}).get("template") or {}).get("spec")),
                                  _conditions_brief((o.get("status") or {}).get("conditions"), only_bad=True)]),
    "replicasets": (["DESIRED", "CURRENT", "READY", "AGE", "IMAGES"],
                    lambda o, n: [(o.get("spec") or {}).get("replicas", 1), (o.get("status") or {}).get("replicas")
                                  or 0, (o.get("status") or {}).get("readyReplicas") or 0, _created(o, n),
                                  _images(((o.get("spec") or {}).get("template") or {}).get("spec"))]),
    "statefulsets": (["READY", "AGE", "IMAGES"],
                     lambda o, n: [f"{(o.get('status') or {}).get('readyReplicas') or 0}/"
                                   f"{(o.get('spec') or {}).get('replicas', 1)}", _created(o, n),
                                   _images(((o.get("spec") or {}).get("template") or {}).get("spec"))]),
    "daemonsets": (["DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
                   lambda o, n: [(o.get("status") or {}).get(k) or 0 for k in
                                 ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
                                  "updatedNumberScheduled", "numberAvailable")] + [_created(o, n)]),
    "jobs": (["STATUS", "COMPLETIONS", "AGE"],
             lambda o, n: [_job_status(o), f"{(o.get('status') or {}).get('succeeded') or 0}/"
                           f"{(o.get('spec') or {}).get('completions', 1)}", _created(o, n)]),
    "cronjobs": (["SCHEDULE", "SUSPEND", "ACTIVE", "LAST-SCHEDULE", "AGE"],
                 lambda o, n: [(o.get("spec") or {}).get("schedule"), (o.get("spec") or {}).get("suspend", False),
                               len((o.get("status") or {}).get("active") or []),
                               age((o.get("status") or {}).get("lastScheduleTime"), n)
                               if (o.get("status") or {}).get("lastScheduleTime") else "<none>", _created(o, n)]),
    "services": (["TYPE", "CLUSTER-IP", "PORTS", "SELECTOR", "AGE"],
                 lambda o, n: [(o.get("spec") or {}).get("type", "ClusterIP"), (o.get("spec") or {}).get("clusterIP"),
                               _ports(o), _selector((o.get("spec") or {}).get("selector")), _created(o, n)]),
    "endpoints": (["ENDPOINTS", "AGE"], lambda o, n: [_endpoints(o), _created(o, n)]),
    "configmaps": (["DATA", "AGE"],
                   lambda o, n: [",".join(list(o.get("data") or {})[:10]) or "<none>", _created(o, n)]),
    "events": (["LAST", "TYPE", "REASON", "OBJECT", "MESSAGE"], lambda o, n: event_line(o, n)),
    "nodes": (["STATUS", "ROLES", "AGE", "VERSION"],
              lambda o, n: [_node_status(o), _node_roles(o), _created(o, n),
                            ((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion")]),
    "namespaces": (["STATUS", "AGE"],
                   lambda o, n: [(o.get("status") or {}).get("phase", "Active"), _created(o, n)]),
    "persistentvolumeclaims": (["STATUS", "VOLUME", "CAPACITY", "STORAGECLASS", "AGE"],
                               lambda o, n: [(o.get("status") or {}).get("phase"),
                                             (o.get("spec") or {}).get("volumeName"),
                                             ((o.get("status") or {}).get("capacity") or {}).get("storage"),
                                             (o.get("spec") or {}).get("storageClassName"), _created(o, n)]),
    "ingresses": (["CLASS", "HOSTS", "ADDRESS", "AGE"],
                  lambda o, n: [(o.get("spec") or {}).get("ingressClassName"),
                                ",".join(str(r.get("host") or "*") for r in (o.get("spec") or {}).get("rules") or []),
                                ",".join(str(i.get("ip") or i.get("hostname")) for i in
                                         ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []),
                                _created(o, n)]),
    "horizontalpodautoscalers": (["REFERENCE", "MIN", "MAX", "REPLICAS", "PROBLEMS", "AGE"],
                                 lambda o, n: [f"{((o.get('spec') or {}).get('scaleTargetRef') or {}).get('kind')}/"
                                               f"{((o.get('spec') or {}).get('scaleTargetRef') or {}).get('name')}",
                                               (o.get("spec") or {}).get("minReplicas", 1),
                                               (o.get("spec") or {}).get("maxReplicas"),
                                               (o.get("status") or {}).get("currentReplicas"),
                                               _conditions_brief((o.get("status") or {}).get("conditions"),
                                                                 only_bad=True), _created(o, n)]),
}


# --------------------------------------------------------------------------- describe


def _env_line(env: Mapping[str, Any]) -> str:
    name = env.get("name")
    source = env.get("valueFrom")
    if not source:
        value = env.get("value", "")
        return f"{name}={FIELD_MARKER if value and is_secret_name(str(name)) else value}"
    if "secretKeyRef" in source:  # a reference only: the value never leaves the cluster
        ref = source["secretKeyRef"] or {}
        return f"{name} from secret {ref.get('name')}/{ref.get('key')}" + (
            " (optional)" if ref.get("optional") else "")
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"] or {}
        return f"{name} from configmap {ref.get('name')}/{ref.get('key')}"
    if "fieldRef" in source:
        return f"{name} from field {(source['fieldRef'] or {}).get('fieldPath')}"
    if "resourceFieldRef" in source:
        return f"{name} from resource {(source['resourceFieldRef'] or {}).get('resource')}"
    return f"{name} from {', '.join(source)}"


def _probe(probe: Mapping[str, Any] | None) -> str:
    if not probe:
        return ""
    if "httpGet" in probe:
        h = probe["httpGet"] or {}
        what = f"http-get {h.get('path', '/')}:{h.get('port')}"
    elif "tcpSocket" in probe:
        what = f"tcp :{(probe['tcpSocket'] or {}).get('port')}"
    elif "exec" in probe:
        what = "exec " + " ".join((probe["exec"] or {}).get("command") or [])
    elif "grpc" in probe:
        what = f"grpc :{(probe['grpc'] or {}).get('port')}"
    else:
        what = "?"
    timing = [f"{k}={probe[k]}" for k in ("initialDelaySeconds", "periodSeconds", "timeoutSeconds",
                                           "failureThreshold") if k in probe]
    return what + (f" ({', '.join(timing)})" if timing else "")


def _container_spec_lines(c: Mapping[str, Any], indent: str) -> list[str]:
    lines = [f"{indent}{c.get('name')}: image={c.get('image')}"]
    if c.get("command") or c.get("args"):
        lines.append(f"{indent}  command: {' '.join(str(x) for x in (c.get('command') or []) + (c.get('args') or []))}")
    res = c.get("resources") or {}
    if res:
        parts = [f"{kind} {','.join(f'{k}={v}' for k, v in (res.get(kind) or {}).items())}"
                 for kind in ("requests", "limits") if res.get(kind)]
        if parts:
            lines.append(f"{indent}  resources: {'; '.join(parts)}")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if c.get(probe):
            lines.append(f"{indent}  {probe[:-5]}: {_probe(c[probe])}")
    env = c.get("env") or []
    if env:
        lines.append(f"{indent}  env: " + "; ".join(_env_line(e) for e in env))
    for src in c.get("envFrom") or []:
        if "secretRef" in src:
            lines.append(f"{indent}  envFrom: secret {(src['secretRef'] or {}).get('name')}")
        elif "configMapRef" in src:
            lines.append(f"{indent}  envFrom: configmap {(src['configMapRef'] or {}).get('name')}")
    return lines


def _header(kind: Kind, obj: Mapping[str, Any], now: datetime) -> list[str]:
    md = meta(obj)
    where = f"{md.get('namespace')}/" if md.get("namespace") else ""
    lines = [f"{kind.kind} {where}{name_of(obj)} (age {age(md.get('creationTimestamp'), now)})"]
    if md.get("labels"):
        lines.append("labels: " + ",".join(f"{k}={v}" for k, v in md["labels"].items()))
    owners = md.get("ownerReferences") or []
    if owners:
        lines.append("owners: " + ",".join(f"{o.get('kind')}/{o.get('name')}" for o in owners))
    if md.get("deletionTimestamp"):
        lines.append(f"deleting since {md['deletionTimestamp']}")
    return lines


def _describe_pod(pod: Mapping[str, Any], now: datetime) -> list[str]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    lines = [f"status: {pod_status(pod)} phase={status.get('phase')} node={spec.get('nodeName') or '<none>'} "
             f"ip={status.get('podIP') or '<none>'} qos={status.get('qosClass') or '?'}"]
    if status.get("message") or status.get("reason"):
        lines.append(f"reason: {status.get('reason') or ''} {status.get('message') or ''}".rstrip())
    if status.get("conditions"):
        lines.append("conditions: " + _conditions_brief(status["conditions"]))
    statuses = {cs.get("name"): cs for cs in (status.get("initContainerStatuses") or [])
                + (status.get("containerStatuses") or [])}
    for group, containers in (("init containers", spec.get("initContainers") or []),
                              ("containers", spec.get("containers") or [])):
        if not containers:
            continue
        lines.append(f"{group}:")
        for c in containers:
            lines.extend(_container_spec_lines(c, "  "))
            cs = statuses.get(c.get("name"))
            if cs:
                lines.append(f"    state: {container_state(cs.get('state'))} ready={cs.get('ready')} "
                             f"restarts={cs.get('restartCount', 0)}")
                if cs.get("lastState"):
                    lines.append(f"    last state: {container_state(cs.get('lastState'))}")
    volumes = [_volume(v) for v in spec.get("volumes") or []
               if not str(v.get("name", "")).startswith("kube-api-access")]
    if volumes:
        lines.append("volumes: " + ", ".join(volumes))
    return lines


def _volume(v: Mapping[str, Any]) -> str:
    source = next((k for k in v if k != "name"), "?")
    ref = ""
    if source == "secret":
        ref = f":{(v.get('secret') or {}).get('secretName')}"
    elif source == "configMap":
        ref = f":{(v.get('configMap') or {}).get('name')}"
    elif source == "persistentVolumeClaim":
        ref = f":{(v.get('persistentVolumeClaim') or {}).get('claimName')}"
    return f"{v.get('name')}({source}{ref})"


def _describe_workload(obj: Mapping[str, Any]) -> list[str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    counts = {k: v for k, v in status.items() if isinstance(v, int) and not isinstance(v, bool)}
    lines = []
    if "replicas" in spec:
        lines.append(f"replicas: desired={spec['replicas']} " + " ".join(f"{k}={v}" for k, v in counts.items()))
    elif counts:
        lines.append("status: " + " ".join(f"{k}={v}" for k, v in counts.items()))
    if spec.get("selector"):
        lines.append(f"selector: {_selector(spec['selector'])}")
    strategy = spec.get("strategy") or spec.get("updateStrategy")
    if strategy:
        lines.append(f"strategy: {strategy.get('type')}")
    for key in ("schedule", "suspend", "completions", "parallelism", "backoffLimit", "activeDeadlineSeconds"):
        if key in spec:
            lines.append(f"{key}: {spec[key]}")
    template = (spec.get("template") or (spec.get("jobTemplate") or {}).get("spec", {}).get("template") or {})
    tspec = template.get("spec") or {}
    if tspec.get("containers"):
        lines.append("pod template:")
        for c in tspec.get("containers") or []:
            lines.extend(_container_spec_lines(c, "  "))
    if status.get("conditions"):
        lines.append("conditions:")
        for c in status["conditions"]:
            lines.append(f"  {c.get('type')}={c.get('status')} {c.get('reason') or ''}: {c.get('message') or ''}"
                         .rstrip(": "))
    return lines


def _describe_node(node: Mapping[str, Any]) -> list[str]:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    lines = [f"status: {_node_status(node)} roles={_node_roles(node)}"]
    info = status.get("nodeInfo") or {}
    if info:
        lines.append(f"versions: kubelet={info.get('kubeletVersion')} runtime={info.get('containerRuntimeVersion')} "
                     f"os={info.get('osImage')} kernel={info.get('kernelVersion')}")
    for key in ("capacity", "allocatable"):
        if status.get(key):
            lines.append(f"{key}: " + ",".join(f"{k}={v}" for k, v in status[key].items()
                                                if k in ("cpu", "memory", "pods", "ephemeral-storage")))
    if spec.get("taints"):
        lines.append("taints: " + ",".join(f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}"
                                           for t in spec["taints"]))
    if spec.get("unschedulable"):
        lines.append("unschedulable: true (cordoned)")
    lines.append("conditions:")
    for c in status.get("conditions") or []:
        lines.append(f"  {c.get('type')}={c.get('status')} {c.get('reason') or ''}: {c.get('message') or ''}"
                     .rstrip(": "))
    return lines


def _describe_generic(obj: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    if body:
        lines.append(to_yaml(body).rstrip())
    return lines


def describe(kind: Kind, obj: Mapping[str, Any], events: Sequence[Mapping[str, Any]], now: datetime) -> str:
    """``kubectl describe``-like digest: identity, status, the pod template, and the object's events."""
    lines = _header(kind, obj, now)
    if kind.plural == "pods":
        lines += _describe_pod(obj, now)
    elif kind.plural in ("deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs"):
        lines += _describe_workload(obj)
    elif kind.plural == "nodes":
        lines += _describe_node(obj)
    elif kind.plural == "services":
        spec = obj.get("spec") or {}
        lines.append(f"type={spec.get('type', 'ClusterIP')} clusterIP={spec.get('clusterIP')} ports={_ports(obj)} "
                     f"selector={_selector(spec.get('selector'))}")
    else:
        lines += _describe_generic(clean(obj))
    if events:
        lines.append("events:")
        lines.append(table(["LAST", "TYPE", "REASON", "OBJECT", "MESSAGE"],
                           [event_line(e, now) for e in sort_events(events)[-15:]]))
    else:
        lines.append("events: <none>")
    return "\n".join(lines)


def now_utc() -> datetime:
    return datetime.now(UTC)
