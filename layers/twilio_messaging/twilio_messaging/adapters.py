"""The only module that knows event shapes: API Gateway REST (payload 1.0) proxy events,
EventBridge events, direct invokes (Step Functions, Lambda Invoke, `sam local invoke`), and SQS
batches whose messages are EventBridge events (the send queue: `handle_queue`).

`handle` turns an event into an `Invocation`, runs one operation, and shapes its `Answer` or
error for the caller: an HTTP envelope for API Gateway, the bare object otherwise, and for
failures an exception whose class name is the Step Functions error type.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from twilio_messaging.deadline import API_GATEWAY_BUDGET_SECONDS, Deadline
from twilio_messaging.errors import (
    AwsServiceUnavailable,
    ConfigurationError,
    InternalError,
    TwilioMessagingError,
    ValidationError,
    http_error_answer,
)
from twilio_messaging.observability import count_unexpected_failure, logger
from twilio_messaging.validation import is_json_media_type

MAX_BODY_BYTES = 256 * 1024
Source = Literal["api", "direct", "eventbridge"]
BodyMode = Literal["json", "optional", "none", "raw"]  # optional: JSON when there is a body
# Failures that are the deployment's, never the caller's: a bug, the configuration (the secret, a
# permission, a missing resource), an AWS service that failed. Each is counted as
# UnexpectedFailures, with the function's name, whatever the invocation source; a direct
# invocation raises every domain error, so Lambda's own Errors metric cannot tell them apart.
UNEXPECTED_FAILURES = (InternalError, ConfigurationError, AwsServiceUnavailable)


@dataclass
class Invocation:
    source: Source
    payload: Any = None  # JSON body (API), the event (direct) or its detail (EventBridge)
    method: str = ""
    resource: str = ""  # the API route template, e.g. /messages/{sid}
    path_parameters: dict[str, str] = field(default_factory=dict)
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    raw_body: bytes | None = b""  # None: a body that could not be read (too large, not base64)
    event_id: str | None = None  # EventBridge event id
    request_id: str | None = None
    api_base_url: str | None = None  # https://{domain}{base path or stage}, as the caller saw it
    domain_name: str | None = None  # requestContext.domainName
    request_path: str | None = None  # requestContext.path: the path as the caller sent it, stage included
    caller: str = "direct"  # who invoked: api:<IAM principal>, api-key:<id>, eventbridge:<source>, direct

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def query_fields(self) -> tuple[dict[str, str], list[str]]:
        """The query string as one value per name (the last), and the names given more than once."""
        fields = {name: values[-1] if values else "" for name, values in self.query.items()}
        return fields, [name for name, values in self.query.items() if len(values) > 1]

    def public_urls(self, public_base_url: str = "") -> list[str]:
        """The URLs the caller may have requested, for signature checks: PUBLIC_BASE_URL plus the
        route when set (custom domains), else https://{domainName}{requestContext.path}; then the
        query string. REST API events keep only decoded query parameters, so their original
        order and encoding are lost: each plausible re-encoding is a candidate."""
        if public_base_url:
            base = public_base_url.rstrip("/") + self.resource
        elif self.domain_name and self.request_path:
            base = f"https://{self.domain_name}{self.request_path}"
        else:
            return []
        return [f"{base}?{query}" if query else base for query in _query_strings(self.query)]


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Operation = Callable[[Invocation, Deadline], Answer]


def is_api_gateway_event(event: Any) -> bool:
    return isinstance(event, dict) and "httpMethod" in event and isinstance(event.get("requestContext"), dict)


def is_eventbridge_event(event: Any) -> bool:
    return isinstance(event, dict) and {"detail-type", "source", "detail", "id"} <= event.keys()


def _problem(field_name: str, problem: str) -> ValidationError:
    return ValidationError.from_problems([{"field": field_name, "problem": problem}])


def _api_base_url(event: dict[str, Any]) -> str | None:
    """Base URL of the API as the client called it: requestContext.path keeps the stage (or the
    custom domain's base path) that event.path drops."""
    context = event.get("requestContext") or {}
    domain = context.get("domainName")
    full_path = context.get("path") or ""
    path = event.get("path") or ""
    if not domain:
        return None
    prefix = full_path[: len(full_path) - len(path)] if path and full_path.endswith(path) else ""
    return f"https://{domain}{prefix.rstrip('/')}"


def _api_caller(context: dict[str, Any]) -> str:
    """Who called through the API, as API Gateway authenticated them: the IAM principal (SigV4)
    or the API key's id."""
    identity = context.get("identity") or {}
    if identity.get("userArn"):
        return f"api:{identity['userArn']}"
    if identity.get("apiKeyId"):
        return f"api-key:{identity['apiKeyId']}"
    return "api:anonymous"


def _query_strings(query: dict[str, list[str]]) -> list[str]:
    from urllib.parse import quote, urlencode

    pairs = [(name, value) for name, values in query.items() for value in values]
    candidates = [
        urlencode(pairs, quote_via=quote, safe="~"),
        urlencode(pairs),  # quote_plus: spaces as +
        urlencode(sorted(pairs), quote_via=quote, safe="~"),
        urlencode(sorted(pairs)),
    ]
    return list(dict.fromkeys(candidates))


def _body_bytes(event: dict[str, Any]) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise _problem("(body)", "is not valid base64 although isBase64Encoded is true") from None
    return body.encode("utf-8")


def _json_body(raw: bytes, content_type: str | None) -> Any:
    if content_type and not is_json_media_type(content_type):
        raise _problem("Content-Type", f"must be application/json, not {content_type.split(';')[0].strip()}")
    if not raw.strip():
        raise _problem("(body)", "is required: send a JSON object")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _problem("(body)", "is not UTF-8") from None
    except json.JSONDecodeError as error:
        raise _problem("(body)", f"is not valid JSON ({error.msg} at character {error.pos})") from None
    except RecursionError:
        raise _problem("(body)", "is nested too deeply") from None
    except ValueError:  # e.g. an integer beyond Python's digit limit
        raise _problem("(body)", "holds a number too large to read") from None


def parse_api_gateway_event(event: dict[str, Any], body: BodyMode, max_body_bytes: int = MAX_BODY_BYTES) -> Invocation:
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items() if v is not None}
    query = {str(k): [str(v) for v in vs] for k, vs in (event.get("multiValueQueryStringParameters") or {}).items()}
    if not query:
        query = {str(k): [str(v)] for k, v in (event.get("queryStringParameters") or {}).items()}
    context = event.get("requestContext") or {}
    invocation = Invocation(
        source="api",
        method=str(event.get("httpMethod", "")).upper(),
        resource=str(event.get("resource") or ""),
        path_parameters={str(k): str(v) for k, v in (event.get("pathParameters") or {}).items()},
        query=query,
        headers=headers,
        request_id=context.get("requestId"),
        api_base_url=_api_base_url(event),
        domain_name=context.get("domainName"),
        request_path=context.get("path"),
        caller=_api_caller(context),
    )
    if body == "none":
        return invocation
    try:
        raw = _body_bytes(event)
        if len(raw) > max_body_bytes:
            raise _problem("(body)", f"is larger than {max_body_bytes} bytes")
    except ValidationError:
        if body == "raw":  # the operation decides (a webhook: no signature can match, a 403)
            invocation.raw_body = None
            return invocation
        raise
    invocation.raw_body = raw
    if body == "json" or (body == "optional" and raw.strip()):
        invocation.payload = _json_body(raw, headers.get("content-type"))
    return invocation


def parse_event(event: Any, body: BodyMode = "json", max_body_bytes: int = MAX_BODY_BYTES) -> Invocation:
    if is_api_gateway_event(event):
        return parse_api_gateway_event(event, body, max_body_bytes)
    if is_eventbridge_event(event):
        return Invocation(
            source="eventbridge",
            payload=event["detail"],
            event_id=str(event["id"]),
            request_id=str(event["id"]),
            caller=f"eventbridge:{event.get('source')}",
        )
    return Invocation(source="direct", payload=event)


def http_response(answer: Answer) -> dict[str, Any]:
    headers = dict(answer.headers)
    if answer.body is None:
        return {"statusCode": answer.status, "headers": headers, "body": ""}
    if isinstance(answer.body, str):
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return {"statusCode": answer.status, "headers": headers, "body": answer.body}
    headers.setdefault("Content-Type", "application/json")
    return {"statusCode": answer.status, "headers": headers, "body": json.dumps(answer.body)}


def _function_name(context: Any) -> str:
    """The Lambda function's name, the dimension of UnexpectedFailures."""
    return str(getattr(context, "function_name", "") or "unknown")


def handle(
    event: Any, context: Any, operation: Operation, body: BodyMode = "json", max_body_bytes: int = MAX_BODY_BYTES
) -> Any:
    """Run one operation for any invocation source and shape its answer or error for that source."""
    via_api = is_api_gateway_event(event)
    try:
        invocation = parse_event(event, body, max_body_bytes)
        if invocation.request_id:
            logger.set_correlation_id(invocation.request_id)
        deadline = Deadline.from_context(context, API_GATEWAY_BUDGET_SECONDS if via_api else None)
        answer = operation(invocation, deadline)
    except TwilioMessagingError as error:
        log = logger.error if error.status >= 500 else logger.warning
        log("Request failed", extra={"errorType": type(error).__name__, "error": error.to_dict()})
        if isinstance(error, UNEXPECTED_FAILURES):
            count_unexpected_failure(_function_name(context))
        if via_api:
            status, error_body, headers = http_error_answer(error)
            return http_response(Answer(status, error_body, headers))
        raise
    except Exception:
        logger.exception("Unexpected error")
        count_unexpected_failure(_function_name(context))
        internal = InternalError("unexpected error; see the function's logs")
        if via_api:
            status, error_body, headers = http_error_answer(internal)
            return http_response(Answer(status, error_body, headers))
        raise internal from None
    return http_response(answer) if via_api else answer.body


# --- SQS batches: the send queue ------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedEvent:
    """One record of an SQS batch whose body should be an EventBridge event: what the send
    queue's consumer reads (send_queue.QueuedEvent), and the invocation the event asks for."""

    message_id: str
    body: str  # as received: a re-queued copy or a dead letter carries it unchanged
    invocation: Invocation  # as for the same event from EventBridge directly; no payload with `problem`
    problem: str | None = None  # why the body is not an EventBridge event
    attributes: Mapping[str, str] = field(default_factory=dict)  # message attributes, by name
    sent_at: float | None = None  # when SQS got this message (SentTimestamp), epoch seconds

    @property
    def event_id(self) -> str | None:
        return self.invocation.event_id


# The records' errors that SQS must deliver again, by message id; the others are done.
QueueOperation = Callable[[list[QueuedEvent], Deadline], Mapping[str, TwilioMessagingError]]


def is_sqs_event(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(record, dict) and record.get("eventSource") == "aws:sqs" for record in records)
    )


def parse_sqs_record(record: dict[str, Any]) -> QueuedEvent:
    body = str(record.get("body") or "")
    attributes = {
        str(name): str(value["stringValue"])
        for name, value in (record.get("messageAttributes") or {}).items()
        if isinstance(value, dict) and value.get("stringValue") is not None
    }
    sent = str((record.get("attributes") or {}).get("SentTimestamp") or "")
    problem: str | None
    try:
        event: Any = json.loads(body)
    except (ValueError, RecursionError):
        event, problem = None, "is not JSON"
    else:
        problem = (
            None if is_eventbridge_event(event) else "is not an EventBridge event (id, source, detail-type, detail)"
        )
    invocation = parse_event(event) if problem is None else Invocation(source="eventbridge")
    sent_at = int(sent) / 1000 if sent.isdigit() else None
    return QueuedEvent(str(record.get("messageId") or ""), body, invocation, problem, attributes, sent_at)


def handle_queue(event: dict[str, Any], context: Any, operation: QueueOperation) -> dict[str, Any]:
    """An SQS batch: `operation` settles its records at once and returns the errors of those SQS
    must deliver again, which Powertools' batch utility reports as batchItemFailures (imported
    here: only a queue's invocations pay for it). Each such error is logged and, when it is the
    deployment's, counted as `handle` does."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    logger.set_correlation_id(None)  # several events: each line about one names its eventId and messageId
    failures = _queue_failures([parse_sqs_record(record) for record in event["Records"]], context, operation)

    def record_handler(record: Any) -> None:
        error = failures.get(record.message_id)
        if error is not None:
            raise error

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )


def _queue_failures(
    events: list[QueuedEvent], context: Any, operation: QueueOperation
) -> dict[str, TwilioMessagingError]:
    try:
        failures = dict(operation(events, Deadline.from_context(context)))
    except TwilioMessagingError as whole:  # nothing of the batch was settled: all of it again
        failures = {queued.message_id: whole for queued in events}
    except Exception:
        logger.exception("Unexpected error")
        failures = {queued.message_id: InternalError("unexpected error; see the function's logs") for queued in events}
    event_ids = {queued.message_id: queued.event_id for queued in events}
    for message_id, failure in failures.items():
        log = logger.error if failure.status >= 500 else logger.warning
        fields: dict[str, Any] = {
            "messageId": message_id,
            "eventId": event_ids.get(message_id),
            "errorType": type(failure).__name__,
            "error": failure.to_dict(),
        }
        log("Queued event left for SQS to deliver again", extra=fields)
        if isinstance(failure, UNEXPECTED_FAILURES):
            count_unexpected_failure(_function_name(context))
    return failures
