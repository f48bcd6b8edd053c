"""The aiohttp -> httpx2 exception map of the model clients' transport, and how the factory wires it."""

from __future__ import annotations

import asyncio
import socket
import ssl
from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx2
import pytest

from inquest.clients.aiohttp_transport import AioHttpClient, AioHttpTransport, httpx_error
from inquest.clients.llm import ProviderConnection, build_openai_client
from inquest.domain import endpoints

KEY: Any = SimpleNamespace(host="h", port=443, ssl=True)  # an aiohttp ConnectionKey, as far as the errors go


@pytest.mark.parametrize(("error", "expected"), [
    (aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused")), httpx2.ConnectError),
    (aiohttp.ClientConnectorDNSError(KEY, socket.gaierror(-2, "Name or service not known")), httpx2.ConnectError),
    (aiohttp.ClientConnectorCertificateError(KEY, ssl.SSLCertVerificationError("verify failed")),
     httpx2.ConnectError),
    (aiohttp.ClientConnectorSSLError(KEY, ssl.SSLError("wrong version number")), httpx2.ConnectError),
    (aiohttp.ClientProxyConnectionError(KEY, ConnectionRefusedError(111, "refused")), httpx2.ProxyError),
    (aiohttp.ConnectionTimeoutError("Connection timeout to host"), httpx2.ConnectTimeout),
    (aiohttp.SocketTimeoutError("Timeout on reading data from socket"), httpx2.ReadTimeout),
    (aiohttp.ServerTimeoutError("timeout"), httpx2.TimeoutException),
    (TimeoutError(), httpx2.TimeoutException),
    (aiohttp.ServerDisconnectedError(), httpx2.RemoteProtocolError),
    (aiohttp.ClientPayloadError("Response payload is not completed"), httpx2.RemoteProtocolError),
    (aiohttp.ClientOSError(104, "Connection reset by peer"), httpx2.ReadError),
    (aiohttp.ClientConnectionResetError("Connection lost"), httpx2.ReadError),
    (aiohttp.InvalidURL("x"), httpx2.UnsupportedProtocol),
])
def test_each_aiohttp_error_maps_to_what_httpx2_raises_for_it(error, expected):
    assert httpx_error(error) is expected


def test_connection_failures_never_map_to_a_timeout():
    refused = aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused"))
    assert not issubclass(httpx_error(refused), httpx2.TimeoutException)  # type: ignore[arg-type]


def test_other_exceptions_are_not_mapped():
    assert httpx_error(ValueError("x")) is None
    assert httpx_error(asyncio.CancelledError()) is None


def conn_for(url: str) -> ProviderConnection:
    return ProviderConnection(name="p", namespace="ns", endpoints=endpoints.resolve(url), model="m")


async def test_the_factory_sends_direct_requests_through_aiohttp(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    client = build_openai_client(conn_for("https://h/v1"))
    try:
        assert isinstance(client._client._transport, AioHttpTransport)
        assert not client._client._mounts
    finally:
        await client.close()


async def test_proxied_urls_keep_httpx2s_proxy_transport(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    client = build_openai_client(conn_for("https://h/v1"))
    try:
        proxied = client._client._transport_for_url(httpx2.URL("https://h/v1/models"))
        assert isinstance(proxied, httpx2.AsyncHTTPTransport)
    finally:
        await client.close()


def test_the_client_wants_a_built_ssl_context():
    with pytest.raises(TypeError):
        AioHttpClient(verify=True)
