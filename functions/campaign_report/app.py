"""The campaign state machine's last step: {"campaignId", "failure"?} → the report written, the
final counts recorded, `Campaign Completed` published."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.campaign_steps import finish
from twilio_messaging.campaigns import parse_campaign_id
from twilio_messaging.deadline import Deadline
from twilio_messaging.execution_environment import environment
from twilio_messaging.observability import logger, metrics


def handle_campaign_report(invocation: Invocation, deadline: Deadline) -> Answer:
    campaign_id = parse_campaign_id(invocation.payload)
    failure = invocation.payload.get("failure") if isinstance(invocation.payload, dict) else None
    return Answer(200, finish(campaign_id, failure, environment, environment.event_bus(), deadline))


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context, handle_campaign_report)
