"""POST /messages, Step Functions tasks and EventBridge `Send Message` events: send a message."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.deadline import Deadline
from twilio_messaging.execution_environment import environment
from twilio_messaging.observability import logger, metrics
from twilio_messaging.send_request import parse_send_request, resolve_idempotency_key
from twilio_messaging.sending import send


def handle_send_message(invocation: Invocation, deadline: Deadline) -> Answer:
    settings = environment.settings()
    request = parse_send_request(invocation.payload, settings, task_token_allowed=invocation.source == "direct")
    result = send(
        request,
        payload=invocation.payload,
        idempotency_key=resolve_idempotency_key(request, invocation.header("Idempotency-Key"), invocation.event_id),
        webhook_url=lambda: environment.webhook_url(invocation.api_base_url, deadline),
        clients=environment,
        concurrency=settings.batch_concurrency,
        reconcile_after=settings.reconcile_after_minutes * 60,
        deadline=deadline,
    )
    return Answer(200 if request.batch else 201, result)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context, handle_send_message)
