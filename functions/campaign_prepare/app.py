"""The campaign state machine's first step: {"campaignId"} → the batches written and the plan."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.campaign_steps import prepare
from twilio_messaging.campaigns import parse_campaign_id
from twilio_messaging.deadline import Deadline
from twilio_messaging.execution_environment import environment
from twilio_messaging.observability import logger, metrics


def handle_campaign_prepare(invocation: Invocation, deadline: Deadline) -> Answer:
    campaign_id = parse_campaign_id(invocation.payload)
    return Answer(200, prepare(campaign_id, environment, deadline))


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context, handle_campaign_prepare)
