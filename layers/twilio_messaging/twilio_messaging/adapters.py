"""The only module that knows event shapes: API Gateway REST (payload 1.0) proxy events,
EventBridge events and direct invokes (Step Functions, Lambda Invoke, `sam local invoke`).

`handle` turns an event into an `Invocation`, runs one operation, and shapes its `Answer` or
error for the caller: an HTTP envelope for API Gateway, the bare object otherwise, and for
failures an exception whose class name is the Step Functions error type.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
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


def parse_api_gateway_event(event: dict[str, Any], body: BodyMode) -> Invocation:
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
        if len(raw) > MAX_BODY_BYTES:
            raise _problem("(body)", f"is larger than {MAX_BODY_BYTES} bytes")
    except ValidationError:
        if body == "raw":  # the operation decides (a webhook: no signature can match, a 403)
            invocation.raw_body = None
            return invocation
        raise
    invocation.raw_body = raw
    if body == "json" or (body == "optional" and raw.strip()):
        invocation.payload = _json_body(raw, headers.get("content-type"))
    return invocation


def parse_event(event: Any, body: BodyMode = "json") -> Invocation:
    if is_api_gateway_event(event):
        return parse_api_gateway_event(event, body)
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


def handle(event: Any, context: Any, operation: Operation, body: BodyMode = "json") -> Any:
    """Run one operation for any invocation source and shape its answer or error for that source."""
    via_api = is_api_gateway_event(event)
    try:
        invocation = parse_event(event, body)
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
