"""Twilio webhooks (docs/architecture.md, "The webhook path"): inbound messages and status callbacks, checked,
de-duplicated, turned into EventBridge events, and completing Step Functions tasks.

Order matters for "nothing lost, nothing twice": the claim comes first (a duplicate stops
there), then the delivery record, the task completion and the event (delivery_state), or an
inbound message's opt-out and events; when one fails the claim is released and the caller
answers 5xx, so Twilio's next delivery does the remaining work (the record remembers an event
it still owes).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from twilio_messaging.credentials import CredentialStore
from twilio_messaging.deadline import Deadline
from twilio_messaging.delivery_records import StatusReport
from twilio_messaging.delivery_state import STATUS_CHANGED, DeliveryServices, report_status
from twilio_messaging.errors import AwsServiceUnavailable, IdempotencyInProgress, InvalidSignature, ValidationError
from twilio_messaging.observability import count, logger
from twilio_messaging.opt_outs import record_inbound
from twilio_messaging.state_table import StateTable
from twilio_messaging.validation import is_json_media_type
from twilio_messaging.values import as_int
from twilio_messaging.webhook_signature import SigningKeys, verify_signature

RECEIVED = "Message Received"
OPTED_OUT = "Recipient Opted Out"
OPTED_IN = "Recipient Opted In"
SIGNATURE_MISMATCH = "the X-Twilio-Signature header does not match this request"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

Params = dict[str, str | list[str]]


@dataclass(frozen=True)
class WebhookRequest:
    urls: list[str]  # the URLs Twilio may have requested (the query's original form is lost)
    raw_body: bytes | None  # None: the body could not be read (too large, bad base64)
    content_type: str | None
    signature: str | None
    signature_settings: str | None  # X-Twilio-Webhooks-Signature-Settings


@dataclass(frozen=True)
class ParsedBody:
    pairs: list[tuple[str, str]]  # form parameters in order, repeats and blank values kept
    params: Params
    is_json: bool
    raw: bytes


@dataclass(frozen=True)
class WebhookServices:
    credentials: CredentialStore
    table: StateTable
    delivery: DeliveryServices


def _problem(problem: str) -> ValidationError:
    return ValidationError.from_problems([{"field": "(body)", "problem": problem}])


def parse_body(raw: bytes, content_type: str | None) -> ParsedBody:
    if content_type and is_json_media_type(content_type):
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep, huge numbers
            raise _problem("is not valid JSON") from None
        if not isinstance(data, dict):
            raise _problem("must be a JSON object")
        return ParsedBody([], data, is_json=True, raw=raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _problem("is not UTF-8") from None
    pairs = parse_qsl(text, keep_blank_values=True)
    params: Params = {}
    for name, value in pairs:
        current = params.get(name)
        if current is None:
            params[name] = value
        elif isinstance(current, list):
            current.append(value)
        else:
            params[name] = [current, value]
    return ParsedBody(pairs, params, is_json=False, raw=raw)


def _first(params: Params, name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value)


def event_for(params: Params) -> tuple[str, dict[str, Any]]:
    """Detail-type and detail: the camelCase fields of section 5.5, plus every parameter as sent."""
    status = _first(params, "MessageStatus") or _first(params, "SmsStatus")
    num_media = as_int(_first(params, "NumMedia"))
    media = [
        {"url": _first(params, f"MediaUrl{i}"), "contentType": _first(params, f"MediaContentType{i}")}
        for i in range(min(num_media or 0, 10))
        if _first(params, f"MediaUrl{i}")
    ]
    detail = {
        "messageSid": _first(params, "MessageSid") or _first(params, "SmsMessageSid") or _first(params, "SmsSid"),
        "accountSid": _first(params, "AccountSid"),
        "from": _first(params, "From"),
        "to": _first(params, "To"),
        "body": _first(params, "Body"),
        "status": status,
        "errorCode": as_int(_first(params, "ErrorCode")),
        "messagingServiceSid": _first(params, "MessagingServiceSid"),
        "numMedia": num_media,
        "media": media,
        "params": params,
    }
    return (STATUS_CHANGED if "MessageStatus" in params else RECEIVED), detail


def deduplication_key(raw_body: bytes, detail_type: str, detail: dict[str, Any]) -> str:
    """What identifies one delivery, from what Twilio signed: the message and its status for a
    status callback, the message for an inbound one, else the body itself. Never the unsigned
    `I-Twilio-Idempotency-Token` header alone: a captured callback replayed with another token
    would be published again. Twilio's own retries carry the same signed parameters, so every
    repeat the token identifies is identified here too."""
    sid = detail["messageSid"]
    if sid and detail_type == STATUS_CHANGED and detail["status"]:
        return f"message:{sid}:{detail['status']}"
    if sid and detail_type == RECEIVED:
        return f"message:{sid}"
    return "body:" + hashlib.sha256(raw_body).hexdigest()


def check_signature(
    request: WebhookRequest, body: ParsedBody, credentials: CredentialStore, deadline: Deadline
) -> None:
    def verified_with(keys: SigningKeys) -> bool:
        return verify_signature(
            request.urls,
            body.pairs,
            request.signature,
            keys,
            signature_settings=request.signature_settings,
            json_body=body.raw if body.is_json else None,
        )

    current = credentials.get(deadline)
    if verified_with(SigningKeys(current.signing_tokens, current.webhook_shared_keys)):
        return
    fresher = credentials.reread_after_rejection(current, deadline)
    if fresher is not None and verified_with(SigningKeys(fresher.signing_tokens, fresher.webhook_shared_keys)):
        return
    raise InvalidSignature(SIGNATURE_MISMATCH)


def signed_body(request: WebhookRequest, credentials: CredentialStore, deadline: Deadline) -> ParsedBody:
    """The body, once its signature is checked. Any failure is InvalidSignature (403), counted as
    rejected, whatever the body: a body that cannot be parsed cannot have been verified."""
    try:
        if not request.signature:
            raise InvalidSignature("the X-Twilio-Signature header is missing")
        try:
            if request.raw_body is None:
                raise _problem("could not be read")
            body = parse_body(request.raw_body, request.content_type)
        except ValidationError:
            raise InvalidSignature(SIGNATURE_MISMATCH) from None
        check_signature(request, body, credentials, deadline)
    except InvalidSignature as error:
        count("WebhooksRejected")
        logger.warning("Webhook rejected", extra={"reason": error.message})
        raise
    return body


def receive_message(detail: dict[str, Any], services: DeliveryServices, deadline: Deadline) -> None:
    """An inbound message (or another webhook): its event, and the opt-out or opt-in it asks for."""
    params = detail["params"]
    change = record_inbound(params, services.suppressions, deadline) if "From" in params else None
    services.bus.publish(RECEIVED, detail, deadline)
    if change is not None:
        opt_detail = {
            "recipient": change.recipient,
            "scope": change.scope,
            "source": change.source,
            "messageSid": detail["messageSid"],
            "accountSid": detail["accountSid"],
        }
        services.bus.publish(OPTED_OUT if change.change == "out" else OPTED_IN, opt_detail, deadline)


def receive_webhook(
    request: WebhookRequest, services: WebhookServices, deadline: Deadline
) -> Literal["processed", "duplicate"]:
    body = signed_body(request, services.credentials, deadline)
    detail_type, detail = event_for(body.params)
    key = deduplication_key(body.raw, detail_type, detail)
    log = {"sid": detail["messageSid"], "status": detail["status"], "detailType": detail_type}
    claim = services.table.claim_webhook(key, deadline)
    if claim == "done":
        count("DuplicatesSuppressed")
        logger.info("Duplicate webhook: already processed", extra=log)
        return "duplicate"
    if claim == "in_progress":
        count("DuplicatesSuppressed")
        # Not 200: if the delivery being processed fails, this one must be retried.
        raise IdempotencyInProgress("this webhook is being processed by another request", retry_after=5)

    try:
        if detail_type == STATUS_CHANGED and detail["messageSid"] and detail["status"]:
            report = StatusReport(str(detail["messageSid"]), str(detail["status"]), detail["errorCode"])
            report_status(report, detail, services.delivery, deadline)
        else:
            receive_message(detail, services.delivery, deadline)
    except Exception:
        services.table.release_webhook(key, deadline)
        raise
    try:
        services.table.finish_webhook(key, deadline)
    except AwsServiceUnavailable as error:
        # The event is out: answering 5xx now would publish it twice. The claim goes stale
        # after a minute; a later duplicate could then be processed again.
        logger.warning("Could not mark the webhook processed", extra={"reason": error.message, **log})
    count("WebhooksAccepted")
    logger.info("Webhook processed", extra=log)
    return "processed"
