"""Small shared helpers for the e2e tests."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import anthropic
import httpx
import openai

CHAT_MODEL = "mock-gpt"  # the built-in mock provider (OpenAI's API)
EMBED_MODEL = "mock-embedding"
CLAUDE_MODEL = "claude-mock"  # provider kind "anthropic", upstream: the mock-upstream process
PROMPT = "Write three short sentences about toll roads and why people use them."
MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": PROMPT},
]


@dataclass
class SSEStream:
    status: int
    headers: httpx.Headers
    events: list[Any] = field(default_factory=list)  # parsed JSON payloads, in order
    arrival: list[float] = field(default_factory=list)  # monotonic time of each payload
    done: bool = False  # saw `data: [DONE]`
    after_done: list[str] = field(default_factory=list)  # any data line after [DONE]
    raw_error: str | None = None  # body when status != 200


def read_sse(
    http: httpx.Client, path: str, body: dict, headers: dict[str, str],
    on_event: Callable[[int, Any], None] | None = None,
) -> SSEStream:
    """POST and read a `text/event-stream` answer, event by event, as it arrives."""
    with http.stream("POST", path, json=body, headers=headers) as r:
        out = SSEStream(status=r.status_code, headers=r.headers)
        if r.status_code != 200:
            out.raw_error = r.read().decode("utf-8", "replace")
            return out
        data_lines: list[str] = []

        def flush() -> None:
            if not data_lines:
                return
            payload = "\n".join(data_lines)
            data_lines.clear()
            if out.done:
                out.after_done.append(payload)
                return
            if payload.strip() == "[DONE]":
                out.done = True
                return
            ev = json.loads(payload)
            out.events.append(ev)
            out.arrival.append(time.monotonic())
            if on_event is not None:
                on_event(len(out.events) - 1, ev)

        for line in r.iter_lines():
            if line == "":
                flush()
            elif line.startswith(":"):
                continue  # SSE comment / keep-alive
            elif line.startswith("data:"):
                data_lines.append(line[5:].removeprefix(" "))
            # other fields (event:, id:, retry:) are not used by OpenAI's chat stream
        flush()
        return out


@dataclass
class NamedSSEStream:
    """An Anthropic-style stream: `event: NAME` + `data: JSON` per event."""
    status: int
    headers: httpx.Headers
    events: list[tuple[str | None, Any]] = field(default_factory=list)  # (event name, payload)
    arrival: list[float] = field(default_factory=list)
    raw_error: str | None = None


def read_named_sse(http: httpx.Client, path: str, body: dict,
                   headers: dict[str, str]) -> NamedSSEStream:
    """POST and read an Anthropic Messages event stream, keeping each event's name."""
    with http.stream("POST", path, json=body, headers=headers) as r:
        out = NamedSSEStream(status=r.status_code, headers=r.headers)
        if r.status_code != 200:
            out.raw_error = r.read().decode("utf-8", "replace")
            return out
        name: str | None = None
        data_lines: list[str] = []
        for line in itertools.chain(r.iter_lines(), [""]):  # lazily: arrival times matter
            if line == "":
                if data_lines:
                    out.events.append((name, json.loads("\n".join(data_lines))))
                    out.arrival.append(time.monotonic())
                name, data_lines = None, []
            elif line.startswith(":"):
                continue
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data_lines.append(line[5:].removeprefix(" "))
        return out


def poll(fn: Callable[[], Any], timeout: float, interval: float = 0.05) -> tuple[Any, float]:
    """Call fn until it returns a truthy value or timeout elapses. Returns (value, elapsed)."""
    start = time.monotonic()
    while True:
        value = fn()
        elapsed = time.monotonic() - start
        if value or elapsed >= timeout:
            return value, elapsed
        time.sleep(interval)


def make_client(gw: Any, key: str, **kw) -> openai.OpenAI:
    """The real SDK pointed at a gateway; no retries, so every status surfaces as raised."""
    return openai.OpenAI(api_key=key, base_url=gw.api_base, max_retries=0, timeout=60, **kw)


def make_anthropic_client(gw: Any, key: str, **kw) -> anthropic.Anthropic:
    """The real `anthropic` SDK pointed at a gateway's root (the SDK appends /v1/messages;
    it sends the key as `x-api-key`); no retries, so every status surfaces as raised."""
    return anthropic.Anthropic(api_key=key, base_url=gw.base_url, max_retries=0, timeout=60, **kw)
