"""POST /campaigns (start, or dry-run), GET and DELETE /campaigns/{id}, and direct invokes: a
campaign to start, or {"action": "get" | "stop", "campaignId"}."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.campaigns import answer_campaign_call, parse_campaign_call
from twilio_messaging.deadline import Deadline
from twilio_messaging.execution_environment import environment
from twilio_messaging.observability import logger, metrics

MAX_BODY_BYTES = 5 * 1024 * 1024  # 10,000 recipients with their variables


def handle_campaigns(invocation: Invocation, deadline: Deadline) -> Answer:
    if invocation.source == "api":
        query, _ = invocation.query_fields()
        call = parse_campaign_call(
            invocation.payload,
            http_method=invocation.method,
            path_id=invocation.path_parameters.get("id"),
            query=query,
            key_header=invocation.header("Idempotency-Key"),
        )
    else:
        call = parse_campaign_call(invocation.payload)
    status, answer = answer_campaign_call(call, environment, deadline)
    headers = {}
    if call.action == "start" and status == 202:
        headers["Location"] = f"{invocation.api_base_url or ''}/campaigns/{answer['campaignId']}"
    return Answer(status, answer, headers)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context, handle_campaigns, body="optional", max_body_bytes=MAX_BODY_BYTES)
