"""POST /webhooks/twilio: Twilio's inbound-message webhooks and message status callbacks."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import ValidationError
from twilio_messaging.observability import logger, metrics
from twilio_messaging.runtime import settings, webhook_services
from twilio_messaging.webhooks import EMPTY_TWIML, WebhookRequest, receive_webhook


def receive(invocation: Invocation, deadline: Deadline) -> Answer:
    if invocation.source != "api":
        raise ValidationError.from_problems([{"field": "(event)", "problem": "must be an API Gateway request"}])
    request = WebhookRequest(
        urls=invocation.public_urls(settings().public_base_url),
        raw_body=invocation.raw_body,
        content_type=invocation.header("Content-Type"),
        signature=invocation.header("X-Twilio-Signature"),
        signature_settings=invocation.header("X-Twilio-Webhooks-Signature-Settings"),
    )
    receive_webhook(request, webhook_services(), deadline)
    return Answer(200, EMPTY_TWIML, {"Content-Type": "text/xml"})


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context, receive, body="raw")
