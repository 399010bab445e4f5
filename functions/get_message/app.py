"""GET and DELETE /messages/{sid}, GET /messages/{sid}/events, and direct invokes with {"sid": …}
(add "method": "DELETE" to delete, or "events": true for the delivery record)."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.deadline import Deadline
from twilio_messaging.execution_environment import environment
from twilio_messaging.message_by_sid import delete_message, get_message, message_events, parse_message_request
from twilio_messaging.observability import logger, metrics


def handle_get_message(invocation: Invocation, deadline: Deadline) -> Answer:
    if invocation.source == "api":
        query, _ = invocation.query_fields()
        request = parse_message_request(
            query,
            path_sid=invocation.path_parameters.get("sid", ""),
            http_method=invocation.method,
            events_route=invocation.resource.endswith("/events"),
        )
    else:
        request = parse_message_request(invocation.payload)
    if request.events:  # the table's client loads for this route only
        return Answer(200, message_events(environment.delivery_records(), request.sid, deadline))
    if request.method == "DELETE":
        delete_message(environment.twilio_client(), request.sid, deadline)
        return Answer(204, None) if invocation.source == "api" else Answer(200, {"sid": request.sid, "deleted": True})
    return Answer(200, get_message(environment.twilio_client(), request.sid, deadline))


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context, handle_get_message, body="none")
