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

from helpers import CHAT_MODEL, CLAUDE_MODEL, EMBED_MODEL

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
# (MOCK_UPSTREAM_BIN, the mock binary, matches none of these and is kept as it is.)
for _name in list(os.environ):
    if _SCRUB.match(_name) and _name not in _KEEP:
        del os.environ[_name]
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _debug_binary(env_var: str, name: str) -> Path:
    """`$ENV_VAR`, else `$CARGO_TARGET_DIR/debug/NAME`, else `target/debug/NAME`."""
    env = os.environ.get(env_var)
    if env:
        return Path(env)
    target = os.environ.get("CARGO_TARGET_DIR")
    base = Path(target) if target else REPO_ROOT / "target"
    if not base.is_absolute():
        base = REPO_ROOT / base
    return base / "debug" / name


def tollgate_bin() -> Path:
    return _debug_binary("TOLLGATE_BIN", "tollgate")


def mock_upstream_bin() -> Path:
    return _debug_binary("MOCK_UPSTREAM_BIN", "mock-upstream")


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
    config: Path | None = None  # `--config FILE`, for `serve` and the CLI alike
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
        cmd = [str(tollgate_bin()), *config_args(self.config), *args]
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


def config_args(config: Path | None) -> list[str]:
    return ["--config", str(config)] if config is not None else []


def start_gateway(workdir: Path, extra_env: dict[str, str] | None = None, attempts: int = 3,
                  config: Path | None = None) -> Gateway:
    """`tollgate serve` in `workdir`: with no `config`, the built-in mock provider (no file,
    no provider configured); with one, `--config config` (for `serve` and `gw.cli` alike)."""
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
            [str(binary), *config_args(config), "serve", "--listen", f"127.0.0.1:{port}"],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        gw = Gateway(workdir=workdir, port=port, env=env, proc=proc, log_path=log_path,
                     config=config, _log=log)
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


# ---------------------------------------------------------------------------------------
# the upstream for the Anthropic-backed model: `mock-upstream` as a process of its own


@dataclass
class MockUpstream:
    """`mock-upstream --listen 127.0.0.1:PORT`: speaks OpenAI and Anthropic Messages."""
    port: int
    proc: subprocess.Popen
    log_path: Path
    returncode: int | None = None
    _log: Any = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        """The root, as an `anthropic` provider's `base_url` wants it (no `/v1`)."""
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(_ANSI.sub("", text).splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """SIGTERM and the exit code (the binary exits 0 on SIGINT/SIGTERM)."""
        if self.returncode is None:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.returncode = self.proc.returncode
            if self._log is not None:
                self._log.close()
                self._log = None
        if self in UPSTREAMS:
            UPSTREAMS.remove(self)
        return self.returncode


UPSTREAMS: list[MockUpstream] = []  # started and not yet stopped


def start_mock_upstream(workdir: Path, attempts: int = 3) -> MockUpstream:
    binary = mock_upstream_bin()
    if not binary.is_file():
        pytest.fail(
            f"mock-upstream binary not found at {binary}: build it first with "
            "`cargo build -p mock-upstream` (or set MOCK_UPSTREAM_BIN)", pytrace=False,
        )
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    last_log = ""
    for _ in range(attempts):
        port = free_port()
        log_path = workdir / f"mock-upstream-{port}.stderr.log"
        log = open(log_path, "w", encoding="utf-8")
        proc = subprocess.Popen(
            [str(binary), "--listen", f"127.0.0.1:{port}"],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        mu = MockUpstream(port=port, proc=proc, log_path=log_path, _log=log)
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(mu.base_url + "/health", timeout=2).status_code == 200:
                    UPSTREAMS.append(mu)
                    return mu
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        if proc.poll() is None:
            mu.stop(signal.SIGKILL)
            pytest.fail(
                f"mock-upstream not healthy (GET /health != 200) within {HEALTH_TIMEOUT_S}s\n"
                f"--- mock-upstream stderr ---\n{mu.log_tail(100)}", pytrace=False,
            )
        mu.stop()
        last_log = mu.log_tail(100)
        if "in use" not in last_log.lower():
            break  # not a port race: no point retrying
    pytest.fail(f"mock-upstream exited during start-up\n--- its stderr ---\n{last_log}",
                pytrace=False)


# ---------------------------------------------------------------------------------------
# the session gateway's configuration

# The upstream key of the `claude` provider, by environment variable as the config wants
# (any key the mock does not treat specially: not `mock-401…`, `mock-429…`, …).
ANTHROPIC_KEY_ENV = "E2E_ANTHROPIC_KEY"
ANTHROPIC_UPSTREAM_KEY = "e2e-anthropic-upstream-key"
ANTHROPIC_UPSTREAM_MODEL = "claude-3-5-haiku-mock"


def session_config(anthropic_base_url: str) -> str:
    """The built-in mock exactly as `serve` with no configuration has it (models
    `mock-gpt` and `mock-embedding`, same capabilities, prices and context window), plus an
    Anthropic provider in front of `mock-upstream` and the model `claude-mock` on it."""
    return f'''\
# written by e2e/gateway.py for one test session
[[providers]]
name = "mock"
kind = "mock"

[[providers]]
name = "claude"
kind = "anthropic"
base_url = "{anthropic_base_url}"
keys = [ {{ id = "an-1", key_env = "{ANTHROPIC_KEY_ENV}" }} ]

[[models]]
name = "{CHAT_MODEL}"
provider = "mock"
capabilities = ["chat", "completions", "tools"]
input_per_1m = 0.0
output_per_1m = 0.0
context_window = 128000

[[models]]
name = "{EMBED_MODEL}"
provider = "mock"
capabilities = ["embeddings"]
input_per_1m = 0.0
output_per_1m = 0.0
context_window = 128000

[[models]]
name = "{CLAUDE_MODEL}"
provider = "claude"
upstream_model = "{ANTHROPIC_UPSTREAM_MODEL}"

# The suite sends hundreds of calls with one key; keys that test limits set their own.
[tiers.standard]
rpm = 0
rph = 0
'''


def check_config(workdir: Path, config: Path, extra_env: dict[str, str] | None = None) -> str:
    """`tollgate config check --config FILE`, which must pass; returns its output."""
    res = subprocess.run(
        [str(tollgate_bin()), *config_args(config), "config", "check"], cwd=workdir,
        env=gateway_env(workdir, extra_env), capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )
    out = res.stdout + res.stderr
    if res.returncode != 0:
        pytest.fail(f"`tollgate config check --config {config}` exited {res.returncode}:\n{out}\n"
                    f"--- {config.name} ---\n{config.read_text()}", pytrace=False)
    return out


def start_session_gateway(workdir: Path, upstream: MockUpstream) -> Gateway:
    """The session's gateway: `session_config` written into its temp dir, checked with
    `tollgate config check`, then served."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "tollgate.toml"
    config.write_text(session_config(upstream.base_url), encoding="utf-8")
    env = {ANTHROPIC_KEY_ENV: ANTHROPIC_UPSTREAM_KEY}
    check_config(workdir, config, env)
    return start_gateway(workdir, extra_env=env, config=config)
