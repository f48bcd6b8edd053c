"""Fixtures shared by the integration tests that run Investigations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.investigations import Cluster
from tests.support.kube import add_service_account


@pytest.fixture()
async def cluster(kube: Any, make_clients: Any) -> AsyncIterator[Cluster]:
    """KMock with the default investigator ServiceAccount in ``default``: Investigations can run."""
    add_service_account(kube)
    clients = make_clients()
    yield Cluster(kube, clients.kube)
    clients.close()


@pytest.fixture(autouse=True)
def _fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INQUEST_PROVIDER_POLL_SECONDS", "0.2")
    monkeypatch.setenv("INQUEST_PROGRESS_INTERVAL", "0")
