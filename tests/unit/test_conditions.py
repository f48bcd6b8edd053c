from datetime import UTC, datetime, timedelta

from inquest.domain.conditions import Cond, find, is_true, merge, shorten

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_new_conditions_get_timestamps_generation_and_transitions():
    conds, transitions = merge([], [Cond.true("Ready", "AllChecksPassed", "ok")], generation=3, now=T0)
    assert conds == [{"type": "Ready", "status": "True", "reason": "AllChecksPassed", "message": "ok",
                      "observedGeneration": 3, "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    assert [(t.type, t.old_status, t.new_status) for t in transitions] == [("Ready", None, "True")]


def test_last_transition_time_moves_only_on_a_flip():
    first, _ = merge([], [Cond.false("Ready", "Probing", "a")], generation=1, now=T0)
    same, transitions = merge(first, [Cond.false("Ready", "Timeout", "b")], generation=2, now=T1)
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["reason"] == "Timeout" and same[0]["observedGeneration"] == 2
    assert transitions == []
    flipped, transitions = merge(same, [Cond.true("Ready", "AllChecksPassed")], generation=2, now=T1)
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T00:05:00Z"
    assert transitions[0].old_status == "False" and not transitions[0].warning


def test_unmentioned_conditions_are_kept_in_order():
    conds, _ = merge([], [Cond.true("A", "R"), Cond.true("B", "R")], generation=1, now=T0)
    conds, _ = merge(conds, [Cond.false("B", "X")], generation=1, now=T1)
    assert [c["type"] for c in conds] == ["A", "B"]
    assert is_true(conds, "A") and not is_true(conds, "B") and find(conds, "C") is None


def test_messages_are_shortened_and_single_line():
    text = shorten("line one\nline two " + "x" * 2000, 50)
    assert len(text) == 50 and "\n" not in text and text.endswith("…")


def test_duplicate_types_collapse_into_one_so_find_sees_the_update():
    stale = {"type": "Ready", "status": "False", "reason": "Old", "lastTransitionTime": "2025-01-01T00:00:00Z"}
    later = {"type": "Ready", "status": "True", "reason": "Later", "lastTransitionTime": "2025-06-01T00:00:00Z"}
    other = {"type": "A", "status": "True", "reason": "R"}
    conds, transitions = merge([stale, other, later, dict(other, reason="R2")],
                               [Cond.true("Ready", "AllChecksPassed", "ok")], generation=4, now=T1)
    assert [c["type"] for c in conds] == ["Ready", "A"]
    ready = find(conds, "Ready")
    assert ready is not None and ready["reason"] == "AllChecksPassed" and ready["observedGeneration"] == 4
    assert ready["lastTransitionTime"] == "2025-06-01T00:00:00Z" and transitions == []  # True -> True
    assert find(conds, "A") == {"type": "A", "status": "True", "reason": "R2"}
    untouched, _ = merge([stale, later], [], generation=1, now=T1)
    assert untouched == [later]


def test_entries_that_are_not_objects_are_dropped():
    conds, _ = merge([None, "Ready", {"type": "B", "status": "True"}], [], generation=1, now=T0)  # type: ignore[list-item]
    assert conds == [{"type": "B", "status": "True"}]
    assert find("Ready", "Ready") is None and not is_true(7, "Ready")  # type: ignore[arg-type]
