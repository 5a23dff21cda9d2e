"""Legacy completions, embeddings and the model list through the real openai SDK."""

from __future__ import annotations

import array
import base64
import math

from helpers import CHAT_MODEL, EMBED_MODEL, PROMPT


def test_completions(client):
    r = client.completions.create(model=CHAT_MODEL, prompt=PROMPT, max_tokens=64)
    assert r.object == "text_completion"
    assert r.id and r.created > 0 and r.model
    assert len(r.choices) == 1
    c = r.choices[0]
    assert c.index == 0
    assert c.text and c.text.strip()
    assert c.finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_completions_stream_matches_non_stream(client):
    full = client.completions.create(model=CHAT_MODEL, prompt=PROMPT, max_tokens=64)
    chunks = list(client.completions.create(model=CHAT_MODEL, prompt=PROMPT, max_tokens=64,
                                            stream=True))
    assert len(chunks) >= 2
    text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
    assert text == full.choices[0].text


def test_embeddings_float(client):
    r = client.embeddings.create(model=EMBED_MODEL, input="the quick brown fox",
                                 encoding_format="float")
    assert r.object == "list"
    assert r.model
    assert len(r.data) == 1
    e = r.data[0]
    assert e.object == "embedding" and e.index == 0
    assert isinstance(e.embedding, list) and len(e.embedding) > 0
    assert all(isinstance(x, float) and math.isfinite(x) for x in e.embedding)
    assert any(x != 0.0 for x in e.embedding)
    assert r.usage.prompt_tokens > 0
    assert r.usage.total_tokens >= r.usage.prompt_tokens


def test_embeddings_deterministic_and_batched(client):
    texts = ["the quick brown fox", "jumps over the lazy dog", "the quick brown fox"]
    one = client.embeddings.create(model=EMBED_MODEL, input=texts[0], encoding_format="float")
    r = client.embeddings.create(model=EMBED_MODEL, input=texts, encoding_format="float")
    assert [d.index for d in r.data] == [0, 1, 2]
    dims = {len(d.embedding) for d in r.data}
    assert dims == {len(one.data[0].embedding)}, f"vector lengths differ: {dims}"
    assert r.data[0].embedding == one.data[0].embedding, "same input, different vector"
    assert r.data[2].embedding == r.data[0].embedding
    assert r.data[1].embedding != r.data[0].embedding, "different inputs, same vector"
    again = client.embeddings.create(model=EMBED_MODEL, input=texts[0], encoding_format="float")
    assert again.data[0].embedding == one.data[0].embedding


def test_embeddings_sdk_default_encoding(client):
    """The SDK asks for base64 unless told otherwise; what it decodes must be the vector."""
    floats = client.embeddings.create(model=EMBED_MODEL, input="hello world",
                                      encoding_format="float").data[0].embedding
    default = client.embeddings.create(model=EMBED_MODEL, input="hello world").data[0].embedding
    assert len(default) == len(floats)
    assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7) for a, b in zip(default, floats))


def test_embeddings_base64_encoding(http, auth):
    """encoding_format=base64 (the SDK's default) is accepted. The built-in mock answers
    float arrays whatever the format (documented in crates/mock-upstream), which OpenAI's SDKs
    accept; a base64 answer must decode (little-endian float32) to the same vector."""
    body = {"model": EMBED_MODEL, "input": "hello world"}
    floats = http.post("/v1/embeddings", json={**body, "encoding_format": "float"}, headers=auth)
    b64 = http.post("/v1/embeddings", json={**body, "encoding_format": "base64"}, headers=auth)
    assert floats.status_code == 200 and b64.status_code == 200, (floats.text, b64.text)
    vec = floats.json()["data"][0]["embedding"]
    enc = b64.json()["data"][0]["embedding"]
    if isinstance(enc, str):
        dec = array.array("f", base64.b64decode(enc)).tolist()
    else:
        assert isinstance(enc, list), f"embedding is a {type(enc).__name__}"
        dec = enc
    assert len(dec) == len(vec)
    assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7) for a, b in zip(dec, vec))


def test_models_list(client):
    models = list(client.models.list())
    ids = [m.id for m in models]
    assert "mock-gpt" in ids and "mock-embedding" in ids, ids
    assert len(ids) == len(set(ids)), f"duplicate model ids: {ids}"
    for m in models:
        assert m.object == "model"
        assert isinstance(m.created, int)
        assert m.owned_by


def test_models_x_request_id(client):
    raw = client.models.with_raw_response.list()
    assert raw.headers.get("x-request-id")
