"""The moto internals the local stack relies on (local/moto_hooks.py), pinned: a moto upgrade that
moves or changes one of them fails here, with the hook's name, rather than in a demo."""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from local.moto_hooks import atomic_dynamodb, enable_execution, plug, wait_for_execution

ROLE = "arn:aws:iam::123456789012:role/test"


def test_the_hooked_moto_internals_are_where_the_hooks_expect_them() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.eval import states, variable_store
    from moto.stepfunctions.parser.asl.jsonata import jsonata
    from moto.stepfunctions.responses import StepFunctionResponse

    assert list(inspect.signature(lambda_eval_utils._invoke_lambda_function).parameters)[:3] == [
        "parameters",
        "region",
        "state_credentials",
    ]
    assert hasattr(jsonata, "_eval_jsonata"), "moto's JSONata hook (a module global it calls)"
    assert hasattr(states, "encode_jsonata_variable_declarations")
    assert hasattr(variable_store, "encode_jsonata_variable_declarations")
    assert callable(StepFunctionResponse.send_task_failure)
    for name in ("put_item", "update_item", "delete_item", "get_item", "transact_write_items", "batch_write_item"):
        assert callable(getattr(DynamoDBBackend, name)), name
    from moto.moto_server import werkzeug_app

    assert "backends.list_of_moto_modules()" in inspect.getsource(werkzeug_app.DomainDispatcherApplication)


@pytest.fixture
def sfn() -> Iterator[Any]:
    import boto3
    from moto import mock_aws
    from moto.core.config import default_user_config

    executing = default_user_config["stepfunctions"]["execute_state_machine"]
    with mock_aws():
        enable_execution()
        yield boto3.client("stepfunctions", region_name="us-east-1")
    default_user_config["stepfunctions"]["execute_state_machine"] = executing


class Raised(Exception):
    """Stands for a product error type: its class name is what Catch matches."""


def invoke(name: str, event: Any) -> Any:
    if event.get("fail"):
        raise Raised(json.dumps({"code": "X"}))
    return {"function": name.rsplit(":", 1)[-1], "doubled": event["x"] * 2, "quoted": event.get("quoted")}


JSONATA_MACHINE = {
    "QueryLanguage": "JSONata",
    "StartAt": "Assign",
    "States": {
        # A variable holding quotes and backslashes (a recipient's name): moto's own encoder breaks.
        "Assign": {"Type": "Pass", "Assign": {"quoted": "{% $states.input.text %}"}, "Next": "Call"},
        "Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:Doubler",
                "Payload": "{% $merge([$states.input, {'quoted': $quoted}]) %}",
            },
            "Output": "{% $states.result.Payload %}",
            "Catch": [{"ErrorEquals": ["Raised"], "Next": "Caught", "Output": "{% $states.errorOutput %}"}],
            "End": True,
        },
        "Caught": {"Type": "Fail", "Error": "Caught", "Cause": "{% $states.input.Cause %}"},
    },
}


def run(sfn: Any, definition: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    machine = sfn.create_state_machine(name=uuid.uuid4().hex, definition=json.dumps(definition), roleArn=ROLE)
    execution = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], name=uuid.uuid4().hex, input=json.dumps(payload)
    )
    return wait_for_execution(sfn, execution["executionArn"], timeout=20)


def test_jsonata_lambda_tasks_and_assigned_strings_run(sfn: Any) -> None:
    plug(invoke)
    outcome = run(sfn, JSONATA_MACHINE, {"x": 21, "text": 'say "hi" \\ bye'})
    assert outcome["status"] == "SUCCEEDED", outcome
    answer = json.loads(outcome["output"])
    assert (answer["function"], answer["doubled"], answer["quoted"]) == ("Doubler", 42, 'say "hi" \\ bye')


def test_an_error_raised_by_a_handler_is_caught_by_its_class_name(sfn: Any) -> None:
    plug(invoke)
    outcome = run(sfn, JSONATA_MACHINE, {"x": 1, "text": "t", "fail": True})
    assert outcome["status"] == "FAILED" and outcome["error"] == "Caught"
    assert json.loads(outcome["cause"])["errorType"] == "Raised"


WAITING_MACHINE = {
    "QueryLanguage": "JSONata",
    "StartAt": "Wait",
    "States": {
        "Wait": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Arguments": {"FunctionName": "Keeper", "Payload": {"token": "{% $states.context.Task.Token %}"}},
            "End": True,
        }
    },
}


def test_send_task_failure_keeps_its_cause(sfn: Any) -> None:
    tokens: list[str] = []
    plug(lambda name, event: tokens.append(event["token"]) or {})
    machine = sfn.create_state_machine(name="waiting", definition=json.dumps(WAITING_MACHINE), roleArn=ROLE)
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="one", input="{}")
    for _ in range(200):
        if tokens:
            break
        wait_for_execution(sfn, execution["executionArn"], timeout=0.05)
    sfn.send_task_failure(taskToken=tokens[0], error="MessageDeliveryFailed", cause='{"status": "undelivered"}')
    outcome = wait_for_execution(sfn, execution["executionArn"], timeout=20)
    assert (outcome["status"], outcome["error"]) == ("FAILED", "MessageDeliveryFailed")
    assert json.loads(outcome["cause"]) == {"status": "undelivered"}


def test_conditional_writes_are_atomic_across_threads() -> None:
    """Fifty threads race to create one item with attribute_not_exists: exactly one wins."""
    import threading

    import boto3
    from botocore.exceptions import ClientError
    from moto import mock_aws

    with mock_aws(), atomic_dynamodb():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        won: list[int] = []

        def claim(index: int) -> None:
            try:
                dynamodb.put_item(
                    TableName="t",
                    Item={"id": {"S": "one"}, "by": {"N": str(index)}},
                    ConditionExpression="attribute_not_exists(id)",
                )
                won.append(index)
            except ClientError:
                pass

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(won) == 1


def test_the_server_dispatches_without_listing_motos_directories_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import backends
    from moto.server import ThreadedMotoServer

    from local.moto_hooks import quick_dispatch

    listing = backends.list_of_moto_modules
    listed: list[int] = []
    monkeypatch.setattr(backends, "list_of_moto_modules", lambda: listed.append(1) or listing())  # undone after
    quick_dispatch()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        sqs = boto3.client(
            "sqs",
            region_name="us-east-1",
            endpoint_url=f"http://{host}:{port}",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert sqs.create_queue(QueueName="dispatched")["QueueUrl"].endswith("/dispatched")
        assert sqs.list_queues()["QueueUrls"][0].endswith("/dispatched")
    finally:
        server.stop()
    assert listed == [1], "listed once, by quick_dispatch, not for each request"
