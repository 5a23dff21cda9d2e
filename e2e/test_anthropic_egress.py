"""OpenAI chat calls to an Anthropic-backed model (`claude-mock`: provider kind
"anthropic", upstream `mock-upstream`'s /v1/messages) through the real `openai` SDK, and
the raw bodies validated against OpenAI's schemas (SPEC §3: answers translated from another
provider fill every field the schema requires)."""

from __future__ import annotations

import json

import openai
import pytest

from helpers import CLAUDE_MODEL, MESSAGES, PROMPT, read_sse

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                           "units": {"type": "string"}},
            "required": ["city", "days"],
        },
    },
}
WEATHER_ARGS = {"city": "mock", "days": 1}  # mock-upstream fills the required properties
TOOL_MESSAGES = [{"role": "user", "content": "What will the weather be?"}]


@pytest.fixture(scope="module")
def reference(client: openai.OpenAI):
    return client.chat.completions.create(model=CLAUDE_MODEL, messages=MESSAGES)


def stream_chunks(client: openai.OpenAI, **kw):
    kw.setdefault("messages", MESSAGES)
    return list(client.chat.completions.create(model=CLAUDE_MODEL, stream=True, **kw))


def content_of(chunks) -> str:
    return "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)


def test_models_list_has_claude_mock(client):
    models = {m.id: m for m in client.models.list()}
    assert CLAUDE_MODEL in models, list(models)
    assert models[CLAUDE_MODEL].owned_by


# --- chat -------------------------------------------------------------------------------

def test_chat_non_stream(reference):
    r = reference
    assert r.object == "chat.completion"
    assert r.id and r.created > 0
    assert r.model == CLAUDE_MODEL, "the answer names the model the client asked for"
    [choice] = r.choices
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content.startswith("Mock reply to: "), choice.message.content
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"
    u = r.usage
    assert u.prompt_tokens > 0 and u.completion_tokens > 0
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_chat_same_as_messages_ingress(reference, anthropic_client):
    """The same conversation as an Anthropic Messages request to the same model: same
    text, same token counts (the system prompt travels as Anthropic's `system` both ways)."""
    m = anthropic_client.messages.create(model=CLAUDE_MODEL, max_tokens=4096,
                                         system=MESSAGES[0]["content"], messages=MESSAGES[1:])
    assert m.content[0].text == reference.choices[0].message.content
    assert (m.usage.input_tokens, m.usage.output_tokens) == (
        reference.usage.prompt_tokens, reference.usage.completion_tokens)


def test_chat_max_tokens_is_length(client):
    r = client.chat.completions.create(model=CLAUDE_MODEL, messages=MESSAGES, max_tokens=5)
    assert r.choices[0].finish_reason == "length"
    assert 0 < r.usage.completion_tokens <= 5


def test_chat_stream_matches_non_stream(client, reference):
    chunks = stream_chunks(client)
    assert len(chunks) >= 3
    for c in chunks:
        assert c.object == "chat.completion.chunk"
        assert c.id == chunks[0].id, "every chunk of one stream carries the same id"
        assert c.model == CLAUDE_MODEL
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) >= 2, f"content arrived in {len(content_chunks)} chunk(s)"
    assert content_of(chunks) == reference.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"], finishes
    roles = [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role]
    assert roles and set(roles) == {"assistant"}


def test_chat_stream_has_no_usage_unless_asked(client):
    chunks = stream_chunks(client)
    assert [c for c in chunks if c.usage is not None] == [], (
        "usage chunk sent without stream_options.include_usage")
    assert all(c.choices for c in chunks), "a chunk with empty choices and no usage"


def test_chat_stream_include_usage(client, reference):
    chunks = stream_chunks(client, stream_options={"include_usage": True})
    with_usage = [i for i, c in enumerate(chunks) if c.usage is not None]
    assert with_usage == [len(chunks) - 1], f"usage chunks at {with_usage} of {len(chunks)}"
    last = chunks[-1]
    assert last.choices == []
    u = last.usage
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert (u.prompt_tokens, u.completion_tokens) == (
        reference.usage.prompt_tokens, reference.usage.completion_tokens)
    assert content_of(chunks) == reference.choices[0].message.content


def test_chat_stream_is_relayed_not_buffered(http, auth):
    delay_ms = 100
    body = {"model": CLAUDE_MODEL, "stream": True, "messages": [
        {"role": "user", "content": f"[[mock:chunk-delay={delay_ms}]] {PROMPT}"}]}
    s = read_sse(http, "/v1/chat/completions", body, auth)
    assert s.status == 200, s.raw_error
    assert s.done and len(s.events) >= 5
    spread = s.arrival[-1] - s.arrival[0]
    assert spread >= 3 * delay_ms / 1000, (
        f"{len(s.events)} events within {spread:.3f}s although the upstream paced them "
        f"{delay_ms} ms apart: the stream looks buffered")


# --- tools ------------------------------------------------------------------------------

def test_chat_tool_call(client):
    r = client.chat.completions.create(model=CLAUDE_MODEL, messages=TOOL_MESSAGES,
                                       tools=[WEATHER_TOOL], tool_choice="required")
    [choice] = r.choices
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == WEATHER_ARGS
    assert r.usage.completion_tokens > 0


def test_chat_tool_call_named_function(client):
    other = {"type": "function", "function": {"name": "get_time", "parameters": {
        "type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}
    r = client.chat.completions.create(
        model=CLAUDE_MODEL, messages=TOOL_MESSAGES, tools=[WEATHER_TOOL, other],
        tool_choice={"type": "function", "function": {"name": "get_time"}})
    [call] = r.choices[0].message.tool_calls
    assert call.function.name == "get_time"
    assert json.loads(call.function.arguments) == {"zone": "mock"}


def test_chat_tool_call_stream(client):
    chunks = stream_chunks(client, messages=TOOL_MESSAGES, tools=[WEATHER_TOOL],
                           tool_choice="required")
    calls: dict[int, dict] = {}
    for c in chunks:
        if not c.choices:
            continue
        for tc in c.choices[0].delta.tool_calls or []:
            acc = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            if tc.id:
                assert acc["id"] in (None, tc.id)
                acc["id"] = tc.id
            if tc.function and tc.function.name:
                acc["name"] += tc.function.name
            if tc.function and tc.function.arguments:
                acc["arguments"] += tc.function.arguments
    assert list(calls) == [0], calls
    assert calls[0]["id"] and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == WEATHER_ARGS
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"], finishes


def test_chat_tool_result_round_trip(client):
    first = client.chat.completions.create(model=CLAUDE_MODEL, messages=TOOL_MESSAGES,
                                           tools=[WEATHER_TOOL], tool_choice="required")
    msg = first.choices[0].message
    [call] = msg.tool_calls
    history = [*TOOL_MESSAGES, msg.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 degrees."}]
    r = client.chat.completions.create(model=CLAUDE_MODEL, messages=history, tools=[WEATHER_TOOL])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content.startswith("Mock reply to: ")
    assert not r.choices[0].message.tool_calls


# --- errors -----------------------------------------------------------------------------

def test_upstream_500_is_502(client):
    with pytest.raises(openai.InternalServerError) as ei:
        client.chat.completions.create(model=CLAUDE_MODEL, messages=[
            {"role": "user", "content": "[[mock:500]] please fail"}])
    assert ei.value.status_code == 502
    err = ei.value.response.json()["error"]
    assert CLAUDE_MODEL in err["message"] and "claude" in err["message"], err
    assert "e2e-anthropic-upstream-key" not in ei.value.response.text, "upstream secret echoed"


def test_upstream_500_stream_is_502(client):
    with pytest.raises(openai.InternalServerError) as ei:
        stream_chunks(client, messages=[{"role": "user", "content": "[[mock:500]] please fail"}])
    assert ei.value.status_code == 502


def test_context_length_is_bad_request(client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model=CLAUDE_MODEL, messages=[
            {"role": "user", "content": "[[mock:context-length]] too long"}])
    assert ei.value.code == "context_length_exceeded", ei.value.response.text


def test_completions_not_supported(client):
    """The Anthropic provider serves chat only: a legacy completion is refused up front."""
    with pytest.raises(openai.BadRequestError) as ei:
        client.completions.create(model=CLAUDE_MODEL, prompt=PROMPT, max_tokens=16)
    assert ei.value.response.json()["error"]["param"] == "model", ei.value.response.text


# --- raw bodies against OpenAI's schemas -------------------------------------------------

def _json(r, status=200):
    assert r.status_code == status, f"{r.status_code}: {r.text}"
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    assert r.headers.get("x-request-id")
    return r.json()


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool_call"])
def test_chat_completion_body(http, auth, schemas, tools):
    req = {"model": CLAUDE_MODEL, "messages": MESSAGES}
    if tools:
        req.update(messages=TOOL_MESSAGES, tools=[WEATHER_TOOL], tool_choice="required")
    body = _json(http.post("/v1/chat/completions", headers=auth, json=req))
    schemas.validate("CreateChatCompletionResponse", body)
    assert body["choices"][0]["finish_reason"] == ("tool_calls" if tools else "stop")


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool_call"])
def test_chat_stream_events(http, auth, schemas, include_usage, tools):
    req = {"model": CLAUDE_MODEL, "messages": MESSAGES, "stream": True}
    if tools:
        req.update(messages=TOOL_MESSAGES, tools=[WEATHER_TOOL], tool_choice="required")
    if include_usage:
        req["stream_options"] = {"include_usage": True}
    s = read_sse(http, "/v1/chat/completions", req, auth)
    assert s.status == 200, s.raw_error
    assert s.headers.get("content-type", "").startswith("text/event-stream")
    assert s.done, "stream did not end with `data: [DONE]`"
    assert not s.after_done, f"data after [DONE]: {s.after_done}"
    assert len(s.events) >= 2
    for i, ev in enumerate(s.events):
        try:
            schemas.validate("CreateChatCompletionStreamResponse", ev)
        except AssertionError as e:
            raise AssertionError(f"stream event #{i}: {e}") from None
    usage_events = [ev for ev in s.events if ev.get("usage") is not None]
    assert len(usage_events) == (1 if include_usage else 0), usage_events


# (No 429 here: it would touch the session's only Anthropic upstream key, which a key
# pool may then rest for a while.)
@pytest.mark.parametrize("content, status", [
    ("[[mock:500]] fail", 502),
    ("[[mock:context-length]] too long", 400),
])
@pytest.mark.parametrize("stream", [False, True])
def test_error_bodies(http, auth, schemas, content, status, stream):
    r = http.post("/v1/chat/completions", headers=auth, json={
        "model": CLAUDE_MODEL, "stream": stream, "messages": [{"role": "user", "content": content}]})
    schemas.validate("ErrorResponse", _json(r, status))


def test_error_body_completions_not_supported(http, auth, schemas):
    r = http.post("/v1/completions", headers=auth,
                  json={"model": CLAUDE_MODEL, "prompt": PROMPT, "max_tokens": 16})
    schemas.validate("ErrorResponse", _json(r, 400))
