"""Each call leaves one usage row (ARCHITECTURE "Invariants"), keyed by its `x-request-id`,
with the route the client called, the model, the status and the tokens. Read from the
session gateway's SQLite database (read-only) while it runs."""

from __future__ import annotations

import sqlite3

import pytest

from helpers import CHAT_MODEL, CLAUDE_MODEL, MESSAGES, PROMPT, poll, read_named_sse, read_sse

ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}



def usage_row(gateway, request_id: str) -> dict | None:
    db = gateway.workdir / "tollgate.db"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    con.row_factory = sqlite3.Row
    try:
        row = con.execute("SELECT * FROM request_logs WHERE request_id = ?",
                          (request_id,)).fetchone()
        return dict(row) if row is not None else None
    finally:
        con.close()


def wait_row(gateway, request_id: str) -> dict:
    assert request_id, "no x-request-id"
    row, elapsed = poll(lambda: usage_row(gateway, request_id), timeout=3.0)
    assert row is not None, f"no request_logs row for {request_id} after {elapsed:.1f}s"
    return row


@pytest.mark.parametrize("model", [CHAT_MODEL, CLAUDE_MODEL])
@pytest.mark.parametrize("stream", [False, True])
def test_chat_completions_row(gateway, http, auth, model, stream):
    body = {"model": model, "messages": MESSAGES, "stream": stream}
    if stream:
        s = read_sse(http, "/v1/chat/completions", body, auth)
        assert s.status == 200 and s.done, s.raw_error
        rid = s.headers.get("x-request-id")
    else:
        r = http.post("/v1/chat/completions", json=body, headers=auth)
        assert r.status_code == 200, r.text
        rid = r.headers.get("x-request-id")
    row = wait_row(gateway, rid)
    assert (row["endpoint"], row["model_requested"], row["status"], row["error_type"],
            bool(row["stream"])) == ("/v1/chat/completions", model, 200, None, stream), row
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0, row


@pytest.mark.parametrize("model", [CHAT_MODEL, CLAUDE_MODEL])
@pytest.mark.parametrize("stream", [False, True])
def test_messages_row(gateway, http, api_key, model, stream):
    body = {"model": model, "max_tokens": 256, "stream": stream,
            "messages": [{"role": "user", "content": PROMPT}]}
    headers = {"x-api-key": api_key, **ANTHROPIC_HEADERS}
    if stream:
        s = read_named_sse(http, "/v1/messages", body, headers)
        assert s.status == 200, s.raw_error
        assert s.events and s.events[-1][0] == "message_stop", "stream not read to its end"
        rid = s.headers.get("x-request-id")
    else:
        r = http.post("/v1/messages", json=body, headers=headers)
        assert r.status_code == 200, r.text
        rid = r.headers.get("x-request-id")
    row = wait_row(gateway, rid)
    assert (row["endpoint"], row["model_requested"], row["status"], row["error_type"],
            bool(row["stream"])) == ("/v1/messages", model, 200, None, stream), row
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0, row
