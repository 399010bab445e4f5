"""Collects every problem with a request before reporting any, so callers fix them all at once."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from twilio_messaging.errors import ValidationError

E164 = re.compile(r"^\+[1-9]\d{7,14}\Z")
CHANNEL_ADDRESS = re.compile(r"^(whatsapp|rcs):\+[1-9]\d{7,14}\Z|^messenger:\d{1,20}\Z")
SHORT_CODE = re.compile(r"^\d{3,8}\Z")
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}\Z")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}\Z")
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}\Z")
MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-f]{32}\Z")


class Problems:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field: str, problem: str) -> None:
        self.items.append({"field": field, "problem": problem})

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationError.from_problems(self.items)


def type_name(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def check_unknown_fields(payload: dict[str, Any], known: set[str], problems: Problems) -> None:
    for name in sorted(set(payload) - known):
        problems.add(name, "is not a known field")


def is_recipient(value: str) -> bool:
    return bool(E164.match(value) or CHANNEL_ADDRESS.match(value))


def is_sender(value: str) -> bool:
    return bool(
        E164.match(value) or CHANNEL_ADDRESS.match(value) or SHORT_CODE.match(value) or ALPHANUMERIC_SENDER.match(value)
    )


def has_space_or_control(text: str) -> bool:
    """Whitespace or control characters: never part of a URL or path that is safe to forward."""
    return any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


def is_json_media_type(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in value


def parse_datetime(value: str) -> datetime | None:
    """An ISO 8601 date-time with an offset (or Z), as UTC; None when it is not one."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None or "T" not in value.upper():
        return None
    return parsed.astimezone(UTC)
