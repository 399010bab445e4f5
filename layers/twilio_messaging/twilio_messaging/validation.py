"""Collects every problem with a request before reporting any, so callers fix them all at once."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from twilio_messaging.errors import ValidationError

# re.ASCII: without it \d also matches other scripts' digits (Arabic-Indic, fullwidth, …).
E164 = re.compile(r"^\+[1-9]\d{7,14}\Z", re.ASCII)
CHANNEL_ADDRESS = re.compile(r"^(whatsapp|rcs):\+[1-9]\d{7,14}\Z|^messenger:\d{1,20}\Z", re.ASCII)
SHORT_CODE = re.compile(r"^\d{3,8}\Z", re.ASCII)
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}\Z")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}\Z")
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}\Z")
MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-f]{32}\Z")


# An error lists every problem, up to a point: a 256 KB body of 100,000 bad array items would
# otherwise answer megabytes (past Lambda's 6 MB response limit: a 502 instead of a 400).
MAX_LISTED_PROBLEMS = 100
MORE_PROBLEMS = "(more problems)"
# Field names are echoed in errors: an unknown field's name is the caller's text, of any size.
MAX_FIELD_CHARACTERS = 100


def field_label(name: str) -> str:
    """A field name as an error shows it: at most 100 characters, and encodable (a lone
    surrogate, which JSON allows and UTF-8 does not, is shown escaped; an empty name as "")."""
    if not name:
        return '""'
    if len(name) > MAX_FIELD_CHARACTERS:
        name = name[: MAX_FIELD_CHARACTERS - 1] + "…"
    if has_lone_surrogate(name):
        name = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return name


class Problems:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field: str, problem: str) -> None:
        self.items.append({"field": field_label(field), "problem": problem})

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        listed = self.items[:MAX_LISTED_PROBLEMS]
        if len(self.items) > MAX_LISTED_PROBLEMS:
            more = len(self.items) - MAX_LISTED_PROBLEMS
            listed = [*listed, {"field": MORE_PROBLEMS, "problem": f"{more} more not listed: fix the ones above first"}]
        raise ValidationError.from_problems(listed)


def type_name(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def integer_field(
    fields: dict[str, Any], name: str, low: int, high: int, problems: Problems, *, label: str = "", text: bool = False
) -> int | None:
    """`fields[name]` as an integer from `low` to `high`; None when absent, or wrong (a problem
    of `label`, default the name). `text`: digits in a string count (query strings)."""
    value = fields.get(name)
    if value is None:
        return None
    if text and isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,9}", value.strip()):
        value = int(value)
    if type(value) is not int or not low <= value <= high:
        problems.add(label or name, f"must be an integer from {low} to {high}")
        return None
    return value


def check_unknown_fields(payload: dict[str, Any], known: set[str], problems: Problems) -> None:
    for name in sorted(set(payload) - known):
        problems.add(name, "is not a known field")


def check_message_sid(sid: Any, problems: Problems, field: str = "sid") -> None:
    if not isinstance(sid, str) or not MESSAGE_SID.match(sid):
        problems.add(field, "must match ^(SM|MM)[0-9a-f]{32}$" if sid else "is required")


def is_recipient(value: str) -> bool:
    return bool(E164.match(value) or CHANNEL_ADDRESS.match(value))


def is_sender(value: str) -> bool:
    return bool(
        E164.match(value) or CHANNEL_ADDRESS.match(value) or SHORT_CODE.match(value) or ALPHANUMERIC_SENDER.match(value)
    )


def has_space_or_control(text: str) -> bool:
    """Whitespace, control characters or lone surrogates: never part of a URL or path that is
    safe to forward."""
    return any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text) or has_lone_surrogate(text)


def has_lone_surrogate(text: str) -> bool:
    """A UTF-16 surrogate on its own: JSON can carry one ("\\ud800"), UTF-8 cannot encode it, so
    any request holding one fails when it is sent."""
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def check_text(payload: Any, problems: Problems, prefix: str = "") -> None:
    """Every string in a JSON value, keys included, must be encodable as UTF-8; each one that is
    not is a problem of the field that holds it. Iterative: a payload may be deeply nested."""
    stack: list[tuple[str, Any, bool]] = [(prefix, payload, False)]  # path, value, bad name
    while stack:
        path, value, bad_name = stack.pop()
        if bad_name:
            problems.add(path, "must be valid Unicode text: the name holds a lone surrogate")
        if isinstance(value, str):
            if has_lone_surrogate(value):
                problems.add(path or "(body)", "must be valid Unicode text: it holds a lone surrogate")
        elif isinstance(value, dict):
            stack.extend(
                (f"{path}.{key}" if path else str(key), item, isinstance(key, str) and has_lone_surrogate(key))
                for key, item in reversed(list(value.items()))
            )
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item, False) for index, item in reversed(list(enumerate(value))))


def is_json_media_type(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    # urlsplit drops tabs and newlines silently (WHATWG): the text sent would still hold them.
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not has_space_or_control(value)
