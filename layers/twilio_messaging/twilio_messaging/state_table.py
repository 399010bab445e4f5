"""The DynamoDB state table (STATE_TABLE_NAME): webhook de-duplication records, notes of keyed
sends, and the task tokens of `.waitForTaskToken` sends; delivery records (delivery_records) and
opt-outs (suppressions) build on its `call`. Partition key `id`, TTL attribute `expiration`, the
layout Powertools idempotency uses too; each kind of record has its own id prefix
(docs/architecture.md, "The state table").

Every write that decides something is one conditional or atomic DynamoDB operation, so that
concurrent invocations agree on who processes a webhook and who completes a task.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from twilio_messaging.aws_json import DYNAMODB, AwsCallFailed, AwsJsonClient, client_for
from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import ConfigurationError

WEBHOOK_RECORD_DAYS = 7  # Twilio's retries and late duplicates arrive well within this
TASK_RECORD_DAYS = 30  # a message's final status normally arrives within hours
IN_PROGRESS_SECONDS = 60  # longer than the webhook function may run: then its claim is stale

Claim = Literal["claimed", "done", "in_progress"]


@dataclass(frozen=True)
class TaskRecord:
    """What the table knows of one message sent with a task token."""

    task_token: str | None
    final_status: dict[str, Any] | None  # the status detail of the first final status seen
    completed: bool


class StateTable:
    def __init__(self, table_name: str, client: AwsJsonClient | None = None) -> None:
        if not table_name:
            raise ConfigurationError("STATE_TABLE_NAME is not set")
        self.table_name = table_name
        self._client = client or client_for(DYNAMODB, "DYNAMODB")

    def _call(self, operation: str, payload: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        try:
            return self._client.call_within(operation, {"TableName": self.table_name, **payload}, deadline)
        except AwsCallFailed as error:
            raise error.domain_error(f"the state table ({operation})") from None

    def call(self, operation: str, payload: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        """One DynamoDB call on this table (the other record kinds' modules build on it)."""
        return self._call(operation, payload, deadline)

    def client_call(self, operation: str, payload: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        """A DynamoDB call that names its tables itself (BatchGetItem)."""
        try:
            return self._client.call_within(operation, payload, deadline)
        except AwsCallFailed as error:
            raise error.domain_error(f"the state table ({operation})") from None

    def conditional(self, operation: str, payload: dict[str, Any], deadline: Deadline) -> dict[str, Any] | None:
        """A conditional write: its answer, or None when its condition did not hold."""
        try:
            return self._client.call_within(operation, {"TableName": self.table_name, **payload}, deadline)
        except AwsCallFailed as error:
            if error.error_code == "ConditionalCheckFailedException":
                return None
            raise error.domain_error(f"the state table ({operation})") from None

    # Webhook de-duplication ------------------------------------------------------------------

    def claim_webhook(self, key: str, deadline: Deadline) -> Claim:
        """Take the right to process one webhook: "claimed" for the first caller, "done" once it
        was processed, "in_progress" while another invocation holds a claim that is not stale."""
        now = int(time.time())
        item = {
            "id": {"S": f"webhook#{key}"},
            "status": {"S": "IN_PROGRESS"},
            "expiration": {"N": str(now + WEBHOOK_RECORD_DAYS * 86400)},
            "in_progress_expiration": {"N": str(now + IN_PROGRESS_SECONDS)},
        }
        try:
            self._client.call_within(
                "PutItem",
                {
                    "TableName": self.table_name,
                    "Item": item,
                    # Absent, expired but not yet swept by TTL, or a stale claim of a crashed run.
                    "ConditionExpression": "attribute_not_exists(id) OR expiration < :now "
                    "OR (#status = :progress AND in_progress_expiration < :now)",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {":now": {"N": str(now)}, ":progress": {"S": "IN_PROGRESS"}},
                },
                deadline,
            )
            return "claimed"
        except AwsCallFailed as error:
            if error.error_code != "ConditionalCheckFailedException":
                raise error.domain_error("the state table (PutItem)") from None
        found = self._call("GetItem", {"Key": {"id": {"S": f"webhook#{key}"}}, "ConsistentRead": True}, deadline)
        status = found.get("Item", {}).get("status", {}).get("S")
        return "done" if status == "COMPLETED" else "in_progress"

    def finish_webhook(self, key: str, deadline: Deadline) -> None:
        self._call(
            "UpdateItem",
            {
                "Key": {"id": {"S": f"webhook#{key}"}},
                "UpdateExpression": "SET #status = :done REMOVE in_progress_expiration",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":done": {"S": "COMPLETED"}},
            },
            deadline,
        )

    def release_webhook(self, key: str, deadline: Deadline) -> None:
        """Forget a claim whose processing failed, so that Twilio's next delivery is processed."""
        self._call("DeleteItem", {"Key": {"id": {"S": f"webhook#{key}"}}}, deadline)

    # Keyed sends whose outcome is not known -------------------------------------------------
    # Noted before the POST and cleared after Twilio's definite answer, so that a send cut off
    # at any point (a timeout, a 5xx, the function killed mid-call) leaves the note behind, and
    # a retry with the same key first looks for the message on Twilio.

    def note_send_attempt(self, marker: str, attempted_at: float, deadline: Deadline) -> float | None:
        """Note an attempt; the time of an earlier attempt whose outcome is still unknown, or None."""
        answer = self._call(
            "UpdateItem",
            {
                "Key": {"id": {"S": f"send-unknown#{marker}"}},
                # The earliest attempt counts: a message it sent may appear any time after it.
                "UpdateExpression": "SET attempted_at = if_not_exists(attempted_at, :at), expiration = :expiration",
                "ExpressionAttributeValues": {
                    ":at": {"N": str(int(attempted_at))},
                    ":expiration": {"N": str(int(time.time()) + WEBHOOK_RECORD_DAYS * 86400)},
                },
                "ReturnValues": "ALL_OLD",  # the item before: an earlier attempt_at, if any
            },
            deadline,
        )
        earlier = answer.get("Attributes", {}).get("attempted_at", {}).get("N")
        return float(earlier) if earlier else None

    def clear_send_attempt(self, marker: str, deadline: Deadline) -> None:
        self._call("DeleteItem", {"Key": {"id": {"S": f"send-unknown#{marker}"}}}, deadline)

    # Task tokens -------------------------------------------------------------------------------
    # The send stores the token and the webhook the first final status, each with one atomic
    # update that answers the whole record: whichever comes second sees both and completes the
    # task, so a status callback that beats the send's own answer loses nothing.

    def _update_task(self, message_sid: str, expression: str, values: dict[str, Any], deadline: Deadline) -> TaskRecord:
        expiration = {":expiration": {"N": str(int(time.time()) + TASK_RECORD_DAYS * 86400)}}
        answer = self._call(
            "UpdateItem",
            {
                "Key": {"id": {"S": f"task#{message_sid}"}},
                "UpdateExpression": f"{expression}, expiration = :expiration",
                "ExpressionAttributeValues": {**values, **expiration},
                "ReturnValues": "ALL_NEW",
            },
            deadline,
        )
        return _task_record(answer.get("Attributes", {}))

    def store_task_token(self, message_sid: str, task_token: str, deadline: Deadline) -> TaskRecord:
        return self._update_task(message_sid, "SET task_token = :token", {":token": {"S": task_token}}, deadline)

    def store_final_status(self, message_sid: str, detail: dict[str, Any], deadline: Deadline) -> TaskRecord:
        """Keeps the first final status: a later `read` after `delivered` changes nothing."""
        return self._update_task(
            message_sid,
            "SET final_status = if_not_exists(final_status, :status)",
            {":status": {"S": json.dumps(detail)}},
            deadline,
        )

    def claim_task_completion(self, message_sid: str, deadline: Deadline) -> bool:
        """True for exactly one caller: the one that must now complete the task."""
        try:
            self._client.call_within(
                "UpdateItem",
                {
                    "TableName": self.table_name,
                    "Key": {"id": {"S": f"task#{message_sid}"}},
                    "UpdateExpression": "SET completed_at = :now",
                    "ConditionExpression": "attribute_exists(task_token) AND attribute_not_exists(completed_at)",
                    "ExpressionAttributeValues": {":now": {"N": str(int(time.time()))}},
                },
                deadline,
            )
            return True
        except AwsCallFailed as error:
            if error.error_code == "ConditionalCheckFailedException":
                return False
            raise error.domain_error("the state table (UpdateItem)") from None

    def release_task_completion(self, message_sid: str, deadline: Deadline) -> None:
        self._call(
            "UpdateItem",
            {"Key": {"id": {"S": f"task#{message_sid}"}}, "UpdateExpression": "REMOVE completed_at"},
            deadline,
        )


def _task_record(attributes: dict[str, Any]) -> TaskRecord:
    final = attributes.get("final_status", {}).get("S")
    return TaskRecord(
        task_token=attributes.get("task_token", {}).get("S"),
        final_status=json.loads(final) if final else None,
        completed="completed_at" in attributes,
    )
