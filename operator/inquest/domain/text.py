"""Bounded text: every cut leaves a visible marker so neither a model nor a human mistakes a cut
text for the whole of it."""

from __future__ import annotations

CUT_MARKER = "[... {n} chars cut ...]"
END_MARKER = " [... cut]"


def cut_middle(text: str, limit: int) -> str:
    """Keep the head and the tail of ``text`` within ``limit`` characters (marker included).

    The head gets a little more than the tail: a resource's identity sits at the top, while a
    log's most recent (usually most relevant) lines sit at the bottom. The marker says exactly how
    many characters are missing.
    """
    limit = max(0, limit)
    n = len(text)
    if n <= limit:
        return text
    reserved = len(CUT_MARKER.format(n=n)) + 2  # the marker can only get shorter; two line breaks
    keep = limit - reserved
    if keep <= 0:
        return CUT_MARKER.format(n=n)[:limit]
    head = (keep * 11) // 20
    tail = keep - head
    marker = CUT_MARKER.format(n=n - head - tail)
    return f"{text[:head]}\n{marker}\n{text[n - tail:] if tail else ''}"


def cut_end(text: str, limit: int) -> str:
    """Keep the beginning of ``text`` within ``limit`` characters, ending with a visible marker."""
    if len(text) <= limit:
        return text
    if limit <= len(END_MARKER):
        return text[:limit]
    return text[: limit - len(END_MARKER)].rstrip() + END_MARKER


def one_line(text: str) -> str:
    """Collapse whitespace (newlines included) into single spaces."""
    return " ".join(str(text).split())
