"""An httpx2 transport over aiohttp, for the model clients: the same requests for less CPU.

The openai SDK sends through httpx2; its default transport (httpcore2 over anyio) cost ~1.6-2 ms of
CPU per model call, a third of the operator's CPU in bench/investigations.py. aiohttp's HTTP/1.1
client does the same work for ~0.6 ms less (the benchmark's operator CPU went from ~10.3 to ~9.0 s
for 2200 calls). httpx2 keeps everything above the socket: the SDK's headers,
auth, redirects, cookies, event hooks (the URL rewriting), decoding and, through its own proxy
transports, ``HTTP(S)_PROXY``/``NO_PROXY`` (:class:`AioHttpClient` replaces only the direct transport).

Why not the SDK's ``openai.DefaultAioHttpClient``: it is built on a private vendored module
(``openai._vendor.httpx_aiohttp``) whose exception map turns a refused connection or a failed DNS
lookup into ``httpx2.ConnectTimeout`` (``ClientConnectorError`` is a ``ClientConnectionError``, which it
maps to ``ConnectTimeout``), so the probe reported ``Timeout`` for a port nobody listens on; its
session also keeps a cookie jar of its own and uses aiodns when that is installed (whose errors are
no ``socket.gaierror``). This module maps each aiohttp error to the httpx2 exception httpcore2 raises
for the same failure, with the ``OSError``/``ssl.SSLError`` that failed a connection as its cause (else
aiohttp's exception), which is where the probe and the agent read the reason from.

Not supported (the model clients never need them): HTTP/2, Unix sockets, a write timeout (request
bodies are small and go out in one write).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx2
import openai
import yarl

# Most specific first: the first class the aiohttp exception is an instance of decides.
_ERRORS: tuple[tuple[type[BaseException], type[httpx2.TransportError]], ...] = (
    (aiohttp.ClientProxyConnectionError, httpx2.ProxyError),
    (aiohttp.ClientHttpProxyError, httpx2.ProxyError),
    # DNS failures, refused/unreachable ports and TLS failures (ClientSSLError and its certificate
    # subclass) are all ConnectorErrors: httpcore2 reports them all as ConnectError.
    (aiohttp.ClientConnectorError, httpx2.ConnectError),
    (aiohttp.ConnectionTimeoutError, httpx2.ConnectTimeout),  # includes waiting for a pooled connection
    (aiohttp.SocketTimeoutError, httpx2.ReadTimeout),
    (TimeoutError, httpx2.TimeoutException),  # ServerTimeoutError and any other timeout
    (aiohttp.ServerDisconnectedError, httpx2.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx2.RemoteProtocolError),  # a body cut short or badly framed
    (aiohttp.ClientResponseError, httpx2.RemoteProtocolError),  # an unparsable status line or header
    (aiohttp.InvalidURL, httpx2.UnsupportedProtocol),
    (aiohttp.NonHttpUrlClientError, httpx2.UnsupportedProtocol),
    (aiohttp.ClientConnectionError, httpx2.ReadError),  # reset or closed on an established connection
    (aiohttp.ClientError, httpx2.TransportError),
)


def httpx_error(exc: BaseException) -> type[httpx2.TransportError] | None:
    """The httpx2 exception class for an aiohttp (or asyncio timeout) exception; None for others."""
    for source, target in _ERRORS:
        if isinstance(exc, source):
            return target
    return None


@contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        target = httpx_error(exc)
        if target is None:
            raise
        cause: BaseException = exc
        if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.__cause__, OSError):
            # The OSError / ssl.SSLError that failed the connection, as httpcore2 chains it: aiohttp's
            # wrapper of a certificate error is itself an SSLError, but without reason or verify_code.
            cause = exc.__cause__
        raise target(str(cause) or type(cause).__name__) from cause


class _ResponseBody(httpx2.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped_errors():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # Back to the pool once the body was read whole; closed otherwise (aiohttp decides).
        self._response.release()


class AioHttpTransport(httpx2.AsyncBaseTransport):
    """Sends httpx2 requests through one ``aiohttp.ClientSession`` (created on first use, in the loop).

    ``ssl_context`` is used as is for every https connection (CA, client certificate, verification).
    Timeouts come from each request's ``timeout`` extension (what the openai client sets per call):
    connect bounds the TCP connect and the TLS handshake, read bounds each wait for data, and pool
    plus connect bound getting a connection at all.
    """

    def __init__(self, ssl_context: ssl.SSLContext, limits: httpx2.Limits) -> None:
        self.ssl_context = ssl_context
        self.limits = limits
        self._session: aiohttp.ClientSession | None = None

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            ssl=self.ssl_context,
            limit=self.limits.max_connections or 0,  # 0: no limit, as httpx2's None
            # The system resolver (getaddrinfo in a thread) as httpcore2 uses: failures are
            # socket.gaierror, which the probe names DNSFailure (aiodns, if installed, raises others).
            resolver=aiohttp.ThreadedResolver(),
            keepalive_timeout=self.limits.keepalive_expiry,  # None: kept until the server closes it
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx2 keeps the cookies
            auto_decompress=False,  # httpx2 decodes by Content-Encoding
            trust_env=False,  # httpx2 routes proxied URLs to its own transports
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._session is None or self._session.closed:
            self._session = self._new_session()
        timeout = request.extensions.get("timeout") or {}
        connect, pool = timeout.get("connect"), timeout.get("pool")
        body = await request.aread()
        with _mapped_errors():
            response = await self._session.request(
                request.method,
                yarl.URL(str(request.url), encoded=True),  # httpx2 already encoded it
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,  # httpx2 follows them
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=None if connect is None or pool is None else connect + pool,
                    sock_connect=connect,
                    sock_read=timeout.get("read"),
                ),
                server_hostname=request.extensions.get("sni_hostname"),
            )
        extensions: dict[str, object] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("ascii", "replace")
        return httpx2.Response(response.status, headers=response.raw_headers, stream=_ResponseBody(response),
                               request=request, extensions=extensions)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class AioHttpClient(openai.DefaultAsyncHttpxClient):
    """The SDK's default httpx2 client (its timeout, limits and redirects), sending direct requests
    through :class:`AioHttpTransport`. ``verify`` must be an ``ssl.SSLContext``. Proxied URLs
    (``trust_env``) keep httpx2's own proxy transports: httpx2 builds those separately.

    ``_init_transport`` is httpx2's hook for the direct transport (the one httpx-aiohttp overrides
    too); passing ``transport=`` instead would make httpx2 ignore the proxy environment."""

    def _init_transport(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: object = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx2.Limits = openai.DEFAULT_CONNECTION_LIMITS,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> httpx2.AsyncBaseTransport:
        if transport is not None:
            return transport
        if not isinstance(verify, ssl.SSLContext) or cert is not None or http2:
            raise TypeError("AioHttpClient takes verify=ssl.SSLContext (with any client certificate in it), HTTP/1.1")
        return AioHttpTransport(verify, limits)
