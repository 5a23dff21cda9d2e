"""Error statuses and OpenAI-shaped error bodies, as the real openai SDK sees them."""

from __future__ import annotations

import openai
import pytest

from helpers import CHAT_MODEL, MESSAGES, make_client, poll

BAD_KEY = "tg-live-" + "Zz9" * 12  # well-formed, unknown


def _assert_error_shape(e: openai.APIStatusError, status: int, code: str | None = None,
                        type_: str | None = None):
    assert e.status_code == status, f"status {e.status_code}, body {e.response.text}"
    body = e.response.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert {"message", "type", "param", "code"} <= set(err), err
    assert isinstance(err["message"], str) and err["message"]
    if code is not None:
        assert err["code"] == code, err
        assert e.code == code
    if type_ is not None:
        assert err["type"] == type_, err
    assert e.response.headers.get("x-request-id"), "error responses carry x-request-id too"
    return err


def test_bad_key_is_authentication_error(gateway):
    bad = make_client(gateway, BAD_KEY)
    with pytest.raises(openai.AuthenticationError) as ei:
        bad.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    _assert_error_shape(ei.value, 401, "invalid_api_key", "invalid_request_error")
    assert BAD_KEY not in ei.value.response.text, "the presented key is echoed in the error"


def test_bad_key_on_models_and_embeddings(gateway):
    bad = make_client(gateway, BAD_KEY)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    with pytest.raises(openai.AuthenticationError):
        bad.embeddings.create(model="mock-embedding", input="x")


def test_missing_key_is_authentication_error(gateway):
    c = make_client(gateway, "unused")
    with pytest.raises(openai.AuthenticationError) as ei:
        c.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES,
                                  extra_headers={"Authorization": openai.Omit()})
    _assert_error_shape(ei.value, 401, "invalid_api_key", "invalid_request_error")


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as ei:
        client.chat.completions.create(model="no-such-model-e2e", messages=MESSAGES)
    _assert_error_shape(ei.value, 404, "model_not_found")


def test_unknown_model_embeddings_not_found(client):
    with pytest.raises(openai.NotFoundError) as ei:
        client.embeddings.create(model="no-such-embedding-e2e", input="x")
    _assert_error_shape(ei.value, 404, "model_not_found")


def test_upstream_500_is_502(client):
    msgs = [{"role": "user", "content": "[[mock:500]] please fail"}]
    with pytest.raises(openai.InternalServerError) as ei:
        client.chat.completions.create(model=CHAT_MODEL, messages=msgs)
    err = _assert_error_shape(ei.value, 502)
    # SPEC §3: the message names the models and providers tried
    assert CHAT_MODEL in err["message"], err


def test_upstream_500_stream_is_502(client):
    msgs = [{"role": "user", "content": "[[mock:500]] please fail"}]
    with pytest.raises(openai.InternalServerError) as ei:
        list(client.chat.completions.create(model=CHAT_MODEL, messages=msgs, stream=True))
    assert ei.value.status_code == 502


def test_malformed_json_is_400(http, auth):
    r = http.post("/v1/chat/completions", content=b'{"model": "mock-gpt", "messages": [',
                  headers={**auth, "content-type": "application/json"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error", err
    assert r.headers.get("x-request-id")


def test_revoked_key_is_permission_denied(gateway):
    info = gateway.create_key("e2e-revoke", wait=True)
    c = make_client(gateway, info["key"])
    assert c.models.list().data, "freshly created key does not work"
    gateway.cli("keys", "revoke", str(info["id"]))

    def denied():
        try:
            c.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
            return None
        except openai.PermissionDeniedError as e:
            return e
        except openai.AuthenticationError as e:
            pytest.fail(f"revoked key answered 401 ({e.response.text}); SPEC §3: a revoked key "
                        "stays 403 key_revoked, it is not 'unknown'")

    e, elapsed = poll(denied, timeout=2.0)
    assert e is not None, f"revoked key still accepted {elapsed:.2f}s after `keys revoke`"
    err = _assert_error_shape(e, 403, "key_revoked")
    assert info["key"] not in e.response.text
    assert "revoked" in err["message"].lower(), err


def test_x_request_id_everywhere(http, auth):
    """SPEC §3: every response carries x-request-id — health, unknown routes, errors."""
    for method, path, headers in [("GET", "/health", {}), ("GET", "/v1/models", auth),
                                  ("GET", "/v1/models", {}), ("GET", "/v1/no-such-route", auth)]:
        r = http.request(method, path, headers=headers)
        assert r.headers.get("x-request-id"), f"{method} {path} -> {r.status_code} without x-request-id"
