"""GET, PUT and DELETE /opt-outs/{number}, and direct invokes with
{"action": "get" | "put" | "delete", "number", "scope"?, "reason"?}: read and change opt-outs."""

from typing import Any

from twilio_messaging.adapters import Answer, Invocation, handle
from twilio_messaging.deadline import Deadline
from twilio_messaging.execution_environment import environment
from twilio_messaging.observability import logger, metrics
from twilio_messaging.opt_outs import answer_opt_out_request, parse_opt_out_request


def handle_opt_outs(invocation: Invocation, deadline: Deadline) -> Answer:
    if invocation.source == "api":
        query, _ = invocation.query_fields()
        fields = invocation.payload if invocation.method == "PUT" else query
        request = parse_opt_out_request(
            fields, path_number=invocation.path_parameters.get("number", ""), http_method=invocation.method
        )
    else:
        request = parse_opt_out_request(invocation.payload)
    answer = answer_opt_out_request(request, environment.suppressions(), invocation.caller, deadline)
    if request.action == "delete" and invocation.source == "api":
        return Answer(204, None)
    return Answer(200, answer)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context, handle_opt_outs, body="optional")
