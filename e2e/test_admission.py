"""Admission through the real binary: per-key rate limits and their headers, `GET
/v1/usage`, key policy refusals (max_tokens cap, streaming, models, endpoints, IP,
suspension), HMAC request signing and CORS — as the real `openai` and `anthropic` SDKs
and raw httpx see them. Every test makes keys of its own, so none depends on another."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

from helpers import (CHAT_MODEL, EMBED_MODEL, MESSAGES, make_anthropic_client, make_client,
                     poll)

CHAT_PATH = "/v1/chat/completions"
SHORT = [{"role": "user", "content": "Say hi."}]
ANTHROPIC_USER = [{"role": "user", "content": "Say hi."}]
RESET_RE = re.compile(r"^(\d+h)?(\d+m)?\d+s$")  # OpenAI's reset format: 45s, 6m0s, 2h3m0s


# ---------------------------------------------------------------------------------------
# helpers


def _key(gateway, name: str, *extra: str) -> tuple[dict[str, Any], openai.OpenAI]:
    """A fresh key with `extra` CLI flags, known to the running gateway, and an SDK
    client for it (no retries: a 429 surfaces at once)."""
    info = gateway.create_key(name, *extra, wait=True)
    return info, make_client(gateway, info["key"])


def _openai_error(e: openai.APIStatusError, status: int, code: str, schemas,
                  type_: str | None = None) -> dict:
    """The raised error's status and code, and its body validated against OpenAI's
    `ErrorResponse` schema."""
    assert e.status_code == status, f"status {e.status_code}, body {e.response.text}"
    body = e.response.json()
    schemas.validate("ErrorResponse", body)
    assert set(body) == {"error"}, body
    err = body["error"]
    assert err["code"] == code, err
    assert e.code == code, (e.code, err)
    if type_ is not None:
        assert err["type"] == type_, err
    assert isinstance(err["message"], str) and err["message"], err
    assert e.response.headers.get("x-request-id"), "error responses carry x-request-id too"
    return err


def _anthropic_error(e: anthropic.APIStatusError, status: int, type_: str) -> dict:
    assert e.status_code == status, f"status {e.status_code}, body {e.response.text}"
    body = e.response.json()
    assert body.get("type") == "error", body
    err = body.get("error")
    assert isinstance(err, dict) and err.get("type") == type_, body
    assert isinstance(err.get("message"), str) and err["message"], body
    assert e.response.headers.get("x-request-id"), "error responses carry x-request-id too"
    return err


def _reset_seconds(text: str) -> int:
    """`1m1s` → 61 (OpenAI's reset format)."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([hms])", text))


def _chat(c: openai.OpenAI, **kw):
    return c.chat.completions.create(model=CHAT_MODEL, messages=SHORT, **kw)


def _sign(secret: str, method: str, path: str, ts: str, body: bytes) -> str:
    msg = f"{method}\n{path}\n{ts}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


def _signed_headers(info: dict, body: bytes, ts: int | None = None, path: str = CHAT_PATH,
                    method: str = "POST") -> dict[str, str]:
    ts_s = str(int(time.time()) if ts is None else ts)
    return {
        "Authorization": f"Bearer {info['key']}",
        "content-type": "application/json",
        "x-tollgate-timestamp": ts_s,
        "x-tollgate-signature": _sign(info["hmac_secret"], method, path, ts_s, body),
    }


def _hmac_key(gateway, name: str) -> dict[str, Any]:
    """An `--hmac` key. `gateway.wait_key_known` cannot tell "unknown key" from "unsigned
    call" (both 401), so wait until the gateway answers an unsigned call with
    `invalid_signature` rather than `invalid_api_key`."""
    info = gateway.create_key(name, "--hmac")
    secret = info.get("hmac_secret")
    assert isinstance(secret, str) and secret, f"`keys create --hmac --json` lacks hmac_secret: {info}"
    assert secret != info["key"]

    def known():
        r = httpx.get(gateway.base_url + "/v1/models",
                      headers={"Authorization": f"Bearer {info['key']}"}, timeout=10)
        if r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key":
            return None
        return r

    r, elapsed = poll(known, timeout=5.0)
    assert r is not None, f"--hmac key still unknown to the gateway after {elapsed:.1f}s"
    return info


def _body(content: str = "Say hi.") -> bytes:
    return json.dumps({"model": CHAT_MODEL, "messages": [{"role": "user", "content": content}]},
                      separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------
# 1–2. rate limits and their headers


def test_rpm_fourth_call_is_rate_limited(gateway, schemas):
    _, c = _key(gateway, "e2e-rpm3", "--rpm", "3")
    for i in range(3):
        r = _chat(c)
        assert r.choices[0].message.content, f"call {i + 1} of 3 had no content"
    with pytest.raises(openai.RateLimitError) as ei:
        _chat(c)
    e = ei.value
    err = _openai_error(e, 429, "rate_limit_exceeded", schemas)
    assert e.body["code"] == "rate_limit_exceeded", e.body  # the SDK's view of the body
    h = e.response.headers
    retry_after = h.get("retry-after")
    assert retry_after is not None, f"429 without Retry-After: {dict(h)}"
    # The sliding minute counts whole seconds in 61 buckets (so any 60 s hold at most N):
    # a slot frees within 61 s.
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 61, \
        f"Retry-After {retry_after!r}: a minute window frees a slot within 61 s"
    assert h.get("x-ratelimit-limit-requests") == "3", dict(h)
    assert h.get("x-ratelimit-remaining-requests") == "0", dict(h)
    assert "minute" in err["message"].lower() or "3" in err["message"], err


def test_limit_headers_on_success(gateway):
    _, c = _key(gateway, "e2e-headers", "--rpm", "5", "--rph", "50")
    raw = c.chat.completions.with_raw_response.create(model=CHAT_MODEL, messages=SHORT)
    assert raw.status_code == 200
    assert raw.parse().choices[0].message.content
    h = raw.headers
    assert h.get("x-ratelimit-limit-requests") == "5", dict(h)
    assert h.get("x-ratelimit-remaining-requests") == "4", dict(h)
    assert RESET_RE.match(h.get("x-ratelimit-reset-requests", "")), dict(h)
    assert h.get("X-RateLimit-Limit-Minute") == "5", dict(h)
    assert h.get("X-RateLimit-Remaining-Minute") == "4", dict(h)
    assert h.get("X-RateLimit-Limit-Hour") == "50", dict(h)
    assert h.get("X-RateLimit-Remaining-Hour") == "49", dict(h)

    raw2 = c.chat.completions.with_raw_response.create(model=CHAT_MODEL, messages=SHORT)
    assert raw2.headers.get("x-ratelimit-remaining-requests") == "3", dict(raw2.headers)
    assert raw2.headers.get("X-RateLimit-Remaining-Minute") == "3", dict(raw2.headers)


def test_reset_header_counts_the_call_itself(gateway):
    _, c = _key(gateway, "e2e-reset", "--rpm", "5")
    raw = c.chat.completions.with_raw_response.create(model=CHAT_MODEL, messages=SHORT)
    assert raw.headers.get("x-ratelimit-remaining-requests") == "4", dict(raw.headers)
    reset = raw.headers.get("x-ratelimit-reset-requests", "")
    assert RESET_RE.match(reset), dict(raw.headers)
    # the call just counted leaves the sliding minute in about a minute, not in 1 s
    assert _reset_seconds(reset) >= 58, f"x-ratelimit-reset-requests {reset!r} after the first call"


# ---------------------------------------------------------------------------------------
# 3. GET /v1/usage


def test_usage_endpoint(gateway, http):
    info, c = _key(gateway, "e2e-usage", "--rpm", "10", "--daily-budget", "1.0")
    auth = {"Authorization": f"Bearer {info['key']}"}
    usages = [_chat(c).usage for _ in range(2)]

    r = http.get("/v1/usage", headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["key_id"] == info["id"], body
    rpm = body["limits"]["rpm"]
    assert set(rpm) >= {"limit", "remaining", "reset_s"}, rpm
    assert rpm["limit"] == 10 and rpm["remaining"] == 8, rpm
    assert isinstance(rpm["reset_s"], int) and 1 <= rpm["reset_s"] <= 61, rpm
    daily = body["budgets"]["daily"]
    assert set(daily) >= {"limit", "spent", "remaining"}, daily
    # the session's models are priced at 0: nothing spent
    assert daily["limit"] == pytest.approx(1.0) and daily["spent"] == pytest.approx(0.0), daily
    assert daily["remaining"] == pytest.approx(1.0), daily
    assert "monthly" not in body["budgets"], "absent budgets are omitted (SPEC §6)"
    today, month = body["usage"]["today"], body["usage"]["month"]
    for period in (today, month):
        assert set(period) >= {"requests", "prompt_tokens", "completion_tokens", "cost"}, period
        assert period["requests"] == 2, period
        assert period["prompt_tokens"] == sum(u.prompt_tokens for u in usages), (period, usages)
        assert period["completion_tokens"] == sum(u.completion_tokens for u in usages), \
            (period, usages)
        assert period["cost"] == pytest.approx(0.0), period

    # read-only: asking again consumes nothing (SPEC §6)
    again = http.get("/v1/usage", headers=auth).json()
    assert again["limits"]["rpm"]["remaining"] == 8, again
    assert again["usage"]["today"]["requests"] == 2, again


# ---------------------------------------------------------------------------------------
# 4. policy refusals


def test_max_tokens_above_cap_is_400(gateway, schemas):
    _, c = _key(gateway, "e2e-maxtok", "--max-tokens", "10")
    assert _chat(c, max_tokens=10).choices[0].message is not None, "a call at the cap is fine"
    with pytest.raises(openai.BadRequestError) as ei:
        _chat(c, max_tokens=50)
    err = _openai_error(ei.value, 400, "max_tokens_exceeded", schemas, "invalid_request_error")
    assert err["param"] == "max_tokens", err
    assert ei.value.param == "max_tokens"
    assert "10" in err["message"] and "50" in err["message"], err


def test_max_completion_tokens_above_cap_is_400(gateway, schemas):
    _, c = _key(gateway, "e2e-maxtok2", "--max-tokens", "10")
    with pytest.raises(openai.BadRequestError) as ei:
        _chat(c, max_completion_tokens=50)
    err = _openai_error(ei.value, 400, "max_tokens_exceeded", schemas)
    assert err["param"] == "max_tokens", err


def test_the_cap_bounds_calls_that_name_none(gateway):
    # Without max_tokens the upstream is sent the key's cap: the answer stays within it
    # (the mock would otherwise write 20 tokens).
    _, c = _key(gateway, "e2e-maxtok3", "--max-tokens", "5")
    r = _chat(c)
    assert 0 < r.usage.completion_tokens <= 5, r.usage


def test_both_output_caps_are_checked(gateway, schemas):
    _, c = _key(gateway, "e2e-maxtok4", "--max-tokens", "10")
    with pytest.raises(openai.BadRequestError) as ei:
        _chat(c, max_completion_tokens=5, max_tokens=50)
    _openai_error(ei.value, 400, "max_tokens_exceeded", schemas)


def test_streaming_not_allowed(gateway, schemas):
    _, c = _key(gateway, "e2e-nostream", "--no-streaming")
    assert _chat(c).choices[0].message.content, "non-stream calls still work"
    with pytest.raises(openai.PermissionDeniedError) as ei:
        list(_chat(c, stream=True))
    _openai_error(ei.value, 403, "streaming_not_allowed", schemas, "permission_error")


def test_model_not_allowed(gateway, schemas):
    _, c = _key(gateway, "e2e-models", "--models", EMBED_MODEL)
    emb = c.embeddings.create(model=EMBED_MODEL, input="toll")
    assert emb.data and emb.data[0].embedding, "the allowed model still works"
    with pytest.raises(openai.PermissionDeniedError) as ei:
        _chat(c)
    err = _openai_error(ei.value, 403, "model_not_allowed", schemas, "permission_error")
    assert CHAT_MODEL in err["message"], err
    assert [m.id for m in c.models.list().data] == [EMBED_MODEL], \
        "/v1/models lists only the models the key may use"


def test_endpoint_not_allowed(gateway, schemas):
    _, c = _key(gateway, "e2e-endpoints", "--endpoints", "embeddings")
    assert c.embeddings.create(model=EMBED_MODEL, input="toll").data, "embeddings still work"
    with pytest.raises(openai.PermissionDeniedError) as ei:
        _chat(c)
    _openai_error(ei.value, 403, "endpoint_not_allowed", schemas, "permission_error")
    with pytest.raises(openai.PermissionDeniedError) as ei:
        c.completions.create(model=CHAT_MODEL, prompt="hi")
    _openai_error(ei.value, 403, "endpoint_not_allowed", schemas)


def test_ip_not_allowed(gateway, schemas):
    _, c = _key(gateway, "e2e-ip", "--ip", "10.0.0.0/8")
    with pytest.raises(openai.PermissionDeniedError) as ei:
        _chat(c)
    err = _openai_error(ei.value, 403, "ip_not_allowed", schemas, "permission_error")
    assert "127.0.0.1" in err["message"] or "network" in err["message"].lower(), err
    # X-Forwarded-For is believed only from trusted proxies: none are configured
    with pytest.raises(openai.PermissionDeniedError) as ei:
        _chat(c, extra_headers={"X-Forwarded-For": "10.1.2.3"})
    _openai_error(ei.value, 403, "ip_not_allowed", schemas)


def test_ip_allowed_from_loopback(gateway):
    _, c = _key(gateway, "e2e-ip-ok", "--ip", "10.0.0.0/8", "--ip", "127.0.0.0/8")
    assert _chat(c).choices[0].message.content


def _wait_refused(fn, exc_type, timeout: float = 2.0):
    """Call fn until it raises exc_type (the gateway picks key changes up within 1 s)."""
    def attempt():
        try:
            fn()
            return None
        except exc_type as e:
            return e

    e, elapsed = poll(attempt, timeout=timeout)
    assert e is not None, f"still accepted {elapsed:.2f}s after the key changed"
    return e


def test_suspended_key(gateway, schemas):
    info, c = _key(gateway, "e2e-suspend")
    assert _chat(c).choices[0].message.content
    gateway.cli("keys", "suspend", str(info["id"]))
    e = _wait_refused(lambda: _chat(c), openai.PermissionDeniedError)
    err = _openai_error(e, 403, "key_suspended", schemas, "permission_error")
    assert "suspended" in err["message"].lower(), err
    assert info["key"] not in e.response.text

    ac = make_anthropic_client(gateway, info["key"])
    with pytest.raises(anthropic.PermissionDeniedError) as ai:
        ac.messages.create(model=CHAT_MODEL, max_tokens=32, messages=ANTHROPIC_USER)
    aerr = _anthropic_error(ai.value, 403, "permission_error")
    assert "suspended" in aerr["message"].lower(), aerr

    gateway.cli("keys", "resume", str(info["id"]))

    def works():
        try:
            return _chat(c)
        except openai.PermissionDeniedError:
            return None

    r, elapsed = poll(works, timeout=2.0)
    assert r is not None, f"resumed key still refused after {elapsed:.2f}s"


@pytest.mark.parametrize("flags, needle", [
    (("--models", EMBED_MODEL), CHAT_MODEL),
    (("--endpoints", "chat"), "endpoint"),
    (("--ip", "10.0.0.0/8"), None),
    (("--no-streaming",), "stream"),
], ids=["model", "endpoint", "ip", "streaming"])
def test_messages_refusals_anthropic_sdk(gateway, flags, needle):
    info = gateway.create_key("e2e-anthropic-policy", *flags, wait=True)
    ac = make_anthropic_client(gateway, info["key"])
    with pytest.raises(anthropic.PermissionDeniedError) as ei:
        if "--no-streaming" in flags:
            with ac.messages.stream(model=CHAT_MODEL, max_tokens=32,
                                    messages=ANTHROPIC_USER) as s:
                list(s.text_stream)
        else:
            ac.messages.create(model=CHAT_MODEL, max_tokens=32, messages=ANTHROPIC_USER)
    err = _anthropic_error(ei.value, 403, "permission_error")
    if needle is not None:
        assert needle.lower() in err["message"].lower(), err
    if "--no-streaming" in flags:  # the non-stream call is still fine
        m = ac.messages.create(model=CHAT_MODEL, max_tokens=32, messages=ANTHROPIC_USER)
        assert m.content and m.content[0].text


def test_messages_max_tokens_cap_anthropic_sdk(gateway):
    info = gateway.create_key("e2e-anthropic-maxtok", "--max-tokens", "10", wait=True)
    ac = make_anthropic_client(gateway, info["key"])
    with pytest.raises(anthropic.BadRequestError) as ei:
        ac.messages.create(model=CHAT_MODEL, max_tokens=50, messages=ANTHROPIC_USER)
    err = _anthropic_error(ei.value, 400, "invalid_request_error")
    assert "max_tokens" in err["message"], err


# ---------------------------------------------------------------------------------------
# 5. HMAC request signing


def test_hmac_unsigned_call_is_401(gateway, schemas):
    info = _hmac_key(gateway, "e2e-hmac-unsigned")
    c = make_client(gateway, info["key"])
    with pytest.raises(openai.AuthenticationError) as ei:
        _chat(c)
    err = _openai_error(ei.value, 401, "invalid_signature", schemas, "invalid_request_error")
    assert info["hmac_secret"] not in ei.value.response.text
    assert "x-tollgate-timestamp" in err["message"] or "x-tollgate-signature" in err["message"], err


def test_hmac_signed_call_then_replay(gateway, http, schemas):
    info = _hmac_key(gateway, "e2e-hmac-signed")
    body = _body("Say hi, signed.")
    headers = _signed_headers(info, body)
    r = http.post(CHAT_PATH, content=body, headers=headers)
    assert r.status_code == 200, r.text
    schemas.validate("CreateChatCompletionResponse", r.json())

    replay = http.post(CHAT_PATH, content=body, headers=headers)
    assert replay.status_code == 401, replay.text
    schemas.validate("ErrorResponse", replay.json())
    assert replay.json()["error"]["code"] == "signature_replayed", replay.text

    # a fresh signature (different body) over the same second is accepted
    body2 = _body("Say hi again, signed.")
    r2 = http.post(CHAT_PATH, content=body2, headers=_signed_headers(info, body2))
    assert r2.status_code == 200, r2.text


def test_hmac_stale_timestamp_is_401(gateway, http, schemas):
    info = _hmac_key(gateway, "e2e-hmac-stale")
    body = _body()
    for ts in (int(time.time()) - 400, int(time.time()) + 400):
        r = http.post(CHAT_PATH, content=body, headers=_signed_headers(info, body, ts=ts))
        assert r.status_code == 401, (ts, r.text)
        schemas.validate("ErrorResponse", r.json())
        assert r.json()["error"]["code"] == "invalid_signature", r.text


def test_hmac_tampered_request_is_401(gateway, http):
    info = _hmac_key(gateway, "e2e-hmac-tamper")
    body = _body()
    headers = _signed_headers(info, body)
    # the signature covers the body: another body under the same signature fails
    r = http.post(CHAT_PATH, content=_body("Something else."), headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_signature", r.text
    # ... and the path: signed for /v1/completions, sent to chat
    wrong_path = _signed_headers(info, body, path="/v1/completions")
    r = http.post(CHAT_PATH, content=body, headers=wrong_path)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_signature", r.text
    # ... and is under the signing secret, not the API key
    ts = str(int(time.time()))
    bad = {**headers, "x-tollgate-timestamp": ts,
           "x-tollgate-signature": _sign(info["key"], "POST", CHAT_PATH, ts, body)}
    r = http.post(CHAT_PATH, content=body, headers=bad)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_signature", r.text
    # the untampered request still goes through: the failures claimed nothing
    r = http.post(CHAT_PATH, content=body, headers=headers)
    assert r.status_code == 200, r.text


def test_hmac_signed_get(gateway, http):
    info = _hmac_key(gateway, "e2e-hmac-get")
    r = http.get("/v1/models", headers=_signed_headers(info, b"", path="/v1/models",
                                                         method="GET"))
    assert r.status_code == 200, r.text
    assert CHAT_MODEL in [m["id"] for m in r.json()["data"]]


# ---------------------------------------------------------------------------------------
# 6. CORS


def test_cors_preflight(http):
    r = http.options(CHAT_PATH, headers={
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    })
    assert r.status_code == 204, r.text
    assert r.headers.get("access-control-allow-origin") == "https://app.example", dict(r.headers)
    assert "POST" in r.headers.get("access-control-allow-methods", ""), dict(r.headers)
    allow_headers = r.headers.get("access-control-allow-headers", "").lower()
    assert "authorization" in allow_headers and "content-type" in allow_headers, dict(r.headers)


def test_cors_origin_per_key(gateway, http, schemas):
    info, _ = _key(gateway, "e2e-cors", "--cors-origin", "https://app.example")
    auth = {"Authorization": f"Bearer {info['key']}"}
    body = {"model": CHAT_MODEL, "messages": SHORT}

    ok = http.post(CHAT_PATH, json=body, headers={**auth, "Origin": "https://app.example"})
    assert ok.status_code == 200, ok.text
    assert ok.headers.get("access-control-allow-origin") == "https://app.example", dict(ok.headers)
    exposed = ok.headers.get("access-control-expose-headers", "").lower()
    assert "x-request-id" in exposed and "x-ratelimit-remaining-requests" in exposed, exposed

    evil = http.post(CHAT_PATH, json=body, headers={**auth, "Origin": "https://evil.example"})
    assert evil.status_code == 403, evil.text
    schemas.validate("ErrorResponse", evil.json())
    assert evil.json()["error"]["code"] == "origin_not_allowed", evil.text
    assert evil.headers.get("access-control-allow-origin") is None, dict(evil.headers)

    # no Origin at all (not a browser): the origin list does not apply
    plain = http.post(CHAT_PATH, json=body, headers=auth)
    assert plain.status_code == 200, plain.text
    assert plain.headers.get("access-control-allow-origin") is None, dict(plain.headers)


def test_cors_key_without_origins_refuses_browser_calls(gateway, http):
    info, _ = _key(gateway, "e2e-cors-none")
    r = http.post(CHAT_PATH, json={"model": CHAT_MODEL, "messages": SHORT},
                  headers={"Authorization": f"Bearer {info['key']}",
                           "Origin": "https://app.example"})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "origin_not_allowed", r.text
