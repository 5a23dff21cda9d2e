"""Session fixtures: a real `tollgate serve` on a free port in a temp dir, a client key made
through the real CLI, the real `openai` SDK and raw httpx clients pointed at it."""

from __future__ import annotations

import signal
from typing import Any, Iterator

import httpx
import openai
import pytest

import oai_schema
from gateway import RUNNING, Gateway, start_gateway
from helpers import make_client

# ---------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def schemas() -> oai_schema.OpenAPISchemas:
    try:
        return oai_schema.load()
    except oai_schema.SchemaDocumentMissing as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path_factory.mktemp("gateway"))
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
