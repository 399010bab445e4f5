"""The example workflow (statemachines/send_and_wait_for_delivery.asl.json) executed by moto: its
JSONata, its `.waitForTaskToken` Lambda task served by the real send_message handler, and the
webhook completing the task from Twilio's status callbacks (local/moto_hooks.py plugs it in)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local.moto_hooks import enable_execution, plug, wait_for_execution
from tests.support import (
    ACCOUNT_SID,
    ROOT,
    LambdaContext,
    load_handler,
    signed_webhook_event,
    twilio_message,
)

MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
FUNCTIONS = {"SendMessageFunction": "send_message", "WebhookFunction": "webhook"}
# The URL events/webhook/ files are signed for, as the deployed API would be.
PUBLIC_BASE_URL = "https://abc123defg.execute-api.us-east-1.amazonaws.com/prod"


def invoke(function_name_or_arn: str, event: Any) -> Any:
    """A Lambda task's invoke: the function's own handler, as the deployed function runs it."""
    return load_handler(FUNCTIONS[function_name_or_arn.rsplit(":", 1)[-1]]).lambda_handler(event, LambdaContext())


@dataclass
class Workflow:
    sfn: Any
    machine: str

    def start(self, payload: dict[str, Any]) -> str:
        execution = self.sfn.start_execution(
            stateMachineArn=self.machine, name=uuid.uuid4().hex, input=json.dumps(payload)
        )
        return str(execution["executionArn"])

    def waiting(self, execution: str) -> bool:
        """True once the task is waiting for its token (the send went out)."""
        for _ in range(250):
            events = self.sfn.get_execution_history(executionArn=execution)["events"]
            if any(e["type"] == "TaskSubmitted" for e in events):
                return True
            wait_for_execution(self.sfn, execution, timeout=0.02)
        return False

    def outcome(self, execution: str) -> dict[str, Any]:
        return wait_for_execution(self.sfn, execution, timeout=20)


@pytest.fixture
def workflow(state_table: str, twilio: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workflow]:
    import boto3
    from moto.core.config import default_user_config

    monkeypatch.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC_BASE_URL)
    monkeypatch.setenv("EVENT_BUS_NAME", "default")
    enable_execution()
    plug(invoke)
    definition = (ROOT / "statemachines" / "send_and_wait_for_delivery.asl.json").read_text()
    definition = definition.replace(
        "${SendMessageFunctionArn}", "arn:aws:lambda:us-east-1:123456789012:function:SendMessageFunction"
    )
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    machine = sfn.create_state_machine(
        name="send-and-wait", definition=definition, roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    yield Workflow(sfn, machine)


def accept(twilio: Any, sid: str) -> None:
    twilio.expect_oneshot_request(MESSAGES, method="POST").respond_with_json(twilio_message(sid=sid), status=201)


def callback(sid: str, status: str, error_code: str | None = None) -> int:
    event = signed_webhook_event(message_sid=sid, status=status, error_code=error_code)
    answer: dict[str, Any] = load_handler("webhook").lambda_handler(event, LambdaContext())
    return int(answer["statusCode"])


def test_delivered_ends_the_workflow_succeeded(workflow: Workflow, twilio: Any) -> None:
    sid = "SM" + uuid.uuid4().hex
    accept(twilio, sid)
    execution = workflow.start({"to": "+15558675310", "body": "Your order #1234 has shipped."})
    assert workflow.waiting(execution), "the send never went out"
    form = dict(twilio.log[0][0].form)
    assert form["StatusCallback"] == f"{PUBLIC_BASE_URL}/webhooks/twilio"
    assert callback(sid, "sent") == 200
    assert callback(sid, "delivered") == 200
    outcome = workflow.outcome(execution)
    assert outcome["status"] == "SUCCEEDED", outcome
    detail = json.loads(outcome["output"])
    assert (detail["messageSid"], detail["status"]) == (sid, "delivered")


def test_undelivered_ends_in_the_delivery_failed_state(workflow: Workflow, twilio: Any) -> None:
    sid = "SM" + uuid.uuid4().hex
    accept(twilio, sid)
    execution = workflow.start({"to": "+15558675310", "body": "Your order #1234 has shipped."})
    assert workflow.waiting(execution)
    assert callback(sid, "undelivered", "30003") == 200
    outcome = workflow.outcome(execution)
    assert (outcome["status"], outcome["error"]) == ("FAILED", "MessageDeliveryFailed")
    assert json.loads(outcome["cause"]) == {
        "messageSid": sid,
        "status": "undelivered",
        "errorCode": 30003,
        "to": "+15558675310",
    }
    history = workflow.sfn.get_execution_history(executionArn=execution)["events"]
    failed_state = [e for e in history if e["type"] == "FailStateEntered"]
    assert failed_state and failed_state[0]["stateEnteredEventDetails"]["name"] == "Delivery failed"


def test_reordered_and_repeated_callbacks_complete_the_task_once(
    workflow: Workflow, twilio: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = "SM" + uuid.uuid4().hex
    accept(twilio, sid)
    execution = workflow.start({"to": "+15558675310", "body": "Your order #1234 has shipped."})
    assert workflow.waiting(execution)
    for status in ("delivered", "sent", "delivered", "sending", "delivered"):
        assert callback(sid, status) == 200
    outcome = workflow.outcome(execution)
    assert outcome["status"] == "SUCCEEDED"
    completed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"TasksCompleted"' in line]
    assert len(completed) == 1
