"""ModelProvider handlers."""

from __future__ import annotations

from typing import Any

import kopf

from inquest.api.modelprovider import ModelProvider
from inquest.domain import provider as provider_domain


@kopf.on.resume("inquest.dev", "v1alpha1", "modelproviders", id="modelprovider_resume")
@kopf.on.create("inquest.dev", "v1alpha1", "modelproviders", id="modelprovider_create")
@kopf.on.update("inquest.dev", "v1alpha1", "modelproviders", field="spec", id="modelprovider_update")
def modelprovider_reconcile(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    provider = ModelProvider.model_validate(dict(body))
    patch.status.update(
        provider_domain.initial_status(provider.spec, body.status, generation=body.meta.get("generation"))
    )
