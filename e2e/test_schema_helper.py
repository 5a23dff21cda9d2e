"""The conformance checker itself: it must accept OpenAI's real shapes and reject broken
ones, so a green conformance test means something. Needs no gateway."""

from __future__ import annotations

import copy

import pytest

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi.", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}
CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1700000000,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                 "finish_reason": None}],
    "usage": None,
}
ERROR = {"error": {"message": "bad key", "type": "invalid_request_error", "param": None,
                   "code": "invalid_api_key"}}


def test_document_version_detected(schemas):
    assert schemas.openapi_version.startswith(("3.0", "3.1"))
    if schemas.openapi_version.startswith("3.1"):
        assert schemas.validator_cls.__name__ == "Draft202012Validator"
    # every schema the suite validates against exists
    for name in ("CreateChatCompletionResponse", "CreateChatCompletionStreamResponse",
                 "CreateCompletionResponse", "CreateEmbeddingResponse", "ListModelsResponse",
                 "ErrorResponse"):
        schemas.validator(name)


def test_accepts_real_openai_shapes(schemas):
    schemas.validate("CreateChatCompletionResponse", CHAT)
    schemas.validate("CreateChatCompletionStreamResponse", CHUNK)
    # final usage chunk: empty choices, usage set
    last = dict(CHUNK, choices=[], usage={"prompt_tokens": 5, "completion_tokens": 2,
                                          "total_tokens": 7})
    schemas.validate("CreateChatCompletionStreamResponse", last)
    schemas.validate("ErrorResponse", ERROR)


def test_nullable_is_exactly_nullable(schemas):
    # `finish_reason` is declared `nullable: true` with an enum: null passes, junk does not
    ok = copy.deepcopy(CHUNK)
    ok["choices"][0]["finish_reason"] = None
    schemas.validate("CreateChatCompletionStreamResponse", ok)
    bad = copy.deepcopy(CHUNK)
    bad["choices"][0]["finish_reason"] = "finished"
    assert schemas.errors("CreateChatCompletionStreamResponse", bad)
    # `usage` is a nullable $ref: null passes, an incomplete usage object does not
    bad = dict(CHUNK, usage={"prompt_tokens": 1})
    assert schemas.errors("CreateChatCompletionStreamResponse", bad)


@pytest.mark.parametrize(
    "name,mutate",
    [
        ("CreateChatCompletionResponse", lambda b: b.pop("choices")),
        ("CreateChatCompletionResponse", lambda b: b.update(object="chat.completion.chunk")),
        ("CreateChatCompletionResponse", lambda b: b["choices"][0].pop("logprobs")),
        ("CreateChatCompletionResponse", lambda b: b["choices"][0]["message"].pop("refusal")),
        ("CreateChatCompletionResponse", lambda b: b["choices"][0].update(finish_reason=None)),
        ("CreateChatCompletionResponse", lambda b: b.update(created="1700000000")),
        ("CreateChatCompletionResponse", lambda b: b["usage"].pop("total_tokens")),
        ("CreateChatCompletionResponse", lambda b: b.update(system_fingerprint=None)),
        ("CreateChatCompletionStreamResponse", lambda b: b["choices"][0].pop("finish_reason")),
        ("CreateChatCompletionStreamResponse", lambda b: b.update(object="chat.completion")),
        ("ErrorResponse", lambda b: b["error"].pop("param")),
        ("ErrorResponse", lambda b: b["error"].update(code=401)),
        ("ErrorResponse", lambda b: b.update(error="bad key")),
    ],
)
def test_rejects_broken_bodies(schemas, name, mutate):
    body = copy.deepcopy({"CreateChatCompletionResponse": CHAT,
                          "CreateChatCompletionStreamResponse": CHUNK,
                          "ErrorResponse": ERROR}[name])
    mutate(body)
    assert schemas.errors(name, body), f"{name} accepted a broken body: {body}"


def test_refs_resolve_across_document(schemas):
    # message is a $ref to ChatCompletionResponseMessage; its role enum must be enforced
    bad = copy.deepcopy(CHAT)
    bad["choices"][0]["message"]["role"] = "user"
    errs = schemas.errors("CreateChatCompletionResponse", bad)
    assert any("role" in e for e in errs), errs
    # embeddings: data items are $ref Embedding
    emb = {"object": "list", "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1},
           "data": [{"object": "embedding", "index": 0, "embedding": [0.1, "x"]}]}
    assert schemas.errors("CreateEmbeddingResponse", emb)
    models = {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "x"}]}
    assert schemas.errors("ListModelsResponse", models)  # `created` missing
