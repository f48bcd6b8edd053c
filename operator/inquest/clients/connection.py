"""From a ModelProvider spec to a ProviderConnection: every Secret and ConfigMap reference resolved,
the CA and client certificate checked, the SSL context built.

``resolve_connection`` is what the investigation agent calls; ``resolve`` collects every problem at
once for the provider's status. Messages name the object and key, never a value.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime

from inquest.api.modelprovider import ModelParameters, ModelProviderSpec, Pricing
from inquest.clients.kube import KubeClient, KubeError
from inquest.clients.llm import SSL_CONTEXTS, ProviderConnection
from inquest.domain import certificates, endpoints, reasons
from inquest.domain.certificates import CertificateInfo, CertificateProblem, ClientCertificate
from inquest.domain.provider import Problem


class ConnectionProblem(Exception):
    """The provider cannot be used as configured. Carries a condition type, a reason and a message
    naming the object and key (never a secret value)."""

    def __init__(self, condition: str, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.condition = condition
        self.reason = reason
        self.message = message

    @property
    def needs_edit(self) -> bool:
        """True when only a user edit (spec, Secret or ConfigMap) can fix it: do not retry."""
        return self.reason in reasons.NEEDS_EDIT

    @classmethod
    def of(cls, problem: Problem) -> ConnectionProblem:
        return cls(problem.condition, problem.reason, problem.message)


@dataclass
class Resolution:
    """Everything ``resolve`` found. ``connection`` is set only when ``problems`` is empty."""

    connection: ProviderConnection | None = None
    problems: list[Problem] = field(default_factory=list)
    endpoints: endpoints.Endpoints | None = None
    ca_certificates: list[CertificateInfo] = field(default_factory=list)
    client_certificate: CertificateInfo | None = None
    references: int = 0  # how many Secret/ConfigMap references the spec holds

    def first(self, condition: str) -> Problem | None:
        return next((p for p in self.problems if p.condition == condition), None)


def _secret_name(namespace: str, name: str) -> str:
    return f"Secret {namespace}/{name}"


class _Reader:
    """Reads each referenced Secret/ConfigMap once; records problems instead of raising."""

    def __init__(self, kube: KubeClient, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self._secrets: dict[str, asyncio.Task[tuple[str, dict[str, bytes]] | None]] = {}
        self._configmaps: dict[str, asyncio.Task[dict[str, str] | None]] = {}
        self.problems: list[Problem] = []
        self._reported: set[str] = set()

    def _problem(self, reason: str, message: str, *, once: str | None = None) -> None:
        if once is not None:
            if once in self._reported:
                return
            self._reported.add(once)
        self.problems.append(Problem(reasons.SECRETS_RESOLVED, reason, message))

    async def secret(self, name: str, key: str, what: str) -> dict[str, bytes] | None:
        """The Secret's data, or None (a problem naming the Secret, the key that was wanted and the spec field)."""
        if name not in self._secrets:
            self._secrets[name] = asyncio.ensure_future(self.kube.read_secret(self.namespace, name))
        try:
            found = await asyncio.shield(self._secrets[name])
        except KubeError as exc:
            self._problem(reasons.SECRET_READ_FAILED,
                          f"cannot read {_secret_name(self.namespace, name)} (key {key!r}, {what}): "
                          f"{exc.status} {exc.reason}"
                          f"{': ' + exc.message if exc.message else ''}; check the operator's RBAC",
                          once=f"Secret/{name}")
            return None
        if found is None:
            self._problem(reasons.SECRET_NOT_FOUND,
                          f"{_secret_name(self.namespace, name)} not found (key {key!r}, {what}); create it in "
                          f"namespace {self.namespace}", once=f"Secret/{name}")
            return None
        return found[1]

    async def secret_key(self, name: str, key: str, what: str) -> bytes | None:
        data = await self.secret(name, key, what)
        if data is None:
            return None
        if key not in data:
            keys = ", ".join(sorted(data)) or "none"
            self._problem(reasons.SECRET_KEY_NOT_FOUND,
                          f"{_secret_name(self.namespace, name)} has no key {key!r} ({what}); its keys: {keys}")
            return None
        if not data[key].strip():
            self._problem(reasons.SECRET_VALUE_EMPTY,
                          f"{_secret_name(self.namespace, name)} key {key!r} is empty ({what})")
            return None
        return data[key]

    async def configmap_key(self, name: str, key: str, what: str) -> str | None:
        if name not in self._configmaps:
            self._configmaps[name] = asyncio.ensure_future(self.kube.read_configmap(self.namespace, name))
        try:
            data = await asyncio.shield(self._configmaps[name])
        except KubeError as exc:
            self._problem(reasons.SECRET_READ_FAILED,
                          f"cannot read ConfigMap {self.namespace}/{name} (key {key!r}, {what}): "
                          f"{exc.status} {exc.reason}"
                          f"{': ' + exc.message if exc.message else ''}; check the operator's RBAC",
                          once=f"ConfigMap/{name}")
            return None
        if data is None:
            self._problem(reasons.CONFIGMAP_NOT_FOUND,
                          f"ConfigMap {self.namespace}/{name} not found (key {key!r}, {what}); "
                          f"create it in namespace {self.namespace}", once=f"ConfigMap/{name}")
            return None
        if key not in data:
            keys = ", ".join(sorted(data)) or "none"
            self._problem(reasons.CONFIGMAP_KEY_NOT_FOUND,
                          f"ConfigMap {self.namespace}/{name} has no key {key!r} ({what}); its keys: {keys}")
            return None
        if not data[key].strip():
            self._problem(reasons.SECRET_VALUE_EMPTY,
                          f"ConfigMap {self.namespace}/{name} key {key!r} is empty ({what})")
            return None
        return data[key]


def _header_safe(value: str) -> bool:
    """Header values go on the wire as latin-1 without line breaks or other control characters."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return not any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in value)


def _text_value(raw: bytes, problems: list[Problem], where: str) -> str | None:
    """A Secret value as a header-safe string (surrounding whitespace, e.g. a trailing newline, removed)."""
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        value = None
    if value is None or not _header_safe(value):
        problems.append(Problem(reasons.SECRETS_RESOLVED, reasons.SECRET_VALUE_INVALID,
                                f"{where} holds a line break, control or non-Latin-1 character inside the value; "
                                "store the bare value (the value itself is not shown)"))
        return None
    return value


def references(spec: ModelProviderSpec) -> list[tuple[str, str]]:
    """(kind, name) of every Secret and ConfigMap the spec references, kind "Secret" or "ConfigMap"."""
    refs: list[tuple[str, str]] = []
    if spec.api_key_secret_ref:
        refs.append(("Secret", spec.api_key_secret_ref.name))
    for h in spec.headers:
        if h.value_from:
            refs.append(("Secret", h.value_from.secret_key_ref.name))
    tls = spec.tls
    if tls:
        if tls.ca_secret_ref:
            refs.append(("Secret", tls.ca_secret_ref.name))
        if tls.ca_config_map_ref:
            refs.append(("ConfigMap", tls.ca_config_map_ref.name))
        if tls.client_certificate_secret_ref:
            refs.append(("Secret", tls.client_certificate_secret_ref.name))
    return list(dict.fromkeys(refs))


def _load_client_chain(ctx: ssl.SSLContext, client: ClientCertificate) -> None:
    """``SSLContext.load_cert_chain`` only reads files. Use anonymous in-memory files (memfd, Linux)
    when possible, else a private temporary directory removed right away."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fds: list[int] = []
        try:
            for label, data in (("inquest-client-crt", client.chain_pem), ("inquest-client-key", client.key_pem)):
                fd = os.memfd_create(label, os.MFD_CLOEXEC)
                fds.append(fd)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            ctx.load_cert_chain(f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}")
            return
        except ssl.SSLError:
            raise
        except OSError:
            pass  # no usable /proc: fall back to a private directory
        finally:
            for fd in fds:
                os.close(fd)
    with tempfile.TemporaryDirectory(prefix="inquest-tls-") as tmp:  # mode 0700
        cert_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        for path, data in ((cert_path, client.chain_pem), (key_path, client.key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(cert_path, key_path)


def build_ssl_context(
    *,
    ca_pem: str | None,
    client: ClientCertificate | None,
    insecure: bool,
    use_system_trust_store: bool,
) -> ssl.SSLContext:
    """Trust the configured CA plus the system store (unless opted out); present the client
    certificate; or verify nothing when ``insecure``. CPU-bound: call it in a thread."""
    if use_system_trust_store or not ca_pem:
        ctx = ssl.create_default_context()
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, checks host names, trusts nothing yet
    if ca_pem:
        ctx.load_verify_locations(cadata=ca_pem)
        # Like Go and Python 3.13: an intermediate CA configured by the user is a valid trust anchor.
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if client is not None:
        _load_client_chain(ctx, client)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def ssl_context_key(
    *, ca_pem: str | None, client: ClientCertificate | None, insecure: bool, use_system_trust_store: bool
) -> tuple[object, ...]:
    """What makes two SSL contexts equal: a digest of the CA and client certificate material (never
    the material itself), the flags, and the variables that move the system store."""
    digest = hashlib.sha256()
    for part in (ca_pem.encode() if ca_pem else b"", client.chain_pem if client else b"",
                 client.key_pem if client else b""):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return ("provider", digest.hexdigest(), insecure, use_system_trust_store or not ca_pem,
            os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


async def shared_ssl_context(
    *, ca_pem: str | None, client: ClientCertificate | None, insecure: bool, use_system_trust_store: bool
) -> ssl.SSLContext:
    """``build_ssl_context``'s result, shared by every connection with the same configuration (a
    provider's probes and Investigations): built once, in a thread, then taken from ``SSL_CONTEXTS``."""
    key = ssl_context_key(ca_pem=ca_pem, client=client, insecure=insecure,
                          use_system_trust_store=use_system_trust_store)
    cached = SSL_CONTEXTS.peek(key)
    if cached is not None:
        return cached
    build = functools.partial(build_ssl_context, ca_pem=ca_pem, client=client, insecure=insecure,
                              use_system_trust_store=use_system_trust_store)
    return await asyncio.to_thread(SSL_CONTEXTS.get, key, build)


async def _ca_data(spec: ModelProviderSpec, reader: _Reader) -> tuple[str | None, str | bytes | None]:
    """(source description, raw CA data) of the one configured CA source."""
    tls = spec.tls
    if tls is None:
        return None, None
    if tls.ca_bundle is not None:
        return "spec.tls.caBundle", tls.ca_bundle
    if tls.ca_secret_ref is not None:
        ref = tls.ca_secret_ref
        return (f"{_secret_name(reader.namespace, ref.name)} key {ref.key}",
                await reader.secret_key(ref.name, ref.key, "spec.tls.caSecretRef"))
    if tls.ca_config_map_ref is not None:
        ref2 = tls.ca_config_map_ref
        return (f"ConfigMap {reader.namespace}/{ref2.name} key {ref2.key}",
                await reader.configmap_key(ref2.name, ref2.key, "spec.tls.caConfigMapRef"))
    return None, None


async def resolve(
    kube: KubeClient, namespace: str, name: str, spec: ModelProviderSpec, *, now: datetime | None = None
) -> Resolution:
    """Resolve and check everything the spec references; collect every problem (never raises for them)."""
    now = now or datetime.now(UTC)
    result = Resolution(references=len(references(spec)))
    try:
        result.endpoints = endpoints.resolve(spec.base_url)
    except endpoints.InvalidURL as exc:
        result.problems.append(Problem(reasons.ENDPOINT_REACHABLE, reasons.INVALID_URL, str(exc)))

    reader = _Reader(kube, namespace)
    value_problems: list[Problem] = []

    async def api_key() -> str | None:
        ref = spec.api_key_secret_ref
        if ref is None:
            return None
        raw = await reader.secret_key(ref.name, ref.key, "spec.apiKeySecretRef")
        if raw is None:
            return None
        return _text_value(raw, value_problems, f"{_secret_name(namespace, ref.name)} key {ref.key!r}")

    async def headers() -> tuple[dict[str, str], frozenset[str]]:
        out: dict[str, str] = {}
        from_secrets: set[str] = set()
        for i, h in enumerate(spec.headers):
            if h.value_from is not None:
                ref = h.value_from.secret_key_ref
                raw = await reader.secret_key(ref.name, ref.key, f"spec.headers[{i}] ({h.name})")
                value = None if raw is None else _text_value(
                    raw, value_problems, f"{_secret_name(namespace, ref.name)} key {ref.key!r}")
                if value is not None:
                    out[h.name] = value
                    from_secrets.add(h.name)
            elif h.value is not None:
                if not _header_safe(h.value):
                    value_problems.append(Problem(reasons.SECRETS_RESOLVED, reasons.INVALID_SPEC,
                                                  f"spec.headers[{i}] ({h.name}) value holds a line break or a "
                                                  "non-Latin-1 character"))
                else:
                    out[h.name] = h.value
        return out, frozenset(from_secrets)

    async def client_cert() -> ClientCertificate | None:
        ref = spec.tls.client_certificate_secret_ref if spec.tls else None
        if ref is None:
            return None
        what = "spec.tls.clientCertificateSecretRef"
        crt = await reader.secret_key(ref.name, "tls.crt", what)
        key = await reader.secret_key(ref.name, "tls.key", what)
        if crt is None or key is None:
            return None
        try:
            return certificates.load_client_certificate(crt, key, source=_secret_name(namespace, ref.name), now=now)
        except CertificateProblem as exc:
            value_problems.append(Problem(reasons.CERTIFICATE_VALID, exc.reason, exc.message))
            return None

    key, (hdrs, secret_headers), (ca_source, ca_raw), client = await asyncio.gather(
        api_key(), headers(), _ca_data(spec, reader), client_cert()
    )
    result.problems += reader.problems + value_problems

    ca_pem: str | None = None
    if ca_raw is not None and ca_source is not None:
        try:
            ca_pem, result.ca_certificates = certificates.load_ca_bundle(ca_raw, source=ca_source, now=now)
        except CertificateProblem as exc:
            result.problems.append(Problem(reasons.CERTIFICATE_VALID, exc.reason, exc.message))
    if client is not None:
        result.client_certificate = client.info

    if result.problems or result.endpoints is None:
        result.problems.sort(key=lambda p: reasons.CHECKS.index(p.condition) if p.condition in reasons.CHECKS else -1)
        return result

    tls = spec.tls
    ctx: ssl.SSLContext | None = None
    if result.endpoints.chat_url.startswith("https://") or ca_pem or client is not None:
        try:
            ctx = await shared_ssl_context(
                ca_pem=ca_pem,
                client=client,
                insecure=bool(tls and tls.insecure_skip_verify),
                use_system_trust_store=tls.use_system_trust_store if tls else True,
            )
        except ssl.SSLError as exc:
            reason = reasons.INVALID_CLIENT_CERTIFICATE if client is not None else reasons.INVALID_CERTIFICATE
            result.problems.append(Problem(reasons.CERTIFICATE_VALID, reason,
                                           f"the TLS library refused the configured certificates: {exc.reason or exc}"))
            return result

    result.connection = ProviderConnection(
        name=name,
        namespace=namespace,
        endpoints=result.endpoints,
        model=endpoints.wire_model_name(spec.model),
        api_key=key,
        headers=hdrs,
        ssl_context=ctx,
        timeout_seconds=float(spec.request_timeout_seconds),
        max_retries=spec.max_retries,
        parameters=spec.parameters or ModelParameters(),
        pricing=spec.pricing or Pricing(),
        insecure=bool(tls and tls.insecure_skip_verify),
        ca_source=ca_source if ca_pem else None,
        ca_certificates=tuple(result.ca_certificates),
        client_certificate=result.client_certificate,
        use_system_trust_store=tls.use_system_trust_store if tls else True,
        secret_header_names=secret_headers,
    )
    return result


async def resolve_connection(
    kube: KubeClient, namespace: str, name: str, spec: ModelProviderSpec
) -> ProviderConnection:
    """The provider's connection with every reference resolved, ready for ``build_openai_client``.

    Raises ConnectionProblem (condition type, reason, message) for the first problem found: a missing
    Secret/ConfigMap or key, an empty value, an unusable CA or client certificate, an invalid URL.
    """
    result = await resolve(kube, namespace, name, spec)
    if result.problems or result.connection is None:
        problem = result.problems[0] if result.problems else Problem(
            reasons.ENDPOINT_REACHABLE, reasons.INVALID_URL, "the provider's URL could not be resolved")
        raise ConnectionProblem.of(problem)
    return result.connection
