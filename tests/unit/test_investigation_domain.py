"""Investigation domain logic: start decisions, findings validation, bounded status, summaries, cost,
conditions; plus the small agent primitives (cuts, token estimate, budgets, provider slots)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import pytest

from inquest.agent.budget import ContextBudget
from inquest.agent.slots import ProviderSlots
from inquest.agent.tokens import estimate_text
from inquest.api.investigation import (
    MAX_ANSWER,
    MAX_DETAIL,
    MAX_FINDINGS,
    MAX_MESSAGE,
    MAX_TOOL_ARGUMENTS,
    MAX_TOOL_CALLS,
    InvestigationSpec,
    InvestigationStatus,
)
from inquest.api.modelprovider import Pricing
from inquest.domain import investigation as inv
from inquest.domain.text import cut_end, cut_middle

# --------------------------------------------------------------------------- lifecycle decisions


@pytest.mark.parametrize("status,generation,action,restarts", [
    ({}, 1, "fresh", 0),
    ({"phase": "Pending", "observedGeneration": 1}, 1, "resume_pending", 0),
    ({"phase": "Running", "observedGeneration": 1}, 1, "restart", 1),
    ({"phase": "Running", "observedGeneration": 1, "restarts": 1}, 1, "fail_restart_limit", 1),
    ({"phase": "Succeeded", "observedGeneration": 1}, 2, "finished", 0),
    ({"phase": "Failed", "restarts": 1}, 1, "finished", 1),
    ({"phase": "Running", "observedGeneration": 1}, 2, "fail_spec_changed", 0),
])
def test_decide_start(status, generation, action, restarts):
    decision = inv.decide_start(status, generation)
    assert (decision.action, decision.restarts) == (action, restarts)


@pytest.mark.parametrize("restarts,action,counted", [
    ("many", "restart", 1), ({"n": 1}, "restart", 1), ([1], "restart", 1), (True, "restart", 1),
    (-3, "restart", 1), (float("inf"), "restart", 1), ("1", "fail_restart_limit", 1), (2.0, "fail_restart_limit", 2),
])
def test_decide_start_tolerates_a_hand_edited_restart_count(restarts, action, counted):
    decision = inv.decide_start({"phase": "Running", "observedGeneration": 1, "restarts": restarts}, 1)
    assert (decision.action, decision.restarts) == (action, counted)


@pytest.mark.parametrize("conditions", ["Ready", 7, {"type": "Succeeded"}, [None, "x", 3, ["Succeeded"]]])
def test_status_patch_tolerates_conditions_that_are_not_objects(conditions):
    patch, transitions = inv.status_patch({"conditions": conditions}, phase="Running", reason="Running",
                                          message="go", generation=1)
    assert [(c["type"], c["status"]) for c in patch["conditions"]] == [("Succeeded", "Unknown")]
    assert [t.type for t in transitions] == ["Succeeded"]
    refused, _ = inv.spec_change_refused({"conditions": conditions}, generation=2, observed=1)
    assert [c["type"] for c in refused] == ["SpecImmutable"]


def test_usage_from_a_hand_edited_status_counts_what_it_can():
    assert inv.UsageTotals.from_status({"promptTokens": "12", "completionTokens": "lots"}).total_tokens == 12
    assert inv.UsageTotals.from_status("weird").total_tokens == 0  # type: ignore[arg-type]


def test_status_patch_sets_phase_conditions_and_keeps_foreign_conditions():
    existing = {"conditions": [{"type": "SpecImmutable", "status": "True", "reason": "SpecChangeRefused",
                                "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    patch, transitions = inv.status_patch(existing, phase="Running", reason="Running", message="go", generation=3,
                                          extra=[inv.Cond.true("ProviderReady", "ProviderReady", "ok")], steps=0)
    types = {c["type"]: (c["status"], c["reason"]) for c in patch["conditions"]}
    assert types == {"SpecImmutable": ("True", "SpecChangeRefused"), "Succeeded": ("Unknown", "Running"),
                     "ProviderReady": ("True", "ProviderReady")}
    assert all(c.get("observedGeneration") == 3 for c in patch["conditions"] if c["type"] != "SpecImmutable")
    assert patch["phase"] == "Running" and patch["steps"] == 0 and len(transitions) == 2
    done, _ = inv.status_patch({"conditions": patch["conditions"]}, phase="Failed", reason="DeadlineExceeded",
                               message="x" * 5000, generation=3)
    succeeded = next(c for c in done["conditions"] if c["type"] == "Succeeded")
    assert (succeeded["status"], succeeded["reason"]) == ("False", "DeadlineExceeded")
    assert len(done["message"]) <= 1000 and done["message"].endswith("[... cut]")


def test_spec_change_refused_condition():
    conds, _ = inv.spec_change_refused({"conditions": []}, generation=2, observed=1)
    (cond,) = conds
    assert (cond["type"], cond["status"], cond["reason"]) == ("SpecImmutable", "True", "SpecChangeRefused")
    assert "generation 2" in cond["message"] and "generation 1" in cond["message"]


# --------------------------------------------------------------------------- the model's answer


def test_parse_submission_accepts_near_misses():
    sub = inv.parse_submission(json.dumps({
        "summary": "s", "answer": ["line 1", "line 2"],
        "findings": {"severity": "High", "title": "  pod\ncrashes ", "evidence": "exit 1",
                     "resource": "shop/deployment/checkout", "detail": ["a", "b"]},
    }))
    (f,) = sub.findings
    assert sub.answer == "line 1\nline 2"
    assert (f.severity, f.title, f.evidence, f.detail) == ("critical", "pod crashes", ["exit 1"], "a\nb")
    assert f.resource is not None and (f.resource.namespace, f.resource.kind, f.resource.name) == (
        "shop", "deployment", "checkout")
    assert inv.parse_submission({"summary": "x", "findings": [{"severity": "medium", "title": "t",
                                                               "resource": "pod/a"}]}).findings[0].severity == "warning"


@pytest.mark.parametrize("raw,message", [
    ("{not json", "not valid JSON"),
    ("[1]", "must be a JSON object"),
    ({"summary": "", "answer": " "}, "empty"),
    ({"summary": "s", "findings": [{"severity": "info"}]}, "findings.0.title"),
])
def test_parse_submission_rejects_unusable_input(raw, message):
    with pytest.raises(inv.InvalidSubmission, match=message):
        inv.parse_submission(raw)


@pytest.mark.parametrize("text,summary", [
    ("The checkout pod crash-loops. It exits with code 1.", "The checkout pod crash-loops."),
    ("# Findings:\n\n**Root cause**: the image tag does not exist in the registry", "Root cause: the image tag "
     "does not exist in the registry"),
    ("All good.", "All good."),
    ("x" * 500, "x" * 190 + " [... cut]"),
])
def test_derive_summary(text, summary):
    assert inv.derive_summary(text) == summary


def test_run_record_accepts_text_with_embedded_findings_or_plain_text():
    record = inv.RunRecord()
    record.accept_text('Result:\n```json\n{"summary": "db down", "answer": "the db is down", "findings": []}\n```')
    assert (record.summary, record.answer) == ("db down", "the db is down")
    record.accept_text("Nothing looks wrong. All pods run.")
    assert (record.summary, record.findings) == ("Nothing looks wrong.", [])


VALID_BLOCK = '```json\n{"summary": "db down", "findings": [{"title": "db", "severity": "high"}]}\n```'


@pytest.mark.parametrize("text", [
    "Here:\n```python\nprint(1)\n```\n" + VALID_BLOCK + "\ndone",
    "a stray ``` fence, then\n" + VALID_BLOCK,  # an odd fence before the block does not hide it
    "```JSON\n{\"summary\": \"db down\", \"findings\": [{\"title\": \"db\", \"severity\": \"high\"}]}```",
    '{"summary": "db down", "findings": [{"title": "db", "severity": "critical"}]}',
])
def test_submission_from_text_finds_the_fenced_or_whole_object(text):
    sub = inv.submission_from_text(text)
    assert sub is not None and sub.summary == "db down" and [f.severity for f in sub.findings] == ["critical"]


@pytest.mark.parametrize("unit", ["```json {", "```{", "``` {\"summary\": 1 ", "{```}", "``` ", "{\"a\": ["])
def test_submission_from_text_is_linear_on_hostile_text(unit):
    """200 kB built to make a backtracking fence pattern rescan the rest of the text from every fence
    (the former regex took 1.4 s on 40 kB, so about 35 s here). The result is checked; the one time
    bound only guards against that quadratic scan and is hundreds of times what a linear scan takes."""
    hostile = unit * (200_000 // len(unit))
    started = time.perf_counter()
    assert inv.submission_from_text(hostile) is None
    for parity in ("", "```"):  # an even or odd number of stray fences before the real block
        found = inv.submission_from_text(hostile + parity + "\n" + VALID_BLOCK)
        assert found is not None and found.summary == "db down"
    assert time.perf_counter() - started < 10


def test_submission_nested_too_deeply_is_refused_not_raised():
    deep = '{"summary": "x", "findings": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert inv.submission_from_text(deep) is None
    with pytest.raises(inv.InvalidSubmission, match="nested too deeply"):
        inv.parse_submission(deep)


def test_progress_fields_are_bounded_and_valid_status():
    findings = [inv.ReportedFinding(severity="info" if i % 2 else "critical", title=f"finding {i}",
                                    detail="d" * 5000, evidence=[f"e{j}" * 300 for j in range(12)],
                                    remediation="r" * 3000)
                for i in range(MAX_FINDINGS + 10)]
    record = inv.RunRecord(steps=120, summary="s" * 400, answer="a" * 20_000, findings=findings)
    record.tool_calls = [inv.ToolCallLog("pod_logs", '{"pod": "' + "p" * 1000 + '"}', 5, 100, "e" * 3000)
                         for _ in range(150)]
    record.usage.add(1000, 100)
    fields = inv.progress_fields(record, Pricing(input_per_million_tokens=1, output_per_million_tokens=2))
    status = InvestigationStatus.model_validate({"phase": "Succeeded", **fields})
    assert len(status.findings) == MAX_FINDINGS and fields["findingCount"] == MAX_FINDINGS + 10
    assert [f.severity for f in status.findings[:20]] == ["critical"] * 20  # most severe first
    assert status.findings[0].evidence[-1].endswith(" more evidence items cut ...]")
    assert "chars cut ...]" in status.findings[0].detail and "chars cut ...]" in status.answer
    assert len(json.dumps(fields["findings"], ensure_ascii=False)) <= inv.FINDINGS_BUDGET
    assert len(status.tool_calls) == inv.TOOL_CALLS_IN_STATUS and status.tool_call_count == 150
    assert status.tool_calls[0].arguments == "[... 101 earlier tool calls cut ...]"
    assert all(len(c.arguments) <= inv.TOOL_ARGUMENTS_IN_STATUS for c in status.tool_calls)
    assert status.usage is not None and status.usage.cost == 0.0012 and status.usage.total_tokens == 1100
    assert len(json.dumps(fields)) < 56 * 1024  # answer 16k + findings 22k + tool calls 15k; etcd allows 1.5 MiB


def test_status_caps_stay_within_the_crd_bounds():
    assert inv.TOOL_CALLS_IN_STATUS <= MAX_TOOL_CALLS
    assert inv.TOOL_ARGUMENTS_IN_STATUS <= MAX_TOOL_ARGUMENTS
    assert inv.TOOL_ERROR_IN_STATUS <= MAX_MESSAGE
    assert inv.FINDINGS_BUDGET >= MAX_DETAIL  # one finding's detail always fits


def test_findings_over_budget_leave_out_the_least_severe_and_say_so():
    huge = "x" * 20_000
    findings = [inv.ReportedFinding(severity=["info", "warning", "critical"][i % 3], title=f"{i} " + "t" * 5000,
                                    detail=huge, remediation=huge, evidence=["y" * 2000] * 20,
                                    resource={"kind": "k" * 300, "name": "n" * 1000, "namespace": "s" * 300})
                for i in range(60)]
    record = inv.RunRecord(summary="s", answer="the answer " * 4000, findings=findings)
    fields = inv.progress_fields(record, None)
    status = InvestigationStatus.model_validate({"phase": "Succeeded", **fields})
    shown = len(status.findings)
    assert 10 <= shown < MAX_FINDINGS and fields["findingCount"] == 60
    assert len(json.dumps(fields["findings"], ensure_ascii=False)) <= inv.FINDINGS_BUDGET
    assert [f.severity for f in status.findings] == ["critical"] * 20 + ["warning"] * (shown - 20)
    assert status.answer is not None and status.answer.endswith(inv.findings_cut_note(shown, 60))
    assert status.answer.startswith("the answer the answer") and len(status.answer) <= MAX_ANSWER
    assert all(f.detail and "chars cut ...]" in f.detail for f in status.findings)


def test_findings_within_budget_are_all_kept_and_the_answer_has_no_note():
    findings = [inv.ReportedFinding(severity="warning", title=f"finding {i}", detail="short")
                for i in range(MAX_FINDINGS)]
    fields = inv.progress_fields(inv.RunRecord(summary="s", answer="done", findings=findings), None)
    assert len(fields["findings"]) == MAX_FINDINGS and fields["answer"] == "done"
    assert [f["detail"] for f in fields["findings"]] == ["short"] * MAX_FINDINGS


def test_a_single_finding_with_escape_heavy_text_is_kept():
    finding = inv.ReportedFinding(severity="critical", title="quotes", detail='"' * 5000,
                                  evidence=['"\\' * 500] * 8, remediation="\n" * 3000)
    out, cut = inv.findings_for_status([finding], budget=3000)
    assert len(out) == 1 and cut == 0 and out[0]["title"] == "quotes"


def test_compute_cost():
    assert inv.compute_cost(1_000_000, 500_000, Pricing(input_per_million_tokens=3, output_per_million_tokens=15)) \
        == 10.5
    assert inv.compute_cost(10, 10, None) == 0.0


# --------------------------------------------------------------------------- scope and providers


def test_scope_identity_and_provider_choice():
    spec = InvestigationSpec.model_validate({"question": "q"})
    assert inv.scope_namespaces("shop", spec) == ["shop"]
    assert inv.impersonation_user("shop", spec) == "system:serviceaccount:shop:inquest-investigator"
    assert inv.service_account_name(spec) == inv.DEFAULT_SERVICE_ACCOUNT == "inquest-investigator"
    spec = InvestigationSpec.model_validate({"question": "q", "scope": {"namespaces": ["shop", "ingress", "shop"]},
                                             "serviceAccountName": "reader"})
    assert inv.scope_namespaces("shop", spec) == ["shop", "ingress"]
    assert inv.impersonation_user("shop", spec) == "system:serviceaccount:shop:reader"
    assert inv.provider_allowed("llm", "shop", ["shop"]) and inv.provider_allowed("llm", "shop", ["*"])
    assert not inv.provider_allowed("llm", "shop", []) and inv.provider_allowed("shop", "shop", [])
    assert not inv.provider_allowed("llm", "shop", ["payments", "shop-2"])  # exact names, no prefixes


@pytest.mark.parametrize("spec", [{"question": "q"}, {"question": "q", "serviceAccountName": "reader"},
                                  {"question": "q", "serviceAccountName": None}])
def test_tools_never_run_as_the_operator(spec):
    """Whatever the spec says, the identity is a ServiceAccount of the Investigation's own namespace."""
    user = inv.impersonation_user("shop", InvestigationSpec.model_validate(spec))
    assert user is not None and user.startswith("system:serviceaccount:shop:")
    assert user.count(":") == 3 and user.rsplit(":", 1)[1]


def test_a_missing_service_account_says_how_to_create_and_bind_it():
    message = inv.service_account_missing_message("shop", "inquest-investigator")
    assert "ServiceAccount shop/inquest-investigator does not exist" in message and "default" in message
    assert "kubectl create serviceaccount inquest-investigator -n shop" in message
    assert ("kubectl create rolebinding inquest-investigator --clusterrole=inquest-investigator "
            "--serviceaccount=shop:inquest-investigator -n shop") in message
    assert "default" not in inv.service_account_missing_message("shop", "reader").split(";")[0]
    forbidden = inv.service_account_unreadable_message("shop", "reader", 403, "403 Forbidden: nope")
    assert "may not read ServiceAccount shop/reader" in forbidden and "get and impersonate" in forbidden
    assert "retrying" in inv.service_account_unreadable_message("shop", "reader", 500, "500 boom")

    def mp(name: str, created: str, default: str | None = "true") -> dict:
        labels = {inv.DEFAULT_PROVIDER_LABEL: default} if default else {}
        return {"metadata": {"name": name, "creationTimestamp": created, "labels": labels}}

    assert inv.choose_default_provider([mp("a", "2026-01-02T00:00:00Z", None)]) == (None, "")
    chosen, note = inv.choose_default_provider([mp("b", "2026-01-02T00:00:00Z"), mp("a", "2026-01-03T00:00:00Z"),
                                                mp("c", "2026-01-01T00:00:00Z", "false")])
    assert chosen == "b" and "several providers" in note


# --------------------------------------------------------------------------- reasons are documented

TROUBLESHOOTING = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"


def _investigation_section() -> str:
    """The Investigations section up to its Events table (whose rows are Event reasons)."""
    return TROUBLESHOOTING.read_text().split("\n## Investigations\n", 1)[1].split("\n### Events\n", 1)[0]


def _event_rows() -> dict[str, str]:
    """reason -> type, from the Events table of the Investigations section."""
    events = TROUBLESHOOTING.read_text().split("\n## Investigations\n", 1)[1].split("\n### Events\n", 1)[1]
    return dict(re.findall(r"^\| `([A-Za-z]+)` \| (Normal|Warning) \|", events, flags=re.MULTILINE))


@pytest.mark.parametrize("reason", sorted(inv.all_reasons()))
def test_every_investigation_reason_has_a_row_in_troubleshooting(reason):
    rows = re.findall(r"^\| `([A-Za-z]+)` \|", _investigation_section(), flags=re.MULTILINE)
    assert reason in rows, f"docs/troubleshooting.md (## Investigations) has no row for `{reason}`"


def test_the_reason_list_is_the_one_the_code_writes():
    from inquest.agent import loop

    assert {"ServiceAccountNotFound", "ServiceAccountCheckFailed", "ProviderNotAllowed"} <= inv.all_reasons()
    assert loop.R_CONTEXT in inv.all_reasons()  # the loop's own constant is documented too
    rows = set(re.findall(r"^\| `([A-Za-z]+)` \|", _investigation_section(), flags=re.MULTILINE))
    assert rows == inv.all_reasons(), rows ^ inv.all_reasons()


@pytest.mark.parametrize("reason", sorted(inv.all_event_reasons()))
def test_every_event_reason_constant_is_listed_with_its_type(reason):
    assert reason in inv.EVENT_TYPES, f"inv.EVENT_TYPES has no type for the Event reason {reason}"


def test_the_events_table_is_the_one_the_code_posts():
    rows = _event_rows()
    assert {"InvestigationStarted", "InvestigationSucceeded", "InvestigationFailed",
            "InvestigationRestarted", "CostBudgetUnenforceable"} <= inv.all_event_reasons()
    assert rows == inv.EVENT_TYPES, set(rows.items()) ^ set(inv.EVENT_TYPES.items())


def test_the_runner_and_handlers_post_events_only_with_reason_constants():
    """No string literal as an Event reason: each goes through inquest.domain.investigation."""
    root = Path(__file__).resolve().parents[2] / "operator" / "inquest"
    for source in (root / "agent" / "runner.py", root / "handlers" / "investigation.py"):
        text = source.read_text()
        calls = re.findall(r"\bemit\(([^,]+),\s*([^,]+),", text) + re.findall(
            r"kopf\.event\([^)]*?type=([^,]+),\s*reason=([^,]+),", text)
        posted = [c for c in calls if "type_" not in c[0]]  # the handler's emit() definition forwards
        assert posted, source
        for type_, reason in posted:
            assert not type_.strip().startswith(("'", '"')), (source.name, type_)
            assert not reason.strip().startswith(("'", '"')), (source.name, reason)
            assert reason.strip().startswith(("inv.", "identity.reason")), (source.name, reason)


# --------------------------------------------------------------------------- primitives


@pytest.mark.parametrize("size", [0, 10, 100, 1000, 50_000])
@pytest.mark.parametrize("limit", [30, 64, 200, 5000])
def test_cut_middle_stays_within_the_limit_with_a_true_marker(size, limit):
    text = "".join(chr(97 + i % 26) for i in range(size))
    out = cut_middle(text, limit)
    assert len(out) <= max(limit, 0)
    if size <= limit:
        assert out == text
    else:
        assert "chars cut ...]" in out
        if limit >= 64:
            cut = int(out.split("[... ")[1].split(" chars")[0])
            kept = len(out) - len(f"[... {cut} chars cut ...]") - 2
            assert kept + cut == size
            assert text.startswith(out.split("\n")[0])


def test_cut_end():
    assert cut_end("abc", 10) == "abc"
    assert cut_end("a" * 50, 20) == "a" * 10 + " [... cut]"


def test_token_estimate_is_pessimistic_for_digits_and_symbols():
    prose = "The checkout deployment has no ready replicas because its pods fail their readiness probe. "
    assert len(prose) / 4.6 < estimate_text(prose) <= len(prose) / 3.4
    assert estimate_text("1234567890") >= 7
    assert estimate_text('{"a":{"b":[1,2]}}') > len('{"a":{"b":[1,2]}}') / 4
    assert estimate_text("") == 0 and estimate_text("日本語") >= 3


def test_context_budget():
    small = ContextBudget.for_window(4096)
    assert (small.output_reserve, small.safety, small.prompt_limit) == (682, 204, 3210)
    assert small.tool_output_chars(1600) > small.tool_output_chars(1600, calls_in_step=3) >= 396
    big = ContextBudget.for_window(128_000)
    assert big.output_reserve == 2048 and big.tool_output_chars(1600) == 6000 * 3.3
    assert ContextBudget.for_window(8192, max_output_tokens=100_000).output_reserve == 4096


async def test_provider_slots_queue_fifo_and_follow_the_limit():
    slots = ProviderSlots()
    order: list[str] = []
    queued: list[int] = []

    async def job(name: str, hold: asyncio.Event, limit: int = 2) -> None:
        async def on_queued(position: int) -> None:
            queued.append(position)

        async with slots.hold(limit, on_queued):
            order.append(name)
            await hold.wait()

    events = {n: asyncio.Event() for n in "abcd"}
    tasks = {n: asyncio.create_task(job(n, events[n])) for n in "abcd"}
    await asyncio.sleep(0.01)
    assert order == ["a", "b"] and slots.active == 2 and queued == [1, 2]
    tasks["c"].cancel()  # a queued one deleted: it gives up its place
    await asyncio.sleep(0.01)
    events["a"].set()
    await asyncio.sleep(0.01)
    assert order == ["a", "b", "d"] and slots.active == 2
    events["b"].set()
    events["d"].set()
    await asyncio.gather(tasks["a"], tasks["b"], tasks["d"])
    assert slots.active == 0 and slots.waiting == 0


def test_the_default_identity_and_its_hint_come_from_the_operators_settings(monkeypatch):
    from inquest.agent.runner import RunnerSettings

    monkeypatch.setenv("INQUEST_DEFAULT_SERVICE_ACCOUNT", "triage")
    monkeypatch.setenv("INQUEST_INVESTIGATOR_CLUSTER_ROLE", "ops-inquest-investigator")
    settings = RunnerSettings.from_environment()
    spec = InvestigationSpec.model_validate({"question": "q"})
    assert inv.impersonation_user("shop", spec, settings.default_service_account) == \
        "system:serviceaccount:shop:triage"
    message = inv.service_account_missing_message("shop", "triage", default=settings.default_service_account,
                                                  cluster_role=settings.investigator_cluster_role)
    assert "(the default" in message and "--clusterrole=ops-inquest-investigator " in message
    monkeypatch.delenv("INQUEST_DEFAULT_SERVICE_ACCOUNT")
    assert RunnerSettings.from_environment().default_service_account == "inquest-investigator"


def test_the_not_impersonable_message_says_what_to_grant(monkeypatch):
    from inquest.agent.runner import RunnerSettings

    assert RunnerSettings.from_environment().impersonator_role == "inquest-impersonator"
    monkeypatch.setenv("INQUEST_IMPERSONATOR_ROLE", "ops-inquest-impersonator")
    role = RunnerSettings.from_environment().impersonator_role
    message = inv.service_account_not_impersonable_message("shop", "cluster-reader", impersonator_role=role)
    assert message.startswith("the operator may not impersonate ServiceAccount shop/cluster-reader, ")
    assert 'add "cluster-reader" to resourceNames of the impersonate rule on serviceaccounts of the ' \
        "operator's role ops-inquest-impersonator" in message
    assert "investigator.impersonableServiceAccounts" in message
    assert "Role in shop with verbs [impersonate] on serviceaccounts, resourceNames [cluster-reader]" in message
    assert "(webhook down)" in inv.service_account_not_impersonable_message("shop", "x", detail="webhook down")
    assert "ServiceAccountNotImpersonable" in inv.all_reasons()
