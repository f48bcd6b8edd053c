"""The one gate every tool output (and tool error) passes before it reaches a model.

``redact_tool_output`` is called by the agent loop on each tool result, after the tool ran and
before the result is cut to its budget and appended to the conversation. It is a no-op until
issue 6 installs the credential rules (``install(inquest.domain.redaction.redact)``, or replace
the body of ``redact_tool_output``); tests swap it with :func:`install` too.
"""

from __future__ import annotations

from collections.abc import Callable

Redactor = Callable[[str], str]


def _identity(text: str) -> str:
    return text


_redactor: Redactor = _identity


def install(redactor: Redactor | None) -> Redactor:
    """Use ``redactor`` for all tool output (``None``: no redaction). Returns the previous one."""
    global _redactor
    previous = _redactor
    _redactor = redactor or _identity
    return previous


def redact_tool_output(text: str) -> str:
    return _redactor(text) if text else text
