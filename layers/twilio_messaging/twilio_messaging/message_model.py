"""The normalized Message (DESIGN.md section 5.1) built from Twilio's snake_case resource."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any


def iso_utc(value: Any) -> str | None:
    """RFC 2822 (Twilio's dates) or ISO 8601 to ISO 8601 UTC ending in Z; None when absent."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value  # unknown shape: pass it on rather than lose it
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except OverflowError:  # beyond year 1 to 9999 in UTC: pass it on rather than fail
        return value


def as_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_str(value: Any) -> str | None:
    return None if value is None else str(value)


def normalize_message(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "sid": resource.get("sid"),
        "accountSid": resource.get("account_sid"),
        "messagingServiceSid": resource.get("messaging_service_sid"),
        "from": resource.get("from"),
        "to": resource.get("to"),
        "body": resource.get("body"),
        "status": resource.get("status"),
        "direction": resource.get("direction"),
        "numSegments": as_int(resource.get("num_segments")),
        "numMedia": as_int(resource.get("num_media")),
        "price": as_str(resource.get("price")),
        "priceUnit": resource.get("price_unit"),
        "errorCode": as_int(resource.get("error_code")),
        "errorMessage": resource.get("error_message"),
        "dateCreated": iso_utc(resource.get("date_created")),
        "dateSent": iso_utc(resource.get("date_sent")),
        "dateUpdated": iso_utc(resource.get("date_updated")),
        "apiVersion": resource.get("api_version"),
        "uri": resource.get("uri"),
    }
