"""A scriptable fake OpenAI-compatible chat-completions server (aiohttp, 127.0.0.1, HTTP or HTTPS).

::

    async with FakeLLM(api_key="k") as llm:
        llm.script(tool_call("kubectl_get", {"kind": "Pod"}), text("done"))
        client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="k")
        ...
        assert llm.chat_requests[0]["model"] == "test-model"

Scripted items are consumed FIFO, one per ``POST {prefix}/chat/completions`` that passes the auth,
``stream`` and model checks. When the script is empty ``llm.default(request_json)`` answers.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiohttp import web

from tests.support.certs import CertKey, server_ssl_context

__all__ = [
    "Fault",
    "FakeLLM",
    "Hang",
    "Item",
    "Malformed",
    "Recorded",
    "Responder",
    "TextReply",
    "ToolCall",
    "ToolCallsReply",
    "always_text",
    "auto_tool_probe",
    "fault",
    "hang",
    "ignore_tools",
    "malformed",
    "rate_limited",
    "sample_arguments",
    "text",
    "tool_call",
    "tool_calls",
]

Usage: TypeAlias = tuple[int, int]


# --------------------------------------------------------------------------- response items


@dataclass(frozen=True)
class TextReply:
    content: str
    usage: Usage | None = None
    finish_reason: str = "stop"


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str  # JSON text, exactly as sent on the wire
    id: str | None = None


@dataclass(frozen=True)
class ToolCallsReply:
    calls: tuple[ToolCall, ...]
    content: str | None = None
    usage: Usage | None = None


@dataclass(frozen=True)
class Fault:
    """An HTTP error (or any raw) response. ``body``: dict/list -> JSON; str/bytes -> sent as is."""

    status: int = 500
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    usage: Usage | None = None  # unused; keeps the ``usage=`` keyword uniform


@dataclass(frozen=True)
class Hang:
    """Sleep ``seconds`` (interrupted by server stop), then answer ``then``."""

    seconds: float
    then: Item | None = None
    usage: Usage | None = None


@dataclass(frozen=True)
class Malformed:
    """A 200 response whose body is not valid JSON (Content-Type application/json by default)."""

    body: str = '{"id": "chatcmpl-broken", "choices": [ this is not json'
    content_type: str = "application/json"
    usage: Usage | None = None


Item: TypeAlias = "TextReply | ToolCallsReply | Fault | Hang | Malformed"
Responder: TypeAlias = Callable[[dict[str, Any]], "Item"]
ScriptEntry: TypeAlias = "Item | Responder"


def _openai_error(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def text(content: str, *, usage: Usage | None = None, finish_reason: str = "stop") -> TextReply:
    """A plain assistant text answer."""
    return TextReply(content, usage=usage, finish_reason=finish_reason)


def ignore_tools(
    content: str = "I will answer without using tools.", *, usage: Usage | None = None
) -> TextReply:
    """A text answer given although tools were offered (a model that ignores ``tools``)."""
    return TextReply(content, usage=usage)


def _args_text(arguments: Mapping[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(dict(arguments))


def tool_call(
    name: str,
    arguments: Mapping[str, Any] | str | None = None,
    id: str | None = None,
    *,
    content: str | None = None,
    usage: Usage | None = None,
) -> ToolCallsReply:
    """One tool call. ``arguments`` as a dict (JSON-encoded for you) or raw string (sent verbatim)."""
    return ToolCallsReply((ToolCall(name, _args_text(arguments or {}), id),), content=content, usage=usage)


def tool_calls(
    calls: Iterable[
        tuple[str, Mapping[str, Any] | str] | tuple[str, Mapping[str, Any] | str, str] | ToolCall
    ],
    *,
    content: str | None = None,
    usage: Usage | None = None,
) -> ToolCallsReply:
    """Several tool calls in one assistant message: ``[(name, args), (name, args, id), ToolCall, ...]``."""
    out: list[ToolCall] = []
    for c in calls:
        if isinstance(c, ToolCall):
            out.append(c)
        elif len(c) == 3:
            out.append(ToolCall(c[0], _args_text(c[1]), c[2]))
        else:
            out.append(ToolCall(c[0], _args_text(c[1])))
    return ToolCallsReply(tuple(out), content=content, usage=usage)


def fault(
    status: int = 500,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    content_type: str | None = None,
) -> Fault:
    """An error response; the default body is an OpenAI-style error JSON for ``status``."""
    if body is None:
        body = _openai_error(
            f"The server had an error while processing your request (fake status {status}).",
            "server_error" if status >= 500 else "invalid_request_error",
            None,
        )
    return Fault(status=status, body=body, headers=dict(headers or {}), content_type=content_type)


def rate_limited(retry_after: float | int = 1, *, message: str = "Rate limit reached for requests") -> Fault:
    """A 429 with a ``Retry-After`` header and an OpenAI rate-limit error body."""
    ra = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
    return Fault(
        status=429,
        body=_openai_error(message, "requests", "rate_limit_exceeded"),
        headers={"Retry-After": ra},
    )


def hang(seconds: float, then: Item | None = None) -> Hang:
    """Sleep before answering (use a value longer than the client's timeout)."""
    return Hang(seconds, then)


def malformed(body: str | None = None, *, content_type: str = "application/json") -> Malformed:
    """A 200 response with a body that is not JSON."""
    if body is None:
        return Malformed(content_type=content_type)
    return Malformed(body=body, content_type=content_type)


# --------------------------------------------------------------------------- default responders

_SAMPLE_BY_TYPE: dict[str, Any] = {
    "string": "sample",
    "integer": 1,
    "number": 1,
    "boolean": True,
    "null": None,
}


def _sample_value(schema: Mapping[str, Any], depth: int = 0) -> Any:
    if depth > 8:
        return None
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combo in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combo)
        if options:
            non_null = [o for o in options if o.get("type") != "null"] or options
            return _sample_value(non_null[0], depth + 1)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), typ[0] if typ else None)
    if typ is None:
        typ = "object" if "properties" in schema else "string"
    if typ == "object":
        return sample_arguments(schema, depth + 1)
    if typ == "array":
        items = schema.get("items")
        count = int(schema.get("minItems", 0))
        if count and isinstance(items, Mapping):
            return [_sample_value(items, depth + 1) for _ in range(count)]
        return []
    if typ == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return "2024-01-01T00:00:00Z"
        min_len = int(schema.get("minLength", 0))
        return "sample" if min_len <= 6 else "s" * min_len
    if typ in ("integer", "number"):
        return schema.get("minimum", 1)
    return _SAMPLE_BY_TYPE.get(typ)


def sample_arguments(schema: Mapping[str, Any] | None, depth: int = 0) -> dict[str, Any]:
    """Minimal arguments for a JSON-schema object: each required property gets a sample of its type."""
    if not schema:
        return {}
    props: Mapping[str, Any] = schema.get("properties") or {}
    return {name: _sample_value(props.get(name) or {}, depth + 1) for name in schema.get("required") or []}


def _offered_functions(request: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    funcs: list[Mapping[str, Any]] = []
    for tool in request.get("tools") or []:
        if isinstance(tool, Mapping) and tool.get("type", "function") == "function":
            fn = tool.get("function")
            if isinstance(fn, Mapping) and fn.get("name"):
                funcs.append(fn)
    return funcs


def auto_tool_probe(request: dict[str, Any]) -> Item:
    """The default responder.

    If tools are offered (and ``tool_choice`` is not ``"none"``) and the last message is not a tool
    result, call the first offered tool (or the one forced by ``tool_choice``) with minimal
    schema-derived arguments. Otherwise answer ``text("ok")`` — so an agent loop driven only by the
    default ends after one tool round-trip.
    """
    funcs = _offered_functions(request)
    choice = request.get("tool_choice")
    messages = request.get("messages") or []
    last_role = messages[-1].get("role") if messages and isinstance(messages[-1], Mapping) else None
    if not funcs or choice == "none" or last_role == "tool":
        return text("ok")
    fn = funcs[0]
    if isinstance(choice, Mapping):
        wanted = (choice.get("function") or {}).get("name")
        fn = next((f for f in funcs if f.get("name") == wanted), fn)
    return tool_call(str(fn["name"]), sample_arguments(fn.get("parameters")))


def always_text(request: dict[str, Any]) -> Item:
    """A responder for a model that ignores ``tools``: always ``text("ok")``."""
    return text("ok")


# --------------------------------------------------------------------------- recording


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # keys lower-cased
    json: dict[str, Any] | None  # parsed JSON body (None if absent / not a JSON object)
    body_text: str
    status: int | None = None  # status of the response sent (None if the handler never finished)
    at: float = field(default_factory=time.monotonic)  # when it arrived

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


# --------------------------------------------------------------------------- server


def _json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        content_type="application/json",
        headers=dict(headers or {}),
    )


class FakeLLM:
    """A fake OpenAI-compatible server. Use as ``async with FakeLLM(...) as llm`` or ``await start()``."""

    def __init__(
        self,
        *,
        tls: CertKey | None = None,
        client_ca: CertKey | None = None,
        api_key: str | None = None,
        models: Sequence[str] | None = ("test-model",),
        prefix: str = "/v1",
        models_endpoint: bool = True,
        ignores_tools: bool = False,
        default: Responder | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if client_ca is not None and tls is None:
            raise ValueError("client_ca (mTLS) requires tls")
        self.tls = tls
        self.client_ca = client_ca
        self.api_key: str | None = api_key  # mutable: rotate at will
        self.models: list[str] | None = list(models) if models is not None else None  # None: any model
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.models_endpoint = models_endpoint
        self.ignores_tools = ignores_tools
        self.default: Responder = default or (always_text if ignores_tools else auto_tool_probe)
        self.host = host
        self.requests: list[Recorded] = []
        self._queue: deque[ScriptEntry] = deque()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing = asyncio.Event()
        self._counter = 0

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> FakeLLM:
        if self._runner is not None:
            raise RuntimeError("FakeLLM already started")
        self._closing = asyncio.Event()
        ssl_ctx = server_ssl_context(self.tls, client_ca=self.client_ca) if self.tls is not None else None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self._port = int(sock.getsockname()[1])
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.SockSite(runner, sock, ssl_context=ssl_ctx)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        return self

    async def stop(self) -> None:
        """Stop the server (idempotent). Hanging handlers are released first."""
        self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeLLM:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- addresses -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeLLM not started")
        return self._port

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    @property
    def url(self) -> str:
        """Server root, e.g. ``https://127.0.0.1:PORT``."""
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI ``base_url``, e.g. ``https://127.0.0.1:PORT/v1``."""
        return self.url + self.prefix

    # -- scripting & inspection ----------------------------------------------------------

    def script(self, *responses: ScriptEntry) -> FakeLLM:
        """Append items (or ``callable(request_json) -> item``) to the FIFO queue."""
        self._queue.extend(responses)
        return self

    def clear_script(self) -> None:
        self._queue.clear()

    @property
    def remaining(self) -> int:
        """Scripted items not consumed yet."""
        return len(self._queue)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """JSON bodies of all chat-completion requests (including rejected ones)."""
        path = self.prefix + "/chat/completions"
        return [r.json for r in self.requests if r.path == path and r.method == "POST" and r.json is not None]

    def reset(self) -> None:
        """Forget recorded requests and the script."""
        self.requests.clear()
        self._queue.clear()

    # -- HTTP ----------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body_text = await request.text() if request.can_read_body else ""
        parsed: Any = None
        if body_text:
            try:
                parsed = json.loads(body_text)
            except ValueError:
                parsed = None
        rec = Recorded(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            json=parsed if isinstance(parsed, dict) else None,
            body_text=body_text,
        )
        self.requests.append(rec)
        response = await self._handle(request, rec, body_text, parsed)
        rec.status = response.status
        return response

    def _not_found(self) -> web.Response:
        return _json_response(404, {"error": {"message": "Not Found"}})

    async def _handle(
        self, request: web.Request, rec: Recorded, body_text: str, parsed: Any
    ) -> web.StreamResponse:
        if self.api_key is not None and rec.header("authorization") != f"Bearer {self.api_key}":
            return _json_response(
                401, _openai_error("Incorrect API key provided", "invalid_request_error", "invalid_api_key")
            )
        path = request.path
        if path == self.prefix + "/models" and request.method == "GET" and self.models_endpoint:
            return self._models_response()
        if path == self.prefix + "/chat/completions" and request.method == "POST":
            return await self._chat(body_text, parsed)
        return self._not_found()

    def _models_response(self) -> web.Response:
        created = int(time.time())
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "fake"} for m in self.models or []
        ]
        return _json_response(200, {"object": "list", "data": data})

    async def _chat(self, body_text: str, parsed: Any) -> web.StreamResponse:
        if not isinstance(parsed, dict):
            return _json_response(
                400,
                _openai_error(
                    "We could not parse the JSON body of your request.", "invalid_request_error", None
                ),
            )
        if parsed.get("stream"):
            return _json_response(
                400,
                _openai_error(
                    "Streaming is not supported by the fake LLM", "invalid_request_error", None, "stream"
                ),
            )
        model = parsed.get("model")
        if self.models is not None and model not in self.models:
            return _json_response(
                404,
                _openai_error(
                    f"The model `{model}` does not exist", "invalid_request_error", "model_not_found", "model"
                ),
            )
        entry: ScriptEntry = self._queue.popleft() if self._queue else self.default
        item = self._resolve(entry, parsed)
        return await self._render(item, parsed, body_text)

    @staticmethod
    def _resolve(entry: ScriptEntry, request: dict[str, Any]) -> Item:
        if isinstance(entry, TextReply | ToolCallsReply | Fault | Hang | Malformed):
            return entry
        return entry(request)

    async def _render(self, item: Item, request: dict[str, Any], body_text: str) -> web.StreamResponse:
        if isinstance(item, Hang):
            try:
                await asyncio.wait_for(self._closing.wait(), timeout=item.seconds)
            except TimeoutError:
                pass
            then = item.then if item.then is not None else text("ok (after hang)")
            return await self._render(self._resolve(then, request), request, body_text)
        if isinstance(item, Fault):
            return self._fault_response(item)
        if isinstance(item, Malformed):
            return web.Response(
                status=200, body=item.body.encode(), headers={"Content-Type": item.content_type}
            )
        return _json_response(200, self._completion(item, request, body_text))

    @staticmethod
    def _fault_response(item: Fault) -> web.Response:
        headers = dict(item.headers)
        if isinstance(item.body, dict | list):
            body = json.dumps(item.body).encode()
            ctype = item.content_type or "application/json"
        elif isinstance(item.body, bytes):
            body, ctype = item.body, item.content_type or "application/octet-stream"
        else:
            body, ctype = str(item.body).encode(), item.content_type or "text/plain"
        headers.setdefault("Content-Type", ctype)
        return web.Response(status=item.status, body=body, headers=headers)

    def _completion(
        self, item: TextReply | ToolCallsReply, request: dict[str, Any], body_text: str
    ) -> dict[str, Any]:
        self._counter += 1
        message: dict[str, Any]
        if isinstance(item, TextReply):
            message = {"role": "assistant", "content": item.content, "refusal": None}
            finish_reason = item.finish_reason
            reply_chars = len(item.content)
        else:
            calls = [
                {
                    "id": c.id or f"call_{uuid.uuid4().hex[:24]}",
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in item.calls
            ]
            message = {"role": "assistant", "content": item.content, "refusal": None, "tool_calls": calls}
            finish_reason = "tool_calls"
            reply_chars = len(item.content or "") + sum(len(c.name) + len(c.arguments) for c in item.calls)
        if item.usage is not None:
            prompt_tokens, completion_tokens = item.usage
        else:
            prompt_tokens, completion_tokens = max(1, len(body_text) // 4), max(1, reply_chars // 4)
        return {
            "id": f"chatcmpl-fake{self._counter:06d}{uuid.uuid4().hex[:8]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model") or "unknown",
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
