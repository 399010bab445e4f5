"""The whole loop through the local stack as `make local` runs it (a child process): a send over
HTTP, the Twilio simulator's signed status callbacks through the local webhook, the events on the
bus, the example workflow executed by moto until the callback completes its task, and an inbound
message. Every request the functions make must be inside Twilio's OpenAPI description."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from local.moto_hooks import wait_for_execution
from local.moto_stack import client
from tests.support import ROOT, StackProcess

TO = "+15558675310"
FROM = "+15005550006"
OTHER = "+15558675399"  # a phone that opts out
WORKFLOW = "SendAndWaitForDeliveryStateMachine"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    process = StackProcess(None, tmp_path_factory.mktemp("loop"))
    try:
        yield process.wait_ready()
    finally:
        status = process.stop()
    assert status == 0


class Bus:
    """The events the stack's capture rule copied to its queue, read once each."""

    def __init__(self, stack: dict[str, Any]) -> None:
        self.sqs = client("sqs", stack["aws_endpoint"])
        self.queue = stack["capture_queue_url"]
        self.seen: list[dict[str, Any]] = []

    def about(self, sid: str, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Events about message `sid`, once `count` of them arrived (or `timeout` passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            for message in answer.get("Messages", []):
                self.seen.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
            found = [e for e in self.seen if e["detail"].get("messageSid") == sid]
            if len(found) >= count:
                return found
            time.sleep(0.1)
        return [e for e in self.seen if e["detail"].get("messageSid") == sid]


@pytest.fixture(scope="module")
def bus(stack: dict[str, Any]) -> Bus:
    return Bus(stack)


def admin(stack: dict[str, Any], method: str, path: str, body: Any = None) -> Any:
    answer = requests.request(method, f"{stack['twilio_url']}/__simulator/{path}", json=body, timeout=10)
    answer.raise_for_status()
    return answer.json() if answer.content else None


def run_workflow(stack: dict[str, Any], to: str) -> dict[str, Any]:
    sfn = client("stepfunctions", stack["aws_endpoint"])
    execution = sfn.start_execution(
        stateMachineArn=stack["state_machines"][WORKFLOW],
        name=uuid.uuid4().hex,
        input=json.dumps({"to": to, "body": "Your table is ready."}),
    )
    return wait_for_execution(sfn, execution["executionArn"], timeout=30)


def test_a_send_reports_its_statuses_to_the_bus_through_signed_callbacks(stack: dict[str, Any], bus: Bus) -> None:
    answer = requests.post(f"{stack['api_url']}/messages", json={"to": TO, "body": "Hi"}, timeout=30)
    assert answer.status_code == 201, answer.text
    message = answer.json()
    assert (message["to"], message["body"], message["status"]) == (TO, "Hi", "queued")  # what was sent
    events = bus.about(message["sid"], 3)
    assert [e["detail"]["status"] for e in events] == ["sending", "sent", "delivered"]
    fetched = requests.get(f"{stack['api_url']}/messages/{message['sid']}", timeout=30).json()
    assert fetched["status"] == "delivered"


def test_the_example_workflow_succeeds_when_the_message_is_delivered(stack: dict[str, Any]) -> None:
    outcome = run_workflow(stack, TO)
    assert outcome["status"] == "SUCCEEDED", outcome
    assert json.loads(outcome["output"])["status"] == "delivered"


def test_the_example_workflow_fails_for_an_undelivered_recipient(stack: dict[str, Any]) -> None:
    outcome = run_workflow(stack, "+15005550100")  # the simulator's undelivered (30003) number
    assert (outcome["status"], outcome["error"]) == ("FAILED", "MessageDeliveryFailed"), outcome
    assert json.loads(outcome["cause"])["errorCode"] == 30003


@pytest.mark.parametrize("mode", ["reordered", "repeated"])
def test_reordered_or_repeated_callbacks_still_complete_the_workflow_once(
    stack: dict[str, Any], bus: Bus, mode: str
) -> None:
    admin(stack, "POST", "callback-mode", {"mode": mode})
    try:
        outcome = run_workflow(stack, TO)
        sid = json.loads(outcome["output"])["messageSid"]
        history = history_of(stack, sid, reports=4)  # queued (the send's answer) and 3 callbacks
        events = bus.about(sid, 3, timeout=15 if mode == "repeated" else 2)
    finally:
        admin(stack, "POST", "callback-mode", {"mode": "ordered"})
    assert outcome["status"] == "SUCCEEDED", outcome
    statuses = [e["detail"]["status"] for e in events]
    if mode == "repeated":
        assert sorted(statuses) == ["delivered", "sending", "sent"]  # each status published once
    else:  # a status that arrives after a later one is kept in the history, never published
        assert "delivered" in statuses and len(set(statuses)) == len(statuses)
        late = {e["status"] for e in history["events"] if not e["applied"]}
        assert late and late.isdisjoint(statuses) and history["status"] == "delivered"


def history_of(stack: dict[str, Any], sid: str, reports: int, timeout: float = 15.0) -> dict[str, Any]:
    """The message's delivery history, once it holds `reports` reports (or `timeout` passed)."""
    deadline = time.monotonic() + timeout
    while True:
        history: dict[str, Any] = requests.get(f"{stack['api_url']}/messages/{sid}/events", timeout=30).json()
        if len(history.get("events") or []) >= reports or time.monotonic() > deadline:
            return history
        time.sleep(0.1)


def test_an_inbound_message_from_the_cli_reaches_the_bus(stack: dict[str, Any], bus: Bus) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "local.twilio_simulator", "inbound", "--simulator", stack["twilio_url"]),
            *("--from", OTHER, "--to", FROM, "--body", "STOP"),  # not TO: the stack goes on sending to TO
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    sid = next(m["sid"] for m in reversed(admin(stack, "GET", "messages")) if m.get("direction") == "inbound")
    received, opted_out = sorted(bus.about(sid, 2), key=lambda e: e["detail-type"])
    assert received["detail-type"] == "Message Received"
    assert (received["detail"]["from"], received["detail"]["body"]) == (OTHER, "STOP")
    assert opted_out["detail-type"] == "Recipient Opted Out"
    assert (opted_out["detail"]["recipient"], opted_out["detail"]["scope"]) == (OTHER, FROM)


def test_every_request_the_functions_made_was_inside_twilios_description(stack: dict[str, Any]) -> None:
    assert admin(stack, "GET", "invalid-requests") == []
    counters = admin(stack, "GET", "counters")
    assert counters["peak_concurrency"] >= 1


def test_the_demo_tells_the_whole_story(tmp_path: Any) -> None:
    """`make demo`, on a free port: every step answers as expected, and it ends with its summary."""
    log = tmp_path / "functions.log"
    result = subprocess.run(
        [sys.executable, "-m", "local.demo", "--port", "0", "--function-log", str(log)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = result.stdout
    assert "Demo finished:" in output and "every answer as expected" in output
    assert "Message Status Changed" in output and "Message Received" in output
    assert "Recipient Opted Out" in output and "RECIPIENT_SUPPRESSED" in output
    assert "execution SUCCEEDED" in output and "execution FAILED" in output
    assert "workflows SUCCEEDED and FAILED" in output.splitlines()[-1]
