"""POST /webhooks/twilio: Twilio's inbound-message webhooks and message status callbacks."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.deadline import Deadline
from twilio_messaging.delivery_state import DeliveryServices
from twilio_messaging.errors import ValidationError
from twilio_messaging.execution_environment import environment
from twilio_messaging.observability import logger, metrics
from twilio_messaging.webhooks import EMPTY_TWIML, WebhookRequest, WebhookServices, receive_webhook


def handle_webhook(invocation: Invocation, deadline: Deadline) -> Answer:
    if invocation.source != "api":
        raise ValidationError.from_problems([{"field": "(event)", "problem": "must be an API Gateway request"}])
    request = WebhookRequest(
        urls=invocation.public_urls(environment.settings().public_base_url),
        raw_body=invocation.raw_body,
        content_type=invocation.header("Content-Type"),
        signature=invocation.header("X-Twilio-Signature"),
        signature_settings=invocation.header("X-Twilio-Webhooks-Signature-Settings"),
    )
    delivery = DeliveryServices(
        environment.state_table(),
        environment.delivery_records(),
        environment.suppressions(),
        environment.event_bus(),
        environment.step_functions(),
    )
    services = WebhookServices(environment.credential_store(), environment.state_table(), delivery)
    receive_webhook(request, services, deadline)
    return Answer(200, EMPTY_TWIML, {"Content-Type": "text/xml"})


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context, handle_webhook, body="raw")
