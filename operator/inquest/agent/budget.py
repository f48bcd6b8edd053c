"""Context-window arithmetic: what the prompt may hold, what is kept for the answer, how much one
tool output may take. All numbers are in estimated tokens (``inquest.agent.tokens``)."""

from __future__ import annotations

from dataclasses import dataclass

from inquest.agent.tokens import chars_for_tokens

MIN_OUTPUT_RESERVE = 256
MAX_OUTPUT_RESERVE = 2048
MIN_TOOL_TOKENS = 120  # below this a tool output says too little to be worth a call
MAX_TOOL_TOKENS = 6000  # large windows still should not pay for 100 kB of logs per call
STEP_SHARE = 0.4  # of the free prompt space, one step's tool outputs may take this much


@dataclass(frozen=True)
class ContextBudget:
    context_window: int
    output_reserve: int
    safety: int

    @classmethod
    def for_window(cls, context_window: int, max_output_tokens: int | None = None) -> ContextBudget:
        window = max(1024, int(context_window))
        if max_output_tokens:
            reserve = min(int(max_output_tokens), window // 2)
        else:
            reserve = min(MAX_OUTPUT_RESERVE, max(MIN_OUTPUT_RESERVE, window // 6))
        safety = max(64, window * 5 // 100)  # for the estimate being low
        return cls(window, reserve, safety)

    @property
    def prompt_limit(self) -> int:
        """The most a request's prompt (messages + tool schemas) may take."""
        return self.context_window - self.output_reserve - self.safety

    def step_tool_tokens(self, base_tokens: int) -> int:
        """Tokens all tool outputs of one step may take together, given the fixed part of the prompt."""
        free = max(0, self.prompt_limit - base_tokens)
        return max(MIN_TOOL_TOKENS, min(MAX_TOOL_TOKENS, int(free * STEP_SHARE)))

    def tool_output_chars(self, base_tokens: int, calls_in_step: int = 1) -> int:
        """Characters one tool output may take when ``calls_in_step`` tools ran in the same step."""
        per_call = max(MIN_TOOL_TOKENS, self.step_tool_tokens(base_tokens) // max(1, calls_in_step))
        return chars_for_tokens(per_call)
