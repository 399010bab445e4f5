"""GET /messages, /phone-numbers and /caller-ids, and direct invokes with the query fields plus
"resource": "messages" | "phoneNumbers" | "callerIds" (default messages)."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.deadline import Deadline
from twilio_messaging.execution_environment import environment
from twilio_messaging.listing import list_resource, parse_list_request
from twilio_messaging.observability import logger, metrics


def handle_list_messages(invocation: Invocation, deadline: Deadline) -> Answer:
    if invocation.source == "api":
        fields, repeated = invocation.query_fields()
        request = parse_list_request(fields, route=invocation.resource, repeated=repeated)
    else:
        request = parse_list_request(invocation.payload)
    return Answer(200, list_resource(environment.twilio_client(), request, deadline))


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context, handle_list_messages, body="none")
