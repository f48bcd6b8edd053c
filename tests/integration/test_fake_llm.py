"""The fake LLM and test PKI, exercised with the real ``openai.AsyncOpenAI`` client."""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from cryptography import x509

from tests.support.certs import TestPKI, client_ssl_context, make_ca, make_leaf
from tests.support.fake_llm import (
    FakeLLM,
    fault,
    hang,
    ignore_tools,
    malformed,
    rate_limited,
    sample_arguments,
    text,
    tool_call,
    tool_calls,
)

# Fixtures (pki, llm, llm_tls, llm_factory) come from tests.support.llm_fixtures via tests/conftest.py.

USER = [{"role": "user", "content": "Why is my pod crashing?"}]
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "kubectl_get",
            "description": "Get a Kubernetes object",
            "parameters": {
                "type": "object",
                "properties": {
                    "kind": {"type": "string"},
                    "namespace": {"type": "string"},
                    "limit": {"type": "integer"},
                    "all": {"type": "boolean"},
                    "labels": {"type": "array", "items": {"type": "string"}},
                    "opts": {
                        "type": "object",
                        "properties": {"tail": {"type": "integer"}},
                        "required": ["tail"],
                    },
                    "mode": {"enum": ["fast", "slow"]},
                },
                "required": ["kind", "limit", "all", "labels", "opts", "mode"],
            },
        },
    },
    {"type": "function", "function": {"name": "second_tool", "parameters": {"type": "object"}}},
]


@asynccontextmanager
async def client(
    llm: FakeLLM, *, api_key: str = "sk-test", ssl_ctx: ssl.SSLContext | None = None, **kwargs: Any
) -> AsyncIterator[openai.AsyncOpenAI]:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("timeout", 5.0)
    http_client = openai.DefaultAsyncHttpxClient(verify=ssl_ctx) if ssl_ctx is not None else None
    async with openai.AsyncOpenAI(
        base_url=llm.base_url, api_key=api_key, http_client=http_client, **kwargs
    ) as c:
        yield c


async def chat(c: openai.AsyncOpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("model", "test-model")
    kwargs.setdefault("messages", USER)
    return await c.chat.completions.create(**kwargs)


# --------------------------------------------------------------------------- basic replies


async def test_text_reply(llm: FakeLLM) -> None:
    llm.script(text("The pod is OOMKilled."))
    async with client(llm) as c:
        resp = await chat(c)
    assert resp.object == "chat.completion"
    assert resp.model == "test-model"
    choice = resp.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "The pod is OOMKilled."
    assert choice.message.tool_calls is None
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == len(llm.requests[0].body_text) // 4
    assert resp.usage.completion_tokens == len("The pod is OOMKilled.") // 4
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    assert llm.remaining == 0


async def test_explicit_usage_and_fifo_order(llm: FakeLLM) -> None:
    llm.script(text("one", usage=(100, 7)), text("two"))
    async with client(llm) as c:
        first = await chat(c)
        second = await chat(c)
    assert first.choices[0].message.content == "one"
    assert first.usage is not None and (first.usage.prompt_tokens, first.usage.completion_tokens) == (100, 7)
    assert first.usage.total_tokens == 107
    assert second.choices[0].message.content == "two"
    assert first.id != second.id


async def test_tool_call_reply_parsed(llm: FakeLLM) -> None:
    llm.script(tool_call("kubectl_get", {"kind": "Pod", "namespace": "default"}, id="call_1"))
    async with client(llm) as c:
        resp = await chat(c, tools=TOOLS)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].id == "call_1"
    assert calls[0].type == "function"
    assert calls[0].function.name == "kubectl_get"
    assert json.loads(calls[0].function.arguments) == {"kind": "Pod", "namespace": "default"}


async def test_several_tool_calls_and_raw_arguments(llm: FakeLLM) -> None:
    llm.script(tool_calls([("a", {"x": 1}), ("b", '{"broken": '), ("c", {}, "call_c")]))
    async with client(llm) as c:
        resp = await chat(c, tools=TOOLS)
    calls = resp.choices[0].message.tool_calls
    assert calls is not None
    assert [tc.function.name for tc in calls] == ["a", "b", "c"]
    assert calls[1].function.arguments == '{"broken": '  # raw strings are sent verbatim
    assert calls[2].id == "call_c"
    assert calls[0].id.startswith("call_") and calls[0].id != calls[1].id


async def test_ignore_tools_item(llm: FakeLLM) -> None:
    llm.script(ignore_tools("I don't do tools"))
    async with client(llm) as c:
        resp = await chat(c, tools=TOOLS)
    assert resp.choices[0].finish_reason == "stop"
    assert resp.choices[0].message.content == "I don't do tools"
    assert resp.choices[0].message.tool_calls is None


# --------------------------------------------------------------------------- default responders


async def test_default_auto_tool_probe(llm: FakeLLM) -> None:
    async with client(llm) as c:
        probe = await chat(c, tools=TOOLS)
        plain = await chat(c)
        forced = await chat(
            c, tools=TOOLS, tool_choice={"type": "function", "function": {"name": "second_tool"}}
        )
        none = await chat(c, tools=TOOLS, tool_choice="none")
        call = probe.choices[0].message.tool_calls[0]
        after_tool = await chat(
            c,
            tools=TOOLS,
            messages=[
                *USER,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [call.model_dump(include={"id", "type", "function"})],
                },
                {"role": "tool", "tool_call_id": call.id, "content": "pod list"},
            ],
        )
    assert call.function.name == "kubectl_get"
    assert json.loads(call.function.arguments) == {
        "kind": "sample",
        "limit": 1,
        "all": True,
        "labels": [],
        "opts": {"tail": 1},
        "mode": "fast",
    }
    assert plain.choices[0].message.content == "ok"
    assert forced.choices[0].message.tool_calls[0].function.name == "second_tool"
    assert json.loads(forced.choices[0].message.tool_calls[0].function.arguments) == {}
    assert none.choices[0].message.content == "ok"
    assert after_tool.choices[0].message.content == "ok"


async def test_ignores_tools_flag_and_custom_default(llm_factory: Any) -> None:
    deaf = await llm_factory(ignores_tools=True)
    async with client(deaf) as c:
        resp = await chat(c, tools=TOOLS)
    assert resp.choices[0].message.tool_calls is None
    assert resp.choices[0].message.content == "ok"

    custom = await llm_factory()
    custom.default = lambda req: text(f"echo {len(req['messages'])}")
    custom.script(text("scripted first"))
    async with client(custom) as c:
        first = await chat(c)
        second = await chat(c)
    assert first.choices[0].message.content == "scripted first"
    assert second.choices[0].message.content == "echo 1"


async def test_callable_script_entry(llm: FakeLLM) -> None:
    llm.script(lambda req: text(req["messages"][-1]["content"].upper()))
    async with client(llm) as c:
        resp = await chat(c)
    assert resp.choices[0].message.content == "WHY IS MY POD CRASHING?"


def test_sample_arguments() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": ["null", "string"]},
            "b": {"anyOf": [{"type": "null"}, {"type": "number"}]},
            "c": {"type": "string", "default": "dflt"},
            "d": {"type": "array", "items": {"type": "integer"}, "minItems": 2},
            "e": {"type": "string"},
        },
        "required": ["a", "b", "c", "d"],
    }
    assert sample_arguments(schema) == {"a": "sample", "b": 1, "c": "dflt", "d": [1, 1]}
    assert sample_arguments(None) == {}
    assert sample_arguments({"type": "object"}) == {}


# --------------------------------------------------------------------------- auth and models


async def test_api_key_required_and_rotation(llm_factory: Any) -> None:
    llm = await llm_factory(api_key="key-1")
    async with client(llm, api_key="wrong") as c:
        with pytest.raises(openai.AuthenticationError) as exc_info:
            await chat(c)
        assert exc_info.value.status_code == 401
        assert exc_info.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            await c.models.list()
    async with client(llm, api_key="key-1") as c:
        assert (await chat(c)).choices[0].message.content == "ok"
        llm.api_key = "key-2"
        with pytest.raises(openai.AuthenticationError):
            await chat(c)
    async with client(llm, api_key="key-2") as c:
        assert (await chat(c)).choices[0].message.content == "ok"
    assert [r.status for r in llm.requests] == [401, 401, 200, 401, 200]
    assert llm.requests[2].header("Authorization") == "Bearer key-1"


async def test_models_list(llm_factory: Any) -> None:
    llm = await llm_factory(models=("m1", "m2"))
    async with client(llm) as c:
        page = await c.models.list()
    assert [m.id for m in page.data] == ["m1", "m2"]
    assert all(m.owned_by == "fake" and m.object == "model" for m in page.data)


async def test_unknown_model_is_404_and_does_not_consume_script(llm: FakeLLM) -> None:
    llm.script(text("kept"))
    async with client(llm) as c:
        with pytest.raises(openai.NotFoundError) as exc_info:
            await chat(c, model="gpt-nope")
        assert exc_info.value.code == "model_not_found"
        assert "The model `gpt-nope` does not exist" in exc_info.value.message
        assert llm.remaining == 1
        assert (await chat(c)).choices[0].message.content == "kept"


async def test_any_model_when_models_is_none(llm_factory: Any) -> None:
    llm = await llm_factory(models=None)
    async with client(llm) as c:
        resp = await chat(c, model="whatever")
    assert resp.model == "whatever"


async def test_models_endpoint_disabled(llm_factory: Any) -> None:
    llm = await llm_factory(models_endpoint=False)
    async with client(llm) as c:
        with pytest.raises(openai.NotFoundError):
            await c.models.list()
        assert (await chat(c)).choices[0].message.content == "ok"


async def test_unknown_route_and_stream_rejected(llm: FakeLLM) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(llm.url + "/v1/nope") as r:
            assert r.status == 404
            assert await r.json() == {"error": {"message": "Not Found"}}
        async with s.get(llm.url + "/models") as r:  # outside the prefix
            assert r.status == 404
    async with client(llm) as c:
        with pytest.raises(openai.BadRequestError):
            await chat(c, stream=True)
    assert [r.status for r in llm.requests] == [404, 404, 400]


async def test_empty_prefix(llm_factory: Any) -> None:
    llm = await llm_factory(prefix="")
    assert llm.base_url == llm.url == f"http://127.0.0.1:{llm.port}"
    async with client(llm) as c:
        assert (await chat(c)).choices[0].message.content == "ok"
    assert llm.requests[0].path == "/chat/completions"


# --------------------------------------------------------------------------- faults


async def test_rate_limited_carries_retry_after(llm: FakeLLM) -> None:
    llm.script(rate_limited(retry_after=7))
    async with client(llm) as c:
        with pytest.raises(openai.RateLimitError) as exc_info:
            await chat(c)
    assert exc_info.value.status_code == 429
    assert exc_info.value.response.headers["retry-after"] == "7"
    assert exc_info.value.code == "rate_limit_exceeded"


async def test_rate_limited_then_retry_succeeds(llm: FakeLLM) -> None:
    llm.script(rate_limited(retry_after=0.01), text("after retry"))
    async with client(llm, max_retries=1) as c:
        resp = await chat(c)
    assert resp.choices[0].message.content == "after retry"
    assert [r.status for r in llm.requests] == [429, 200]


async def test_server_error(llm: FakeLLM) -> None:
    llm.script(fault(500), fault(503, "<html>bad gateway</html>", {"X-Fake": "1"}, content_type="text/html"))
    async with client(llm) as c:
        with pytest.raises(openai.InternalServerError) as first:
            await chat(c)
        with pytest.raises(openai.InternalServerError) as second:
            await chat(c)
    assert first.value.status_code == 500
    assert second.value.status_code == 503
    assert second.value.response.headers["x-fake"] == "1"
    assert second.value.response.text == "<html>bad gateway</html>"


async def test_hang_past_client_timeout(llm: FakeLLM) -> None:
    llm.script(hang(30))
    async with client(llm, timeout=0.5) as c:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await chat(c)
        assert time.monotonic() - started < 5
    started = time.monotonic()
    await llm.stop()  # releases the still-sleeping handler promptly
    assert time.monotonic() - started < 1


async def test_hang_shorter_than_timeout_then_answers(llm: FakeLLM) -> None:
    llm.script(hang(0.05, then=text("slow answer")))
    async with client(llm) as c:
        resp = await chat(c)
    assert resp.choices[0].message.content == "slow answer"


async def test_malformed_json_raises_json_decode_error(llm: FakeLLM) -> None:
    # openai 3.x does NOT wrap a non-JSON body labelled application/json: json.JSONDecodeError escapes.
    llm.script(malformed())
    async with client(llm) as c:
        with pytest.raises(json.JSONDecodeError):
            await chat(c)


async def test_malformed_non_json_content_type(llm: FakeLLM) -> None:
    # Labelled text/plain: the lenient client returns the raw str; strict validation raises.
    llm.script(
        malformed("garbage", content_type="text/plain"), malformed("garbage", content_type="text/plain")
    )
    async with client(llm) as c:
        assert await chat(c) == "garbage"
    async with client(llm, _strict_response_validation=True) as c:
        with pytest.raises(openai.APIResponseValidationError):
            await chat(c)


# --------------------------------------------------------------------------- TLS


async def test_https_with_trusted_ca(llm_tls: FakeLLM, pki: TestPKI) -> None:
    assert llm_tls.base_url.startswith("https://127.0.0.1:")
    ctx = ssl.create_default_context(cadata=pki.ca.cert_pem.decode())
    async with client(llm_tls, ssl_ctx=ctx) as c:
        assert (await chat(c)).choices[0].message.content == "ok"


async def test_https_untrusted_ca_fails(llm_tls: FakeLLM, pki: TestPKI) -> None:
    ctx = ssl.create_default_context(cadata=pki.other_ca.cert_pem.decode())
    async with client(llm_tls, ssl_ctx=ctx) as c:
        with pytest.raises(openai.APIConnectionError) as exc_info:
            await chat(c)
    assert not isinstance(exc_info.value, openai.APITimeoutError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(exc_info.value.__cause__)
    assert llm_tls.requests == []


@pytest.mark.parametrize("cert_name", ["expired_server", "wrong_host_server"])
async def test_https_bad_server_cert_fails(llm_factory: Any, pki: TestPKI, cert_name: str) -> None:
    llm = await llm_factory(tls=getattr(pki, cert_name))
    async with client(llm, ssl_ctx=client_ssl_context(pki.ca)) as c:
        with pytest.raises(openai.APIConnectionError) as exc_info:
            await chat(c)
    assert "CERTIFICATE_VERIFY_FAILED" in str(exc_info.value.__cause__)


async def test_mtls(llm_factory: Any, pki: TestPKI, tmp_path: Path) -> None:
    llm = await llm_factory(tls=pki.server, client_ca=pki.ca)
    async with client(llm, ssl_ctx=client_ssl_context(pki.ca)) as c:
        with pytest.raises(openai.APIConnectionError):
            await chat(c)
    async with client(llm, ssl_ctx=client_ssl_context(pki.ca, client=pki.other_client)) as c:
        with pytest.raises(openai.APIConnectionError):
            await chat(c)
    ctx = ssl.create_default_context(cadata=pki.ca.cert_pem.decode())
    cert_path, key_path = pki.client.write(tmp_path, "client")
    ctx.load_cert_chain(str(cert_path), str(key_path))
    async with client(llm, ssl_ctx=ctx) as c:
        assert (await chat(c)).choices[0].message.content == "ok"
    assert len(llm.requests) == 1


# --------------------------------------------------------------------------- recording & lifecycle


async def test_requests_recorded(llm_factory: Any) -> None:
    llm = await llm_factory(api_key="k")
    llm.script(fault(500), text("fine"))
    async with client(llm, api_key="k") as c:
        with pytest.raises(openai.InternalServerError):
            await chat(c, tools=TOOLS, temperature=0)
        await chat(c)
        await c.models.list()
    async with client(llm, api_key="bad") as c:
        with pytest.raises(openai.AuthenticationError):
            await chat(c)
    assert [(r.method, r.path, r.status) for r in llm.requests] == [
        ("POST", "/v1/chat/completions", 500),
        ("POST", "/v1/chat/completions", 200),
        ("GET", "/v1/models", 200),
        ("POST", "/v1/chat/completions", 401),
    ]
    first = llm.requests[0]
    assert first.json is not None and first.json["tools"] == TOOLS and first.json["temperature"] == 0
    assert json.loads(first.body_text) == first.json
    assert first.headers["content-type"] == "application/json"
    assert llm.requests[2].json is None and llm.requests[2].body_text == ""
    assert len(llm.chat_requests) == 3
    assert llm.chat_requests[1]["messages"] == USER


async def test_many_servers_start_fast() -> None:
    durations = []
    for _ in range(20):
        started = time.perf_counter()
        server = await FakeLLM().start()
        durations.append(time.perf_counter() - started)
        async with client(server) as c:
            assert (await chat(c)).choices[0].message.content == "ok"
        await server.stop()
        await server.stop()  # idempotent
    assert sorted(durations)[len(durations) // 2] < 0.05


# --------------------------------------------------------------------------- PKI


def test_pki_shapes(pki: TestPKI, tmp_path: Path) -> None:
    def is_ca(ck: Any) -> bool:
        return bool(ck.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)

    assert is_ca(pki.ca) and is_ca(pki.other_ca) and is_ca(pki.expired_ca) and is_ca(pki.not_yet_valid_ca)
    assert not is_ca(pki.server) and not is_ca(pki.client) and not is_ca(pki.non_ca)
    assert pki.non_ca.cert.issuer == pki.non_ca.cert.subject
    now = datetime.datetime.now(datetime.UTC)
    assert pki.expired_server.cert.not_valid_after_utc < now
    assert pki.expired_ca.cert.not_valid_after_utc < now
    assert pki.not_yet_valid_ca.cert.not_valid_before_utc > now
    assert pki.server.cert.issuer == pki.ca.cert.subject
    san = pki.wrong_host_server.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["wrong.example"]
    assert san.get_values_for_type(x509.IPAddress) == []
    eku = pki.client.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert base64.b64decode(pki.ca.b64_pem) == pki.ca.cert_pem
    assert pki.ca.cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert pki.ca.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    cert_path, key_path = pki.server.write(tmp_path)
    assert cert_path.read_bytes() == pki.server.cert_pem and key_path.read_bytes() == pki.server.key_pem
    assert cert_path.name == "localhost.crt"


def test_make_leaf_custom() -> None:
    ca = make_ca("Custom CA")
    leaf = make_leaf(ca, "svc", dns_names=("svc.ns.svc",), ip_addresses=("10.0.0.1", "::1"))
    san = leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["svc.ns.svc"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.1", "::1"]
    assert leaf.common_name == "svc"
    leaf.cert.verify_directly_issued_by(ca.cert)
