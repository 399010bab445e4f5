"""Values converted in one place: integers from Twilio's strings, ISO 8601 date-times with an
offset, Twilio's RFC 2822 dates, and the one format every date leaves in (UTC, ending in Z)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def as_int(value: Any) -> int | None:
    """An integer from a number or its text (Twilio sends counts and codes as strings); None
    when absent or not an integer."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_datetime(value: str) -> datetime | None:
    """An ISO 8601 date-time with an offset (or Z), as UTC; None when it is not one, or when it
    lies outside the years 1 to 9999 once in UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        if parsed.tzinfo is None or "T" not in value.upper():
            return None
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: 0001-01-01T00:00+14:00 is before year 1 in UTC
        return None


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(UTC_FORMAT)


def iso_utc(value: Any) -> str | None:
    """RFC 2822 (Twilio's dates) or ISO 8601 to ISO 8601 UTC ending in Z; None when absent, the
    value itself when it is neither (passed on rather than lost)."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed: datetime | None = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        parsed = parse_datetime(value)
    if parsed is None:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return format_utc(parsed)
    except OverflowError:  # beyond year 1 to 9999 in UTC
        return value
