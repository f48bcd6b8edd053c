"""The ModelProvider custom resource: an OpenAI-compatible endpoint and how to reach it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from inquest.api.base import (
    ApiModel,
    Condition,
    ConfigMapKeySelector,
    LocalObjectReference,
    NamespaceOrAll,
    SecretKeySelector,
    StatusModel,
)

KIND = "ModelProvider"
PLURAL = "modelproviders"
SINGULAR = "modelprovider"
SHORT_NAMES = ["mp"]

# http(s)://HOST[:PORT][/PATH]: a host is required (a name or a bracketed IPv6 address), a port is 1 to 5
# digits (65535 at most is checked at run time: reason InvalidURL), no query string or fragment, and no
# user:password@ (credentials belong in apiKeySecretRef; the URL is shown in status.endpoint).
URL_PATTERN = r"^https?://([^\s/?#@:\[\]]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[^\s?#]*)?$"
# At most 256 KiB: a few hundred PEM certificates, base64-encoded. `kubectl apply` stores a second copy in
# the last-applied-configuration annotation, so the object stays far below etcd's 1.5 MiB request limit.
# For the public roots set useSystemTrustStore (the default) instead of pasting a whole system bundle.
MAX_CA_BUNDLE = 262_144
HEADER_NAME_PATTERN = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"

ProviderPhase = Literal["Ready", "NotReady", "Invalid"]


class TLSConfig(ApiModel):
    ca_bundle: str | None = Field(
        default=None, max_length=MAX_CA_BUNDLE,
        description="Base64 of one or more PEM CA certificates (HolmesGPT's CERTIFICATE format); "
        "plain PEM is accepted too. At most 256 KiB; the system's CAs need not be copied here "
        "(useSystemTrustStore).",
    )
    ca_secret_ref: SecretKeySelector | None = Field(
        default=None, description="A Secret key holding PEM CA certificates."
    )
    ca_config_map_ref: ConfigMapKeySelector | None = Field(
        default=None, description="A ConfigMap key holding PEM CA certificates."
    )
    client_certificate_secret_ref: LocalObjectReference | None = Field(
        default=None,
        description="A kubernetes.io/tls Secret (tls.crt, tls.key) presented to the server for mTLS.",
    )
    insecure_skip_verify: bool = Field(
        default=False, description="Do not verify the server's certificate. For testing only."
    )
    use_system_trust_store: bool = Field(
        default=True, description="Trust the system's CA store in addition to the configured CA."
    )

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.caBundle) ? 1 : 0) + (has(self.caSecretRef) ? 1 : 0)"
                    " + (has(self.caConfigMapRef) ? 1 : 0) <= 1",
                    "message": "at most one of caBundle, caSecretRef and caConfigMapRef may be set",
                }
            ]
        }
    }

    @model_validator(mode="after")
    def _one_ca_source(self) -> TLSConfig:
        sources = [s for s in (self.ca_bundle, self.ca_secret_ref, self.ca_config_map_ref) if s is not None]
        if len(sources) > 1:
            raise ValueError("at most one of caBundle, caSecretRef and caConfigMapRef may be set")
        return self


class HeaderValueSource(ApiModel):
    secret_key_ref: SecretKeySelector


class Header(ApiModel):
    name: str = Field(min_length=1, max_length=256, pattern=HEADER_NAME_PATTERN)
    value: str | None = Field(default=None, max_length=8192)
    value_from: HeaderValueSource | None = None

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {"rule": "has(self.value) != has(self.valueFrom)",
                 "message": "exactly one of value and valueFrom must be set"}
            ]
        }
    }

    @model_validator(mode="after")
    def _one_value(self) -> Header:
        if (self.value is None) == (self.value_from is None):
            raise ValueError("exactly one of value and valueFrom must be set")
        return self


class ModelParameters(ApiModel):
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_output_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    context_window: int | None = Field(
        default=None, ge=1024, le=10_000_000,
        description="The model's context window in tokens; drives tool-output budgets. Default 8192.",
    )
    supports_system_message: bool = Field(
        default=True, description="When false the system prompt is sent as a user message."
    )


class Pricing(ApiModel):
    input_per_million_tokens: float = Field(default=0, ge=0, description="USD per million prompt tokens.")
    output_per_million_tokens: float = Field(
        default=0, ge=0, description="USD per million completion tokens."
    )


class ModelProviderSpec(ApiModel):
    base_url: str = Field(
        alias="baseURL", min_length=8, max_length=2048, pattern=URL_PATTERN,
        description="http(s) base URL (https://host/v1) or a full chat-completions URL.",
    )
    model: str = Field(min_length=1, max_length=256, description="Model name; a leading 'openai/' is stripped.")
    api_key_secret_ref: SecretKeySelector | None = Field(
        default=None, description="The API key; omit for endpoints without authentication."
    )
    tls: TLSConfig | None = None
    headers: list[Header] = Field(default_factory=list, max_length=32)
    parameters: ModelParameters | None = None
    pricing: Pricing | None = None
    request_timeout_seconds: int = Field(default=60, ge=1, le=3600)
    max_retries: int = Field(default=2, ge=0, le=10)
    probe_interval_seconds: int = Field(default=300, ge=10, le=86400)
    max_concurrent_investigations: int = Field(default=4, ge=1, le=100)
    allowed_namespaces: list[NamespaceOrAll] = Field(
        default_factory=list, max_length=256,
        description="Other namespaces whose Investigations may use this provider ('*' for all).",
    )


class CertificateInfo(StatusModel):
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    sha256_fingerprint: str


class ModelProviderStatus(StatusModel):
    phase: ProviderPhase | None = None
    conditions: list[Condition] = Field(default_factory=list)
    endpoint: str | None = None
    certificate: CertificateInfo | None = None
    latency_ms: int | None = None
    available_models: list[str] = Field(default_factory=list, max_length=20)
    last_probe_time: datetime | None = None
    observed_generation: int | None = None


class ModelProvider(ApiModel):
    model_config = ApiModel.model_config | {"extra": "ignore"}

    api_version: Literal["inquest.dev/v1alpha1"] = "inquest.dev/v1alpha1"
    kind: Literal["ModelProvider"] = "ModelProvider"
    spec: ModelProviderSpec
    status: ModelProviderStatus | None = None
