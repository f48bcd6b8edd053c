"""ModelProvider handlers: validate on create/update/resume, re-probe in a per-provider prober task
(every probeIntervalSeconds when Ready, with backoff when NotReady), and re-validate at once when a
referenced Secret or ConfigMap changes (through an index of references).

The work is in ``inquest.clients.providers`` (orchestration), ``inquest.clients.connection`` (Secrets,
certificates), ``inquest.clients.probe`` (network) and ``inquest.domain.provider`` (verdicts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from inquest import GROUP, VERSION
from inquest.api.modelprovider import PLURAL
from inquest.clients.providers import Outcome, ProviderRegistry, validate
from inquest.domain.provider import reference_keys


def _registry(memo: Any) -> ProviderRegistry:
    registry = getattr(memo, "providers", None)
    if registry is None:  # only when the startup handler did not run (it always does under Kopf)
        registry = memo.providers = ProviderRegistry()
    return registry


def _post(body: Mapping[str, Any], outcome: Outcome | None) -> None:
    for event in outcome.events if outcome is not None else ():
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)  # type: ignore[arg-type]


@kopf.on.startup(id="modelprovider_startup")
def modelprovider_startup(memo: Any, **_: Any) -> None:
    memo.providers = ProviderRegistry()  # set before any object is seen: every per-object memo shares it


INDEX = "modelprovider_references"


@kopf.index(GROUP, VERSION, PLURAL, id=INDEX)
def modelprovider_references(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> dict[Any, Any]:
    return {key: (namespace, name) for key in reference_keys(namespace or "", spec)}


@kopf.on.resume(GROUP, VERSION, PLURAL, id="modelprovider_resume")
@kopf.on.create(GROUP, VERSION, PLURAL, id="modelprovider_create")
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec", id="modelprovider_update")
async def modelprovider_reconcile(
    body: kopf.Body, patch: kopf.Patch, namespace: str | None, name: str, memo: Any, **_: Any
) -> None:
    registry = _registry(memo)
    outcome = await validate(memo.clients.kube, registry, body, write=False, announce=True)
    if outcome is not None:
        patch.status.update(outcome.status)
        _post(body, outcome)
    registry.ensure_prober(memo.clients.kube, namespace or "", name, _post)


def _deleted(event: kopf.RawEvent, **_: Any) -> bool:
    return event.get("type") == "DELETED"


@kopf.on.event(GROUP, VERSION, PLURAL, id="modelprovider_deleted", when=_deleted)
def modelprovider_deleted(namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    _registry(memo).forget(namespace or "", name)


@kopf.on.cleanup(id="modelprovider_cleanup")
def modelprovider_cleanup(memo: Any, **_: Any) -> None:
    _registry(memo).close()


def _reference_key(resource: kopf.Resource, namespace: str | None, name: str) -> tuple[str, str | None, str]:
    return ("Secret" if resource.plural == "secrets" else "ConfigMap", namespace, name)


def _referenced(event: kopf.RawEvent, resource: kopf.Resource, namespace: str | None, name: str, **kwargs: Any) -> bool:
    """A change (not the initial listing: resume handlers cover it) to an object some provider uses.
    Filtering here keeps the cluster's other Secrets and ConfigMaps out of the logs."""
    return event.get("type") is not None and _reference_key(resource, namespace, name) in kwargs[INDEX]


@kopf.on.event("v1", "secrets", id="secret_referenced", when=_referenced)
@kopf.on.event("v1", "configmaps", id="configmap_referenced", when=_referenced)
def referenced_object_changed(resource: kopf.Resource, namespace: str | None, name: str, memo: Any,
                              **kwargs: Any) -> None:
    for provider_namespace, provider_name in kwargs[INDEX].get(_reference_key(resource, namespace, name), ()):
        _registry(memo).request(provider_namespace, provider_name)
