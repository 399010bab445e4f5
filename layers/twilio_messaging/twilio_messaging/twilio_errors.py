"""Twilio's error bodies, in the three shapes its APIs answer with (docs/twilio.md, "Errors")."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from twilio_messaging.values import as_int


@dataclass(frozen=True)
class TwilioErrorBody:
    status: int
    code: int | None
    message: str
    more_info: str | None = None


def parse_error_body(status: int, content: bytes) -> TwilioErrorBody:
    """Code, message and docs link from a Twilio error answer, whatever its shape."""
    try:
        data = json.loads(content) if content else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return TwilioErrorBody(status, None, f"Twilio answered HTTP {status}")

    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):  # {"errors": [...]}
        data = {**data, **errors[0]}
    message = data.get("message") or data.get("detail") or data.get("title")  # RFC 9457: detail/title
    more_info = data.get("more_info") or data.get("moreInfo") or data.get("type")
    return TwilioErrorBody(
        status=status,
        code=as_int(data.get("code")),
        message=str(message) if message else f"Twilio answered HTTP {status}",
        more_info=str(more_info) if isinstance(more_info, str) and more_info.startswith("http") else None,
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    except (TypeError, ValueError, OverflowError):  # OverflowError: a date beyond year 1 to 9999 in UTC
        return None
