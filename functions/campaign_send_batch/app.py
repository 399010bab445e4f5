"""The campaign state machine's map step: send one batch ({"campaignId", "batch", "batchConcurrency",
"spacingSeconds", "round"?}) → {"done", "retryAfter"?, "round"}."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.campaign_steps import BatchOrder, SendServices, send_batch
from twilio_messaging.deadline import Deadline
from twilio_messaging.execution_environment import environment
from twilio_messaging.observability import logger, metrics


def handle_campaign_send_batch(invocation: Invocation, deadline: Deadline) -> Answer:
    order = BatchOrder.parse(invocation.payload)
    settings = environment.settings()
    sends = SendServices(
        environment.twilio_client(),
        environment.delivery_records(),
        environment.webhook_url(None, deadline),
        settings.reconcile_after_minutes * 60,
    )
    return Answer(200, send_batch(order, environment, sends, deadline))


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context, handle_campaign_send_batch)
