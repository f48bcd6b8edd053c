"""The message list of one run, with token accounting and compaction.

Before each model call :meth:`Conversation.fit` makes the request fit the prompt budget, oldest
material first, so the window never overflows (the server is never the one to refuse):

1. older tool outputs are replaced by a one-line digest ("[output of pod_logs dropped ...]");
2. then the oldest whole steps (assistant tool calls with their results) are dropped, and the
   opening message notes which tools they had called;
3. then the latest tool outputs are cut further (head and tail kept, with a marker).

The system prompt, the question and the latest step are never dropped.

Tool results are framed as data (:func:`frame`): ``<tool_output>`` ... ``</tool_output>``, with any
such tag inside the output defused, so text from the cluster cannot pass for the operator's own
words; the system prompt tells the model that framed text is never instructions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inquest.agent.tokens import REQUEST_OVERHEAD, estimate_message
from inquest.domain.text import cut_end, cut_middle, one_line

DIGEST_CHARS = 120
MIN_TOOL_OUTPUT = 200
TOOL_OPEN = "<tool_output>"
TOOL_CLOSE = "</tool_output>"
_TAG = re.compile(r"(?i)<(/?)tool_output")


def frame(text: str) -> str:
    """A tool result marked as untrusted data; a tag inside it cannot end the frame early."""
    defused = _TAG.sub(r"<\1tool-output", text)
    return f"{TOOL_OPEN}\n{defused}\n{TOOL_CLOSE}"


class ContextOverflow(Exception):
    """Even the system prompt, the question and the tool schemas do not fit the window."""


@dataclass
class Conversation:
    messages: list[dict[str, Any]] = field(default_factory=list)
    _tokens: list[int] = field(default_factory=list)
    dropped_steps: int = 0
    dropped_tools: list[str] = field(default_factory=list)
    compactions: int = 0

    @classmethod
    def start(cls, system: str, user: str, *, system_role: bool = True) -> Conversation:
        conv = cls()
        if system_role:
            conv.add({"role": "system", "content": system})
            conv.add({"role": "user", "content": user})
        else:  # servers whose template has no system role
            conv.add({"role": "user", "content": f"{system}\n\n{user}"})
        return conv

    @property
    def head(self) -> int:
        """Messages never dropped: the system prompt (if any) and the question."""
        return 2 if self.messages and self.messages[0]["role"] == "system" else 1

    def add(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self._tokens.append(estimate_message(message))

    def add_tool_result(self, call_id: str, name: str, text: str) -> None:
        """A tool's (redacted, budgeted) output, framed as data; ``_raw`` keeps it unframed for cuts."""
        self.add({"role": "tool", "tool_call_id": call_id, "content": frame(text), "_tool": name, "_raw": text})

    def tokens(self) -> int:
        return REQUEST_OVERHEAD + sum(self._tokens)

    def _set(self, index: int, message: dict[str, Any]) -> None:
        self.messages[index] = message
        self._tokens[index] = estimate_message(message)

    def _step_ranges(self) -> list[tuple[int, int]]:
        """[start, end) of each step after the head: an assistant message and its tool results."""
        ranges: list[tuple[int, int]] = []
        i = self.head
        while i < len(self.messages):
            j = i + 1
            while j < len(self.messages) and self.messages[j]["role"] == "tool":
                j += 1
            ranges.append((i, j))
            i = j
        return ranges

    def fit(self, limit: int) -> int:
        """Compact until the messages take at most ``limit`` tokens; returns how many changes it made."""
        changes = 0
        if self.tokens() <= limit:
            return 0
        steps = self._step_ranges()
        # 1. digest older tool outputs (all but the latest step), oldest first
        for start, end in steps[:-1]:
            for i in range(start, end):
                message = self.messages[i]
                if message["role"] != "tool" or message.get("_digested"):
                    continue
                digest = _digest(message)
                self._set(i, {**message, "content": frame(digest), "_raw": digest, "_digested": True})
                changes += 1
                if self.tokens() <= limit:
                    self.compactions += changes
                    return changes
        # 2. drop the oldest whole steps, keeping the latest
        while self.tokens() > limit and len(self._step_ranges()) > 1:
            start, end = self._step_ranges()[0]
            for message in self.messages[start:end]:
                for call in message.get("tool_calls") or ():
                    self.dropped_tools.append(str((call.get("function") or {}).get("name")))
            del self.messages[start:end]
            del self._tokens[start:end]
            self.dropped_steps += 1
            changes += 1
            self._note_dropped()
        # 3. cut the latest step's tool outputs further
        while self.tokens() > limit:
            tool_indices = [i for i in range(self.head, len(self.messages)) if self.messages[i]["role"] == "tool"]
            longest = max(tool_indices, key=lambda i: len(_raw(self.messages[i])), default=None)
            if longest is None:
                break
            content = _raw(self.messages[longest])
            if len(content) <= MIN_TOOL_OUTPUT:
                break
            excess_chars = int((self.tokens() - limit) * 4.5) + 64
            target = max(MIN_TOOL_OUTPUT, min(len(content) // 2, len(content) - excess_chars))
            cut = cut_middle(content, target)
            self._set(longest, {**self.messages[longest], "content": frame(cut), "_raw": cut})
            changes += 1
        self.compactions += changes
        if self.tokens() > limit:
            raise ContextOverflow(f"the request needs ~{self.tokens()} tokens, the context budget is {limit}")
        return changes

    def _note_dropped(self) -> None:
        question_index = self.head - 1
        message = self.messages[question_index]
        base = str(message.get("_question", message.get("content") or ""))
        names = ", ".join(dict.fromkeys(self.dropped_tools))
        note = (f"\n\n[{self.dropped_steps} earlier step(s) were dropped to fit the context window; they "
                f"called: {cut_end(names, 200)}]")
        self._set(question_index, {**message, "content": base + note, "_question": base})

    def wire_messages(self) -> list[dict[str, Any]]:
        """The messages as sent (internal keys removed)."""
        return [{k: v for k, v in m.items() if not k.startswith("_")} for m in self.messages]


def _raw(message: Mapping[str, Any]) -> str:
    """A tool message's text without its frame."""
    return str(message.get("_raw", message.get("content")) or "")


def _digest(message: Mapping[str, Any]) -> str:
    content = _raw(message)
    name = message.get("_tool") or "the tool"
    first = cut_end(one_line(content), DIGEST_CHARS)
    return f"[output of {name} dropped to fit the context window ({len(content)} chars); call it again if needed. " \
           f"It began: {first}]"
