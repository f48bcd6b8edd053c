"""Redaction of values that look like credentials, before anything from the cluster reaches a model.

One module holds the whole rule set, in two parts:

- **text rules** (:data:`RULES`, :func:`redact`): regular expressions over any text (logs, rendered
  YAML, event messages, tool errors). Each rule replaces only the secret part of a match with a
  marker that names the rule, so the model still sees *that* a credential was there ("the DSN
  carries a password") but never the value.
- **structural rules** (:func:`redact_object`): over a Kubernetes object as parsed JSON, before it
  is rendered. Text rules cannot see that ``value: hunter2`` belongs to an env var *named*
  ``DB_PASSWORD`` two YAML lines above; the structure can. Values under a credential-like key
  (``password``, ``DB_PASSWORD``, ``example.com/token``...), the ``value`` of a ``{name, value}``
  pair whose name is credential-like (env vars), and the argument after a credential-like flag
  (``--password``, ``hunter2``) are replaced.

What is *not* caught: a value that has no credential shape and sits under no credential-like name
(``greeting: hunter2``; a password in a free-text sentence). Those cannot be told from ordinary
data without guessing; docs/security.md says so.

Every pattern runs in linear time on hostile input (no unbounded run that can restart inside
itself: runs are either bounded or anchored by a look-behind on their own character class), so a
crafted log line cannot stall the operator.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inquest.domain.text import cut_end, cut_middle

MARKER = "[REDACTED:{}]"
MARKER_PREFIX = "[REDACTED:"


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    # The group holding the secret (or alternatives: the first that matched); the rest of the match
    # is kept as context.
    group: int | str | tuple[str, ...] = 0


def _rx(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


_KEY_WORDS = (
    r"pass(?:word|wd|phrase)?|pwd|secret(?:[_-]?key)?|token|api[_-]?key|apikey|access[_-]?key(?:[_-]?id)?"
    r"|private[_-]?key|client[_-]?secret|auth(?:orization)?|credentials?|session[_-]?id|cookie"
)
# A credential-like name as text: optional prefix, a key word, optional suffix (all bounded).
_SECRET_NAME = rf"[\w.-]{{0,40}}(?:{_KEY_WORDS})[\w.-]{{0,40}}"
# A value: up to the next space, quote or separator.
_VALUE = r"[^\s\"',;&{}\[\]]"

RULES: tuple[Rule, ...] = (
    Rule("private-key", _rx(
        r"-----BEGIN (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY-----.*?"
        r"(?:-----END (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY-----|\Z)", re.S)),
    # base64 of "-----BEGIN " (kubeconfig client-key-data, Secret-like blobs pasted into ConfigMaps)
    Rule("pem-base64", _rx(r"(?<![A-Za-z0-9+/])LS0tLS1CRUdJTi[A-Za-z0-9+/]{20,}={0,2}")),
    Rule("jwt", _rx(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")),
    Rule("bearer", _rx(r"(?i)\b(?:bearer|basic)[ \t]{1,8}(?P<v>[A-Za-z0-9._~+/=-]{8,})"), "v"),
    Rule("aws-access-key", _rx(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b")),
    Rule("gcp-api-key", _rx(r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])")),
    Rule("github-token", _rx(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b")),
    Rule("slack-token", _rx(r"(?<![A-Za-z0-9-])xox[abprs]-[A-Za-z0-9-]{10,}")),
    Rule("openai-key", _rx(r"(?<![\w-])sk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}")),
    # scheme://user:password@host — keep the user and host, hide the password.
    Rule("url-password", _rx(r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,30}://[^\s:/@]{1,256}:(?P<v>[^\s@/]{1,256})@"),
         "v"),
    # An env var or a {"name", "value"} pair whose *name* is credential-like, the value on the next
    # YAML line or in the next JSON member:  - name: DB_PASSWORD\n  value: hunter2
    Rule("name-value", _rx(
        rf"(?i)[\"']?\bname[\"']?[ \t]{{0,8}}:[ \t]{{0,8}}[\"']?{_SECRET_NAME}[\"']?[ \t]{{0,8}}"
        rf"(?:,[ \t]{{0,8}}|\r?\n[ \t-]{{0,16}}|\\n[ \t-]{{0,16}})"
        rf"[\"']?value[\"']?[ \t]{{0,8}}:[ \t]{{0,8}}[\"']?(?P<v>{_VALUE}{{3,}})"),
        "v"),
    # key=value, key: value, "key": "value", KEY=value in env dumps and configs; a quoted value is
    # hidden whole, spaces included (password="correct horse"). The key word may follow "_", "-",
    # "." or a word boundary, and "password"/"passwd" also a glued prefix (PGPASSWORD, dbpassword).
    Rule("key-value", _rx(
        rf"(?i)(?:(?:\b|_)(?:{_KEY_WORDS})|\b[a-z0-9]{{1,20}}pass(?:word|wd))[\w.-]{{0,40}}[\"']?[ \t]{{0,8}}"
        rf"[:=][ \t]{{0,8}}(?!(?:bearer|basic)[ \t])"
        rf"(?:(?P<q>[\"'])(?P<qv>[^\"'\n]{{3,256}})(?P=q)|[\"']?(?P<v>{_VALUE}{{3,}}))"),
        ("qv", "v")),
)


def redact(text: str, rules: tuple[Rule, ...] = RULES) -> str:
    """Replace every credential-looking value in ``text`` with ``[REDACTED:<rule>]``."""
    if not text:
        return text
    for rule in rules:
        text = rule.pattern.sub(_replacer(rule), text)
    if "PRIVATE KEY-----" in text:
        text = _orphan_key_bodies(text)
    return text


_KEY_END = re.compile(r"-----END (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY-----")
_BASE64_LINE = re.compile(r"[ \t]*[A-Za-z0-9+/=]{16,}[ \t]*\r?")
KEY_BODY_MARKER = MARKER.format("private-key")


def _orphan_key_bodies(text: str) -> str:
    """The end of a private key whose BEGIN line was cut away (a log tail, a cut output): the
    base64 lines before an ``-----END ... PRIVATE KEY-----`` that no BEGIN precedes (complete
    blocks were replaced by the ``private-key`` rule already)."""
    out: list[str] = []
    pos = 0
    for match in _KEY_END.finditer(text):
        line_start = text.rfind("\n", pos, match.start()) + 1 if pos < match.start() else match.start()
        line_start = max(line_start, pos)
        begin = line_start
        while begin > pos:  # walk back over base64 lines
            prev = max(pos, text.rfind("\n", pos, begin - 1) + 1)
            if not _BASE64_LINE.fullmatch(text, prev, begin - 1):
                break
            begin = prev
        glued = text[line_start:match.start()]
        if begin == line_start and not _BASE64_LINE.fullmatch(glued):
            continue  # no key body before this END
        out.append(text[pos:begin])
        out.append(KEY_BODY_MARKER)
        pos = match.end()
    out.append(text[pos:])
    return "".join(out)


def _replacer(rule: Rule) -> Callable[[re.Match[str]], str]:
    marker = MARKER.format(rule.name)

    def replace(match: re.Match[str]) -> str:
        if rule.group == 0:
            return marker
        names = rule.group if isinstance(rule.group, tuple) else (rule.group,)
        group = next((g for g in names if match.group(g) is not None), names[-1])
        value = match.group(group)
        if value is None or value.startswith(MARKER_PREFIX):
            return match.group(0)
        start, end = match.span(group)
        offset = match.start()
        whole = match.group(0)
        return whole[: start - offset] + marker + whole[end - offset:]

    return replace


SCAN_LIMIT = 1_000_000  # longer texts are not scanned whole (see redact_cut)


def redact_cut(text: str, limit: int, *, scan_limit: int = SCAN_LIMIT) -> str:
    """``text`` redacted, then cut to ``limit`` characters (head and tail kept, with a marker).

    Redaction comes first so that a cut never exposes the part of a credential its rule needed
    the other part to recognise. A text longer than ``scan_limit`` (a 50 MB log line) is not
    scanned whole: only its head, ending at a whitespace so no token is split, is redacted and kept.
    """
    if len(text) <= limit:
        return redact(text)
    if len(text) <= scan_limit:
        return cut_middle(redact(text), limit)
    head = text[: max(0, limit - 48)]
    space = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
    head = head[:space] if space > 0 else ""
    return cut_end(redact(head), max(0, limit - 48)) + f" [... {len(text) - len(head)} chars cut unread ...]"


# --------------------------------------------------------------------------- structural rules

FIELD_MARKER = MARKER.format("secret-field")

# Words of a key name that make its value a credential...
_CREDENTIAL_WORDS = frozenset({
    "password", "passwd", "passphrase", "pwd", "pass", "secret", "secrets", "token", "credential",
    "credentials", "creds", "apikey", "cookie", "authorization", "auth", "dsn", "privatekey", "secretkey",
    "accesskey", "signingkey", "clientsecret",
})
# ...unless the name ends with a word saying the value is *about* the credential, not the credential
# (``secretName``, ``secretKeyRef``, ``tokenExpirationSeconds``, ``passwordFile``).
_REFERENCE_WORDS = frozenset({
    "name", "names", "ref", "refs", "file", "files", "path", "paths", "dir", "namespace", "seconds", "ttl",
    "expiration", "expiry", "expires", "length", "enabled", "required", "mode", "type", "kind", "version",
    "count", "id", "url", "uri", "endpoint", "header", "policy", "format", "min", "max", "rotation", "limit",
    "limits", "size", "timeout", "interval", "budget", "audience",
})
# Names ending in "<word> key" hold key material (``STRIPE_KEY``, ``tls.key``), except after these:
_PLAIN_KEYS = frozenset({
    "public", "cache", "partition", "routing", "sort", "primary", "foreign", "label", "node", "object", "lookup",
    "row", "hash", "shard", "idempotency", "topology", "selector", "group", "dedup", "dedupe", "index",
})
# "<word> key" in the middle of a name holds key material after these (``client-key-data``).
_KEY_QUALIFIERS = frozenset({
    "api", "access", "secret", "private", "signing", "encryption", "master", "client", "tls", "ssh", "license",
    "account", "service", "storage", "app", "session", "hmac", "shared", "auth",
})
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_FLAG = re.compile(r"^--?([A-Za-z][\w.-]{0,60})$")


def key_words(name: str) -> list[str]:
    """``DB_PASSWORD`` -> [db, password]; ``secretKeyRef`` -> [secret, key, ref]; ``example.com/token``."""
    return [w.lower() for w in _WORD.findall(name or "")]


def is_secret_name(name: str) -> bool:
    """Whether a key, env var or flag name says its value is a credential."""
    words = key_words(name)
    if not words or words[-1] in _REFERENCE_WORDS:
        return False
    if words[-1] == "key" and len(words) > 1 and words[-2] not in _PLAIN_KEYS:
        return True
    if any(w in _CREDENTIAL_WORDS or w.endswith(("password", "passwd")) for w in words):
        return True  # a glued prefix too: PGPASSWORD, dbpassword
    pairs = list(zip(words, words[1:], strict=False))
    return any(a + b in _CREDENTIAL_WORDS or (b == "key" and a in _KEY_QUALIFIERS) for a, b in pairs)


def _hide(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value  # ``automountServiceAccountToken: true`` says nothing secret
    if isinstance(value, str):
        return value if not value or value.startswith(MARKER_PREFIX) else FIELD_MARKER
    if isinstance(value, int | float):
        return FIELD_MARKER
    return None  # containers: walk into them instead


def redact_object(obj: Any) -> Any:
    """Hide credential values in a parsed Kubernetes object, **in place**; returns ``obj``.

    Iterative (an object nested thousands of levels deep costs no recursion) and linear in the
    object's size. Text inside values is left to :func:`redact`, which every tool output passes.
    """
    stack: list[Any] = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            name = node.get("name")
            if isinstance(name, str) and "value" in node and is_secret_name(name):
                hidden = _hide(node["value"])
                if hidden is not None:
                    node["value"] = hidden
            for key, value in node.items():
                if isinstance(value, dict | list):
                    stack.append(value)
                elif isinstance(key, str) and value is not None and is_secret_name(key):
                    hidden = _hide(value)
                    if hidden is not None and hidden is not value:
                        node[key] = hidden
        elif isinstance(node, list):
            flagged = False
            for i, item in enumerate(node):
                if isinstance(item, dict | list):
                    stack.append(item)
                    flagged = False
                    continue
                if flagged and isinstance(item, str) and not item.startswith("-"):
                    node[i] = _hide(item)
                flagged = False
                if isinstance(item, str):
                    flag = _FLAG.match(item)
                    flagged = bool(flag and is_secret_name(flag.group(1)))
    return obj
