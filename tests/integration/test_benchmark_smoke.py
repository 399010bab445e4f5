"""Every benchmark under bench/ still runs: one iteration each (the campaign: 30 recipients,
with its faults), all at once (they only need loopback servers of their own), each exiting 0 and
printing its result lines.

The numbers are not checked: one iteration on a shared CI machine says nothing about speed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
NUMBER = r"-?[\d,]+(\.\d+)?"

ONCE = ["--iterations", "1"]
# script -> its arguments for a smoke run (size: the SDK from this environment, no network)
SCRIPTS: dict[str, list[str]] = {
    "cold_start.py": ONCE,
    "warm_overhead.py": ONCE,
    "bulk.py": ONCE,
    "signature.py": [*ONCE, "--checks", "200"],
    "size.py": [*ONCE, "--sdk", "installed"],
    "campaign.py": ["--recipients", "30", "--latency-ms", "50", "--faults"],
}


def measured_functions() -> list[str]:
    """The functions the benchmarks find: built ones after `sam build`, else those in functions/."""
    sys.path.insert(0, str(BENCH))
    try:
        import harness

        return harness.locate_code().handlers()
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def outputs() -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    processes = {
        script: subprocess.Popen(
            [sys.executable, str(BENCH / script), *arguments],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for script, arguments in SCRIPTS.items()
    }
    results = {}
    for script, process in processes.items():
        try:
            stdout, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        results[script] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    yield results


def run(outputs: dict[str, subprocess.CompletedProcess[str]], script: str) -> str:
    result = outputs[script]
    assert result.returncode == 0, f"{script} exited {result.returncode}:\n{result.stdout}\n{result.stderr[-3000:]}"
    return result.stdout


def rows(output: str, first: str, numbers: int) -> list[str]:
    """Lines of a result table whose first cell is `first`, followed by at least `numbers` numbers."""
    pattern = re.compile(rf"^{re.escape(first)}(\s+{NUMBER}){{{numbers},}}\b")
    return [line for line in output.splitlines() if pattern.match(line)]


def test_cold_start(outputs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    output = run(outputs, "cold_start.py")
    for mode in ("cached", "deployed"):
        assert f"bytecode: {mode}" in output, output
    functions = measured_functions()
    assert {"send_message", "get_message"} <= set(functions)
    for name in functions:
        assert len(rows(output, name, 7)) == 2, f"no cold-start row for {name} in each table:\n{output}"
    assert len(rows(output, "send_message+key", 7)) == 2, output
    assert "python -X importtime" in output
    assert rows(output, "twilio_messaging", 2), output


def test_warm_overhead(outputs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    output = run(outputs, "warm_overhead.py")
    operations = ["send", "get"] + (["webhook"] if "webhook" in measured_functions() else [])
    for operation in operations:
        assert rows(output, operation, 3), f"no warm-overhead row for {operation}:\n{output}"


def test_bulk(outputs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    output = run(outputs, "bulk.py")
    for limit in ("5", "10", "20", "50"):
        assert rows(output, limit, 2), f"no bulk row for N={limit}:\n{output}"


def test_signature(outputs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    output = run(outputs, "signature.py")
    for check in ("RequestValidator", "floor"):
        assert rows(output, check, 2), f"no throughput row for {check}:\n{output}"
    assert rows(output, "layer", 2) or re.search(r"^layer\s+pending", output, re.MULTILINE), output


def test_size(outputs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    output = run(outputs, "size.py")
    for package in ("our layer", "function send_message", "twilio SDK + dependencies"):
        assert rows(output, package, 2), f"no size row for {package}:\n{output}"
    assert re.search(rf"^ratio: .*\s{NUMBER}\s+{NUMBER}$", output, re.MULTILINE), output


def test_campaign(outputs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    last = run(outputs, "campaign.py").splitlines()[-1]
    assert re.fullmatch(rf"campaign recipients=30 sent=30 duplicates=0 lost=0 throughput={NUMBER}% of limit=10", last)
