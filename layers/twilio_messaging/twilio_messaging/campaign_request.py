"""POST /campaigns (docs/api.md, "Campaigns"): parsed whole, every problem listed. A campaign is
a send request without `to` (its `message`), its recipients (inline, up to 10,000, or a file in
the campaign bucket), an optional name, rate and dry run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twilio_messaging.campaign_files import parse_s3_uri
from twilio_messaging.errors import ValidationError
from twilio_messaging.send_request import SendRequest, parse_send_request
from twilio_messaging.settings import Settings
from twilio_messaging.validation import Problems, check_text, check_unknown_fields, type_name

MAX_INLINE_RECIPIENTS = 10_000
MIN_SENDS_PER_SECOND = 0.1  # one send per 10 seconds: any slower cannot hold over every 10-second window
MAX_SENDS_PER_SECOND = 10_000.0
MAX_NAME_CHARACTERS = 200
CAMPAIGN_FIELDS = {"recipients", "recipientsUri", "message", "name", "maxSendsPerSecond", "dryRun"}
# What a campaign's message may not hold: each recipient is a send of its own, made now.
NOT_IN_MESSAGE = {
    "to": "comes from recipients or recipientsUri",
    "idempotencyKey": "is the campaign's own (give the Idempotency-Key header to the campaign)",
    "taskToken": "cannot wait on a campaign's messages",
    "sendAt": "is not for campaigns: start the campaign when it should send",
}
EXAMPLE_RECIPIENT = "+15005550006"  # stands in for `to` while the message is checked


@dataclass(frozen=True)
class CampaignRequest:
    message: dict[str, Any]
    recipients: list[Any] | None  # inline
    recipients_uri: tuple[str, str] | None  # bucket, key
    name: str | None
    max_sends_per_second: float | None
    dry_run: bool

    def fingerprint(self) -> str:
        """What must be the same for a repeat with the same Idempotency-Key to be this campaign."""
        kept = {
            "message": self.message,
            "recipients": self.recipients,
            "recipientsUri": list(self.recipients_uri) if self.recipients_uri else None,
            "name": self.name,
            "maxSendsPerSecond": self.max_sends_per_second,
        }
        return hashlib.sha256(json.dumps(kept, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def parse_campaign_request(payload: Any, settings: Settings, now: datetime | None = None) -> CampaignRequest:
    problems = Problems()
    if not isinstance(payload, dict):
        problems.add("(body)", f"must be a JSON object, not {type_name(payload)}")
        problems.raise_if_any()
    check_unknown_fields(payload, CAMPAIGN_FIELDS, problems)
    check_text({k: v for k, v in payload.items() if k != "recipients"}, problems)  # a recipient's own: skipped
    message = _message(payload.get("message"), settings, now, problems)
    recipients, uri = _recipients(payload, settings, problems)
    name = payload.get("name")
    if name is not None and not (isinstance(name, str) and 1 <= len(name) <= MAX_NAME_CHARACTERS):
        problems.add("name", f"must be 1 to {MAX_NAME_CHARACTERS} characters")
    rate = payload.get("maxSendsPerSecond")
    if rate is not None and (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not MIN_SENDS_PER_SECOND <= rate <= MAX_SENDS_PER_SECOND
    ):
        problems.add("maxSendsPerSecond", f"must be a number from {MIN_SENDS_PER_SECOND} to {MAX_SENDS_PER_SECOND:.0f}")
    dry_run = payload.get("dryRun", False)
    if not isinstance(dry_run, bool):
        problems.add("dryRun", f"must be true or false, not {type_name(dry_run)}")
    problems.raise_if_any()
    return CampaignRequest(message, recipients, uri, name, float(rate) if rate is not None else None, dry_run)


def _message(message: Any, settings: Settings, now: datetime | None, problems: Problems) -> dict[str, Any]:
    if not isinstance(message, dict):
        problems.add("message", "is required: a send request without `to`" if message is None else "must be an object")
        return {}
    for name, why in NOT_IN_MESSAGE.items():
        if name in message:
            problems.add(f"message.{name}", why)
    try:
        template_request(message, settings, now)
    except ValidationError as error:
        for detail in error.details:
            if detail["field"] not in NOT_IN_MESSAGE:
                problems.add(f"message.{detail['field']}", detail["problem"])
    return message


def template_request(message: dict[str, Any], settings: Settings, now: datetime | None = None) -> SendRequest:
    """The campaign's message as a send request (defaults applied); each recipient's send is this
    with its own `to`, body and content variables."""
    kept = {k: v for k, v in message.items() if k not in NOT_IN_MESSAGE}
    return parse_send_request({**kept, "to": EXAMPLE_RECIPIENT}, settings, now)


def _recipients(
    payload: dict[str, Any], settings: Settings, problems: Problems
) -> tuple[list[Any] | None, tuple[str, str] | None]:
    inline, uri = payload.get("recipients"), payload.get("recipientsUri")
    if (inline is None) == (uri is None):
        problems.add("recipients", "give either recipients or recipientsUri")
        return None, None
    if inline is not None:
        if not isinstance(inline, list):
            problems.add("recipients", f"must be an array, not {type_name(inline)}")
        elif not 1 <= len(inline) <= MAX_INLINE_RECIPIENTS:
            problems.add(
                "recipients",
                f"must hold 1 to {MAX_INLINE_RECIPIENTS} recipients, not {len(inline)} (use recipientsUri for more)",
            )
        return (inline if isinstance(inline, list) else None), None
    location = parse_s3_uri(uri) if isinstance(uri, str) else None
    if location is None:
        problems.add("recipientsUri", "must be s3://<bucket>/<key>")
    elif location[0] != settings.campaign_bucket:
        problems.add("recipientsUri", "must be in the campaign bucket (the CampaignBucketName output)")
    return None, location
