#!/usr/bin/env python3
"""Time to first stream event over one keep-alive connection.

Sends the same streaming chat request N times, one after the other, on one raw TCP
connection (no HTTP library, so the client adds as little as possible), and measures
from just before the request is written to the moment the first received bytes that
contain `data:` are read. Prints one JSON object: p50/p99/mean of that time and of the
whole stream, in microseconds.

With --check it sends one request, verifies a 200 stream ending in [DONE] and exits.
"""

import argparse
import json
import socket
import statistics
import sys
import time

BODY = json.dumps(
    {
        "model": "mock-gpt",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
            {
                "role": "user",
                "content": "Hello! Could you tell me what the weather is usually like in Lisbon in May?",
            },
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    },
    separators=(",", ":"),
).encode()


def request_bytes(port, key):
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\n"
        "Accept: text/event-stream\r\n"
        f"Content-Length: {len(BODY)}\r\n"
        "\r\n"
    )
    return head.encode() + BODY


class Connection:
    def __init__(self, port):
        self.port = port
        self.sock = None

    def open(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def exchange(self, request):
        """Sends one request; returns (status, first_event_ns, total_ns, body)."""
        if self.sock is None:
            self.open()
        recv = self.sock.recv
        start = time.perf_counter_ns()
        self.sock.sendall(request)
        buf = b""
        first = None
        head_end = -1
        status = 0
        length = None
        chunked = False
        close = False
        while True:
            data = recv(65536)
            now = time.perf_counter_ns()
            if not data:
                if close and head_end >= 0:
                    break
                raise RuntimeError("connection closed mid-response")
            buf += data
            if head_end < 0:
                head_end = buf.find(b"\r\n\r\n")
                if head_end < 0:
                    continue
                lines = buf[:head_end].decode("latin-1").split("\r\n")
                status = int(lines[0].split(" ")[1])
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    name = name.strip().lower()
                    value = value.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "transfer-encoding" and "chunked" in value:
                        chunked = True
                    elif name == "connection" and value == "close":
                        close = True
            if first is None and buf.find(b"data:", head_end) >= 0:
                first = now
            body = buf[head_end + 4 :]
            if chunked and body.endswith(b"0\r\n\r\n") and (
                body.startswith(b"0\r\n") or body.endswith(b"\r\n0\r\n\r\n")
            ):
                break
            if length is not None and len(body) >= length:
                break
        if close:
            self.sock.close()
            self.sock = None
        return status, (first or now) - start, now - start, buf[head_end + 4 :]


def percentile(values, p):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", default="sk-bench")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=20.0)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()

    request = request_bytes(args.port, args.key)
    conn = Connection(args.port)
    if args.check:
        status, _, _, body = conn.exchange(request)
        if status != 200 or b"data: [DONE]" not in body or b'"content":"Mock ' not in body:
            print(f"check failed: HTTP {status}: {body[:400]!r}", file=sys.stderr)
            return 1
        return 0

    for _ in range(args.warmup):
        conn.exchange(request)
    firsts, totals, failures = [], [], 0
    deadline = time.monotonic() + args.max_seconds
    while len(firsts) < args.count and time.monotonic() < deadline:
        status, first, total, _ = conn.exchange(request)
        if status != 200:
            failures += 1
            continue
        firsts.append(first / 1000)
        totals.append(total / 1000)
    if not firsts:
        print("no successful request", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "samples": len(firsts),
                "failures": failures,
                "ttfb_p50_us": round(percentile(firsts, 50), 1),
                "ttfb_p99_us": round(percentile(firsts, 99), 1),
                "ttfb_mean_us": round(statistics.fmean(firsts), 1),
                "stream_p50_us": round(percentile(totals, 50), 1),
                "stream_p99_us": round(percentile(totals, 99), 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
