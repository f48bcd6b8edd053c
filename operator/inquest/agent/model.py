"""The chat-model edge: one call to an OpenAI-compatible ``/chat/completions``, and retries that
respect the Investigation's deadline.

The client comes from the one factory, :func:`inquest.clients.llm.build_openai_client`, built with
``max_retries=0``: retries happen here, where the deadline is known. A 429 waits for its
``Retry-After``; 5xx, timeouts, connection errors and malformed bodies back off exponentially;
401/403/404 and other 4xx fail at once with the provider's own message.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import openai
from openai.types.chat import ChatCompletion

from inquest.clients.llm import ProviderConnection, build_openai_client
from inquest.domain.text import cut_end, one_line

logger = logging.getLogger("inquest.agent.model")

ErrorKind = Literal["rate_limited", "unavailable", "timeout", "malformed", "auth", "not_found", "rejected"]
RETRYABLE: frozenset[str] = frozenset({"rate_limited", "unavailable", "timeout", "malformed"})
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0


@dataclass
class ToolCallRequest:
    id: str
    name: str
    arguments: str


@dataclass
class ModelReply:
    content: str | None
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None


class ModelError(Exception):
    """A failed model call, classified. ``message`` is the provider's own (cut, secret-free)."""

    def __init__(self, kind: ErrorKind, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    def describe(self) -> str:
        return f"HTTP {self.status}: {self.message}" if self.status else self.message


class DeadlineReached(Exception):
    """The deadline passed (or a retry would end after it)."""


class ChatModel(Protocol):
    name: str

    async def complete(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None, *,
                       max_tokens: int | None, timeout: float) -> ModelReply: ...

    async def close(self) -> None: ...


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def _provider_message(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping) and err.get("message"):
            return cut_end(one_line(str(err["message"])), 300)
        if isinstance(err, str):
            return cut_end(one_line(err), 300)
    return cut_end(one_line(exc.message or type(exc).__name__), 300)


def classify(exc: BaseException) -> ModelError:
    """An exception of the openai client (or of parsing its result) as a :class:`ModelError`."""
    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return ModelError("timeout", "the model did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f": {type(cause).__name__}: {cause}" if cause else ""
        return ModelError("unavailable", cut_end(one_line(f"cannot reach the model endpoint{detail}"), 300))
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        message = _provider_message(exc)
        if status == 429:
            return ModelError("rate_limited", message, status=status,
                              retry_after=parse_retry_after(dict(exc.response.headers)))
        if status in (401, 403):
            return ModelError("auth", message, status=status)
        if status == 404:
            return ModelError("not_found", message, status=status)
        if status >= 500 or status in (408, 409):
            return ModelError("unavailable", message, status=status)
        return ModelError("rejected", message, status=status)
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError | ValueError | KeyError
                  | TypeError | AttributeError | IndexError):
        return ModelError("malformed", cut_end(one_line(f"unreadable response: {type(exc).__name__}: {exc}"), 300))
    return ModelError("unavailable", cut_end(one_line(f"{type(exc).__name__}: {exc}"), 300))


class OpenAIChatModel:
    """:class:`ChatModel` over the provider's ``AsyncOpenAI`` client (no retries of its own)."""

    def __init__(self, conn: ProviderConnection, *, send_max_tokens: bool | None = None) -> None:
        self.conn = conn
        self.name = conn.model
        self.client = build_openai_client(conn, max_retries=0)
        params = conn.parameters
        # Sending max_tokens is safe for servers whose window the user declared (local ones); cloud
        # reasoning models refuse the parameter, so it is not sent by default.
        self.send_max_tokens = (params.max_output_tokens is not None or params.context_window is not None) \
            if send_max_tokens is None else send_max_tokens

    async def complete(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None, *,
                       max_tokens: int | None, timeout: float) -> ModelReply:
        body: dict[str, Any] = {"model": self.conn.model, "messages": list(messages)}
        if tools:
            body["tools"] = list(tools)
            body["tool_choice"] = "auto"
        if self.conn.parameters.temperature is not None:
            body["temperature"] = self.conn.parameters.temperature
        if max_tokens and self.send_max_tokens:
            body["max_tokens"] = max_tokens
        try:
            # The client's generic POST (the SDK's documented way to send a body as is): the typed
            # ``chat.completions.create`` walks every message and schema to transform it, which costs
            # ~15 ms of CPU per call on a 4k-token conversation; the body here is already wire JSON.
            completion = await self.client.post("/chat/completions", cast_to=ChatCompletion, body=body,
                                                options={"timeout": timeout})
            return to_reply(completion)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = classify(exc)
            # A provider may quote the key it refused (or a header value): never let it go further.
            error.message = self.conn.redact(error.message)
            error.args = (error.message,)
            raise error from None

    async def close(self) -> None:
        try:
            await self.client.close()
        except Exception:  # closing must never fail a run
            logger.debug("closing the model client failed", exc_info=True)


def to_reply(completion: Any) -> ModelReply:
    choices = getattr(completion, "choices", None)
    if not choices:
        raise ModelError("malformed", "the response has no choices")
    choice = choices[0]
    message = choice.message
    calls: list[ToolCallRequest] = []
    for i, call in enumerate(message.tool_calls or []):
        fn = getattr(call, "function", None)
        if fn is None:
            continue
        calls.append(ToolCallRequest(id=str(getattr(call, "id", "") or f"call_{i}"), name=str(fn.name or ""),
                                     arguments=str(fn.arguments or "")))
    usage = getattr(completion, "usage", None)
    return ModelReply(
        content=message.content,
        tool_calls=calls,
        prompt_tokens=getattr(usage, "prompt_tokens", None) if usage else None,
        completion_tokens=getattr(usage, "completion_tokens", None) if usage else None,
        finish_reason=choice.finish_reason,
    )


def backoff(attempt: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_BASE * (2 ** attempt)) * (0.8 + 0.4 * random.random())


async def complete_with_retries(
    model: ChatModel,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    *,
    max_tokens: int | None,
    deadline: float,
    request_timeout: float,
    max_retries: int,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> ModelReply:
    """One model call with retries; raises :class:`ModelError` or :class:`DeadlineReached`."""
    now = clock or asyncio.get_running_loop().time
    attempt = 0
    while True:
        remaining = deadline - now()
        if remaining <= 0:
            raise DeadlineReached("the deadline passed before the model answered")
        try:
            return await model.complete(messages, tools, max_tokens=max_tokens,
                                        timeout=max(0.1, min(request_timeout, remaining)))
        except ModelError as exc:
            if not exc.retryable or attempt >= max_retries:
                raise
            delay = exc.retry_after if exc.retry_after is not None else backoff(attempt)
            if now() + delay >= deadline:
                if exc.kind == "timeout":
                    raise DeadlineReached("the model did not answer before the deadline") from None
                raise DeadlineReached(f"the model failed ({exc.describe()}) and waiting {delay:.1f}s to retry "
                                      f"would pass the deadline") from None
            logger.info("model call failed (%s), retrying in %.1fs (attempt %d of %d)",
                        exc.describe(), delay, attempt + 1, max_retries)
            await sleep(delay)
            attempt += 1
