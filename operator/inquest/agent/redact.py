"""The one gate every tool output (and tool error) passes before it reaches a model.

``redact_tool_output`` is called by the agent loop on each tool result, after the tool ran and
before the result is cut to its budget and appended to the conversation; the loop also passes the
tool errors and arguments it records in the status, and the model's answer, through it. It applies
:func:`inquest.domain.redaction.redact` (always on: the operator and ``inquest ask`` share the
loop). Objects read from the cluster are redacted structurally before they are even rendered
(``ToolContext.get`` -> :func:`inquest.domain.redaction.redact_object`).

Tests may swap the text redactor with :func:`install`; ``install(None)`` restores the default.
"""

from __future__ import annotations

from collections.abc import Callable

from inquest.domain.redaction import redact

Redactor = Callable[[str], str]
DEFAULT: Redactor = redact

_redactor: Redactor = DEFAULT


def install(redactor: Redactor | None) -> Redactor:
    """Use ``redactor`` for all tool output (``None``: the default rules). Returns the previous one."""
    global _redactor
    previous = _redactor
    _redactor = redactor or DEFAULT
    return previous


def redact_tool_output(text: str) -> str:
    return _redactor(text) if text else text
