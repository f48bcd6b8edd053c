"""Shared fixtures: ``kube`` (KMock), ``operator`` (Kopf in-process), and the fake LLM (tests.support)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import kmock
import kopf
import kubernetes.client
import pytest

from tests.support.kube import declare_resources

pytest_plugins = ["tests.support.llm_fixtures"]


@pytest.fixture()
async def kube() -> AsyncIterator[kmock.KubernetesEmulator]:
    """A KMock Kubernetes API with our CRDs and the core kinds the tools read, plus namespace ``default``."""
    async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator):
        declare_resources(emulator)
        emulator.objects["v1/namespaces", None, "default"] = {"metadata": {"name": "default"}}
        yield emulator


@pytest.fixture()
def kube_configuration(kube: kmock.KubernetesEmulator) -> kubernetes.client.Configuration:
    return kubernetes.client.Configuration(host=str(kube.url).rstrip("/"))


@pytest.fixture()
def make_clients(kube_configuration: kubernetes.client.Configuration) -> Callable[..., Any]:
    """Build the operator's clients against KMock; tests may override any field."""
    from inquest.clients import Clients, KubeClient

    def factory(**overrides: Any) -> Clients:
        fields: dict[str, Any] = {"kube": KubeClient(kube_configuration)}
        fields.update(overrides)
        return Clients(**fields)

    return factory


class OperatorHandle:
    """The Kopf operator running in its own thread and event loop.

    Kopf cancels every task created in its loop after its start as "hung" when it stops; a loop of
    its own keeps the test's tasks (fixture finalizers, the fake LLM server, KMock) out of reach.
    """

    def __init__(self, memo: kopf.Memo, settings: kopf.OperatorSettings) -> None:
        self.memo = memo
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(settings,), name="kopf-operator", daemon=True)

    def _run(self, settings: kopf.OperatorSettings) -> None:
        try:
            asyncio.run(kopf.operator(clusterwide=True, standalone=True, memo=self.memo, settings=settings,
                                      stop_flag=self.stop_flag, ready_flag=self.ready_flag))
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    async def start(self) -> None:
        self._thread.start()
        if not await asyncio.to_thread(self.ready_flag.wait, 10):
            raise RuntimeError(f"the operator did not start: {self.error!r}")

    async def stop(self) -> None:
        self.stop_flag.set()
        await asyncio.to_thread(self._thread.join, 15)
        if self._thread.is_alive():
            raise RuntimeError("the operator did not stop within 15 s")
        if self.error is not None:
            raise self.error


def operator_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.queueing.idle_timeout = 0.5  # quick worker exit: tests stop the operator often
    settings.queueing.exit_timeout = 0.5
    # KMock keeps no resourceVersion, so Kopf would wait this long for its own patches to echo back.
    settings.persistence.consistency_timeout = 0.1
    return settings


@pytest.fixture()
async def start_operator(
    kube: kmock.KubernetesEmulator, make_clients: Callable[..., Any]
) -> AsyncIterator[Callable[..., Awaitable[OperatorHandle]]]:
    """Start the Kopf operator in-process against ``kube``; every started operator stops after the test."""
    import inquest.main  # noqa: F401  (registers the handlers)

    handles: list[OperatorHandle] = []

    async def start(**clients: Any) -> OperatorHandle:
        handle = OperatorHandle(kopf.Memo(clients=make_clients(**clients)), operator_settings())
        handles.append(handle)
        await handle.start()
        return handle

    yield start
    for handle in handles:
        if not handle.stop_flag.is_set():
            await handle.stop()
        handle.memo.clients.close()


@pytest.fixture()
async def operator(start_operator: Callable[..., Awaitable[OperatorHandle]]) -> OperatorHandle:
    return await start_operator()


@pytest.fixture(autouse=True)
def _quiet_kopf(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kopf")
    caplog.set_level(logging.DEBUG, logger="inquest")


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns a truthy value (returned) or raises no AssertionError."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
            error: BaseException | None = None
        except (AssertionError, KeyError, TypeError, IndexError) as exc:
            error = exc
        if asyncio.get_running_loop().time() > deadline:
            if error is not None:
                raise error
            raise AssertionError(f"condition not met within {timeout}s: {check}")
        await asyncio.sleep(interval)
