"""Shared pydantic bases and the small reference types used by both CRDs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

K8S_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"  # RFC 1123 label: what a namespace name must be
NAMESPACE_OR_ALL = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?|\*)$"  # a namespace name, or '*' for all namespaces

NamespaceOrAll = Annotated[str, Field(min_length=1, max_length=63, pattern=NAMESPACE_OR_ALL)]


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are refused in specs."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class StatusModel(ApiModel):
    """Statuses are written by us but read back from the server: tolerate foreign keys."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class SecretKeySelector(ApiModel):
    """A key of a Secret in the same namespace (cert-manager's SecretKeySelector shape)."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    key: str = Field(min_length=1, max_length=253, description="Key in the Secret's data.")


class ConfigMapKeySelector(ApiModel):
    name: str = Field(min_length=1, max_length=253, description="Name of the ConfigMap.")
    key: str = Field(min_length=1, max_length=253, description="Key in the ConfigMap's data.")


class LocalObjectReference(ApiModel):
    name: str = Field(min_length=1, max_length=253, description="Name of the object.")


class Condition(StatusModel):
    """A Kubernetes-style condition (metav1.Condition)."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: datetime
    observed_generation: int | None = None
