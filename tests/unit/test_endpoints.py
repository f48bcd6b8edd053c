import pytest

from inquest.domain.endpoints import InvalidURL, resolve, wire_model_name


def test_base_url():
    e = resolve("https://llm.example.com/v1/")
    assert (e.base_url, e.chat_url, e.models_url, e.full_endpoint) == (
        "https://llm.example.com/v1", "https://llm.example.com/v1/chat/completions",
        "https://llm.example.com/v1/models", False)


def test_full_chat_completions_url():
    e = resolve("http://10.0.0.5:8080/v1/chat/completions")
    assert e.base_url == "http://10.0.0.5:8080/v1" and e.full_endpoint
    assert e.models_url == "http://10.0.0.5:8080/v1/models"


def test_gateway_custom_chat_path():
    e = resolve("https://gw.example.com/llm/team-a/chat")
    assert e.chat_url == "https://gw.example.com/llm/team-a/chat" and e.full_endpoint
    assert e.models_url == "https://gw.example.com/llm/team-a/models"


@pytest.mark.parametrize("url", ["ftp://x/v1", "http://", "http://:80/v1", "http://h:99999/v1",
                                 "https://h/v1?x=1", "not a url"])
def test_invalid_urls(url):
    with pytest.raises(InvalidURL):
        resolve(url)


def test_model_prefix_is_stripped():
    assert wire_model_name("openai/qwen2.5") == "qwen2.5"
    assert wire_model_name("qwen2.5") == "qwen2.5"
