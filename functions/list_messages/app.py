"""GET /messages, /phone-numbers and /caller-ids, and direct invokes with the query fields plus
"resource": "messages" | "phoneNumbers" | "callerIds" (default messages)."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.deadline import Deadline
from twilio_messaging.listing import list_resource, parse_list_request
from twilio_messaging.observability import logger, metrics
from twilio_messaging.runtime import twilio_client


def list_page(invocation: Invocation, deadline: Deadline) -> Answer:
    request = parse_list_request(invocation)
    return Answer(200, list_resource(twilio_client(), request, deadline))


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context, list_page, body="none")
