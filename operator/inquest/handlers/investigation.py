"""Investigation handlers: a daemon per Investigation runs it; a spec edit is refused.

The run itself lives in ``inquest.agent.runner``; Kopf cancels the daemon when the object is
deleted or the operator exits, and the runner cancels the agent with it.
"""

from __future__ import annotations

from typing import Any

import kopf

from inquest import GROUP, VERSION
from inquest.agent.runner import InvestigationRuntime, supervise
from inquest.api.investigation import PLURAL
from inquest.domain import investigation as inv
from inquest.settings import ensure_clients


def _runtime(memo: kopf.Memo) -> InvestigationRuntime:
    runtime = getattr(memo, "investigations", None)
    if runtime is None:  # only when the startup handler did not run (it always does under Kopf)
        runtime = memo.investigations = InvestigationRuntime()
    return runtime


@kopf.on.startup(id="investigation_startup")
def investigation_startup(memo: kopf.Memo, **_: Any) -> None:
    if getattr(memo, "investigations", None) is None:  # a test or the benchmark may bring its own
        memo.investigations = InvestigationRuntime()


@kopf.daemon(GROUP, VERSION, PLURAL, id="investigation_run", cancellation_timeout=5.0)
async def investigation_run(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any) -> None:
    def emit(type_: str, reason: str, message: str) -> None:
        kopf.event(body, type=type_, reason=reason, message=message)

    await supervise(ensure_clients(memo).kube, _runtime(memo), body, stopped, emit)


@kopf.on.update(GROUP, VERSION, PLURAL, field="spec", id="investigation_spec_update")
def investigation_spec_update(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    generation = body.meta.get("generation")
    conds, _transitions = inv.spec_change_refused(body.status, generation=generation,
                                       observed=body.status.get("observedGeneration"))
    patch.status["conditions"] = conds
    kopf.event(body, type=inv.EVENT_TYPES[inv.R_SPEC_REFUSED], reason=inv.R_SPEC_REFUSED,
               message="the spec of an Investigation is immutable; the edit is ignored and the run is not "
                       "repeated. Create a new Investigation to ask again")
