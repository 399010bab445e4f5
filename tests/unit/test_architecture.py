"""The layer's shape, as docs/architecture.md states it: who may import whom, what each handler
loads, and functions that fit on a screen. A change that breaks a rule fails here; a change that
means to change a rule changes docs/architecture.md and this file together."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from tests.support import ROOT

LAYER = ROOT / "layers" / "twilio_messaging" / "twilio_messaging"
MODULES = sorted(path.stem for path in LAYER.glob("*.py") if path.stem != "__init__")

# The event envelope, and the composition root.
ADAPTERS = "adapters"
ROOT_MODULE = "execution_environment"
# Domain operations: what the handlers call, knowing nothing of how they were invoked.
OPERATIONS = {
    "sending",
    "message_by_sid",
    "listing",
    "raw_request",
    "webhooks",
    "task_completion",
    "send_request",
    "delivery_state",
    "opt_outs",
    "reconciliation",
    "send_queue",
    "campaigns",
    "campaign_steps",
    "campaign_request",
    "campaign_recipients",
}
# Clients and data access: Twilio, AWS services, the state table, the idempotency store.
CLIENTS = {
    "twilio_client",
    "aws_json",
    "credentials",
    "state_table",
    "event_bus",
    "step_functions",
    "idempotency_store",
    "public_url",
    "delivery_records",
    "suppressions",
    "message_queue",
    "campaign_store",
    "campaign_files",
}
MAX_FUNCTION_LINES = 60


def imports_of(module: str) -> set[str]:
    """The layer modules `module` imports, at module level or inside a function (lazily)."""
    tree = ast.parse((LAYER / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "twilio_messaging":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("twilio_messaging."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("twilio_messaging."))
    return found - {module}


def test_every_module_is_in_one_of_the_documented_roles() -> None:
    shared = set(MODULES) - OPERATIONS - CLIENTS - {ADAPTERS, ROOT_MODULE}
    documented = (ROOT / "docs" / "architecture.md").read_text()
    missing = [module for module in MODULES if f"`{module}`" not in documented]
    assert not missing, f"modules without a line in docs/architecture.md's module map: {missing}"
    assert shared, "shared modules (settings, errors, validation, …)"


def test_only_the_adapters_know_event_shapes() -> None:
    assert {m for m in MODULES if ADAPTERS in imports_of(m)} == set()


def test_no_module_of_the_layer_imports_the_composition_root() -> None:
    """Operations get their clients passed in by the handlers."""
    assert {m for m in MODULES if ROOT_MODULE in imports_of(m)} == set()


def test_the_composition_root_builds_clients_and_imports_no_operation() -> None:
    assert imports_of(ROOT_MODULE) & (OPERATIONS | {ADAPTERS, "send_pacer", "webhook_signature"}) == set()


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_clients_know_no_operation(client: str) -> None:
    """The Twilio client knows nothing of sends (pacing is handed to it as a protocol), the AWS
    clients nothing of webhooks."""
    assert imports_of(client) & (OPERATIONS | {"send_pacer", ADAPTERS}) == set()


@pytest.mark.parametrize("module", MODULES)
def test_functions_fit_on_a_screen(module: str) -> None:
    tree = ast.parse((LAYER / f"{module}.py").read_text())
    long = {
        node.name: node.end_lineno - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    }
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


LOADED = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import app
print(json.dumps(sorted(m.split(".")[1] for m in sys.modules if m.startswith("twilio_messaging."))))
"""
SEND_PATH = {"sending", "send_request", "send_pacer", "idempotency_store", "task_completion", "state_table"}


@pytest.mark.parametrize(
    ("function", "not_loaded"),
    [
        ("get_message", SEND_PATH | {"listing", "raw_request", "webhooks", "delivery_records"}),
        ("list_messages", SEND_PATH | {"message_by_sid", "raw_request", "webhooks"}),
        ("raw_request", SEND_PATH | {"message_by_sid", "listing", "webhooks"}),
        ("webhook", {"sending", "send_request", "send_pacer", "idempotency_store", "listing", "raw_request"}),
        # Starting or reading a campaign sends nothing itself: the state machine's steps do.
        ("campaigns", SEND_PATH - {"send_request", "state_table"} | {"campaign_steps", "twilio_client"}),
        (
            "send_message",
            # The send queue's consumer and its SQS client: only for SQS batches, on first use.
            {
                "message_by_sid",
                "listing",
                "raw_request",
                "webhooks",
                "idempotency_store",
                "send_queue",
                "message_queue",
            },
        ),
    ],
)
def test_each_handler_loads_only_what_it_uses(function: str, not_loaded: set[str]) -> None:
    """At import (a cold start's init phase): each import is paid on every cold start."""
    layer = ROOT / "layers" / "twilio_messaging"
    result = subprocess.run(
        [sys.executable, "-c", LOADED, str(ROOT / "functions" / function), str(layer)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"POWERTOOLS_TRACE_DISABLED": "true", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert loaded & not_loaded == set(), f"{function} loads {sorted(loaded & not_loaded)}"


BATCH_LOADED = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import app
print("aws_lambda_powertools.utilities.batch" in sys.modules)
"""


@pytest.mark.parametrize("function", sorted(path.parent.name for path in (ROOT / "functions").glob("*/app.py")))
def test_no_handler_loads_powertools_batch_at_import(function: str) -> None:
    """Powertools' batch utility (asyncio, its event data classes: about 100 ms) is imported by
    adapters.handle_queue, for an SQS batch only: no cold start of any other invocation pays it."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            BATCH_LOADED,
            str(ROOT / "functions" / function),
            str(ROOT / "layers" / "twilio_messaging"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"POWERTOOLS_TRACE_DISABLED": "true", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"
