"""GET and DELETE /messages/{sid}, and direct invokes with {"sid": …} (add "method": "DELETE" to delete)."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.deadline import Deadline
from twilio_messaging.get_request import parse_get_request
from twilio_messaging.messaging import delete_message, get_message
from twilio_messaging.observability import logger, metrics
from twilio_messaging.runtime import twilio_client


def get_or_delete(invocation: Invocation, deadline: Deadline) -> Answer:
    request = parse_get_request(invocation)
    if request.method == "DELETE":
        delete_message(twilio_client(), request.sid, deadline)
        return Answer(204, None) if invocation.source == "api" else Answer(200, {"sid": request.sid, "deleted": True})
    return Answer(200, get_message(twilio_client(), request.sid, deadline))


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context, get_or_delete, body="none")
