"""Chat completions through the real openai SDK: non-stream, stream, usage chunk."""

from __future__ import annotations

import openai
import pytest

from helpers import CHAT_MODEL, MESSAGES, read_sse


@pytest.fixture(scope="module")
def reference(client: openai.OpenAI):
    """The non-stream answer to MESSAGES (the mock is deterministic)."""
    return client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)


def stream_chunks(client: openai.OpenAI, **kw):
    stream = client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, stream=True, **kw)
    return list(stream)


def content_of(chunks) -> str:
    return "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)


def test_chat_non_stream(reference):
    r = reference
    assert r.object == "chat.completion"
    assert r.id
    assert r.model  # the model that answered
    assert r.created > 0
    assert len(r.choices) == 1
    choice = r.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert r.usage is not None
    assert r.usage.prompt_tokens > 0
    assert r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_is_deterministic(client, reference):
    again = client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert again.choices[0].message.content == reference.choices[0].message.content
    assert again.usage.prompt_tokens == reference.usage.prompt_tokens
    assert again.usage.completion_tokens == reference.usage.completion_tokens


def test_chat_stream_matches_non_stream(client, reference):
    chunks = stream_chunks(client)
    assert len(chunks) >= 2
    for c in chunks:
        assert c.object == "chat.completion.chunk"
        assert c.id == chunks[0].id, "every chunk of one stream carries the same id"
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) >= 2, f"content arrived in {len(content_chunks)} chunk(s)"
    assert content_of(chunks) == reference.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [reference.choices[0].finish_reason], finishes
    roles = [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role]
    assert roles and set(roles) == {"assistant"}


def test_chat_stream_has_no_usage_unless_asked(client):
    chunks = stream_chunks(client)
    with_usage = [c for c in chunks if c.usage is not None]
    assert with_usage == [], "usage chunk sent without stream_options.include_usage"
    assert all(c.choices for c in chunks), "a chunk with empty choices and no usage"


def test_chat_stream_include_usage(client, reference):
    chunks = stream_chunks(client, stream_options={"include_usage": True})
    with_usage = [i for i, c in enumerate(chunks) if c.usage is not None]
    assert len(with_usage) == 1, f"expected exactly one usage chunk, got {len(with_usage)}"
    assert with_usage[0] == len(chunks) - 1, "the usage chunk must be the last one"
    last = chunks[-1]
    assert last.choices == []
    u = last.usage
    assert u.prompt_tokens > 0 and u.completion_tokens > 0
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    # same request, deterministic mock, real token counts: same usage as non-stream
    assert (u.prompt_tokens, u.completion_tokens) == (
        reference.usage.prompt_tokens, reference.usage.completion_tokens)
    assert content_of(chunks) == reference.choices[0].message.content


def test_x_request_id_on_chat(client):
    raw = client.chat.completions.with_raw_response.create(model=CHAT_MODEL, messages=MESSAGES)
    rid = raw.headers.get("x-request-id")
    assert rid, f"no x-request-id in {dict(raw.headers)}"
    parsed = raw.parse()
    assert parsed.choices[0].message.content
    raw2 = client.chat.completions.with_raw_response.create(model=CHAT_MODEL, messages=MESSAGES)
    assert raw2.headers.get("x-request-id") not in (None, rid), "x-request-id must be per request"


def test_x_request_id_on_stream(http, auth):
    s = read_sse(http, "/v1/chat/completions",
                 {"model": CHAT_MODEL, "messages": MESSAGES, "stream": True}, auth)
    assert s.status == 200, s.raw_error
    assert s.headers.get("x-request-id")
    assert s.headers.get("content-type", "").startswith("text/event-stream")


def test_stream_is_relayed_not_buffered(http, auth):
    """SPEC §3: chunks are relayed as the upstream sends them. With the mock pacing its
    events, they must reach the client spread over time, not all at once at the end."""
    delay_ms = 200
    body = {"model": CHAT_MODEL, "stream": True,
            "messages": [{"role": "user", "content": f"[[mock:chunk-delay={delay_ms}]] {MESSAGES[1]['content']}"}]}
    s = read_sse(http, "/v1/chat/completions", body, auth)
    assert s.status == 200, s.raw_error
    assert s.done and len(s.events) >= 3
    spread = s.arrival[-1] - s.arrival[0]
    assert spread >= delay_ms / 1000, (
        f"{len(s.events)} events arrived within {spread:.3f}s although the upstream paced "
        f"them {delay_ms} ms apart: the stream looks buffered")
