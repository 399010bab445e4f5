"""The send request (docs/api.md, "Send a message"): validation that lists every problem, and the form
body Twilio's Create Message endpoint receives."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from twilio_messaging.errors import ValidationError
from twilio_messaging.settings import Settings
from twilio_messaging.validation import (
    CONTENT_SID,
    MESSAGING_SERVICE_SID,
    Problems,
    check_text,
    check_unknown_fields,
    has_space_or_control,
    is_http_url,
    is_recipient,
    is_sender,
    type_name,
)
from twilio_messaging.values import format_utc, parse_datetime

MAX_RECIPIENTS = 100
MAX_BODY_CHARACTERS = 1600
MAX_MEDIA_URLS = 10
SEND_AT_EARLIEST = timedelta(minutes=5)
SEND_AT_LATEST = timedelta(days=35)
BOOLEAN_FIELDS = {"shortenUrls": "ShortenUrls", "sendAsMms": "SendAsMms", "smartEncoded": "SmartEncoded"}
SEND_FIELDS = {
    "to",
    "from",
    "messagingServiceSid",
    "body",
    "mediaUrl",
    "contentSid",
    "contentVariables",
    "statusCallback",
    "sendAt",
    "validityPeriod",
    "idempotencyKey",
    "taskToken",
    *BOOLEAN_FIELDS,
}

TASK_TOKEN_SOURCES = (
    "is accepted only from a Step Functions task (direct invocation): over HTTP or EventBridge it could "
    "make the function complete another workflow's task with its own role"
)


@dataclass(frozen=True)
class SendRequest:
    recipients: list[str]
    batch: bool  # `to` came as an array: the answer is the batch shape
    sender: str = ""
    messaging_service_sid: str = ""
    body: str | None = None
    media_urls: list[str] = field(default_factory=list)
    content_sid: str = ""
    content_variables: dict[str, Any] | None = None
    status_callback: str | None = None
    status_callback_disabled: bool = False
    send_at: datetime | None = None
    validity_period: int | None = None
    idempotency_key: str | None = None
    task_token: str | None = None
    flags: dict[str, bool] = field(default_factory=dict)

    def twilio_form(self, recipient: str, default_status_callback: str | None) -> list[tuple[str, str]]:
        """Create Message form fields for one recipient; repeated keys for MediaUrl. The request's
        own statusCallback wins over the deployment's webhook; null disables both."""
        status_callback = None if self.status_callback_disabled else self.status_callback or default_status_callback
        form: list[tuple[str, str]] = [("To", recipient)]
        if self.sender:
            form.append(("From", self.sender))
        if self.messaging_service_sid:
            form.append(("MessagingServiceSid", self.messaging_service_sid))
        if self.body:
            form.append(("Body", self.body))
        form.extend(("MediaUrl", url) for url in self.media_urls)
        if self.content_sid:
            form.append(("ContentSid", self.content_sid))
        if self.content_variables is not None:
            form.append(("ContentVariables", json.dumps(self.content_variables, separators=(",", ":"))))
        if status_callback:
            form.append(("StatusCallback", status_callback))
        if self.send_at is not None:
            form.append(("SendAt", format_utc(self.send_at)))
            form.append(("ScheduleType", "fixed"))
        if self.validity_period is not None:
            form.append(("ValidityPeriod", str(self.validity_period)))
        for name, value in self.flags.items():
            form.append((BOOLEAN_FIELDS[name], "true" if value else "false"))
        return form


def _recipients(value: Any, problems: Problems) -> tuple[list[str], bool]:
    if isinstance(value, str):
        if not is_recipient(value):
            problems.add("to", "must be an E.164 number (+ then 8-15 digits) or a channel address such as whatsapp:+…")
        return [value], False
    if not isinstance(value, list):
        problems.add("to", f"must be a string or an array of strings, not {type_name(value)}")
        return [], False
    if not 1 <= len(value) <= MAX_RECIPIENTS:
        problems.add("to", f"must hold 1 to {MAX_RECIPIENTS} recipients, not {len(value)}")
    seen: set[str] = set()
    for index, item in enumerate(value):
        if not isinstance(item, str) or not is_recipient(item):
            problems.add(f"to[{index}]", "must be an E.164 number or a channel address")
        elif item in seen:
            problems.add(f"to[{index}]", "repeats an earlier recipient")
        else:
            seen.add(item)
    return [v for v in value if isinstance(v, str)], True


def _optional_string(payload: dict[str, Any], name: str, problems: Problems, max_length: int = 2048) -> str:
    value = payload.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.add(name, f"must be a string, not {type_name(value)}")
        return ""
    if not 1 <= len(value) <= max_length:
        problems.add(name, f"must be 1 to {max_length} characters long")
    return value


def parse_send_request(
    payload: Any, settings: Settings, now: datetime | None = None, *, task_token_allowed: bool = False
) -> SendRequest:
    """Validate a send request and apply the default sender; raises ValidationError listing every
    problem. `task_token_allowed`: the request came by direct invocation (a Step Functions task),
    the only source that may name a task for the function to complete with its own role."""
    problems = Problems()
    if not isinstance(payload, dict):
        problems.add("(body)", f"must be a JSON object, not {type_name(payload)}")
        problems.raise_if_any()
    check_unknown_fields(payload, SEND_FIELDS, problems)
    check_text(payload, problems)  # Twilio's form is UTF-8: a lone surrogate cannot be sent
    recipients, batch = _recipients(payload["to"], problems) if "to" in payload else ([], False)
    if "to" not in payload:
        problems.add("to", "is required")
    sender, service_sid = _sender(payload, settings, problems)
    body, media_urls, content_sid, content_variables = _content(payload, problems)
    status_callback, callback_disabled = _status_callback(payload, problems)
    send_at = _send_at(payload, service_sid, now or datetime.now(UTC), problems)
    own_callback = status_callback is not None or callback_disabled
    task_token = _task_token(payload, task_token_allowed, batch, own_callback, problems)
    validity = payload.get("validityPeriod")
    if validity is not None and (type(validity) is not int or not 1 <= validity <= 36000):
        problems.add("validityPeriod", "must be an integer from 1 to 36000 (seconds)")
    flags = _flags(payload, problems)
    idempotency_key = _optional_string(payload, "idempotencyKey", problems, 255) or None
    problems.raise_if_any()
    return SendRequest(
        recipients=recipients,
        batch=batch,
        sender=sender,
        messaging_service_sid=service_sid,
        body=body,
        media_urls=media_urls,
        content_sid=content_sid,
        content_variables=content_variables,
        status_callback=status_callback,
        status_callback_disabled=callback_disabled,
        send_at=send_at,
        validity_period=validity,
        idempotency_key=idempotency_key,
        task_token=task_token,
        flags=flags,
    )


def _sender(payload: dict[str, Any], settings: Settings, problems: Problems) -> tuple[str, str]:
    """`from` and `messagingServiceSid`, else the deployment's default (the service first)."""
    sender = _optional_string(payload, "from", problems, 64)
    if sender and not is_sender(sender):
        problems.add("from", "must be an E.164 number, a short code, an alphanumeric sender ID or a channel address")
    service_sid = _optional_string(payload, "messagingServiceSid", problems)
    if service_sid and not MESSAGING_SERVICE_SID.match(service_sid):
        problems.add("messagingServiceSid", "must be MG followed by 32 hexadecimal characters")
    if payload.get("from") is None and payload.get("messagingServiceSid") is None:
        service_sid = settings.default_messaging_service_sid
        sender = "" if service_sid else settings.default_from
        if not sender and not service_sid:
            problems.add("from", "one of from or messagingServiceSid is required (no default sender is configured)")
    return sender, service_sid


def _content(payload: dict[str, Any], problems: Problems) -> tuple[str | None, list[str], str, dict[str, Any] | None]:
    """`body`, `mediaUrl`, `contentSid` and `contentVariables`: at least one of the first three."""
    body = payload.get("body")
    if body is not None and not isinstance(body, str):
        problems.add("body", f"must be a string, not {type_name(body)}")
        body = None
    elif isinstance(body, str) and len(body) > MAX_BODY_CHARACTERS:
        problems.add("body", f"must be at most {MAX_BODY_CHARACTERS} characters, not {len(body)}")
    media_urls = _media_urls(payload["mediaUrl"], problems) if "mediaUrl" in payload else []
    content_sid = _optional_string(payload, "contentSid", problems)
    if content_sid and not CONTENT_SID.match(content_sid):
        problems.add("contentSid", "must be HX followed by 32 hexadecimal characters")
    content_variables = payload.get("contentVariables")
    if content_variables is not None:
        if not isinstance(content_variables, dict):
            problems.add("contentVariables", f"must be an object, not {type_name(content_variables)}")
            content_variables = None
        elif "contentSid" not in payload:
            problems.add("contentVariables", "needs contentSid")
    if not (body or media_urls or content_sid) and not any(
        p["field"].startswith(("body", "mediaUrl", "contentSid")) for p in problems.items
    ):
        problems.add("body", "one of body, mediaUrl or contentSid is required")
    return body, media_urls, content_sid, content_variables


def _media_urls(media: Any, problems: Problems) -> list[str]:
    if not isinstance(media, list):
        problems.add("mediaUrl", f"must be an array of URLs, not {type_name(media)}")
        return []
    if not 1 <= len(media) <= MAX_MEDIA_URLS:
        problems.add("mediaUrl", f"must hold 1 to {MAX_MEDIA_URLS} URLs, not {len(media)}")
    for index, url in enumerate(media):
        if not isinstance(url, str) or not is_http_url(url):
            problems.add(f"mediaUrl[{index}]", "must be an http or https URL")
    return [u for u in media if isinstance(u, str)]


def _status_callback(payload: dict[str, Any], problems: Problems) -> tuple[str | None, bool]:
    """The request's own status callback, and whether it disabled callbacks (null)."""
    disabled = "statusCallback" in payload and payload["statusCallback"] is None
    callback = payload.get("statusCallback")
    if callback is None:
        return None, disabled
    if not isinstance(callback, str) or not is_http_url(callback):
        problems.add("statusCallback", "must be an http or https URL, or null to disable status callbacks")
        return None, disabled
    if "_" in (callback.split("/")[2] if "//" in callback else ""):
        problems.add("statusCallback", "host must not contain underscores (Twilio refuses them)")
    return callback, disabled


def _send_at(payload: dict[str, Any], service_sid: str, now: datetime, problems: Problems) -> datetime | None:
    raw = payload.get("sendAt")
    if raw is None:
        return None
    send_at = parse_datetime(raw) if isinstance(raw, str) else None
    if send_at is None:
        problems.add("sendAt", "must be an ISO 8601 date-time with a time zone, e.g. 2026-12-01T09:30:00Z")
    elif not now + SEND_AT_EARLIEST < send_at <= now + SEND_AT_LATEST:
        problems.add("sendAt", "must be more than 5 minutes and at most 35 days in the future")
    if not service_sid:
        problems.add("sendAt", "needs a messagingServiceSid (scheduled sends go through a Messaging Service)")
    return send_at


def _task_token(
    payload: dict[str, Any], allowed: bool, batch: bool, own_callback: bool, problems: Problems
) -> str | None:
    task_token = _optional_string(payload, "taskToken", problems, 2048) or None
    if payload.get("taskToken") is not None and not allowed:
        problems.add("taskToken", TASK_TOKEN_SOURCES)
    if task_token and batch:
        problems.add("taskToken", "needs a single recipient: one task waits for one message")
    if task_token and own_callback:
        problems.add("taskToken", "needs this deployment's webhook as statusCallback: leave statusCallback out")
    return task_token


def _flags(payload: dict[str, Any], problems: Problems) -> dict[str, bool]:
    flags: dict[str, bool] = {}
    for name in BOOLEAN_FIELDS:
        if payload.get(name) is not None:
            if isinstance(payload[name], bool):
                flags[name] = payload[name]
            else:
                problems.add(name, f"must be true or false, not {type_name(payload[name])}")
    return flags


def resolve_idempotency_key(request: SendRequest, header: str | None, event_id: str | None) -> str | None:
    """The `Idempotency-Key` header, the `idempotencyKey` field (they must agree when both are
    given), or the id of the EventBridge event that asked for the send."""
    if header is not None:
        header = header.strip()
        if not 1 <= len(header) <= 255 or has_space_or_control(header.replace(" ", "")):
            raise ValidationError.from_problems(
                [{"field": "Idempotency-Key", "problem": "must be 1 to 255 printable characters"}]
            )
        if request.idempotency_key and request.idempotency_key != header:
            raise ValidationError.from_problems(
                [{"field": "idempotencyKey", "problem": "differs from the Idempotency-Key header: send one of them"}]
            )
    if request.idempotency_key and has_space_or_control(request.idempotency_key.replace(" ", "")):
        raise ValidationError.from_problems([{"field": "idempotencyKey", "problem": "must be printable characters"}])
    return header or request.idempotency_key or event_id
