"""Fixtures for end-to-end tests against a real etcd + kube-apiserver.

Every test under tests/e2e is marked ``e2e``.  If the control plane cannot be
built or started, the fixture errors (the tests fail, they are never skipped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.controlplane import ControlPlane
from tests.e2e.processes import OperatorProcess, ThreadedLLM
from tests.support.certs import TestPKI
from tests.support.fake_llm import FakeLLM

_E2E_DIR = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end tests against a real kube-apiserver and etcd")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            Path(str(item.path)).resolve().relative_to(_E2E_DIR)
        except ValueError:
            continue
        item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def controlplane() -> Iterator[ControlPlane]:
    cp = ControlPlane()
    try:
        cp.start()  # raises (=> error, not skip) when the binary cannot be built
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def admin_api(controlplane: ControlPlane):
    import kubernetes

    client = kubernetes.config.new_client_from_config(config_file=controlplane.kubeconfig_path)
    try:
        yield client
    finally:
        client.close()


# --------------------------------------------------------------------------- Inquest on the real server


@pytest.fixture(scope="session")
def inquest_crds(controlplane: ControlPlane) -> dict[str, dict]:
    """crds/*.yaml applied (created or replaced) and Established; the server's view, by kind."""
    from tests.e2e.harness import CRD_DIR, apply_crd

    applied = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = apply_crd(controlplane, path)
        applied[crd["spec"]["names"]["kind"]] = crd
    return applied


@pytest.fixture
def namespace(controlplane: ControlPlane, inquest_crds: dict[str, dict]) -> Iterator[str]:
    """A fresh namespace (with its ``default`` ServiceAccount) in a cluster with our CRDs.

    At teardown its ModelProviders and Investigations are deleted (finalizers of a stopped operator
    dropped first), so that the next operator, which watches every namespace, does not resume them.
    """
    from tests.e2e.harness import delete_inquest_objects, unique

    ns = unique("e2e")
    controlplane.create_namespace(ns)
    yield ns
    delete_inquest_objects(controlplane, ns)


# --------------------------------------------------------------------------- deploy/ and the operator

DEPLOY_BASE = _E2E_DIR.parents[1] / "deploy" / "kustomize" / "base"
OPERATOR_NAMESPACE = "inquest-system"
OPERATOR_SERVICE_ACCOUNT = "inquest-operator"
# Shorter waits than in production: a NotReady provider's first re-probe (default 5 s, doubling) and a
# Pending Investigation's re-check of its provider (default 5 s).
OPERATOR_ENV = {"INQUEST_RETRY_BASE_SECONDS": "1", "INQUEST_PROVIDER_POLL_SECONDS": "0.5"}


@dataclass
class Deployed:
    """deploy/kustomize/base applied to the control plane: the operator's identity and its kubeconfig."""

    manifests: list[dict[str, Any]]
    namespace: str
    service_account: str
    token: str
    kubeconfig: str


def kustomize_base_manifests(base: Path = DEPLOY_BASE) -> list[dict[str, Any]]:
    """The objects of a kustomize base that lists plain YAML files under ``resources:``."""
    from tests.e2e.harness import load_yaml

    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - {"apiVersion", "kind", "resources"}
    assert not unsupported, f"{base}/kustomization.yaml uses {sorted(unsupported)}: teach the e2e tests"
    manifests: list[dict[str, Any]] = []
    for entry in kustomization["resources"]:
        path = base / entry
        assert path.is_file(), f"{base}/kustomization.yaml lists {entry}, which is not a file"
        manifests += load_yaml(path)
    return manifests


@pytest.fixture(scope="session")
def deployed(controlplane: ControlPlane, inquest_crds: dict[str, dict], tmp_path_factory: pytest.TempPathFactory
             ) -> Deployed:
    """Everything in deploy/kustomize/base applied (the Deployment too: it is validated, but with no
    kubelet it never runs), and a token of the operator's ServiceAccount."""
    from tests.e2e.harness import apply

    manifests = kustomize_base_manifests()
    kinds = [m["kind"] for m in manifests]
    assert "ServiceAccount" in kinds and "ClusterRole" in kinds, kinds
    order = {"Namespace": 0, "ServiceAccount": 1}
    for manifest in sorted(manifests, key=lambda m: order.get(m["kind"], 2)):
        apply(controlplane, manifest)
    (sa,) = [m for m in manifests if m["kind"] == "ServiceAccount"]
    namespace, name = sa["metadata"]["namespace"], sa["metadata"]["name"]
    assert (namespace, name) == (OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT)
    token = controlplane.token_for_service_account(namespace, name, expiration_seconds=4 * 3600)
    kubeconfig = controlplane.write_kubeconfig(tmp_path_factory.mktemp("operator") / "kubeconfig", token,
                                               user=name)
    return Deployed(manifests, namespace, name, token, kubeconfig)


@pytest.fixture
def operator_factory(controlplane: ControlPlane, deployed: Deployed, tmp_path: Path
                     ) -> Iterator[Callable[..., OperatorProcess]]:
    """``operator_factory(admin=False, env={...})`` -> a started OperatorProcess (deploy's
    ServiceAccount unless ``admin``); every one is stopped at teardown. One at a time, please:
    two cluster-wide operators would fight over the same objects."""
    started: list[OperatorProcess] = []

    def factory(*, admin: bool = False, env: dict[str, str] | None = None, start: bool = True) -> OperatorProcess:
        assert not any(p.running for p in started), "stop the running operator first"
        kubeconfig = controlplane.kubeconfig_path if admin else deployed.kubeconfig
        assert kubeconfig is not None
        process = OperatorProcess(kubeconfig, tmp_path / f"operator-{len(started) + 1}.log",
                                  env={**OPERATOR_ENV, **(env or {})})
        started.append(process)
        return process.start() if start else process

    yield factory
    for process in started:
        process.stop()


@pytest.fixture
def operator(operator_factory: Callable[..., OperatorProcess]) -> Iterator[OperatorProcess]:
    """The operator as deployed: ``inquest run --all-namespaces`` with deploy/'s ServiceAccount token.
    Teardown fails the test when the operator logged a permission error or a traceback."""
    process = operator_factory()
    yield process
    problems = process.problems()
    assert not problems, "the operator logged problems:\n" + "\n".join(problems[:20]) + process.diagnostics()


@pytest.fixture
def fake_llm_tls(pki: TestPKI) -> Iterator[FakeLLM]:
    """The fake OpenAI-compatible server over HTTPS with ``pki.server`` (trust ``pki.ca``), in a thread."""
    with ThreadedLLM(tls=pki.server) as llm:
        yield llm
