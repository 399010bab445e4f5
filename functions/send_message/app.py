"""POST /messages, Step Functions tasks and EventBridge `Send Message` events: send a message."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.deadline import Deadline
from twilio_messaging.messaging import send_message
from twilio_messaging.observability import logger, metrics
from twilio_messaging.public_url import webhook_url
from twilio_messaging.runtime import settings, twilio_client
from twilio_messaging.send_request import parse_send_request


def send(invocation: Invocation, deadline: Deadline) -> Answer:
    request = parse_send_request(invocation.payload, settings())
    callback = (
        None
        if request.status_callback or request.status_callback_disabled
        else webhook_url(settings(), invocation.api_base_url)
    )
    result = send_message(twilio_client(), request, deadline, callback)
    return Answer(200 if request.batch else 201, result)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context, send)
