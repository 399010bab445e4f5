"""POST /messages, Step Functions tasks and EventBridge `Send Message` events: send a message."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.deadline import Deadline
from twilio_messaging.observability import logger, metrics
from twilio_messaging.runtime import settings
from twilio_messaging.send_operation import send
from twilio_messaging.send_request import parse_send_request, resolve_idempotency_key


def send_request(invocation: Invocation, deadline: Deadline) -> Answer:
    request = parse_send_request(invocation.payload, settings(), task_token_allowed=invocation.source == "direct")
    key = resolve_idempotency_key(request, invocation.header("Idempotency-Key"), invocation.event_id)
    result = send(request, invocation.payload, key, invocation.api_base_url, deadline)
    return Answer(200 if request.batch else 201, result)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context, send_request)
