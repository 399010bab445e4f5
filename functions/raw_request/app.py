"""POST /twilio-requests and direct invokes: any authenticated Twilio REST call, answered as
{statusCode, headers, body} whatever Twilio's status."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.deadline import Deadline
from twilio_messaging.execution_environment import environment
from twilio_messaging.observability import logger, metrics
from twilio_messaging.raw_request import execute_raw_request, parse_raw_request


def handle_raw_request(invocation: Invocation, deadline: Deadline) -> Answer:
    client = environment.twilio_client()
    request = parse_raw_request(invocation.payload, client.may_receive_credentials)
    return Answer(200, execute_raw_request(client, request, deadline))


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context, handle_raw_request)
