"""The ``inquest`` command.

- ``inquest run``: the operator (Kopf) against the current kubeconfig or the in-cluster config;
- ``inquest check -f provider.yaml``: the operator's validation of a ModelProvider, printed;
- ``inquest ask "QUESTION"``: one investigation from your machine, no CRDs needed;
- ``inquest version``.

``check`` and ``ask`` run the operator's own code (``clients.providers.validate``, the agent loop and
its tools); only the wiring is here.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from inquest import __version__

if TYPE_CHECKING:
    from inquest.agent.loop import AgentOutcome
    from inquest.agent.tools import ToolContext, ToolOutcome
    from inquest.clients.kube import KubeClient
    from inquest.clients.llm import ProviderConnection

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
OUTPUTS = ("text", "json", "yaml")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inquest", description="Ask your Kubernetes cluster questions through "
                                     "any OpenAI-compatible LLM.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser("run", help="run the operator against the current kubeconfig or in-cluster config")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[], metavar="NS",
                       help="watch this namespace (repeatable; glob patterns allowed)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    run.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    _kube_arguments(run)
    run.add_argument("--peering", metavar="NAME",
                     help="coordinate several replicas through this Kopf peering object (default: standalone)")
    run.add_argument("--liveness", metavar="URL",
                     help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz")

    check = sub.add_parser(
        "check", help="validate a ModelProvider exactly as the operator does and print every condition",
        description="Validate a ModelProvider the way the operator does: Secrets, URL, certificate, that the "
        "endpoint answers, the key, the model, tool calling. Secrets and ConfigMaps come from the given files "
        "first, then from the cluster of the current kubeconfig. Exit code 0 only when Ready.")
    check.add_argument("-f", "--provider", dest="files", action="append", required=True, metavar="FILE",
                       help="YAML with the ModelProvider, and optionally the Secrets/ConfigMaps it references "
                       "(repeatable)")
    check.add_argument("--namespace", metavar="NS", help="namespace of the provider when its manifest has none")
    check.add_argument("-o", "--output", choices=OUTPUTS, default="text")
    _kube_arguments(check)

    ask = sub.add_parser(
        "ask", help="investigate one question with the current kubeconfig (no operator, no CRDs)",
        description="Run one investigation from here: the operator's agent and read-only tools, with your "
        "kubeconfig's rights. The model comes from --provider FILE (a ModelProvider manifest), or from "
        "HolmesGPT's environment variables OPENAI_API_BASE, OPENAI_API_KEY (optional) and CERTIFICATE (optional, "
        "base64 PEM CA) with --model. Tool calls are reported on stderr as they happen; the answer goes to "
        "stdout.")
    ask.add_argument("question")
    ask.add_argument("--model", metavar="NAME", help="model name, e.g. openai/qwen2.5-7b-instruct (default: $MODEL, "
                     "or the provider file's)")
    ask.add_argument("--provider", dest="files", action="append", metavar="FILE",
                     help="a ModelProvider manifest (and its Secrets) instead of the environment (repeatable)")
    where = ask.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", metavar="NS", help="namespace to investigate (default: the "
                       "kubeconfig context's, else default)")
    where.add_argument("-A", "--all-namespaces", action="store_true", help="let the tools read every namespace")
    ask.add_argument("--max-steps", type=int, default=20, metavar="N", help="model calls at most (default 20)")
    ask.add_argument("--timeout", type=int, default=300, metavar="SECONDS", help="deadline (default 300)")
    ask.add_argument("-o", "--output", choices=OUTPUTS, default="text")
    ask.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    _kube_arguments(ask)

    sub.add_parser("version", help="print the version")
    return parser


def _kube_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: in-cluster, $KUBECONFIG, "
                        "~/.kube/config)")
    parser.add_argument("--context", metavar="NAME", help="kubeconfig context")


class UsageError(Exception):
    """A problem with the command line, the files or the environment: exit code 2, one line on stderr."""


# --------------------------------------------------------------------------- run


def run_operator(args: argparse.Namespace) -> int:
    import kopf

    import inquest.main  # noqa: F401  (registers the handlers)
    from inquest.clients import Clients, KubeConfigMissing

    try:
        clients = Clients.from_environment(args.kubeconfig, args.context)
    except KubeConfigMissing as exc:
        print(f"inquest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    kopf.configure(verbose=args.verbose, debug=args.verbose)
    if not args.verbose:  # one access-log line per liveness probe drowns the operator's own log
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    namespaces = list(args.namespace)
    kopf.run(
        clusterwide=args.all_namespaces or not namespaces,
        namespaces=namespaces,
        standalone=args.peering is None,
        peering_name=args.peering,
        liveness_endpoint=args.liveness,
        memo=kopf.Memo(clients=clients),
    )
    return EXIT_OK


# --------------------------------------------------------------------------- manifests and Secrets


class ObjectSource:
    """Secrets and ConfigMaps for ``clients.connection``: from manifests first, then from the cluster.

    It offers the two methods of ``KubeClient`` that reference resolution uses, so the operator's own
    resolution code runs unchanged.
    """

    def __init__(self, manifests: Sequence[Mapping[str, Any]], default_namespace: str,
                 cluster: KubeClient | None, cluster_error: str | None = None) -> None:
        self.default_namespace = default_namespace
        self.cluster = cluster
        self.cluster_error = cluster_error
        self.objects: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        for doc in manifests:
            meta = doc.get("metadata") or {}
            if doc.get("kind") in ("Secret", "ConfigMap") and meta.get("name"):
                ns = str(meta.get("namespace") or default_namespace)
                self.objects[(str(doc["kind"]), ns, str(meta["name"]))] = doc

    async def read_secret(self, namespace: str, name: str) -> tuple[str, dict[str, bytes]] | None:
        doc = self.objects.get(("Secret", namespace, name))
        if doc is not None:
            data = {k: base64.b64decode(v or "") for k, v in (doc.get("data") or {}).items()}
            for k, v in (doc.get("stringData") or {}).items():
                data[k] = v if isinstance(v, bytes) else str(v).encode()
            return str(doc.get("type") or "Opaque"), data
        if self.cluster is not None:
            return await self.cluster.read_secret(namespace, name)
        return None

    async def read_configmap(self, namespace: str, name: str) -> dict[str, str] | None:
        doc = self.objects.get(("ConfigMap", namespace, name))
        if doc is not None:
            data = {k: str(v) for k, v in (doc.get("data") or {}).items()}
            for k, v in (doc.get("binaryData") or {}).items():
                data.setdefault(k, base64.b64decode(v).decode("utf-8", "replace"))
            return data
        if self.cluster is not None:
            return await self.cluster.read_configmap(namespace, name)
        return None


def load_manifests(files: Sequence[str]) -> list[dict[str, Any]]:
    import yaml

    docs: list[dict[str, Any]] = []
    for name in files:
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text()
            loaded = [d for d in yaml.safe_load_all(text) if d is not None]
        except OSError as exc:
            raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise UsageError(f"{name} is not valid YAML: {' '.join(str(exc).split())}") from None
        for doc in loaded:
            if not isinstance(doc, dict):
                raise UsageError(f"{name} holds something that is not a Kubernetes object")
            docs.append(doc)
    return docs


def the_provider(docs: Sequence[Mapping[str, Any]], files: Sequence[str]) -> dict[str, Any]:
    providers = [dict(d) for d in docs if d.get("kind") == "ModelProvider"]
    if len(providers) != 1:
        raise UsageError(f"{', '.join(files)} must hold exactly one ModelProvider, found {len(providers)}")
    return providers[0]


def kube_from_args(args: argparse.Namespace) -> tuple[KubeClient | None, str | None, str | None]:
    """(client, the context's namespace, why there is no client)."""
    from inquest.clients.kube import KubeClient, KubeConfigMissing, load_configuration

    try:
        cfg = load_configuration(args.kubeconfig, args.context)
    except KubeConfigMissing as exc:
        return None, None, str(exc)
    return KubeClient(cfg), _context_namespace(args.kubeconfig, args.context), None


def _context_namespace(kubeconfig: str | None, context: str | None) -> str | None:
    import kubernetes

    try:
        contexts, active = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig)
    except Exception:  # in-cluster, or no kubeconfig: the ServiceAccount's namespace
        try:
            return Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read_text().strip() or None
        except OSError:
            return None
    chosen = next((c for c in contexts if c.get("name") == context), active) if context else active
    return ((chosen or {}).get("context") or {}).get("namespace") or None


# --------------------------------------------------------------------------- check


async def check_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from inquest.clients import providers

    docs = load_manifests(args.files)
    body = the_provider(docs, args.files)
    kube, context_ns, no_cluster = kube_from_args(args)
    meta = body.setdefault("metadata", {})
    meta["namespace"] = meta.get("namespace") or args.namespace or context_ns or "default"
    meta.setdefault("name", "provider")
    source = ObjectSource(docs, meta["namespace"], kube, no_cluster)
    try:
        outcome = await providers.validate(cast("KubeClient", source), providers.ProviderRegistry(), body,
                                           write=False)
    finally:
        if kube is not None:
            kube.close()
    assert outcome is not None  # write=False never sees a deletion
    status = outcome.status
    conditions = status.get("conditions") or []
    if args.output == "text":
        where = f"ModelProvider {meta['namespace']}/{meta['name']}"
        out.write(f"{where}: {status.get('endpoint') or '(no usable URL)'}\n\n")
        rows = [("CONDITION", "STATUS", "REASON", "MESSAGE")]
        rows += [(c["type"], c["status"], c["reason"], c.get("message", "")) for c in conditions]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for row in rows:
            out.write("  ".join(v.ljust(widths[i]) for i, v in enumerate(row[:3])) + "  " + row[3] + "\n")
        out.write(f"\n{outcome.phase}\n")
        if no_cluster and any(c["reason"] in ("SecretNotFound", "ConfigMapNotFound") for c in conditions):
            err.write(f"inquest: Secrets and ConfigMaps not in {', '.join(args.files)} could not be read from a "
                      f"cluster: {no_cluster}\n")
    else:
        _dump({"apiVersion": body.get("apiVersion"), "kind": "ModelProvider", "metadata": meta,
               "status": {k: v for k, v in status.items() if v is not None}}, args.output, out)
    return EXIT_OK if outcome.phase == "Ready" else EXIT_FAILED


def _dump(data: Any, fmt: str, out: TextIO) -> None:
    if fmt == "json":
        out.write(json.dumps(data, indent=2) + "\n")
    else:
        import yaml

        out.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))


# --------------------------------------------------------------------------- ask


def provider_from_environment(model: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A ModelProvider manifest (and the Secret of its key) from HolmesGPT's environment variables."""
    base = os.environ.get("OPENAI_API_BASE", "").strip()
    if not base:
        raise UsageError("set OPENAI_API_BASE (for example http://localhost:8080/v1) or pass --provider FILE")
    model = model or os.environ.get("MODEL", "").strip()
    if not model:
        raise UsageError("pass --model NAME (for example --model openai/qwen2.5-7b-instruct) or set MODEL")
    spec: dict[str, Any] = {"baseURL": base, "model": model}
    extra: list[dict[str, Any]] = []
    key = os.environ.get("OPENAI_API_KEY", "")
    if key.strip():
        spec["apiKeySecretRef"] = {"name": "environment", "key": "OPENAI_API_KEY"}
        extra.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "environment"},
                      "stringData": {"OPENAI_API_KEY": key}})
    certificate = os.environ.get("CERTIFICATE", "").strip()
    if certificate:
        spec["tls"] = {"caBundle": certificate}
    body = {"apiVersion": "inquest.dev/v1alpha1", "kind": "ModelProvider",
            "metadata": {"name": "environment"}, "spec": spec}
    return body, extra


async def connect(body: Mapping[str, Any], source: ObjectSource, namespace: str) -> ProviderConnection:
    from inquest.clients import connection
    from inquest.domain import provider as provider_domain

    spec, problems = provider_domain.parse_spec(body.get("spec"))
    if spec is None:
        raise UsageError("; ".join(f"{p.reason}: {p.message}" for p in problems) or "invalid ModelProvider spec")
    name = str((body.get("metadata") or {}).get("name") or "provider")
    try:
        return await connection.resolve_connection(cast("KubeClient", source), namespace, name, spec)
    except connection.ConnectionProblem as exc:
        raise UsageError(f"{exc.reason}: {exc.message}") from None


def _progress_registry(err: TextIO | None) -> Any:
    from inquest.agent.redact import redact_tool_output
    from inquest.agent.tools import ToolRegistry, shared_registry

    class ProgressRegistry(ToolRegistry):
        """The operator's tools, each call reported on stderr as it starts and ends."""

        async def call(self, ctx: ToolContext, name: str, arguments: str | None) -> ToolOutcome:
            if err is not None:
                err.write(f"→ {name} {redact_tool_output(arguments or '{}')}\n")
                err.flush()
            outcome = await super().call(ctx, name, arguments)
            if err is not None:
                result = (f"error: {redact_tool_output(outcome.error)}" if outcome.error
                          else f"{len(outcome.text)} chars")
                err.write(f"  ← {name}: {result} ({outcome.duration_ms} ms)\n")
                err.flush()
            return outcome

    return ProgressRegistry(list(shared_registry().tools.values()))


async def ask_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from inquest.agent import prompts
    from inquest.agent.budget import ContextBudget
    from inquest.agent.loop import Agent, AgentConfig
    from inquest.agent.model import OpenAIChatModel
    from inquest.agent.tools import ToolContext
    from inquest.api.investigation import InvestigationSpec, Limits, Scope
    from inquest.domain import investigation as inv

    if not 1 <= args.max_steps <= 100:
        raise UsageError("--max-steps must be between 1 and 100")
    if args.timeout < 1:
        raise UsageError("--timeout must be at least 1 second")
    kube, context_ns, no_cluster = kube_from_args(args)
    if kube is None:
        raise UsageError(str(no_cluster))
    try:
        namespace = args.namespace or context_ns or "default"
        if args.files:
            docs = load_manifests(args.files)
            body = the_provider(docs, args.files)
            if args.model:
                body.setdefault("spec", {})["model"] = args.model
            provider_ns = (body.get("metadata") or {}).get("namespace") or namespace
        else:
            body, docs = provider_from_environment(args.model)
            provider_ns = namespace
        source = ObjectSource(docs, provider_ns, kube)
        conn = await connect(body, source, provider_ns)

        spec = InvestigationSpec(question=args.question,
                                 scope=Scope(namespaces=["*"] if args.all_namespaces else [namespace]),
                                 limits=Limits(max_steps=args.max_steps, timeout_seconds=args.timeout))
        namespaces = inv.scope_namespaces(namespace, spec)
        progress = None if args.quiet else err
        if progress is not None:
            progress.write(f"asking {conn.model} at {conn.endpoints.chat_url} about "
                           f"{'all namespaces' if '*' in namespaces else ', '.join(namespaces)}\n")
        loop = asyncio.get_running_loop()
        config = AgentConfig(
            max_steps=spec.limits.max_steps, deadline=loop.time() + spec.limits.timeout_seconds,
            budget=ContextBudget.for_window(conn.context_window, conn.parameters.max_output_tokens),
            pricing=conn.pricing, request_timeout=float(conn.timeout_seconds), max_retries=conn.max_retries,
            system_role=conn.parameters.supports_system_message)
        ctx = ToolContext(kube, namespace, scope=namespaces)
        model = OpenAIChatModel(conn)
        try:
            outcome = await Agent(model, _progress_registry(progress), ctx, config).run(
                prompts.user_message(spec.question, namespaces))
        finally:
            await model.close()
    finally:
        kube.close()
    result = {"question": args.question, "namespaces": namespaces, "model": conn.model,
              "phase": inv.SUCCEEDED if outcome.succeeded else inv.FAILED, "reason": outcome.reason,
              "message": outcome.message, **inv.progress_fields(outcome.record, conn.pricing)}
    if args.output == "text":
        _print_answer(result, outcome, out)
        if not outcome.succeeded:
            err.write(f"inquest: {outcome.reason}: {outcome.message}\n")
    else:
        _dump(result, args.output, out)
    return EXIT_OK if outcome.succeeded else EXIT_FAILED


def _print_answer(result: Mapping[str, Any], outcome: AgentOutcome, out: TextIO) -> None:
    if result.get("answer"):
        out.write(str(result["answer"]).rstrip() + "\n")
    findings = result.get("findings") or []
    if findings:
        out.write("\nFindings:\n")
    for f in findings:
        out.write(f"  [{f['severity']}] {f['title']}\n")
        res = f.get("resource") or {}
        if res.get("name"):
            where = f"{res.get('namespace')}/" if res.get("namespace") else ""
            out.write(f"      resource: {res.get('kind') or '?'} {where}{res['name']}\n")
        if f.get("detail"):
            out.write(f"      {f['detail']}\n")
        for e in f.get("evidence") or []:
            out.write(f"      evidence: {e}\n")
        if f.get("remediation"):
            out.write(f"      fix: {f['remediation']}\n")
    usage = result.get("usage") or {}
    cost = f", ${usage['cost']:.4f}" if usage.get("cost") else ""
    out.write(f"\n({result['phase']}: {outcome.record.steps} step(s), {len(outcome.record.tool_calls)} tool "
              f"call(s), {usage.get('totalTokens', 0)} tokens{cost})\n")


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    if args.command == "version":
        print(f"inquest {__version__}")
        return EXIT_OK
    if args.command == "run":
        return run_operator(args)
    command = check_command if args.command == "check" else ask_command
    try:
        return asyncio.run(command(args, sys.stdout, sys.stderr))
    except UsageError as exc:
        print(f"inquest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
