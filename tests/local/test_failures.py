"""The local stack fails fast and clearly, and starts nothing, when it cannot run: a port in use,
Twilio's description missing. Run as users run it (`python -m local.stack` / `local.demo`), in a child process."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.processes import LocalStackError, ensure_port_free
from tests.support import ROOT


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def run(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_ensure_port_free_names_the_port_and_the_option(busy_port: int) -> None:
    with pytest.raises(LocalStackError, match=f"127.0.0.1:{busy_port}: the port is in use.*--moto-port"):
        ensure_port_free("127.0.0.1", busy_port, "moto_server", "--moto-port")


@pytest.mark.parametrize("module", ["local.stack", "local.demo"])
def test_api_port_in_use(busy_port: int, module: str) -> None:
    result = run(module, "--port", str(busy_port))
    assert result.returncode == 1, result.stderr
    assert f"127.0.0.1:{busy_port}: the port is in use" in result.stderr


def test_moto_port_in_use(busy_port: int) -> None:
    result = run("local.stack", "--port", "0", "--twilio-url", "http://127.0.0.1:9", "--moto-port", str(busy_port))
    assert result.returncode == 1 and "moto_server cannot listen" in result.stderr


def test_twilios_description_missing(tmp_path: Path) -> None:
    """The simulator validates against Twilio's description: without it (no `make contract-deps`
    yet) the local stack says what to run, before anything listens."""
    from local.twilio_simulator import Simulator, SimulatorConfig

    simulator = Simulator(SimulatorConfig(spec_path=tmp_path / "twilio_api_v2010.json"))
    with pytest.raises(LocalStackError, match="make contract-deps"):
        simulator.start()
