"""The gateway under test: start the real `tollgate serve` binary on a free port in its own
directory, run the real CLI against the same database, stop it with a signal."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
HEALTH_TIMEOUT_S = float(os.environ.get("TOLLGATE_E2E_HEALTH_TIMEOUT", "60"))
# SPEC §1: shutdown waits for in-flight requests up to server.shutdown_grace_s (30 s).
STOP_TIMEOUT_S = 45.0

# Variables that would switch the gateway from the built-in mock to real providers, or
# point it somewhere other than its temp dir. Removed from this process too, so the SDK
# picks up nothing from the environment either.
_SCRUB = re.compile(
    r"^(OPENAI_|ANTHROPIC_|TOLLGATE_|API_KEY_STRATEGY$|"
    r"(HTTP|HTTPS|ALL|NO)_PROXY$|(http|https|all|no)_proxy$)"
)
_KEEP = {"TOLLGATE_BIN", "TOLLGATE_OPENAPI_JSON", "TOLLGATE_E2E_HEALTH_TIMEOUT"}
for _name in list(os.environ):
    if _SCRUB.match(_name) and _name not in _KEEP:
        del os.environ[_name]
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def tollgate_bin() -> Path:
    env = os.environ.get("TOLLGATE_BIN")
    if env:
        return Path(env)
    target = os.environ.get("CARGO_TARGET_DIR")
    base = Path(target) if target else REPO_ROOT / "target"
    if not base.is_absolute():
        base = REPO_ROOT / base
    return base / "debug" / "tollgate"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gateway_env(workdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    env["TOLLGATE_STORAGE__DATABASE_URL"] = f"sqlite://{(workdir / 'tollgate.db').resolve()}"
    env.setdefault("RUST_BACKTRACE", "1")
    env.update(extra or {})
    return env


@dataclass
class Gateway:
    workdir: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen
    log_path: Path
    returncode: int | None = None
    _log: Any = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + "/v1"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "<no log>"

    def log_tail(self, lines: int = 80) -> str:
        text = _ANSI.sub("", self.log_text())
        return "\n".join(text.splitlines()[-lines:])

    def cli(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run `tollgate ARGS…` against the same database as this gateway."""
        cmd = [str(tollgate_bin()), *args]
        res = subprocess.run(
            cmd, cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and res.returncode != 0:
            raise AssertionError(
                f"`tollgate {' '.join(args)}` exited {res.returncode}\n"
                f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
            )
        return res

    def create_key(self, name: str, *extra: str, wait: bool = False) -> dict[str, Any]:
        """`tollgate keys create … --json`. With wait=True, also wait (≤ 5 s) until the
        running gateway knows the new key (SPEC §4: within one second)."""
        res = self.cli("keys", "create", "--name", name, "--owner", "e2e", *extra, "--json")
        try:
            obj = json.loads(res.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(
                f"`keys create --json` must print exactly one JSON object on stdout ({e}); got:\n"
                f"{res.stdout!r}\nstderr:\n{res.stderr}"
            ) from None
        assert isinstance(obj, dict), obj
        assert obj.get("id") and obj.get("key"), f"`keys create --json` lacks id/key: {obj}"
        if wait:
            self.wait_key_known(obj["key"])
        return obj

    def wait_key_known(self, key: str, timeout: float = 5.0) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        deadline = time.monotonic() + timeout
        while True:
            r = httpx.get(self.base_url + "/v1/models", headers=headers, timeout=10)
            if r.status_code != 401:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"key from `keys create` still unknown to the gateway after {timeout}s: "
                    f"{r.status_code} {r.text}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S,
             send: bool = True) -> int:
        """Send `sig` (unless `send` is False: already sent) and wait for the exit code."""
        if self.returncode is not None:
            return self.returncode
        if self.proc.poll() is None:
            if send:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = self.proc.returncode
                self._close()
                if self in RUNNING:
                    RUNNING.remove(self)
                raise AssertionError(
                    f"gateway did not exit within {timeout}s of signal {sig}; killed.\n"
                    f"--- gateway stderr ---\n{self.log_tail(200)}"
                ) from None
        self.returncode = self.proc.returncode
        self._close()
        if self in RUNNING:
            RUNNING.remove(self)
        return self.returncode

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


RUNNING: list[Gateway] = []  # started and not yet stopped


def start_gateway(workdir: Path, extra_env: dict[str, str] | None = None, attempts: int = 3) -> Gateway:
    binary = tollgate_bin()
    if not binary.is_file():
        pytest.fail(
            f"gateway binary not found at {binary}: build it first with `cargo build -p tollgate` "
            "(or set TOLLGATE_BIN)", pytrace=False,
        )
    workdir.mkdir(parents=True, exist_ok=True)
    env = gateway_env(workdir, extra_env)
    last_log = ""
    for attempt in range(attempts):
        port = free_port()
        log_path = workdir / f"gateway-{port}.stderr.log"
        log = open(log_path, "w", encoding="utf-8")
        proc = subprocess.Popen(
            [str(binary), "serve", "--listen", f"127.0.0.1:{port}"],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        gw = Gateway(workdir=workdir, port=port, env=env, proc=proc, log_path=log_path, _log=log)
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                if httpx.get(gw.base_url + "/health", timeout=2).status_code == 200:
                    RUNNING.append(gw)
                    return gw
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            log.close()
            pytest.fail(
                f"gateway not healthy (GET /health != 200) within {HEALTH_TIMEOUT_S}s\n"
                f"--- gateway stderr ---\n{gw.log_tail(200)}", pytrace=False,
            )
        log.close()
        last_log = gw.log_tail(200)
        if "address" not in last_log.lower() or "in use" not in last_log.lower():
            break  # not a port race: no point retrying
    pytest.fail(f"gateway exited during start-up\n--- gateway stderr ---\n{last_log}", pytrace=False)
