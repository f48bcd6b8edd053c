"""Fuzzing at the handlers: generated ModelProvider and Investigation objects go through the API (KMock
validates no schema, like a server without the CRDs' validation), and the operator in-process must
give every one of them a named condition or an InvalidSpec event, with no handler ever failing.

The objects are drawn from the same strategies as tests/unit/test_fuzz.py, derandomized so that a
failure reproduces; N_CASES of each kind per run.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from inquest.domain import investigation as inv
from inquest.domain import reasons
from tests.conftest import eventually
from tests.support.fake_llm import text
from tests.support.investigations import API, AgentScript
from tests.support.kube import INV, MP, obj
from tests.unit.test_fuzz import investigation_specs, provider_specs

N_CASES = 25
CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]+$")
KNOWN = ({v for k, v in vars(inv).items() if k.startswith("R_") and isinstance(v, str)}
         | {v for k, v in vars(reasons).items() if k.isupper() and isinstance(v, str)})


def _storable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


def draw(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """``n`` values of ``strategy``, the same ones on every run."""
    out: list[Any] = []

    @settings(max_examples=n, database=None, derandomize=True, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy.filter(_storable))
    def collect(value: Any) -> None:
        out.append(value)

    collect()
    return out[:n]


def posted_event_reasons(kube: Any, name: str) -> set[str]:
    return {str(r.data.get("reason")) for r in list(kube) if str(r.method).lower().endswith("post")
            and str(r.url).split("?")[0].endswith("/events") and isinstance(r.data, dict)
            and (r.data.get("involvedObject") or {}).get("name") == name}


def named(status: dict[str, Any], type_: str) -> str | None:
    """The reason of condition ``type_`` when it is a known CamelCase reason."""
    cond = inv.conditions.find(status.get("conditions") if isinstance(status.get("conditions"), list) else None,
                               type_)
    reason = str((cond or {}).get("reason") or "")
    return reason if CAMEL.match(reason) and reason in KNOWN else None


@pytest.fixture()
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


async def test_generated_objects_all_get_a_named_condition(kube, cluster, llm, start_operator, all_logs):
    AgentScript(llm).fallback = text("Nothing is wrong.")
    await start_operator()
    await cluster.provider(llm)
    investigations = draw(investigation_specs, N_CASES)
    providers = draw(provider_specs, N_CASES)
    assert len(investigations) == len(providers) == N_CASES
    for i, spec in enumerate(investigations):
        body = obj("Investigation", f"inv-{i}", api_version="inquest.dev/v1alpha1",
                   metadata={"resourceVersion": "1"}, spec=spec)
        await cluster.create(f"{API}/default/investigations", body)
    for i, spec in enumerate(providers):
        body = obj("ModelProvider", f"mp-{i}", api_version="inquest.dev/v1alpha1",
                   metadata={"resourceVersion": "1"}, spec=spec)
        await cluster.create(f"{API}/default/modelproviders", body)

    specs = {f"inv-{i}": s for i, s in enumerate(investigations)} | {f"mp-{i}": s for i, s in enumerate(providers)}

    def outcome(plural: str, name: str, type_: str) -> str | None:
        status = dict(kube.objects[plural, "default", name]).get("status") or {}
        reason = named(json.loads(json.dumps(status, default=dict)), type_)
        if reason is None and "InvalidSpec" in posted_event_reasons(kube, name):
            return "InvalidSpec (event)"
        return reason

    def everyone_named() -> dict[str, str]:
        found = {f"inv-{i}": outcome(INV, f"inv-{i}", inv.COND_SUCCEEDED) for i in range(N_CASES)}
        found |= {f"mp-{i}": outcome(MP, f"mp-{i}", reasons.READY) for i in range(N_CASES)}
        missing = sorted(k for k, v in found.items() if v is None)
        assert not missing, [(k, specs[k], dict(kube.objects[INV if k.startswith("inv") else MP, "default", k]).get(
            "status")) for k in missing]
        return found  # type: ignore[return-value]

    verdicts = await eventually(everyone_named, timeout=60, interval=0.2)
    assert len(verdicts) == 2 * N_CASES
    failures = [r.getMessage() for r in all_logs.records if r.name.startswith("kopf")
                and "failed with an exception" in r.getMessage()]
    assert failures == []
    crashes = [r for r in all_logs.records if r.name.startswith("inquest") and r.exc_info]
    assert crashes == [], [r.getMessage() for r in crashes]
