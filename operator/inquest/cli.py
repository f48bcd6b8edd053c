"""The ``inquest`` command: ``inquest run`` starts the operator, ``inquest version`` prints the version."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from inquest import __version__


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inquest", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser("run", help="run the operator against the current kubeconfig or in-cluster config")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[], metavar="NS",
                       help="watch this namespace (repeatable; glob patterns allowed)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    run.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    run.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: in-cluster, $KUBECONFIG, "
                     "~/.kube/config)")
    run.add_argument("--context", metavar="NAME", help="kubeconfig context")
    run.add_argument("--peering", metavar="NAME",
                     help="coordinate several replicas through this Kopf peering object (default: standalone)")
    run.add_argument("--liveness", metavar="URL",
                     help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz")

    sub.add_parser("version", help="print the version")
    return parser


def run_operator(args: argparse.Namespace) -> int:
    import kopf

    import inquest.main  # noqa: F401  (registers the handlers)
    from inquest.clients import Clients, KubeConfigMissing

    try:
        clients = Clients.from_environment(args.kubeconfig, args.context)
    except KubeConfigMissing as exc:
        print(f"inquest: {exc}", file=sys.stderr)
        return 2
    kopf.configure(verbose=args.verbose, debug=args.verbose)
    namespaces = list(args.namespace)
    kopf.run(
        clusterwide=args.all_namespaces or not namespaces,
        namespaces=namespaces,
        standalone=args.peering is None,
        peering_name=args.peering,
        liveness_endpoint=args.liveness,
        memo=kopf.Memo(clients=clients),
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    if args.command == "version":
        print(f"inquest {__version__}")
        return 0
    return run_operator(args)


if __name__ == "__main__":
    sys.exit(main())
