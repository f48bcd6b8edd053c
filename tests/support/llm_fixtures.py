"""Pytest fixtures for the test PKI and the fake LLM.

Load with ``pytest_plugins = ["tests.support.llm_fixtures"]`` (in the top-level tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from tests.support.certs import TestPKI, get_pki
from tests.support.fake_llm import FakeLLM

__all__ = ["llm", "llm_factory", "llm_tls", "pki"]

LLMFactory = Callable[..., Awaitable[FakeLLM]]


@pytest.fixture(scope="session")
def pki() -> Iterator[TestPKI]:
    """The session-wide test PKI (CAs, server/client certs, expired / wrong-host variants)."""
    yield get_pki()


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    """A started FakeLLM over plain HTTP (no API key, models=("test-model",))."""
    async with FakeLLM() as server:
        yield server


@pytest.fixture
async def llm_tls(pki: TestPKI) -> AsyncIterator[FakeLLM]:
    """A started FakeLLM over HTTPS presenting ``pki.server`` (trust ``pki.ca`` to reach it)."""
    async with FakeLLM(tls=pki.server) as server:
        yield server


@pytest.fixture
async def llm_factory() -> AsyncIterator[LLMFactory]:
    """``await llm_factory(**FakeLLM_kwargs)`` starts a FakeLLM that is stopped at teardown."""
    started: list[FakeLLM] = []

    async def factory(**kwargs: Any) -> FakeLLM:
        server = await FakeLLM(**kwargs).start()
        started.append(server)
        return server

    yield factory
    for server in reversed(started):
        await server.stop()
