"""A token estimate that needs no tokenizer.

Servers use many tokenizers (Llama, Qwen, Mistral, GPT); the estimate must be cheap, stable and
rather pessimistic, since it decides what fits a context window. Heuristic, per text:

- every character but digits: 1 token per 4 characters (English prose is ~4.2-4.5 characters
  per token on BPE vocabularies of 32k-150k entries);
- ASCII punctuation and symbols: +0.25 token each (JSON and YAML run nearer 3 characters per
  token, because of quotes, braces and colons, which BPE merges only in part);
- digits: 0.75 token each (Llama-2, Mistral and Qwen split numbers into single digits; GPT-4 and
  Llama-3 group three; timestamps and IDs in logs are dense);
- non-ASCII: +0.5 token per extra UTF-8 byte (CJK and emoji take 1-3 tokens each).

A chat message adds 4 tokens of framing, a request 3. No tokenizer is a dependency, so the weights
are published averages rounded up rather than a calibration; the context budget keeps a further
safety margin (``inquest.agent.budget``) for the cases where the estimate is low.
"""

from __future__ import annotations

import json
import math
import string
from collections.abc import Iterable, Mapping
from typing import Any

MESSAGE_OVERHEAD = 4
REQUEST_OVERHEAD = 3

_DROP_DIGITS = str.maketrans("", "", string.digits)
_DROP_SYMBOLS = str.maketrans("", "", string.punctuation)


def estimate_text(text: str | None) -> int:
    if not text:
        return 0
    n = len(text)
    digits = n - len(text.translate(_DROP_DIGITS))
    symbols = n - len(text.translate(_DROP_SYMBOLS))
    extra_bytes = len(text.encode("utf-8", "replace")) - n if not text.isascii() else 0
    return math.ceil((n - digits) / 4 + symbols * 0.25 + digits * 0.75 + extra_bytes * 0.5)


def chars_for_tokens(tokens: int) -> int:
    """Characters of typical tool output (tables, YAML, logs: ~3.3 chars per token by the estimate above)."""
    return max(0, int(tokens * 3.3))


def estimate_message(message: Mapping[str, Any]) -> int:
    total = MESSAGE_OVERHEAD + estimate_text(_content_text(message.get("content")))
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        total += 3 + estimate_text(str(fn.get("name") or "")) + estimate_text(str(fn.get("arguments") or ""))
    if message.get("name"):
        total += 1
    return total


def estimate_tools(tools: Iterable[Mapping[str, Any]] | None) -> int:
    if not tools:
        return 0
    return estimate_text(json.dumps(list(tools), separators=(",", ":")))


def estimate_request(messages: Iterable[Mapping[str, Any]], tools: Iterable[Mapping[str, Any]] | None = None) -> int:
    return REQUEST_OVERHEAD + sum(estimate_message(m) for m in messages) + estimate_tools(tools)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(str(p.get("text", "")) if isinstance(p, Mapping) else str(p) for p in content)
    return str(content)
