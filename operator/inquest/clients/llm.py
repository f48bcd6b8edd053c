"""The one factory for OpenAI-compatible clients. The probe and the agent both use it."""

from __future__ import annotations

import os
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field

import httpx2
import openai

from inquest.api.modelprovider import ModelParameters, Pricing
from inquest.clients.aiohttp_transport import AioHttpClient
from inquest.domain.certificates import CertificateInfo
from inquest.domain.endpoints import CHAT_SUFFIX, Endpoints

# The openai client refuses an empty key; servers without auth ignore whatever is sent.
NO_KEY_PLACEHOLDER = "no-key"
REDACTED = "[redacted]"


@dataclass(frozen=True)
class ProviderConnection:
    """Everything needed to talk to one provider, with Secrets already resolved.

    ``repr`` never shows the key or header values: this object may end up in a log line.
    Build it with :func:`inquest.clients.connection.resolve_connection`.
    """

    name: str
    namespace: str
    endpoints: Endpoints
    model: str  # the name sent to the server (``openai/`` stripped)
    api_key: str | None = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    # Shared with every connection of equal TLS configuration (``SSL_CONTEXTS``): never modify it.
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    timeout_seconds: float = 60
    max_retries: int = 2
    parameters: ModelParameters = field(default_factory=ModelParameters)
    pricing: Pricing = field(default_factory=Pricing)
    insecure: bool = False
    # Where the trust came from, for messages: "caBundle", "Secret ns/name key k", ... (None: system store)
    ca_source: str | None = None
    ca_certificates: tuple[CertificateInfo, ...] = ()
    client_certificate: CertificateInfo | None = None
    use_system_trust_store: bool = True
    # Header names whose value came from a Secret (their values are redacted like the key).
    secret_header_names: frozenset[str] = frozenset()

    @property
    def context_window(self) -> int:
        return self.parameters.context_window or 8192

    @property
    def tls(self) -> bool:
        return self.endpoints.chat_url.startswith("https://")

    def secret_values(self) -> list[str]:
        """Values that must never appear in a log line, status, event or exception message."""
        values = [self.api_key] if self.api_key else []
        values += [v for k, v in self.headers.items() if k in self.secret_header_names and v]
        return values

    def redact(self, text: str) -> str:
        """``text`` with every secret value (and long prefixes/suffixes of it) replaced."""
        return redact(text, self.secret_values())


def redact(text: str, secrets: Iterable[str]) -> str:
    for value in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(value, REDACTED)
        if len(value) >= 16:  # servers echo masked keys like "sk-abc1****wxyz"
            text = text.replace(value[:8], REDACTED).replace(value[-6:], REDACTED)
    return text


class SSLContextCache:
    """Built SSL contexts by key, so that a provider's probes and Investigations share one.

    Loading the system trust store costs ~30 ms of CPU; 200 Investigations starting at once paid it
    200 times. An SSLContext is safe to share between connections (httpx does so within a client) and
    nothing changes one after it is built. Bounded (least recently used out) and each entry is kept
    ``ttl`` seconds, so a system store updated on disk is read again. Thread-safe (builds run in
    threads); concurrent misses of one key wait for a single build. A build that raises caches nothing.
    """

    def __init__(self, *, maxsize: int = 32, ttl: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self.clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, ssl.SSLContext]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}

    def peek(self, key: Hashable) -> ssl.SSLContext | None:
        """The cached context, or None (missing or expired). Never builds: cheap enough for the event loop."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self.clock() - entry[0] >= self.ttl:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def get(self, key: Hashable, build: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        """The cached context, else ``build()``'s (cached). CPU-bound on a miss: call it in a thread."""
        ctx = self.peek(key)
        if ctx is not None:
            return ctx
        with self._lock:
            key_lock = self._building.setdefault(key, threading.Lock())
        try:
            with key_lock:
                ctx = self.peek(key)
                if ctx is None:
                    ctx = build()
                    with self._lock:
                        self._entries[key] = (self.clock(), ctx)
                        self._entries.move_to_end(key)
                        while len(self._entries) > self.maxsize:
                            self._entries.popitem(last=False)
        finally:
            with self._lock:
                if self._building.get(key) is key_lock:
                    del self._building[key]
        return ctx

    def __len__(self) -> int:
        return len(self._entries)


# The contexts of every provider connection (``inquest.clients.connection``) and httpx's default one.
SSL_CONTEXTS = SSLContextCache()


def _system_store_env() -> tuple[str | None, str | None]:
    """The variables that move the system trust store (read by OpenSSL and by httpx)."""
    return os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")


def default_ssl_context() -> ssl.SSLContext:
    """What httpx builds for ``verify=True`` (the system store; ``SSL_CERT_FILE``/``SSL_CERT_DIR``
    honoured), built once and shared: the context of connections that configure no TLS."""
    return SSL_CONTEXTS.get(("httpx-default", *_system_store_env()),
                            lambda: httpx2.create_ssl_context(verify=True, trust_env=True))


def url_rewriter(endpoints: Endpoints) -> Callable[[httpx2.Request], Awaitable[None]] | None:
    """An httpx request hook sending chat and model requests to the exact URLs the provider resolved to.

    The openai client appends ``/chat/completions`` and ``/models`` to its base URL. For a gateway's
    custom chat path (``https://gw/llm/team-a/chat``) the chat URL is the base itself and models live
    beside it; the hook rewrites those two paths and leaves everything else alone.
    """
    base = httpx2.URL(endpoints.base_url.rstrip("/") + "/")
    chat, models = httpx2.URL(endpoints.chat_url), httpx2.URL(endpoints.models_url)
    routes = {
        base.path + CHAT_SUFFIX.lstrip("/"): chat.path,
        base.path + "models": models.path,
    }
    routes = {src: dst for src, dst in routes.items() if src != dst}
    if not routes:
        return None

    async def rewrite(request: httpx2.Request) -> None:
        target = routes.get(request.url.path)
        if target is not None:
            request.url = request.url.copy_with(path=target)

    return rewrite


def build_http_client(conn: ProviderConnection, *, timeout: float | None = None) -> httpx2.AsyncClient:
    """The httpx client under the openai client: TLS context (CA, client certificate, or no
    verification; the shared default one otherwise) and the URL rewriting for custom chat paths.

    Direct requests go out through aiohttp (:mod:`inquest.clients.aiohttp_transport`: less CPU per
    call than httpx2's own transport); proxied ones (``HTTPS_PROXY``) through httpx2's."""
    verify = conn.ssl_context if conn.ssl_context is not None else default_ssl_context()
    hook = url_rewriter(conn.endpoints)
    return AioHttpClient(
        verify=verify,
        timeout=timeout if timeout is not None else conn.timeout_seconds,
        event_hooks={"request": [hook]} if hook else None,
        trust_env=True,
    )


def build_openai_client(
    conn: ProviderConnection, *, max_retries: int | None = None, timeout: float | None = None
) -> openai.AsyncOpenAI:
    """An ``AsyncOpenAI`` client for the provider: base URL, key, headers, timeout, retries and TLS.

    The TLS context (CA bundle, client certificate, or no verification) goes into the httpx client
    that openai 3.x is built on. Chat requests go to exactly ``conn.endpoints.chat_url`` and model
    listings to ``conn.endpoints.models_url``, whatever shape the user's URL had. Close it with
    ``await client.close()`` (or ``async with``).
    """
    effective_timeout = timeout if timeout is not None else conn.timeout_seconds
    return openai.AsyncOpenAI(
        base_url=conn.endpoints.base_url,
        api_key=conn.api_key or NO_KEY_PLACEHOLDER,
        default_headers=dict(conn.headers) or None,
        timeout=effective_timeout,
        max_retries=conn.max_retries if max_retries is None else max_retries,
        http_client=build_http_client(conn, timeout=effective_timeout),
    )
