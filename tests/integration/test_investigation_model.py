"""The agent's model edge against the fake LLM over HTTP: classification of the server's answers and
deadline-aware retries through the real OpenAI client (built by the one factory, without retries)."""

from __future__ import annotations

import asyncio

import pytest

from inquest.agent.model import DeadlineReached, ModelError, OpenAIChatModel, complete_with_retries, parse_retry_after
from inquest.api.modelprovider import ModelParameters
from inquest.clients.llm import ProviderConnection
from inquest.domain.endpoints import resolve
from tests.support.fake_llm import fault, hang, malformed, rate_limited, text, tool_call

MESSAGES = [{"role": "system", "content": "You are Inquest"}, {"role": "user", "content": "q"}]
TOOLS = [{"type": "function", "function": {"name": "list_resources", "parameters": {
    "type": "object", "properties": {"kind": {"type": "string"}}, "required": ["kind"]}}}]


def model_for(llm, **kwargs) -> OpenAIChatModel:
    conn = ProviderConnection(name="p", namespace="default", endpoints=resolve(llm.base_url), model="test-model",
                              api_key=kwargs.pop("api_key", None), parameters=ModelParameters(contextWindow=4096),
                              **kwargs)
    return OpenAIChatModel(conn)


async def call(model: OpenAIChatModel, *, timeout: float = 5, retries: int = 2, request_timeout: float = 5):
    deadline = asyncio.get_running_loop().time() + timeout
    return await complete_with_retries(model, MESSAGES, TOOLS, max_tokens=512, deadline=deadline,
                                       request_timeout=request_timeout, max_retries=retries)


async def test_a_tool_call_reply_with_usage_and_the_request_as_sent(llm):
    llm.script(tool_call("list_resources", {"kind": "pods"}, usage=(321, 12)))
    model = model_for(llm)
    try:
        reply = await call(model)
    finally:
        await model.close()
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("list_resources", '{"kind": "pods"}')]
    assert (reply.prompt_tokens, reply.completion_tokens) == (321, 12)
    (sent,) = llm.chat_requests
    assert sent["model"] == "test-model" and sent["messages"] == MESSAGES and sent["tools"] == TOOLS
    assert sent["tool_choice"] == "auto" and sent["max_tokens"] == 512  # the window was declared


async def test_malformed_bodies_and_server_errors_are_retried(llm):
    llm.script(malformed(), fault(502), text("finally"))
    model = model_for(llm)
    try:
        reply = await call(model)
    finally:
        await model.close()
    assert reply.content == "finally" and len(llm.chat_requests) == 3


@pytest.mark.parametrize("status,kind", [(401, "auth"), (403, "auth"), (404, "not_found"), (400, "rejected")])
async def test_client_errors_fail_fast_with_the_servers_message(llm, status, kind):
    llm.script(fault(status, {"error": {"message": f"the server says {status}", "type": "x"}}))
    model = model_for(llm)
    try:
        with pytest.raises(ModelError) as caught:
            await call(model)
    finally:
        await model.close()
    assert caught.value.kind == kind and caught.value.status == status
    assert "the server says" in caught.value.message and len(llm.chat_requests) == 1


async def test_rate_limit_retry_after_is_read_from_the_response(llm):
    llm.script(rate_limited(0.2), text("ok"))
    model = model_for(llm)
    try:
        reply = await call(model)
    finally:
        await model.close()
    assert reply.content == "ok" and len(llm.chat_requests) == 2
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({}) is None


async def test_a_hanging_server_ends_at_the_deadline(llm):
    llm.script(hang(30), hang(30), hang(30))
    model = model_for(llm)
    try:
        with pytest.raises(DeadlineReached):
            await call(model, timeout=1.5, request_timeout=0.5)
    finally:
        await model.close()
    assert 1 <= len(llm.chat_requests) <= 3
