"""Redaction of values that look like credentials, before any tool output reaches a model.

One module holds the whole rule set. Each rule replaces only the secret part of a match with a
marker that names the rule, so the model still sees *that* a credential was there (useful for
triage: "the DSN carries a password") but never the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MARKER = "[REDACTED:{}]"


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    # The group holding the secret; the rest of the match is kept as context.
    group: int | str = 0


def _rx(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


_KEY_WORDS = (
    r"pass(?:word|wd|phrase)?|pwd|secret(?:[_-]?key)?|token|api[_-]?key|apikey|access[_-]?key(?:[_-]?id)?"
    r"|private[_-]?key|client[_-]?secret|auth(?:orization)?|credentials?|session[_-]?id|cookie"
)

RULES: tuple[Rule, ...] = (
    Rule("private-key", _rx(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)", re.S)),
    Rule("jwt", _rx(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")),
    Rule("bearer", _rx(r"(?i)\b(?:bearer|basic)\s+(?P<v>[A-Za-z0-9._~+/=-]{8,})"), "v"),
    Rule("aws-access-key", _rx(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b")),
    Rule("gcp-api-key", _rx(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    Rule("github-token", _rx(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b")),
    Rule("slack-token", _rx(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b")),
    Rule("openai-key", _rx(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}\b")),
    # scheme://user:password@host — keep the user and host, hide the password.
    Rule("url-password", _rx(r"\b[a-z][a-z0-9+.-]*://[^\s:/@]+:(?P<v>[^\s@/]+)@"), "v"),
    # key=value, key: value, "key": "value", KEY=value in env dumps and configs.
    Rule("key-value", _rx(
        rf"(?i)(?:\b|_)(?:{_KEY_WORDS})[\w.-]*[\"']?[ \t]*[:=][ \t]*[\"']?(?P<v>[^\s\"',;&{{}}\[\]]{{3,}})"), "v"),
)


def redact(text: str, rules: tuple[Rule, ...] = RULES) -> str:
    """Replace every credential-looking value in ``text`` with ``[REDACTED:<rule>]``."""
    if not text:
        return text
    for rule in rules:
        text = rule.pattern.sub(_replacer(rule), text)
    return text


def _replacer(rule: Rule) -> Callable[[re.Match[str]], str]:
    marker = MARKER.format(rule.name)

    def replace(match: re.Match[str]) -> str:
        if rule.group == 0:
            return marker
        value = match.group(rule.group)
        if value is None or value.startswith("[REDACTED:"):
            return match.group(0)
        start, end = match.span(rule.group)
        offset = match.start()
        whole = match.group(0)
        return whole[: start - offset] + marker + whole[end - offset:]

    return replace
