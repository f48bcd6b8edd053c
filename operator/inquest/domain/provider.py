"""ModelProvider verdicts: from spec and probe results to phase and conditions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inquest.api.modelprovider import ModelProviderSpec
from inquest.domain import conditions, endpoints

READY = "Ready"


def initial_status(
    spec: ModelProviderSpec, status: Mapping[str, Any] | None, *, generation: int | None
) -> dict[str, Any]:
    """What is known before any network call: the resolved endpoint, or why the URL is unusable."""
    old = list((status or {}).get("conditions") or [])
    try:
        resolved = endpoints.resolve(spec.base_url)
    except endpoints.InvalidURL as exc:
        conds, _ = conditions.merge(old, [conditions.Cond.false(READY, "InvalidURL", str(exc))],
                                    generation=generation)
        return {"phase": "Invalid", "conditions": conds, "observedGeneration": generation}
    conds, _ = conditions.merge(
        old, [conditions.Cond.unknown(READY, "Validating", "the endpoint is being probed")], generation=generation
    )
    return {"phase": "NotReady", "endpoint": resolved.chat_url, "conditions": conds,
            "observedGeneration": generation}
