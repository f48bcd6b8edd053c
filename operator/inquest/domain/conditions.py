"""Kubernetes-style conditions: Ready plus specific types, CamelCase reasons.

``lastTransitionTime`` moves only when a condition's status flips; ``observedGeneration``
is always set. Conditions are plain dicts in the wire format (what ``status.conditions`` holds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["True", "False", "Unknown"]
MAX_MESSAGE = 1024


def now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """Cut a message to ``limit`` characters with a visible ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Cond:
    """One condition's verdict, before timestamps are applied."""

    type: str
    status: Status
    reason: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "True"

    @classmethod
    def true(cls, type_: str, reason: str, message: str = "") -> Cond:
        return cls(type_, "True", reason, message)

    @classmethod
    def false(cls, type_: str, reason: str, message: str = "") -> Cond:
        return cls(type_, "False", reason, message)

    @classmethod
    def unknown(cls, type_: str, reason: str, message: str = "") -> Cond:
        return cls(type_, "Unknown", reason, message)


@dataclass(frozen=True)
class Transition:
    """A condition whose status changed (or appeared): what an Event reports."""

    type: str
    old_status: str | None
    new_status: str
    reason: str
    message: str

    @property
    def warning(self) -> bool:
        return self.new_status != "True"


def merge(
    existing: Sequence[Mapping[str, Any]] | None,
    verdicts: Iterable[Cond],
    *,
    generation: int | None,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], list[Transition]]:
    """Apply new verdicts to existing conditions.

    Returns the new condition list (existing types not mentioned are kept, in order) and the
    transitions: conditions whose status flipped, or that are new. lastTransitionTime is kept
    when the status is unchanged, even if the reason or message changed.

    ``existing`` is taken as another client may have left it: entries that are not objects (or a
    value that is not a list) are dropped, and several entries of one type collapse into one (the
    last of them, where the first stood), so that :func:`find` never returns a stale duplicate.
    """
    stamp = now_iso(now)
    result: list[dict[str, Any]] = []
    index: dict[Any, int] = {}
    for c in _entries(existing):
        if c.get("type") in index:
            result[index[c.get("type")]] = dict(c)
        else:
            index[c.get("type")] = len(result)
            result.append(dict(c))
    transitions: list[Transition] = []
    for v in verdicts:
        message = shorten(v.message)
        entry: dict[str, Any] = {
            "type": v.type,
            "status": v.status,
            "reason": v.reason,
            "message": message,
            "observedGeneration": generation,
        }
        if generation is None:
            del entry["observedGeneration"]
        if v.type in index:
            old = result[index[v.type]]
            flipped = old.get("status") != v.status
            entry["lastTransitionTime"] = stamp if flipped or not old.get("lastTransitionTime") else old[
                "lastTransitionTime"
            ]
            if flipped:
                transitions.append(Transition(v.type, old.get("status"), v.status, v.reason, message))
            result[index[v.type]] = entry
        else:
            entry["lastTransitionTime"] = stamp
            index[v.type] = len(result)
            result.append(entry)
            transitions.append(Transition(v.type, None, v.status, v.reason, message))
    return result, transitions


def _entries(conditions: Any) -> list[Mapping[str, Any]]:
    if not isinstance(conditions, Sequence) or isinstance(conditions, str | bytes):
        return []
    return [c for c in conditions if isinstance(c, Mapping)]


def find(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for c in _entries(conditions):
        if c.get("type") == type_:
            return c
    return None


def is_true(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> bool:
    c = find(conditions, type_)
    return c is not None and c.get("status") == "True"
