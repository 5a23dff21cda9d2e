"""Client keys made by the real CLI while the gateway runs; both auth headers."""

from __future__ import annotations

import re
import time

import openai

from helpers import CHAT_MODEL, MESSAGES, make_client, poll

KEY_RE = re.compile(r"^tg-live-[0-9A-Za-z]{32,}$")


def test_key_format(key_info):
    assert KEY_RE.match(key_info["key"]), "SPEC §4: tg-<env>-<base62, at least 32 chars>"


def test_cli_never_shows_the_secret_again(gateway, key_info):
    listing = gateway.cli("keys", "list")
    shown = gateway.cli("keys", "show", str(key_info["id"]))
    for res in (listing, shown):
        assert key_info["key"] not in res.stdout + res.stderr, "the key secret is echoed back"
    assert str(key_info["id"]) in listing.stdout, "`keys list` does not list the key"


def test_x_api_key_header(http, api_key, schemas):
    r = http.post("/v1/chat/completions", headers={"x-api-key": api_key},
                  json={"model": CHAT_MODEL, "messages": MESSAGES})
    assert r.status_code == 200, r.text
    schemas.validate("CreateChatCompletionResponse", r.json())
    m = http.get("/v1/models", headers={"x-api-key": api_key})
    assert m.status_code == 200, m.text
    bad = http.get("/v1/models", headers={"x-api-key": "tg-live-" + "Q" * 40})
    assert bad.status_code == 401, bad.text


def test_key_created_while_running_works_within_1s(gateway):
    info = gateway.create_key("e2e-live")
    created_at = time.monotonic()
    c = make_client(gateway, info["key"])

    def works():
        try:
            return c.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
        except openai.AuthenticationError:
            return None

    r, _ = poll(works, timeout=1.0)
    elapsed = time.monotonic() - created_at
    assert r is not None, f"new key still refused {elapsed:.2f}s after `keys create` returned"
    assert r.choices[0].message.content
