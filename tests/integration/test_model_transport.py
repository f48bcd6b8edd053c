"""The model client's HTTP path (``build_openai_client`` over ``inquest.clients.aiohttp_transport``)
against real sockets on 127.0.0.1: each connection failure comes out as the exception httpx2's own
transport raises for it, so that the agent (``agent.model.classify``) and the probe
(``probe._connection_failure``) name it right; bodies, encodings and proxies still work.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx2
import openai
import pytest
from aiohttp import web

from inquest.agent.model import classify
from inquest.clients.aiohttp_transport import AioHttpTransport
from inquest.clients.llm import ProviderConnection, build_openai_client
from inquest.clients.probe import _connection_failure
from inquest.domain import endpoints, reasons
from tests.support.certs import client_ssl_context

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def conn_for(url: str, **kwargs: Any) -> ProviderConnection:
    return ProviderConnection(name="p", namespace="ns", endpoints=endpoints.resolve(url), model="m", **kwargs)


def chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


async def failure_of(conn: ProviderConnection) -> openai.APIConnectionError:
    """The error of one model listing through the factory's client (no retries)."""
    async with build_openai_client(conn, max_retries=0) as client:
        with pytest.raises(openai.APIConnectionError) as caught:
            await client.models.list()
    return caught.value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    """``await raw_server(handler)`` listens on 127.0.0.1 with a plain asyncio handler; the port."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


# --------------------------------------------------------------------------- connection failures


async def test_refused_port_is_a_connect_error_not_a_timeout():
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    error = await failure_of(conn_for(url))
    assert not isinstance(error, openai.APITimeoutError)
    assert isinstance(error.__cause__, httpx2.ConnectError)
    assert any(isinstance(e, ConnectionRefusedError) for e in chain(error))
    assert classify(error).kind == "unavailable" and "ConnectError" in classify(error).message
    assert _connection_failure(error, url, 5)[0] == reasons.CONNECTION_REFUSED


async def test_dns_failure_is_a_connect_error_with_the_resolver_error():
    url = "http://inquest-no-such-host.invalid/v1"
    error = await failure_of(conn_for(url))
    assert not isinstance(error, openai.APITimeoutError)
    assert isinstance(error.__cause__, httpx2.ConnectError)
    assert any(isinstance(e, socket.gaierror) for e in chain(error))
    assert classify(error).kind == "unavailable"
    reason, message = _connection_failure(error, url, 5)
    assert reason == reasons.DNS_FAILURE and "inquest-no-such-host.invalid" in message


async def test_server_certificate_of_an_unknown_ca_is_a_tls_connect_error(llm_factory, pki):
    server = await llm_factory(tls=pki.other_server)  # signed by other_ca; the client trusts ca only
    error = await failure_of(conn_for(server.base_url, ssl_context=client_ssl_context(pki.ca)))
    assert not isinstance(error, openai.APITimeoutError)
    assert isinstance(error.__cause__, httpx2.ConnectError)
    verification = [e for e in chain(error) if isinstance(e, ssl.SSLCertVerificationError)]
    assert verification and verification[0].verify_code == 20  # unable to get local issuer certificate
    assert "CERTIFICATE_VERIFY_FAILED" in classify(error).message
    assert _connection_failure(error, server.base_url, 5)[0] == reasons.TLS_ERROR


async def test_the_right_ca_and_client_certificate_work(llm_factory, pki):
    server = await llm_factory(tls=pki.server, client_ca=pki.ca)
    conn = conn_for(server.base_url, ssl_context=client_ssl_context(pki.ca, client=pki.client))
    async with build_openai_client(conn, max_retries=0) as client:
        models = await client.models.list()
    assert [m.id for m in models.data] == ["test-model"]
    assert server.requests  # served over mutual TLS


async def test_a_server_that_never_answers_is_a_timeout(raw_server):
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up and closes
        writer.close()

    port = await raw_server(silent)
    url = f"http://127.0.0.1:{port}/v1"
    error = await failure_of(conn_for(url, timeout_seconds=0.5))
    assert isinstance(error, openai.APITimeoutError)
    assert isinstance(error.__cause__, httpx2.ReadTimeout)
    assert classify(error).kind == "timeout"
    assert _connection_failure(error, url, 0.5)[0] == reasons.TIMEOUT


async def test_a_server_that_hangs_up_without_answering_is_no_timeout(raw_server):
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.close()

    port = await raw_server(hang_up)
    url = f"http://127.0.0.1:{port}/v1"
    error = await failure_of(conn_for(url))
    assert not isinstance(error, openai.APITimeoutError)
    assert isinstance(error.__cause__, httpx2.RemoteProtocolError)  # what httpx2's own transport says
    assert classify(error).kind == "unavailable"
    assert _connection_failure(error, url, 5)[0] == reasons.CONNECTION_FAILED


# --------------------------------------------------------------------------- responses


@pytest.fixture
async def gzip_models() -> AsyncIterator[str]:
    """A /v1/models answering a large gzip-encoded list (many chunks, decoded by httpx2)."""
    names = [f"model-{i:05d}-" + "x" * 40 for i in range(5000)]
    payload = gzip.compress(json.dumps({"object": "list", "data": [
        {"id": n, "object": "model", "created": 0, "owned_by": "t"} for n in names]}).encode())

    async def models(request: web.Request) -> web.Response:
        return web.Response(body=payload, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    app = web.Application()
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


async def test_large_compressed_bodies_are_read_whole(gzip_models):
    client = build_openai_client(conn_for(gzip_models), max_retries=0)
    try:
        first = await client.models.list()
        again = await client.models.list()  # on the kept-alive connection
        transport = client._client._transport
        assert isinstance(transport, AioHttpTransport)
    finally:
        await client.close()
    assert len(first.data) == len(again.data) == 5000 and first.data[-1].id.startswith("model-04999-")
    assert transport._session is None  # close() closed the aiohttp session


# --------------------------------------------------------------------------- proxies


@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_env


async def test_http_proxy_from_the_environment_is_used(raw_server, proxy_env):
    seen: list[bytes] = []
    body = json.dumps({"object": "list", "data": [{"id": "via-proxy", "object": "model", "created": 0,
                                                   "owned_by": "p"}]}).encode()

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append((await read_head(reader)).split(b"\r\n", 1)[0])
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    port = await raw_server(proxy)
    proxy_env(HTTP_PROXY=f"http://127.0.0.1:{port}")
    # A host that does not resolve: only the proxy can answer for it.
    async with build_openai_client(conn_for("http://inquest-no-such-host.invalid/v1"), max_retries=0) as client:
        models = await client.models.list()
    assert [m.id for m in models.data] == ["via-proxy"]
    assert seen == [b"GET http://inquest-no-such-host.invalid/v1/models HTTP/1.1"]


async def test_no_proxy_hosts_go_direct(llm, raw_server, proxy_env):
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise AssertionError("the proxy was used")

    port = await raw_server(refuse)
    proxy_env(HTTP_PROXY=f"http://127.0.0.1:{port}", NO_PROXY="127.0.0.1")
    async with build_openai_client(conn_for(llm.base_url), max_retries=0) as client:
        models = await client.models.list()
    assert [m.id for m in models.data] == ["test-model"]
