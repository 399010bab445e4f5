"""POST /messages, Step Functions tasks, and EventBridge `Send Message` events (through the send
queue, SQS batches): send a message."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, QueuedEvent, handle, handle_queue, is_sqs_event
from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import TwilioMessagingError
from twilio_messaging.execution_environment import environment
from twilio_messaging.observability import logger, metrics
from twilio_messaging.send_pacer import SendPacer
from twilio_messaging.send_request import parse_send_request, resolve_idempotency_key
from twilio_messaging.sending import send


def handle_send_message(
    invocation: Invocation, deadline: Deadline, pacer: SendPacer | None = None, concurrency: int | None = None
) -> Answer:
    settings = environment.settings()
    request = parse_send_request(invocation.payload, settings, task_token_allowed=invocation.source == "direct")
    result = send(
        request,
        payload=invocation.payload,
        idempotency_key=resolve_idempotency_key(request, invocation.header("Idempotency-Key"), invocation.event_id),
        webhook_url=lambda: environment.webhook_url(invocation.api_base_url, deadline),
        clients=environment,
        concurrency=concurrency or settings.batch_concurrency,
        reconcile_after=settings.reconcile_after_minutes * 60,
        deadline=deadline,
        pacer=pacer,
    )
    return Answer(200 if request.batch else 201, result)


def consume_send_queue(events: list[QueuedEvent], deadline: Deadline) -> dict[str, TwilioMessagingError]:
    """The send queue's batch: every event sent as from EventBridge, within one shared bound."""
    from twilio_messaging.send_queue import Queues, consume  # the queue's invocations only

    settings = environment.settings()
    queues = Queues(environment.message_queue(), settings.send_queue_url, settings.send_dead_letter_queue_url)

    def send_event(event: QueuedEvent, window: Deadline, pacer: SendPacer, concurrency: int) -> Any:
        return handle_send_message(event.invocation, window, pacer, concurrency).body

    return consume(events, send_event, queues, settings.send_queue_concurrency, deadline)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    if is_sqs_event(event):
        return handle_queue(event, context, consume_send_queue)
    return handle(event, context, handle_send_message)
