"""Sending messages to SQS queues (SendMessage, JSON protocol): the send queue's delayed copies of
throttled events and its dead letters. Receiving is the event source mapping's job, not ours."""

from __future__ import annotations

from collections.abc import Mapping

from twilio_messaging.aws_json import AwsCallFailed, AwsJsonClient
from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import ConfigurationError

MAX_DELAY_SECONDS = 900  # SQS's longest DelaySeconds


class MessageQueue:
    def __init__(self, client: AwsJsonClient) -> None:
        self._client = client

    def send(
        self,
        queue_url: str,
        body: str,
        deadline: Deadline,
        *,
        what: str,
        delay_seconds: int = 0,
        attributes: Mapping[str, str | int] | None = None,
    ) -> str:
        """The new message's id. `what` names the queue in errors. Integer attributes are SQS
        Numbers, the others Strings (an empty one is left out: SQS refuses it). Throttling, a 5xx
        or no answer is tried again: a repeat whose first try did arrive leaves two copies, which
        the send queue's consumer tells apart by their event id."""
        if not queue_url:
            raise ConfigurationError(f"the URL of {what} is not set")
        payload: dict[str, object] = {"QueueUrl": queue_url, "MessageBody": body}
        if delay_seconds > 0:
            payload["DelaySeconds"] = min(int(delay_seconds), MAX_DELAY_SECONDS)
        values = {name: value for name, value in (attributes or {}).items() if value != ""}
        if values:
            payload["MessageAttributes"] = {
                name: {"DataType": "Number" if isinstance(value, int) else "String", "StringValue": str(value)}
                for name, value in values.items()
            }
        try:
            answer = self._client.call_within("SendMessage", payload, deadline)
        except AwsCallFailed as error:
            raise error.domain_error(what) from None
        return str(answer.get("MessageId") or "")
