"""The network probe of a ModelProvider: TLS handshake, models list (or a one-token chat), tool calling.

``probe(conn)`` returns a ``ProbeReport`` (pure data, see ``inquest.domain.provider``): one verdict per
check it reached. It never raises for a failing endpoint. Every message is passed through
``conn.redact`` so that no key or secret header value can leak through a server's error text.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai

from inquest.clients.llm import ProviderConnection, build_openai_client
from inquest.domain import reasons
from inquest.domain.certificates import CertificateInfo, info_of_der
from inquest.domain.conditions import Cond, shorten
from inquest.domain.provider import ProbeReport

PROBE_TOOL_NAME = "inquest_probe"
PROBE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": PROBE_TOOL_NAME,
        "description": "Report that tool calling works. Always call it with message set to \"pong\".",
        "parameters": {
            "type": "object",
            "properties": {"message": {"type": "string", "description": "Always \"pong\"."}},
            "required": ["message"],
        },
    },
}
PROBE_PROMPT = f"Call the {PROBE_TOOL_NAME} tool with message \"pong\". Do not answer with text."
TOOL_PROBE_MAX_TOKENS = 128  # room for the call's JSON (and a short preamble some models emit)
SERVER_TEXT = 300  # how much of a server's error text goes into a message

# OpenSSL X509_V_ERR_* codes (ssl.SSLCertVerificationError.verify_code)
_UNKNOWN_AUTHORITY_CODES = {2, 18, 19, 20, 21, 7, 24, 27, 28}
_EXPIRED_CODE = 10
_NOT_YET_VALID_CODE = 9
_HOSTNAME_CODES = {62, 64}


# --------------------------------------------------------------------------- helpers


def _errors(exc: BaseException) -> list[BaseException]:
    """The exception and its causes/contexts, outermost first."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        chain.append(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return chain


def _server_text(response: httpx2.Response | None, body: object = None) -> str:
    """The server's error message: ``error.message`` / ``message`` / ``detail`` of a JSON body, else
    the start of the text."""
    data: Any = body
    if data is None and response is not None:
        try:
            data = response.json()
        except ValueError:
            data = None
        except Exception:  # noqa: BLE001 - an unread streaming body
            data = None
    if isinstance(data, Mapping):
        inner = data.get("error", data)
        if isinstance(inner, Mapping):
            for key in ("message", "detail", "msg"):
                if inner.get(key):
                    return shorten(str(inner[key]), SERVER_TEXT)
        elif isinstance(inner, str) and inner:
            return shorten(inner, SERVER_TEXT)
        if data.get("detail"):
            return shorten(str(data["detail"]), SERVER_TEXT)
    if isinstance(data, str) and data:
        return shorten(data, SERVER_TEXT)
    if response is not None:
        try:
            return shorten(response.text, SERVER_TEXT)
        except Exception:  # noqa: BLE001
            return ""
    return ""


def _status_line(response: httpx2.Response) -> str:
    return f"{response.status_code} {response.reason_phrase}".strip()


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def _proxied(url: str) -> bool:
    """True when an HTTP(S)_PROXY environment setting applies to ``url`` (the direct TLS check would
    then test the wrong path)."""
    proxies = urllib.request.getproxies()
    scheme = urlsplit(url).scheme
    if not proxies.get(scheme) and not proxies.get("all"):
        return False
    host = urlsplit(url).netloc
    return not urllib.request.proxy_bypass(host)


def _connection_failure(exc: BaseException, url: str, timeout: float) -> tuple[str, str]:
    """(reason, message) for a failed connection, from the whole cause chain."""
    host, port = _host_port(url)
    for err in _errors(exc):
        if isinstance(err, openai.APITimeoutError | httpx2.TimeoutException | TimeoutError):
            return reasons.TIMEOUT, f"no answer from {url} within {timeout:g} s (spec.requestTimeoutSeconds)"
        if isinstance(err, socket.gaierror):
            return reasons.DNS_FAILURE, f"cannot resolve host {host!r} of {url}: {err.strerror or err}"
        if isinstance(err, ConnectionRefusedError):
            return reasons.CONNECTION_REFUSED, (
                f"connection to {host}:{port} refused ({url}): is the server running and listening on that port?")
        if isinstance(err, ssl.SSLError):
            return reasons.TLS_ERROR, f"TLS error talking to {url}: {err.reason or err}"
    text = str(exc.__cause__ or exc) or type(exc).__name__
    return reasons.CONNECTION_FAILED, f"cannot connect to {url}: {text}"


# --------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class TLSOutcome:
    ok: bool
    certificate: Cond | None = None  # CertificateValid verdict
    endpoint: Cond | None = None  # EndpointReachable verdict when not ok
    server: CertificateInfo | None = None


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close a probe connection without waiting more than a second for the peer."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1)
    except (OSError, TimeoutError, ssl.SSLError):
        pass


async def _peer_certificate(host: str, port: int, timeout: float) -> CertificateInfo | None:
    """The server's certificate, read without verification (only to name it in a message)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx, server_hostname=host), timeout)
    except (OSError, TimeoutError, ssl.SSLError):
        return None
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        return info_of_der(der) if der else None
    finally:
        await _close(writer)


def _server_desc(server: CertificateInfo | None) -> str:
    if server is None:
        return "the server's certificate"
    return f"the server's certificate (subject {server.subject}, issuer {server.issuer})"


def _trust_desc(conn: ProviderConnection) -> str:
    if conn.ca_source:
        return conn.ca_source + (" and the system trust store" if conn.use_system_trust_store else "")
    return "the system trust store (configure spec.tls.caBundle, caSecretRef or caConfigMapRef for a private CA)"


def _classify_verification(err: ssl.SSLCertVerificationError, conn: ProviderConnection,
                           server: CertificateInfo | None, url: str) -> Cond:
    code = getattr(err, "verify_code", None)
    desc = _server_desc(server)
    host, _ = _host_port(url)
    if code in _HOSTNAME_CODES:
        return Cond.false(reasons.CERTIFICATE_VALID, reasons.HOSTNAME_MISMATCH,
                          f"{desc} is not valid for {host!r}: use a baseURL host named in the certificate, "
                          "or reissue the certificate with this name in its subjectAltName")
    if code == _EXPIRED_CODE:
        when = f" on {server.not_after:%Y-%m-%d %H:%M} UTC" if server else ""
        return Cond.false(reasons.CERTIFICATE_VALID, reasons.SERVER_CERTIFICATE_EXPIRED,
                          f"{desc} expired{when}: renew the server's certificate")
    if code == _NOT_YET_VALID_CODE:
        return Cond.false(reasons.CERTIFICATE_VALID, reasons.SERVER_CERTIFICATE_NOT_YET_VALID,
                          f"{desc} is not valid yet: check the clocks of the server and of this node")
    if code in _UNKNOWN_AUTHORITY_CODES:
        return Cond.false(reasons.CERTIFICATE_VALID, reasons.UNKNOWN_AUTHORITY,
                          f"{desc} is not signed by a trusted CA; trusted: {_trust_desc(conn)}")
    return Cond.false(reasons.CERTIFICATE_VALID, reasons.TLS_HANDSHAKE_FAILED,
                      f"{desc} failed verification: {getattr(err, 'verify_message', None) or err.reason or err}")


def _classify_ssl_error(err: ssl.SSLError, conn: ProviderConnection, url: str) -> Cond:
    text = f"{err.reason or ''} {err}".upper()
    if "CERTIFICATE_REQUIRED" in text and conn.client_certificate is None:
        return Cond.false(reasons.CERTIFICATE_VALID, reasons.CLIENT_CERTIFICATE_REQUIRED,
                          f"{url} requires a client certificate (mutual TLS): set "
                          "spec.tls.clientCertificateSecretRef to a kubernetes.io/tls Secret")
    if any(mark in text for mark in ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE", "UNKNOWN_CA",
                                     "CERTIFICATE_UNKNOWN", "CERTIFICATE_EXPIRED", "CERTIFICATE_REVOKED",
                                     "ACCESS_DENIED")):
        if conn.client_certificate is not None:
            return Cond.false(reasons.CERTIFICATE_VALID, reasons.CLIENT_CERTIFICATE_REJECTED,
                              f"{url} rejected the client certificate ({conn.client_certificate.subject}, "
                              f"issuer {conn.client_certificate.issuer}): {err.reason or err}; use a certificate "
                              "issued by a CA the server trusts")
        return Cond.false(reasons.CERTIFICATE_VALID, reasons.CLIENT_CERTIFICATE_REQUIRED,
                          f"{url} refused the TLS session ({err.reason or err}): it probably requires a client "
                          "certificate; set spec.tls.clientCertificateSecretRef")
    if any(mark in text for mark in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                                     "HTTP_REQUEST", "UNKNOWN_PROTOCOL")):
        return Cond.false(reasons.CERTIFICATE_VALID, reasons.TLS_HANDSHAKE_FAILED,
                          f"{url} does not speak TLS on this port ({err.reason or err}): if the server serves "
                          "plain HTTP, use an http:// baseURL")
    return Cond.false(reasons.CERTIFICATE_VALID, reasons.TLS_HANDSHAKE_FAILED,
                      f"TLS handshake with {url} failed: {err.reason or err}")


def _tls_ok(conn: ProviderConnection, server: CertificateInfo | None) -> Cond:
    desc = _server_desc(server)
    if conn.insecure:
        return Cond.true(reasons.CERTIFICATE_VALID, reasons.VERIFICATION_DISABLED,
                         f"INSECURE: spec.tls.insecureSkipVerify is true, {desc} is NOT verified; "
                         "configure the CA instead and remove insecureSkipVerify")
    if conn.ca_source:
        return Cond.true(reasons.CERTIFICATE_VALID, reasons.CERTIFICATE_TRUSTED,
                         f"{desc} is trusted through {_trust_desc(conn)}")
    return Cond.true(reasons.CERTIFICATE_VALID, reasons.SYSTEM_TRUST_STORE,
                     f"{desc} is trusted through the system trust store")


async def check_tls(conn: ProviderConnection, *, timeout: float | None = None) -> TLSOutcome:
    """A direct TLS handshake with the endpoint, with the provider's SSL context; then one small
    request so that a TLS 1.3 server's verdict on our client certificate arrives."""
    url = conn.endpoints.chat_url
    host, port = _host_port(url)
    timeout = timeout if timeout is not None else conn.timeout_seconds
    ctx = conn.ssl_context or ssl.create_default_context()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx, server_hostname=host,
                                    ssl_handshake_timeout=timeout), timeout)
    except ssl.SSLCertVerificationError as err:
        peer = await _peer_certificate(host, port, timeout)
        cert = _classify_verification(err, conn, peer, url)
        return TLSOutcome(False, cert, _tls_endpoint(url, cert), peer)
    except ssl.SSLError as err:
        cert = _classify_ssl_error(err, conn, url)
        return TLSOutcome(False, cert, _tls_endpoint(url, cert))
    except (OSError, TimeoutError) as err:
        if isinstance(err, ConnectionResetError):
            cert = Cond.false(reasons.CERTIFICATE_VALID, reasons.TLS_HANDSHAKE_FAILED,
                              f"{url} closed the connection during the TLS handshake: does it serve HTTPS on "
                              "this port? If it requires a client certificate, set spec.tls.clientCertificateSecretRef")
            return TLSOutcome(False, cert, _tls_endpoint(url, cert))
        reason, message = _connection_failure(err, url, timeout)
        return TLSOutcome(False, None, Cond.false(reasons.ENDPOINT_REACHABLE, reason, message))

    server: CertificateInfo | None = None
    closed = False
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        server = info_of_der(der) if der else None
        path = urlsplit(conn.endpoints.models_url).path or "/"
        writer.write(f"HEAD {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        closed = not await asyncio.wait_for(reader.read(1), timeout)
    except ssl.SSLError as err:
        cert = _classify_ssl_error(err, conn, url)
        return TLSOutcome(False, cert, _tls_endpoint(url, cert), server)
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    except (OSError, TimeoutError):
        pass  # the handshake worked; the HTTP requests will tell the rest
    finally:
        await _close(writer)
    if closed:
        # TLS 1.3 servers check the client certificate after the handshake and often just hang up.
        cert = _closed_after_handshake(conn, url)
        return TLSOutcome(False, cert, _tls_endpoint(url, cert), server)
    return TLSOutcome(True, _tls_ok(conn, server), None, server)


def _closed_after_handshake(conn: ProviderConnection, url: str) -> Cond:
    if conn.client_certificate is None:
        return Cond.false(reasons.CERTIFICATE_VALID, reasons.CLIENT_CERTIFICATE_REQUIRED,
                          f"{url} closed the connection right after the TLS handshake without answering: it "
                          "most likely requires a client certificate (mutual TLS); set "
                          "spec.tls.clientCertificateSecretRef to a kubernetes.io/tls Secret")
    return Cond.false(reasons.CERTIFICATE_VALID, reasons.CLIENT_CERTIFICATE_REJECTED,
                      f"{url} closed the connection right after the TLS handshake without answering: it most "
                      f"likely rejected the client certificate ({conn.client_certificate.subject}, issuer "
                      f"{conn.client_certificate.issuer}); use a certificate issued by a CA the server trusts")


def _tls_endpoint(url: str, cert: Cond) -> Cond:
    return Cond.false(reasons.ENDPOINT_REACHABLE, reasons.TLS_ERROR,
                      f"the TLS handshake with {url} failed ({cert.reason}); see condition CertificateValid")


# --------------------------------------------------------------------------- HTTP


@dataclass
class HTTPResult:
    """One request's outcome: a response (any status) or a connection failure."""

    response: httpx2.Response | None = None
    body: object = None  # parsed JSON, when the body is JSON
    json_ok: bool = False
    failure: tuple[str, str] | None = None  # (reason, message)
    elapsed_ms: int | None = None

    @property
    def status(self) -> int:
        return self.response.status_code if self.response is not None else 0


async def _send(client: openai.AsyncOpenAI, method: str, path: str, url: str, timeout: float,
                body: dict[str, Any] | None = None) -> HTTPResult:
    started = time.perf_counter()
    result = HTTPResult()
    try:
        if method == "GET":
            response = await client.get(path, cast_to=httpx2.Response)
        else:
            response = await client.post(path, body=body, cast_to=httpx2.Response)
    except openai.APIStatusError as exc:
        response = exc.response
        result.body = exc.body
    except openai.APIConnectionError as exc:  # includes APITimeoutError
        result.failure = _connection_failure(exc, url, timeout)
        return result
    except (httpx2.HTTPError, OSError) as exc:
        result.failure = _connection_failure(exc, url, timeout)
        return result
    result.elapsed_ms = int((time.perf_counter() - started) * 1000)
    result.response = response
    try:
        result.body = response.json()
        result.json_ok = True
    except ValueError:
        result.json_ok = False
    except Exception:  # noqa: BLE001 - body unreadable
        result.json_ok = False
    return result


def _models_of(body: object) -> list[str] | None:
    """Model ids of an OpenAI ``/models`` answer (``{"data": [{"id": ...}]}``; ``{"models": [...]}`` too)."""
    if not isinstance(body, Mapping):
        return None
    items = body.get("data", body.get("models"))
    if not isinstance(items, list):
        return None
    ids: list[str] = []
    for item in items:
        if isinstance(item, Mapping):
            ident = item.get("id") or item.get("name") or item.get("model")
            if ident:
                ids.append(str(ident))
        elif isinstance(item, str):
            ids.append(item)
    return ids


_MODEL_MISSING = re.compile(
    r"model[^.]*?\b(not found|does not exist|doesn't exist|not exist|unknown|not available|is not served|"
    r"no such|invalid)|\b(unknown|invalid|no such|unsupported) model|model_not_found",
    re.IGNORECASE,
)


def _model_missing(result: HTTPResult) -> bool:
    """Does an error answer say that the model does not exist (OpenAI, vLLM, Ollama, LiteLLM wordings)?"""
    if isinstance(result.body, Mapping):
        err = result.body.get("error", result.body)
        if isinstance(err, Mapping) and (err.get("code") == "model_not_found" or err.get("param") == "model"):
            return True
    return bool(_MODEL_MISSING.search(_server_text(result.response, result.body)))


def _adapted(body: dict[str, Any], result: HTTPResult, text: str) -> dict[str, Any] | None:
    """The request changed to suit a 400/422 answer, or None when there is nothing left to change.

    Reasoning models refuse ``max_tokens`` (they want ``max_completion_tokens``) and any temperature
    but the default; some servers accept tools but not ``tool_choice: "required"``."""
    if result.failure or result.status not in (400, 422):
        return None
    lowered = text.lower()
    if "max_tokens" in body and "max_completion_tokens" in lowered:
        changed = dict(body)
        changed["max_completion_tokens"] = changed.pop("max_tokens")
        return changed
    if "temperature" in body and "temperature" in lowered:
        changed = dict(body)
        del changed["temperature"]
        return changed
    if body.get("tool_choice") == "required":
        return {**body, "tool_choice": "auto"}
    return None


class _Probe:
    def __init__(self, conn: ProviderConnection, client: openai.AsyncOpenAI, timeout: float) -> None:
        self.conn = conn
        self.client = client
        self.timeout = timeout
        self.report = ProbeReport()
        self.chat_url = conn.endpoints.chat_url
        self.models_url = conn.endpoints.models_url
        self.models_note = ""  # why the models endpoint was not usable, for later messages
        self.last_body: dict[str, Any] = {}

    # -- message helpers -------------------------------------------------------------

    def text(self, result: HTTPResult) -> str:
        return self.conn.redact(_server_text(result.response, result.body))

    def http_error(self, result: HTTPResult, method: str, url: str) -> Cond:
        assert result.response is not None
        text = self.text(result)
        hint = ""
        if result.status >= 500:
            hint = "; the server failed: check its logs (retrying with backoff)"
        return Cond.false(reasons.ENDPOINT_REACHABLE, reasons.HTTP_ERROR,
                          f"{_status_line(result.response)} from {method} {url}"
                          f"{': ' + text if text else ''}{hint}")

    def unauthorized(self, result: HTTPResult, method: str, url: str) -> Cond:
        assert result.response is not None
        text = self.text(result)
        where = f"{_status_line(result.response)} from {method} {url}{': ' + text if text else ''}"
        if not self.conn.api_key:
            return Cond.false(reasons.AUTHENTICATED, reasons.API_KEY_REQUIRED,
                              f"{where}; the server requires an API key: set spec.apiKeySecretRef")
        return Cond.false(reasons.AUTHENTICATED, reasons.INVALID_API_KEY,
                          f"{where}; the server rejected the API key from spec.apiKeySecretRef: check the Secret's "
                          "value (surrounding whitespace is removed) and that the key is valid for this server")

    def authenticated(self) -> Cond:
        if self.conn.api_key:
            return Cond.true(reasons.AUTHENTICATED, reasons.AUTHENTICATED_OK, "the server accepted the API key")
        return Cond.true(reasons.AUTHENTICATED, reasons.NO_AUTHENTICATION_REQUIRED,
                         "no API key configured and the server answered without one")

    def reachable(self, how: str) -> Cond:
        return Cond.true(reasons.ENDPOINT_REACHABLE, reasons.ENDPOINT_REACHABLE_OK, how)

    # -- steps -------------------------------------------------------------------------

    async def run(self) -> ProbeReport:
        stop, listed = await self.list_models()
        if stop:
            return self.report
        model = self.conn.model
        if listed is None or model not in listed:
            if not await self.one_token_chat(listed):
                return self.report
        else:
            self.report.set(Cond.true(reasons.MODEL_AVAILABLE, reasons.MODEL_LISTED,
                                      f"model {model!r} is listed by {self.models_url}"))
        await self.tool_calling()
        return self.report

    async def list_models(self) -> tuple[bool, list[str] | None]:
        """(stop, served models): models is None when the server has no usable models endpoint; stop is
        True when the probe must stop (its verdicts are in the report)."""
        result = await _send(self.client, "GET", "/models", self.models_url, self.timeout)
        if result.failure:
            self.report.set(Cond.false(reasons.ENDPOINT_REACHABLE, *result.failure))
            return True, None
        self.report.latency_ms = result.elapsed_ms
        status = result.status
        if status in (401, 403):
            self.report.set(self.reachable(f"{self.models_url} answered {status}"))
            self.report.set(self.unauthorized(result, "GET", self.models_url))
            return True, None
        if status == 429:
            self.report.set(self._rate_limited(result, "GET", self.models_url))
            return True, None
        if status == 400 and "ssl certificate" in self.text(result).lower():  # nginx's mutual TLS answer
            cert = _closed_after_handshake(self.conn, self.models_url)
            self.report.set(Cond(cert.type, cert.status, cert.reason,
                                 f"{self.models_url} answered 400: {self.text(result)}"
                                 + cert.message.split("without answering", 1)[1]))
            self.report.set(_tls_endpoint(self.models_url, cert))
            return True, None
        if status >= 500:
            self.report.set(self.http_error(result, "GET", self.models_url))
            return True, None
        if 200 <= status < 300:
            models = _models_of(result.body) if result.json_ok else None
            if models is not None:
                self.report.available_models = models
                self.report.set(self.reachable(f"GET {self.models_url} answered {status} in {result.elapsed_ms} ms"))
                self.report.set(self.authenticated())
                return False, models
            self.models_note = (f"GET {self.models_url} answered {status} but not with an OpenAI model list "
                                f"({self._content_type(result)})")
            return False, None
        self.models_note = f"GET {self.models_url} answered {_status_line(result.response)}"  # type: ignore[arg-type]
        return False, None  # 404, 405...: no models endpoint; the chat decides

    @staticmethod
    def _content_type(result: HTTPResult) -> str:
        ctype = result.response.headers.get("content-type", "") if result.response is not None else ""
        return f"Content-Type {ctype.split(';')[0] or 'missing'}"

    def _rate_limited(self, result: HTTPResult, method: str, url: str) -> Cond:
        retry_after = result.response.headers.get("retry-after") if result.response is not None else None
        after = f" (Retry-After: {retry_after} s)" if retry_after else ""
        text = self.text(result)
        return Cond.false(reasons.ENDPOINT_REACHABLE, reasons.RATE_LIMITED,
                          f"429 Too Many Requests from {method} {url}{after}{': ' + text if text else ''}; "
                          "retrying with backoff")

    async def _v1_hint(self) -> str:
        """The LiteLLM trap: a base URL without /v1 on a server that serves /v1."""
        base = self.conn.endpoints.base_url.rstrip("/")
        if self.conn.endpoints.full_endpoint or base.endswith("/v1"):
            return ""
        candidate = base + "/v1/models"
        try:
            response = await self.client.get(candidate, cast_to=httpx2.Response)
            status = response.status_code
        except openai.APIStatusError as exc:
            status = exc.status_code
        except (openai.APIConnectionError, httpx2.HTTPError, OSError):
            return ""
        if status != 404:
            return (f"; {candidate} answers ({status}): the baseURL probably lacks /v1, "
                    f"set spec.baseURL to {base}/v1")
        return ""

    async def one_token_chat(self, listed: list[str] | None) -> bool:
        """A one-token chat completion: the fallback without a models list, and the check of a model
        that the list does not show. False when the probe must stop."""
        body: dict[str, Any] = {"model": self.conn.model, "messages": [{"role": "user", "content": "Say OK."}],
                                "max_tokens": 1}
        result = await self._chat(body)
        model = self.conn.model
        if result.failure:
            self.report.set(Cond.false(reasons.ENDPOINT_REACHABLE, *result.failure))
            return False
        status = result.status
        if self.report.latency_ms is None or listed is None:
            self.report.latency_ms = result.elapsed_ms
        if status in (401, 403):
            self.report.set(self.reachable(f"{self.chat_url} answered {status}"))
            self.report.set(self.unauthorized(result, "POST", self.chat_url))
            return False
        if status == 429:
            self.report.set(self._rate_limited(result, "POST", self.chat_url))
            return False
        if status in (400, 404, 422) and _model_missing(result):
            self.report.set(self.reachable(f"POST {self.chat_url} answered {status}"))
            self.report.set(self.authenticated())
            served = ""
            if listed:
                shown = ", ".join(listed[:10]) + (f" and {len(listed) - 10} more" if len(listed) > 10 else "")
                served = f"; the server offers: {shown}"
            elif listed is not None:
                served = "; the server lists no models"
            self.report.set(Cond.false(reasons.MODEL_AVAILABLE, reasons.MODEL_NOT_FOUND,
                                       f"the server does not serve model {model!r} ({status}: "
                                       f"{self.text(result)}){served}; fix spec.model"))
            return False
        if status in (404, 405):
            hint = await self._v1_hint()
            note = f" ({self.models_note})" if self.models_note else ""
            cond = self.http_error(result, "POST", self.chat_url)
            self.report.set(Cond(cond.type, cond.status, cond.reason, cond.message + note + hint))
            return False
        if status >= 500:
            self.report.set(self.http_error(result, "POST", self.chat_url))
            return False
        if status >= 400:
            self.report.set(self.reachable(f"POST {self.chat_url} answered {status}"))
            self.report.set(self.authenticated())
            self.report.set(Cond.false(reasons.MODEL_AVAILABLE, reasons.HTTP_ERROR,
                                       f"the server refused a one-token chat completion with model {model!r} "
                                       f"({_status_line(result.response)}: {self.text(result)})"))  # type: ignore[arg-type]
            return False
        if not (result.json_ok and isinstance(result.body, Mapping) and isinstance(result.body.get("choices"), list)):
            note = f"; {self.models_note}" if self.models_note else ""
            self.report.set(Cond.false(
                reasons.ENDPOINT_REACHABLE, reasons.UNEXPECTED_RESPONSE,
                f"POST {self.chat_url} answered {status} ({self._content_type(result)}) but not with an OpenAI "
                f"chat completion{note}: check that baseURL points at the OpenAI-compatible API (often .../v1)"))
            return False
        how = (f"POST {self.chat_url} answered {status} in {result.elapsed_ms} ms"
               + (f" ({self.models_note})" if self.models_note else ""))
        self.report.set(self.reachable(how))
        self.report.set(self.authenticated())
        if listed is None:
            self.report.set(Cond.true(reasons.MODEL_AVAILABLE, reasons.MODEL_ACCEPTED,
                                      f"the server answered a chat completion with model {model!r} "
                                      "(it has no usable models endpoint)"))
        else:
            self.report.set(Cond.true(reasons.MODEL_AVAILABLE, reasons.MODEL_ACCEPTED,
                                      f"model {model!r} is not in {self.models_url} but the server answered a "
                                      "chat completion with it"))
        return True

    async def _chat(self, body: dict[str, Any]) -> HTTPResult:
        """POST a chat completion; on a 400 that names a parameter the server refuses, adapt and retry
        (at most three times). ``self.last_body`` is what was sent last."""
        result = await _send(self.client, "POST", "/chat/completions", self.chat_url, self.timeout, body)
        for _ in range(3):
            changed = _adapted(body, result, _server_text(result.response, result.body))
            if changed is None:
                break
            body = changed
            result = await _send(self.client, "POST", "/chat/completions", self.chat_url, self.timeout, body)
        self.last_body = body
        return result

    async def tool_calling(self) -> None:
        body: dict[str, Any] = {
            "model": self.conn.model,
            "messages": [{"role": "user", "content": PROBE_PROMPT}],
            "tools": [PROBE_TOOL],
            "tool_choice": "required",
            "max_tokens": TOOL_PROBE_MAX_TOKENS,
            "temperature": 0,
        }
        result = await self._chat(body)
        self.report.set(self._tool_verdict(result, str(self.last_body.get("tool_choice"))))
        if result.elapsed_ms is not None and 200 <= result.status < 300:
            self.report.latency_ms = result.elapsed_ms

    def _tool_verdict(self, result: HTTPResult, choice: str) -> Cond:
        t = reasons.TOOL_CALLING_SUPPORTED
        if result.failure:
            return Cond.false(t, result.failure[0], f"the tool-calling probe failed: {result.failure[1]}")
        status = result.status
        if status == 429:
            rl = self._rate_limited(result, "POST", self.chat_url)
            return Cond.false(t, reasons.RATE_LIMITED, rl.message)
        if status >= 500:
            return Cond.false(t, reasons.HTTP_ERROR, self.http_error(result, "POST", self.chat_url).message)
        if status >= 400:
            return Cond.false(t, reasons.TOOL_CALL_REJECTED,
                              f"the server rejected a chat completion with tools ({status}, tool_choice "
                              f"{choice!r}): {self.text(result)}; {_TOOL_HINT}")
        if not result.json_ok or not isinstance(result.body, Mapping):
            return Cond.false(t, reasons.UNEXPECTED_RESPONSE,
                              f"POST {self.chat_url} answered {status} with a body that is not JSON "
                              f"({self._content_type(result)}): the server is not OpenAI-compatible here")
        choices = result.body.get("choices")
        message = choices[0].get("message") if isinstance(choices, list) and choices and isinstance(
            choices[0], Mapping) else None
        if not isinstance(message, Mapping):
            return Cond.false(t, reasons.UNEXPECTED_RESPONSE,
                              f"POST {self.chat_url} answered {status} without choices[0].message: the response "
                              "format is not OpenAI's chat completion")
        calls = message.get("tool_calls") or []
        if not calls:
            content = self.conn.redact(shorten(str(message.get("content") or ""), 160))
            as_text = PROBE_TOOL_NAME in content or "tool_call" in content
            why = ("the model wrote the tool call as text: the server's tool-call parser is not enabled"
                   if as_text else "the model answered with text instead of a tool call")
            return Cond.false(t, reasons.TOOL_CALLS_IGNORED,
                              f"{why} (tool_choice {choice!r}): {content!r}; {_TOOL_HINT}")
        call: Mapping[str, Any] = calls[0] if isinstance(calls, list) and isinstance(calls[0], Mapping) else {}
        function: Mapping[str, Any] = call["function"] if isinstance(call.get("function"), Mapping) else {}
        name = function.get("name")
        raw_args = function.get("arguments")
        try:
            args = json.loads(raw_args) if isinstance(raw_args, str) else raw_args
        except ValueError:
            args = None
        if not isinstance(args, dict):
            shown = self.conn.redact(shorten(str(raw_args), 120))
            return Cond.false(t, reasons.TOOL_CALL_MALFORMED,
                              f"the model called {name!r} but its arguments are not a JSON object: {shown!r}; "
                              "the model or the server's tool-call parser produces broken calls")
        if name != PROBE_TOOL_NAME:
            return Cond.false(t, reasons.TOOL_CALL_MALFORMED,
                              f"the model called an unknown tool {shorten(str(name), 60)!r} instead of "
                              f"{PROBE_TOOL_NAME!r}")
        return Cond.true(t, reasons.TOOL_CALLS_RETURNED,
                         f"the model called {PROBE_TOOL_NAME} with valid JSON arguments (tool_choice {choice!r}, "
                         f"{result.elapsed_ms} ms)")


_TOOL_HINT = ("use a model and server with function calling (vLLM: --enable-auto-tool-choice --tool-call-parser; "
              "llama.cpp: --jinja; Ollama: a model with the tools capability)")


async def probe(conn: ProviderConnection, *, timeout: float | None = None) -> ProbeReport:
    """Probe the provider's endpoint; see the module docstring. Never raises for endpoint failures."""
    timeout = timeout if timeout is not None else conn.timeout_seconds
    report: ProbeReport
    if conn.tls:
        if _proxied(conn.endpoints.chat_url):
            tls: TLSOutcome | None = None  # through a proxy: the HTTP requests tell about TLS
        else:
            tls = await check_tls(conn, timeout=timeout)
            if not tls.ok:
                report = ProbeReport(server_certificate=tls.server)
                if tls.certificate is not None:
                    report.set(tls.certificate)
                if tls.endpoint is not None:
                    report.set(tls.endpoint)
                if tls.certificate is None and tls.endpoint is not None:
                    report.set(Cond.unknown(reasons.CERTIFICATE_VALID, reasons.ENDPOINT_UNREACHABLE,
                                            f"not checked: {tls.endpoint.reason} ({tls.endpoint.message})"))
                return _redacted(report, conn)
    else:
        tls = None
    client = build_openai_client(conn, max_retries=0, timeout=timeout)
    try:
        report = await _Probe(conn, client, timeout).run()
    finally:
        await client.close()
    if conn.tls:
        if tls is not None:
            report.server_certificate = tls.server
            report.checks.setdefault(reasons.CERTIFICATE_VALID, tls.certificate or _tls_ok(conn, tls.server))
        else:
            failure = report.checks.get(reasons.ENDPOINT_REACHABLE)
            if failure is not None and failure.reason == reasons.TLS_ERROR:
                report.set(Cond.false(reasons.CERTIFICATE_VALID, reasons.TLS_HANDSHAKE_FAILED, failure.message))
            else:
                report.set(_tls_ok(conn, None))
    else:
        note = " (the API key travels unencrypted)" if conn.api_key else ""
        report.set(Cond.true(reasons.CERTIFICATE_VALID, reasons.NOT_APPLICABLE,
                             f"baseURL uses plain http: no TLS, no certificate to check{note}"))
    return _redacted(report, conn)


def _redacted(report: ProbeReport, conn: ProviderConnection) -> ProbeReport:
    report.checks = {k: Cond(c.type, c.status, c.reason, conn.redact(c.message)) for k, c in report.checks.items()}
    return report
