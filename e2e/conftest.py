"""Session fixtures: a real `mock-upstream` (the Anthropic provider's upstream) and a real
`tollgate serve` on free ports, the gateway configured by a file in its temp dir; a client
key made through the real CLI; the real `openai` and `anthropic` SDKs and raw httpx
clients pointed at the gateway."""

from __future__ import annotations

import signal
from typing import Any, Iterator

import anthropic
import httpx
import openai
import pytest

import oai_schema
from gateway import (RUNNING, UPSTREAMS, Gateway, MockUpstream, start_mock_upstream,
                     start_session_gateway)
from helpers import make_anthropic_client, make_client

# ---------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def schemas() -> oai_schema.OpenAPISchemas:
    try:
        return oai_schema.load()
    except oai_schema.SchemaDocumentMissing as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def mock_upstream(tmp_path_factory) -> Iterator[MockUpstream]:
    """The upstream of the gateway's `claude` (kind "anthropic") provider. Stopped after the
    gateway (pytest tears fixtures down in reverse)."""
    mu = start_mock_upstream(tmp_path_factory.mktemp("mock-upstream"))
    yield mu
    alive = mu.proc.poll() is None
    rc = mu.stop(signal.SIGTERM)
    assert alive, f"mock-upstream died during the session (code {rc})\n{mu.log_tail(100)}"
    assert rc == 0, f"mock-upstream exited with code {rc} after SIGTERM\n{mu.log_tail(100)}"


@pytest.fixture(scope="session")
def gateway(tmp_path_factory, mock_upstream: MockUpstream) -> Iterator[Gateway]:
    gw = start_session_gateway(tmp_path_factory.mktemp("gateway"), mock_upstream)
    yield gw
    rc = gw.stop(signal.SIGTERM)
    assert rc == 0, (
        f"gateway exited with code {rc} after SIGTERM (expected 0)\n"
        f"--- gateway stderr ---\n{gw.log_tail(200)}"
    )


@pytest.fixture(scope="session")
def key_info(gateway: Gateway) -> dict[str, Any]:
    """A client key created through the CLI while the gateway runs. Such a key takes effect
    within a second (SPEC §4), so wait until the gateway knows it."""
    return gateway.create_key("e2e-session", wait=True)


@pytest.fixture(scope="session")
def api_key(key_info) -> str:
    return key_info["key"]


@pytest.fixture(scope="session")
def client(gateway: Gateway, api_key: str) -> Iterator[openai.OpenAI]:
    c = make_client(gateway, api_key)
    yield c
    c.close()


@pytest.fixture(scope="session")
def anthropic_client(gateway: Gateway, api_key: str) -> Iterator[anthropic.Anthropic]:
    """The real `anthropic` SDK, `base_url` the gateway's root (it appends /v1/messages)."""
    c = make_anthropic_client(gateway, api_key)
    yield c
    c.close()


@pytest.fixture(scope="session")
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, timeout=60, trust_env=False) as c:
        yield c


@pytest.fixture(scope="session")
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


# ---------------------------------------------------------------------------------------
# on failure, show what the gateway said


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for gw in list(RUNNING):
            rep.sections.append(
                (f"gateway :{gw.port} stderr (last 60 lines)", gw.log_tail(60))
            )
        for mu in list(UPSTREAMS):
            if mu.proc.poll() is not None:  # it logs nothing per request: only a death
                rep.sections.append(
                    (f"mock-upstream :{mu.port} exited {mu.proc.returncode}", mu.log_tail(60))
                )
