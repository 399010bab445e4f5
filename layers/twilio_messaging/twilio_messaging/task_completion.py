"""Completing Step Functions `.waitForTaskToken` tasks when a message reaches a final status.

The send stores its task token and the webhook the first final status (state_table); the one of
the two that finds both claims the completion and calls Step Functions. A failed call releases
the claim, so that a later status callback or Twilio's retry completes the task instead.
"""

from __future__ import annotations

from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import TwilioMessagingError
from twilio_messaging.observability import count, logger
from twilio_messaging.state_table import StateTable, TaskRecord
from twilio_messaging.step_functions import SUCCESS_STATUSES, StepFunctions

FAILURE_STATUSES = frozenset({"undelivered", "failed", "canceled"})
FINAL_STATUSES = SUCCESS_STATUSES | FAILURE_STATUSES


def settle_task(
    table: StateTable, step_functions: StepFunctions, message_sid: str, record: TaskRecord, deadline: Deadline
) -> bool:
    """Complete the task if `record` holds both its token and a final status and nobody else
    completes it. True when this call completed it."""
    if not record.task_token or not record.final_status or record.completed:
        return False
    if not table.claim_task_completion(message_sid, deadline):
        return False
    try:
        step_functions.complete(record.task_token, record.final_status, deadline)
    except Exception:
        table.release_task_completion(message_sid, deadline)
        raise
    return True


def register_task(
    table: StateTable, step_functions: StepFunctions, message_sid: str, task_token: str, deadline: Deadline
) -> None:
    """After a send that carries a task token: store the token against the message, and complete
    the task at once when its final status arrived first. The message is sent whatever happens
    here, so a failure is logged, not raised: raising would make a workflow retry the send."""
    try:
        record = table.store_task_token(message_sid, task_token, deadline)
        settle_task(table, step_functions, message_sid, record, deadline)
    except TwilioMessagingError as error:
        count("TaskRegistrationFailures")
        logger.error(
            "Message sent, but its task may wait until its timeout",
            extra={"sid": message_sid, "errorType": type(error).__name__, "error": error.to_dict()},
        )
