"""Scheduled (EventBridge), and direct invokes: look up on Twilio the messages whose final status
has not arrived, and apply what Twilio says as a status callback would."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.deadline import Deadline
from twilio_messaging.delivery_state import DeliveryServices
from twilio_messaging.execution_environment import environment
from twilio_messaging.observability import logger, metrics
from twilio_messaging.reconciliation import reconcile


def handle_reconcile_statuses(invocation: Invocation, deadline: Deadline) -> Answer:
    settings = environment.settings()
    services = DeliveryServices(
        environment.state_table(),
        environment.delivery_records(),
        environment.suppressions(),
        environment.event_bus(),
        environment.step_functions(),
    )
    summary = reconcile(
        environment.twilio_client(),
        services,
        check_again_after=settings.reconcile_after_minutes * 60,
        limit=settings.reconcile_max_messages,
        deadline=deadline,
    )
    return Answer(200, summary)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context, handle_reconcile_statuses, body="none")
