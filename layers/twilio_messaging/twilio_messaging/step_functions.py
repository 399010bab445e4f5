"""Completing Step Functions `.waitForTaskToken` tasks: SendTaskSuccess with the message's final
status detail, or SendTaskFailure with `MessageDeliveryFailed`."""

from __future__ import annotations

import json
from typing import Any

from twilio_messaging.aws_json import STEP_FUNCTIONS, AwsCallFailed, AwsJsonClient, client_for
from twilio_messaging.deadline import Deadline
from twilio_messaging.observability import count, logger

SUCCESS_STATUSES = frozenset({"delivered", "read"})
DELIVERY_FAILED_ERROR = "MessageDeliveryFailed"
# The task is over (completed, timed out, or its execution stopped): nothing left to complete.
TASK_GONE = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


class StepFunctions:
    def __init__(self, client: AwsJsonClient | None = None) -> None:
        self._client = client or client_for(STEP_FUNCTIONS, "SFN")

    def complete(self, task_token: str, detail: dict[str, Any], deadline: Deadline) -> None:
        status = str(detail.get("status") or "")
        if status in SUCCESS_STATUSES:
            operation = "SendTaskSuccess"
            payload: dict[str, Any] = {"taskToken": task_token, "output": json.dumps(detail)}
        else:
            operation = "SendTaskFailure"
            cause = {k: detail.get(k) for k in ("messageSid", "status", "errorCode", "to")}
            payload = {"taskToken": task_token, "error": DELIVERY_FAILED_ERROR, "cause": json.dumps(cause)}
        try:
            self._client.call_within(operation, payload, deadline)
        except AwsCallFailed as error:
            if error.error_code in TASK_GONE:
                logger.warning("The task waiting for this message is gone", extra={"reason": error.error_code})
                return
            if error.error_code == "AccessDeniedException":
                # A token of a state machine this function may not complete (TaskTokenStateMachineArns):
                # retrying cannot help, and the status callback must still be published.
                count("TaskCompletionsRefused")
                logger.error("Not allowed to complete the task waiting for this message", extra={"status": status})
                return
            raise error.domain_error("Step Functions") from None
        count("TasksCompleted")
        logger.info("Task completed", extra={"operation": operation, "sid": detail.get("messageSid"), "status": status})

    # Campaign executions ---------------------------------------------------------------------

    def start_execution(self, state_machine_arn: str, name: str, payload: dict[str, Any], deadline: Deadline) -> str:
        """Start `name` (once: a name is an execution's for 90 days); its ARN, started now or before."""
        try:
            answer = self._client.call_within(
                "StartExecution",
                {"stateMachineArn": state_machine_arn, "name": name, "input": json.dumps(payload)},
                deadline,
            )
        except AwsCallFailed as error:
            if error.error_code == "ExecutionAlreadyExists":
                return execution_arn(state_machine_arn, name)
            raise error.domain_error("Step Functions (StartExecution)") from None
        return str(answer["executionArn"])

    def execution_status(self, arn: str, deadline: Deadline) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE; None if unknown."""
        try:
            answer = self._client.call_within("DescribeExecution", {"executionArn": arn}, deadline)
        except AwsCallFailed as error:
            if error.error_code == "ExecutionDoesNotExist":
                return None
            raise error.domain_error("Step Functions (DescribeExecution)") from None
        return str(answer.get("status") or "") or None

    def stop_execution(self, arn: str, cause: str, deadline: Deadline) -> None:
        try:
            self._client.call_within("StopExecution", {"executionArn": arn, "cause": cause}, deadline)
        except AwsCallFailed as error:
            if error.error_code != "ExecutionDoesNotExist":
                raise error.domain_error("Step Functions (StopExecution)") from None


def execution_arn(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
