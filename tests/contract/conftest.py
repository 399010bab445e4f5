"""Prism serving Twilio's own OpenAPI description of the 2010 API: every request the functions
make in these tests is validated against Twilio's contract (Prism answers 422 when it is not).
Prism is started once per session (local/prism.py, shared with the local stack); the end-to-end
tests also run the local stack (moto_server and the local API Gateway) against that Prism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.prism import EXAMPLE_ACCOUNT_SID, Prism
from local.processes import LocalStackError, stop_process, tail
from tests.support import ROOT, SECRET_ID, credentials

STACK_STARTUP_SECONDS = 60.0


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


class StackProcess:
    """`python -m local.stack` (what `make local` runs) in a child process, on a free port, with
    a running Prism: `info` holds its URLs and child pids, `function_log` its functions' logs."""

    def __init__(self, prism_url: str, workdir: Path) -> None:
        self.ready = workdir / "ready.json"
        self.function_log = workdir / "functions.log"
        self.output_path = workdir / "stack.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TWILIO_", "PUBLIC_BASE_URL"))}
        with self.output_path.open("w") as output:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "local.stack", "--port", "0", "--twilio-url", prism_url, "--quiet"),
                    *("--ready-file", str(self.ready), "--function-log", str(self.function_log)),
                ],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.info: dict[str, Any] = {}

    def wait_ready(self) -> dict[str, Any]:
        deadline = time.monotonic() + STACK_STARTUP_SECONDS
        while not self.ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(
                    f"the local stack did not start (status {self.process.poll()}):\n{tail(self.output_path, 30)}"
                )
            time.sleep(0.1)
        self.info = json.loads(self.ready.read_text())
        self.info["function_log"] = self.function_log
        return self.info

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Stop it as a user would (SIGTERM, or SIGINT for Ctrl-C); its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                stop_process(self.process)
        return self.process.returncode

    def children_alive(self) -> list[str]:
        alive = []
        for name, pid in self.info.get("pids", {}).items():
            try:
                os.kill(pid, 0)
                alive.append(f"{name} ({pid})")
            except ProcessLookupError:
                pass
        return alive


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
