"""Fixtures for end-to-end tests against a real etcd + kube-apiserver.

Every test under tests/e2e is marked ``e2e``.  If the control plane cannot be
built or started, the fixture errors (the tests fail, they are never skipped).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.controlplane import ControlPlane

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
