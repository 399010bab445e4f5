"""Prism serving Twilio's own OpenAPI description of the 2010 API: every request the functions
make in these tests is validated against Twilio's contract (Prism answers 422 when it is not)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import credentials
from tests.support import SECRET_ID

HERE = Path(__file__).parent
PRISM = HERE / "node_modules/.bin/prism"
SPEC = HERE / "node_modules/@twilio-alpha/mcp/twilio-oai/spec/json/twilio_api_v2010.json"
MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"


def patched_spec(target: Path) -> Path:
    """Twilio's spec, with MediaUrl declared as repeated keys as Twilio accepts it (prism#2473)."""
    spec = json.loads(SPEC.read_text())
    form = spec["paths"][MESSAGES_PATH]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    form["encoding"] = {"MediaUrl": {"style": "form", "explode": True}}
    path = target / "twilio_api_v2010.json"
    path.write_text(json.dumps(spec))
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def prism_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not PRISM.exists() or not SPEC.exists():
        pytest.fail("Prism is not installed: run `make contract-deps` (npm ci in tests/contract)")
    port = free_port()
    spec = patched_spec(tmp_path_factory.mktemp("spec"))
    log = (tmp_path_factory.mktemp("prism") / "prism.log").open("w")
    process = subprocess.Popen(
        [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"Prism did not start; see {log.name}")
                time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()


# The account of the spec's examples: Prism's next_page_uri values name it, and the functions
# follow only pages of their own account.
EXAMPLE_ACCOUNT_SID = "AC" + "a" * 32


@pytest.fixture
def twilio_contract(prism_url: str, aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The functions pointed at Prism, with moto's Secrets Manager holding the credentials."""
    aws.put_secret_value(SecretId=SECRET_ID, SecretString=json.dumps(credentials(accountSid=EXAMPLE_ACCOUNT_SID)))
    monkeypatch.setenv("TWILIO_API_BASE_URL", prism_url)
    return prism_url
