"""SIGTERM/SIGINT: graceful shutdown, in-flight requests finish, exit code 0 (SPEC §1).
Each test runs its own gateway, so the session gateway is untouched. (The session gateway's
own SIGTERM → exit 0 is asserted when the session ends.)"""

from __future__ import annotations

import signal
import threading

import httpx

from gateway import start_gateway
from helpers import CHAT_MODEL, read_sse


def test_sigint_exits_zero(tmp_path):
    gw = start_gateway(tmp_path / "gw")
    rc = gw.stop(signal.SIGINT)
    assert rc == 0, f"exit code {rc} after SIGINT\n{gw.log_tail(100)}"


def test_sigterm_finishes_in_flight_stream(tmp_path):
    gw = start_gateway(tmp_path / "gw")
    sent = threading.Event()
    try:
        key = gw.create_key("e2e-shutdown", wait=True)["key"]

        def on_event(i, _ev):
            if i == 0:  # first chunk received: the request is in flight
                gw.proc.send_signal(signal.SIGTERM)
                sent.set()

        body = {"model": CHAT_MODEL, "stream": True, "messages": [
            {"role": "user", "content": "[[mock:chunk-delay=150]] Tell me about toll roads."}]}
        with httpx.Client(base_url=gw.base_url, timeout=60, trust_env=False) as http:
            s = read_sse(http, "/v1/chat/completions", body,
                         {"Authorization": f"Bearer {key}"}, on_event=on_event)
        assert s.status == 200, s.raw_error
        assert sent.is_set(), "stream produced no event"
        assert len(s.events) >= 3, "stream too short to have been in flight during SIGTERM"
        assert s.done, "in-flight stream was cut at shutdown instead of finishing"
    finally:
        # SIGTERM was sent mid-stream (a second one might mean "force"): only wait, unless
        # the test failed before sending it.
        rc = gw.stop(signal.SIGTERM, send=not sent.is_set())
    assert rc == 0, f"exit code {rc} after SIGTERM\n{gw.log_tail(100)}"
