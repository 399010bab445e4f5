"""Prism serving Twilio's own OpenAPI description of the 2010 API: every request the functions
make in these tests is validated against Twilio's contract (Prism answers 422 when it is not).
Prism is started once per session (local/prism.py, shared with the local stack); the end-to-end
tests also run the local stack (moto_server and the local API Gateway) against that Prism."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from local.prism import EXAMPLE_ACCOUNT_SID, Prism
from local.processes import LocalStackError, tail
from tests.support import SECRET_ID, StackProcess, credentials


@pytest.fixture(scope="session")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prism]:
    server = Prism(workdir=tmp_path_factory.mktemp("prism"))
    try:
        server.start()
        yield server
    except LocalStackError as error:
        pytest.fail(str(error))
    finally:
        server.stop()


@pytest.fixture(scope="session")
def prism_url(prism: Prism) -> str:
    return prism.url


@pytest.fixture(autouse=True)
def prism_log_position(request: pytest.FixtureRequest, prism: Prism) -> None:
    """Where Prism's log stood when the test began: a failed test shows what Prism refused since."""
    request.node.prism_log = (prism.log_path, prism.log_path.stat().st_size)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    position = getattr(item, "prism_log", None)
    if report.when != "call" or not report.failed or position is None:
        return
    path, offset = position
    with path.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    refused = [line for line in lines if "[VALIDATOR]" in line and "error" in line]
    if refused:
        report.sections.append(("Prism: requests outside Twilio's OpenAPI description", "\n".join(refused)))


@pytest.fixture
def twilio_contract(prism_url: str, aws: Any, state_table: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The functions pointed at Prism, with moto's Secrets Manager holding the credentials and
    moto's DynamoDB the state table (sends with an idempotency key use it)."""
    aws.put_secret_value(SecretId=SECRET_ID, SecretString=json.dumps(credentials(accountSid=EXAMPLE_ACCOUNT_SID)))
    monkeypatch.setenv("TWILIO_API_BASE_URL", prism_url)
    return prism_url


@pytest.fixture(scope="session")
def local_stack(prism_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The local stack for the whole session, on the session's Prism; stopped with SIGTERM."""
    stack = StackProcess(prism_url, tmp_path_factory.mktemp("local-stack"))
    try:
        yield stack.wait_ready()
    finally:
        status = stack.stop()
    assert status == 0, f"the local stack ended with status {status}:\n{tail(stack.output_path, 30)}"
    assert not stack.children_alive(), f"left running after SIGTERM: {stack.children_alive()}"
