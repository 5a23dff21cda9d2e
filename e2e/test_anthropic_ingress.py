"""`POST /v1/messages` (Anthropic's Messages API as an ingress) through the real `anthropic`
SDK, to an OpenAI-backed model (`mock-gpt`: translated to OpenAI chat and back) and to an
Anthropic-backed one (`claude-mock`: translated to OpenAI chat, then by the provider
adapter to Anthropic Messages for `mock-upstream`, and back both ways)."""

from __future__ import annotations

import anthropic
import pytest

from helpers import CHAT_MODEL, CLAUDE_MODEL, MESSAGES, PROMPT, make_anthropic_client, read_named_sse

MODELS = [CHAT_MODEL, CLAUDE_MODEL]
SYSTEM = MESSAGES[0]["content"]
USER = [{"role": "user", "content": PROMPT}]
MAX_TOKENS = 256
BAD_KEY = "tg-live-" + "Zz9" * 12  # well-formed, unknown

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather forecast for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                       "units": {"type": "string"}},
        "required": ["city", "days"],
    },
}
# mock-upstream (both halves) fills each required property: string "mock", integer 1
WEATHER_INPUT = {"city": "mock", "days": 1}


def create(client: anthropic.Anthropic, model: str, **kw):
    kw.setdefault("messages", USER)
    return client.messages.create(model=model, max_tokens=kw.pop("max_tokens", MAX_TOKENS),
                                  system=SYSTEM, **kw)


@pytest.fixture(scope="module")
def reference(anthropic_client):
    """The non-stream answer of each model to SYSTEM + USER (the mock is deterministic)."""
    return {m: create(anthropic_client, m) for m in MODELS}


def text_of(message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


# --- plain text ---------------------------------------------------------------------------

@pytest.mark.parametrize("model", MODELS)
def test_messages_non_stream(reference, model):
    m = reference[model]
    assert m.type == "message"
    assert m.id
    assert m.role == "assistant"
    assert m.model == model, "the answer names the model the client asked for"
    assert [b.type for b in m.content] == ["text"], m.content
    assert m.content[0].text.startswith("Mock reply to: "), m.content[0].text
    assert m.stop_reason == "end_turn"
    assert m.stop_sequence is None
    assert m.usage.input_tokens > 0
    assert m.usage.output_tokens > 0


def test_messages_same_text_as_chat_completions(reference, client):
    """Through /v1/messages or /v1/chat/completions, mock-gpt answers the same thing: the
    translation keeps the system prompt, the text and the token counts."""
    chat = client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES,
                                          max_tokens=MAX_TOKENS)
    m = reference[CHAT_MODEL]
    assert text_of(m) == chat.choices[0].message.content
    assert (m.usage.input_tokens, m.usage.output_tokens) == (
        chat.usage.prompt_tokens, chat.usage.completion_tokens)


@pytest.mark.parametrize("model", MODELS)
def test_messages_stream_matches_non_stream(anthropic_client, reference, model):
    ref = reference[model]
    with anthropic_client.messages.stream(model=model, max_tokens=MAX_TOKENS, system=SYSTEM,
                                          messages=USER) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(deltas) >= 2, f"the text arrived in {len(deltas)} delta(s)"
    assert "".join(deltas) == text_of(ref)
    assert final.model == model
    assert [b.type for b in final.content] == ["text"]
    assert text_of(final) == text_of(ref)
    assert final.stop_reason == ref.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (
        ref.usage.input_tokens, ref.usage.output_tokens), "stream usage != non-stream usage"


@pytest.mark.parametrize("model", MODELS)
def test_messages_stream_event_order(http, api_key, model):
    """The raw stream: every event's `event:` name is its `type`, in Messages order
    (message_start, content blocks start/delta/stop, message_delta, message_stop)."""
    s = read_named_sse(http, "/v1/messages",
                       {"model": model, "max_tokens": MAX_TOKENS, "stream": True,
                        "system": SYSTEM, "messages": USER},
                       {"x-api-key": api_key, "anthropic-version": "2023-06-01"})
    assert s.status == 200, s.raw_error
    assert s.headers.get("content-type", "").startswith("text/event-stream")
    assert s.headers.get("x-request-id")
    for name, ev in s.events:
        assert name == ev.get("type"), f"event: {name} carries a {ev.get('type')} payload"
    types = [t for t, _ in s.events if t != "ping"]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"], types
    blocks = types[1:-2]
    assert blocks[0] == "content_block_start" and blocks[-1] == "content_block_stop", types
    assert set(blocks) == {"content_block_start", "content_block_delta", "content_block_stop"}
    assert blocks.count("content_block_start") == blocks.count("content_block_stop") == 1
    start = s.events[0][1]["message"]
    assert start["role"] == "assistant" and start["content"] == [] and start["model"] == model
    delta = [ev for t, ev in s.events if t == "message_delta"][0]
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] > 0


@pytest.mark.parametrize("model", MODELS)
def test_messages_stream_is_relayed_not_buffered(http, api_key, model):
    """The upstream paces its events (`[[mock:chunk-delay]]`): the translated events must
    reach the client spread over time too."""
    delay_ms = 100
    s = read_named_sse(http, "/v1/messages",
                       {"model": model, "max_tokens": MAX_TOKENS, "stream": True, "messages": [
                           {"role": "user", "content": f"[[mock:chunk-delay={delay_ms}]] {PROMPT}"}]},
                       {"x-api-key": api_key, "anthropic-version": "2023-06-01"})
    assert s.status == 200, s.raw_error
    assert len(s.events) >= 5
    spread = s.arrival[-1] - s.arrival[0]
    assert spread >= 3 * delay_ms / 1000, (
        f"{len(s.events)} events within {spread:.3f}s although the upstream paced them "
        f"{delay_ms} ms apart: the stream looks buffered")


@pytest.mark.parametrize("model", MODELS)
def test_messages_max_tokens_cut(anthropic_client, model):
    m = create(anthropic_client, model, max_tokens=5)
    assert m.stop_reason == "max_tokens"
    assert 0 < m.usage.output_tokens <= 5
    assert text_of(m)


def test_messages_bearer_auth(gateway, api_key):
    """The gateway's key as `Authorization: Bearer` (the SDK's `auth_token`) works too."""
    c = anthropic.Anthropic(auth_token=api_key, api_key=None, base_url=gateway.base_url,
                            max_retries=0, timeout=60)
    try:
        m = c.messages.create(model=CHAT_MODEL, max_tokens=MAX_TOKENS, messages=USER)
    finally:
        c.close()
    assert text_of(m)


def test_messages_x_request_id(anthropic_client):
    raw = anthropic_client.messages.with_raw_response.create(
        model=CHAT_MODEL, max_tokens=MAX_TOKENS, messages=USER)
    assert raw.headers.get("x-request-id")
    assert text_of(raw.parse())


# --- tools --------------------------------------------------------------------------------

def tool_use_blocks(message):
    return [b for b in message.content if b.type == "tool_use"]


@pytest.mark.parametrize("model", MODELS)
def test_messages_tool_use(anthropic_client, model):
    m = create(anthropic_client, model, tools=[WEATHER_TOOL], tool_choice={"type": "any"},
               messages=[{"role": "user", "content": "What will the weather be?"}])
    assert m.stop_reason == "tool_use"
    uses = tool_use_blocks(m)
    assert len(uses) == 1, m.content
    use = uses[0]
    assert use.id
    assert use.name == "get_weather"
    assert isinstance(use.input, dict)
    assert use.input == WEATHER_INPUT
    assert m.usage.output_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_messages_tool_use_named_tool(anthropic_client, model):
    other = {**WEATHER_TOOL, "name": "get_time",
             "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}},
                              "required": ["zone"]}}
    m = create(anthropic_client, model, tools=[WEATHER_TOOL, other],
               tool_choice={"type": "tool", "name": "get_time"})
    assert m.stop_reason == "tool_use"
    [use] = tool_use_blocks(m)
    assert (use.name, use.input) == ("get_time", {"zone": "mock"})


@pytest.mark.parametrize("model", MODELS)
def test_messages_tool_use_stream(anthropic_client, model):
    """The tool call streamed: the SDK accumulates the input_json_delta pieces into the
    same input as non-stream."""
    with anthropic_client.messages.stream(
            model=model, max_tokens=MAX_TOKENS, tools=[WEATHER_TOOL],
            tool_choice={"type": "any"},
            messages=[{"role": "user", "content": "What will the weather be?"}]) as stream:
        events = list(stream)
        final = stream.get_final_message()
    json_deltas = [e for e in events
                   if e.type == "content_block_delta" and e.delta.type == "input_json_delta"]
    assert json_deltas, [e.type for e in events]
    assert final.stop_reason == "tool_use"
    [use] = tool_use_blocks(final)
    assert use.id and use.name == "get_weather"
    assert use.input == WEATHER_INPUT
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_messages_tool_result_round_trip(anthropic_client, model):
    """The tool's result goes back as a `tool_result` block; the model answers in text."""
    first = create(anthropic_client, model, tools=[WEATHER_TOOL], tool_choice={"type": "any"},
                   messages=[{"role": "user", "content": "What will the weather be?"}])
    [use] = tool_use_blocks(first)
    history = [
        {"role": "user", "content": "What will the weather be?"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": use.id, "content": "Sunny, 21 degrees."}]},
    ]
    m = create(anthropic_client, model, tools=[WEATHER_TOOL], messages=history)
    assert m.stop_reason == "end_turn", m
    assert text_of(m).startswith("Mock reply to: "), m.content
    assert not tool_use_blocks(m)


# --- errors, as the SDK's exception classes --------------------------------------------------

def _assert_anthropic_error(e: anthropic.APIStatusError, status: int, type_: str) -> dict:
    assert e.status_code == status, f"status {e.status_code}, body {e.response.text}"
    body = e.response.json()
    assert body.get("type") == "error", body
    err = body.get("error")
    assert isinstance(err, dict) and err.get("type") == type_, body
    assert isinstance(err.get("message"), str) and err["message"], body
    assert e.response.headers.get("content-type", "").startswith("application/json")
    assert e.response.headers.get("x-request-id"), "error responses carry x-request-id too"
    return err


def test_messages_bad_key_is_authentication_error(gateway):
    bad = make_anthropic_client(gateway, BAD_KEY)
    try:
        with pytest.raises(anthropic.AuthenticationError) as ei:
            bad.messages.create(model=CHAT_MODEL, max_tokens=MAX_TOKENS, messages=USER)
    finally:
        bad.close()
    _assert_anthropic_error(ei.value, 401, "authentication_error")
    assert BAD_KEY not in ei.value.response.text, "the presented key is echoed in the error"


def test_messages_missing_key_is_authentication_error(http):
    r = http.post("/v1/messages", headers={"anthropic-version": "2023-06-01"},
                  json={"model": CHAT_MODEL, "max_tokens": MAX_TOKENS, "messages": USER})
    assert r.status_code == 401, r.text
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "authentication_error"


def test_messages_unknown_model_is_not_found(anthropic_client):
    with pytest.raises(anthropic.NotFoundError) as ei:
        anthropic_client.messages.create(model="no-such-model-e2e", max_tokens=MAX_TOKENS,
                                         messages=USER)
    err = _assert_anthropic_error(ei.value, 404, "not_found_error")
    assert "no-such-model-e2e" in err["message"], err


def test_messages_unknown_model_stream_is_not_found(anthropic_client):
    with pytest.raises(anthropic.NotFoundError):
        with anthropic_client.messages.stream(model="no-such-model-e2e", max_tokens=MAX_TOKENS,
                                              messages=USER) as stream:
            list(stream)


@pytest.mark.parametrize("model", MODELS)
def test_messages_missing_max_tokens_is_bad_request(anthropic_client, model):
    # the SDK insists on the argument; `omit` leaves it out of the body
    with pytest.raises(anthropic.BadRequestError) as ei:
        anthropic_client.messages.create(model=model, max_tokens=anthropic.omit, messages=USER)
    assert "max_tokens" not in ei.value.request.content.decode(), "the SDK sent max_tokens"
    err = _assert_anthropic_error(ei.value, 400, "invalid_request_error")
    assert "max_tokens" in err["message"], err


def test_messages_system_role_in_messages_is_bad_request(anthropic_client):
    with pytest.raises(anthropic.BadRequestError) as ei:
        anthropic_client.messages.create(
            model=CHAT_MODEL, max_tokens=MAX_TOKENS,
            messages=[{"role": "system", "content": "x"}, *USER])  # type: ignore[list-item]
    _assert_anthropic_error(ei.value, 400, "invalid_request_error")


@pytest.mark.parametrize("model", MODELS)
def test_messages_upstream_500_is_internal_server_error(anthropic_client, model):
    with pytest.raises(anthropic.InternalServerError) as ei:
        anthropic_client.messages.create(model=model, max_tokens=MAX_TOKENS, messages=[
            {"role": "user", "content": "[[mock:500]] please fail"}])
    err = _assert_anthropic_error(ei.value, 502, "api_error")
    assert model in err["message"], err  # SPEC §3: names the models tried


@pytest.mark.parametrize("model", MODELS)
def test_messages_upstream_500_stream_is_internal_server_error(anthropic_client, model):
    with pytest.raises(anthropic.InternalServerError) as ei:
        with anthropic_client.messages.stream(model=model, max_tokens=MAX_TOKENS, messages=[
                {"role": "user", "content": "[[mock:500]] please fail"}]) as stream:
            list(stream)
    assert ei.value.status_code == 502


def test_messages_context_length_is_bad_request(anthropic_client):
    """An upstream 400 (Anthropic's context-length error, through the adapter and back)
    reaches the client as a 400 invalid_request_error."""
    with pytest.raises(anthropic.BadRequestError) as ei:
        anthropic_client.messages.create(model=CLAUDE_MODEL, max_tokens=MAX_TOKENS, messages=[
            {"role": "user", "content": "[[mock:context-length]] too long"}])
    err = _assert_anthropic_error(ei.value, 400, "invalid_request_error")
    assert "too long" in err["message"], err
