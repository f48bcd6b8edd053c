"""Endpoint URLs: a base URL or a full chat-completions URL, and the model name to send."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

CHAT_SUFFIX = "/chat/completions"


class InvalidURL(ValueError):
    """The URL cannot be used; the message says why."""


@dataclass(frozen=True)
class Endpoints:
    base_url: str  # what the OpenAI client is given
    chat_url: str
    models_url: str
    full_endpoint: bool  # the user gave the chat URL itself


def resolve(url: str) -> Endpoints:
    """Accept ``https://host/v1`` or ``https://host/v1/chat/completions`` (or a gateway's chat path)."""
    raw = (url or "").strip()
    try:
        parts = urlsplit(raw)
    except ValueError as exc:  # "http://[::1" (an unclosed IPv6 bracket), "http://[abc]/"
        raise InvalidURL(f"baseURL {raw!r} cannot be parsed: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidURL(f"baseURL {raw!r} must start with http:// or https://")
    if not parts.hostname:
        raise InvalidURL(f"baseURL {raw!r} has no host")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise InvalidURL(f"baseURL {raw!r} has an invalid port") from None
    if parts.query or parts.fragment:
        raise InvalidURL(f"baseURL {raw!r} must not carry a query string or fragment")
    path = parts.path.rstrip("/")
    if path.endswith(CHAT_SUFFIX):
        base = path[: -len(CHAT_SUFFIX)]
        return Endpoints(
            base_url=urlunsplit((parts.scheme, parts.netloc, base, "", "")),
            chat_url=urlunsplit((parts.scheme, parts.netloc, path, "", "")),
            models_url=urlunsplit((parts.scheme, parts.netloc, base + "/models", "", "")),
            full_endpoint=True,
        )
    last = path.rsplit("/", 1)[-1]
    if last in ("chat", "completions", "generate") or last.endswith("-chat"):
        # A gateway's custom chat path: models are looked up beside it.
        parent = path.rsplit("/", 1)[0]
        return Endpoints(
            base_url=urlunsplit((parts.scheme, parts.netloc, path, "", "")),
            chat_url=urlunsplit((parts.scheme, parts.netloc, path, "", "")),
            models_url=urlunsplit((parts.scheme, parts.netloc, parent + "/models", "", "")),
            full_endpoint=True,
        )
    return Endpoints(
        base_url=urlunsplit((parts.scheme, parts.netloc, path, "", "")),
        chat_url=urlunsplit((parts.scheme, parts.netloc, path + CHAT_SUFFIX, "", "")),
        models_url=urlunsplit((parts.scheme, parts.netloc, path + "/models", "", "")),
        full_endpoint=False,
    )


def wire_model_name(model: str) -> str:
    """HolmesGPT and LiteLLM write ``openai/NAME``; the server itself knows ``NAME``."""
    return model[len("openai/"):] if model.startswith("openai/") else model
