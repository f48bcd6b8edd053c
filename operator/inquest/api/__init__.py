"""Pydantic models of the Inquest CRDs; crds/ is generated from them (see inquest.api.crd)."""

from inquest.api.base import Condition, ConfigMapKeySelector, LocalObjectReference, SecretKeySelector
from inquest.api.investigation import Investigation, InvestigationSpec, InvestigationStatus
from inquest.api.modelprovider import ModelProvider, ModelProviderSpec, ModelProviderStatus

__all__ = [
    "Condition",
    "ConfigMapKeySelector",
    "Investigation",
    "InvestigationSpec",
    "InvestigationStatus",
    "LocalObjectReference",
    "ModelProvider",
    "ModelProviderSpec",
    "ModelProviderStatus",
    "SecretKeySelector",
]
