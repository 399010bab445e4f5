"""A campaign's recipients, one at a time: read from a row (a JSON value, a CSV row or a JSON
Lines object), checked, de-duplicated and given their own content. A recipient that cannot be
sent is skipped with its reason, never a failed request (docs/api.md, "Campaigns").

Variables fill `{{name}}` in the body and, with a content template, become the recipient's
`contentVariables` (over the message's own).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from twilio_messaging.segments import encode
from twilio_messaging.send_request import MAX_BODY_CHARACTERS
from twilio_messaging.validation import has_lone_surrogate, is_recipient

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]{1,64})\s*\}\}")
MAX_VARIABLES = 50
MAX_VARIABLE_CHARACTERS = 1600


def placeholders(body: str | None) -> frozenset[str]:
    return frozenset(PLACEHOLDER.findall(body or ""))


@dataclass(frozen=True)
class Skip:
    to: str | None
    code: str  # invalid_recipient, duplicate, missing_variable, invalid_variable, body_too_long, suppressed
    reason: str

    def line(self) -> dict[str, Any]:
        return {"to": self.to, "skipped": self.code, "reason": self.reason}


@dataclass(frozen=True)
class Personal:
    """One recipient's own content: what differs from the campaign's message."""

    to: str
    body: str | None = None
    content_variables: dict[str, str] | None = None
    encoding: str = "GSM-7"
    segments: int = 1

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"to": self.to}
        if self.body is not None:
            entry["body"] = self.body
        if self.content_variables is not None:
            entry["contentVariables"] = self.content_variables
        return entry


@dataclass
class Personalizer:
    """Turns rows into Personal content or a Skip, remembering who came already."""

    message: dict[str, Any]
    seen: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.body: str | None = self.message.get("body")
        self.wanted = placeholders(self.body)
        self.templated = "contentSid" in self.message

    def personalize(self, row: Any) -> Personal | Skip:
        to, variables, problem = _read_row(row)
        if problem is not None:
            return Skip(to, *problem)
        assert to is not None
        if to in self.seen:
            return Skip(to, "duplicate", "appears earlier in the list")
        self.seen.add(to)
        missing = sorted(self.wanted - variables.keys())
        if missing:
            return Skip(to, "missing_variable", f"no value for {', '.join(missing)}")
        body = PLACEHOLDER.sub(lambda m: variables[m.group(1)], self.body) if self.wanted and self.body else None
        if body is not None and len(body) > MAX_BODY_CHARACTERS:
            return Skip(to, "body_too_long", f"{len(body)} characters once filled in, more than {MAX_BODY_CHARACTERS}")
        content_variables = None
        if self.templated and variables:
            content_variables = {**(self.message.get("contentVariables") or {}), **variables}
        encoded = encode(body if body is not None else self.body or "")
        return Personal(to, body, content_variables, encoded.encoding, encoded.segments)


def _read_row(row: Any) -> tuple[str | None, dict[str, str], tuple[str, str] | None]:
    """The recipient, its variables, and a (code, reason) when it cannot be sent."""
    if isinstance(row, str):
        row = {"to": row}
    if not isinstance(row, dict):
        return None, {}, ("invalid_recipient", "is not a number nor an object with `to`")
    to = row.get("to")
    to = to.strip() if isinstance(to, str) else to
    if not isinstance(to, str) or not is_recipient(to):
        shown = to if isinstance(to, str) and len(to) <= 64 else None
        return shown, {}, ("invalid_recipient", "`to` must be an E.164 number or a channel address")
    variables: dict[str, str] = {}
    for name, value in row.items():
        if name == "to" or value is None:
            continue
        if isinstance(value, dict | list) or len(variables) >= MAX_VARIABLES:
            return to, {}, ("invalid_variable", f"{str(name)[:64]} must be text or a number")
        text = value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
        if len(text) > MAX_VARIABLE_CHARACTERS or has_lone_surrogate(text) or has_lone_surrogate(str(name)):
            return to, {}, ("invalid_variable", f"{str(name)[:64]} is too long or not valid Unicode text")
        variables[str(name)] = text
    return to, variables, None


@dataclass
class Tally:
    """What a dry run (or the prepare step) saw: counts, reasons, segments and encodings."""

    total: int = 0
    sendable: int = 0
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    skipped_examples: list[dict[str, Any]] = field(default_factory=list)
    segments: int = 0
    segments_per_message: dict[str, int] = field(default_factory=dict)
    encodings: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: Personal | Skip) -> None:
        self.total += 1
        if isinstance(outcome, Skip):
            self.skipped += 1
            self.skipped_reasons[outcome.code] = self.skipped_reasons.get(outcome.code, 0) + 1
            if len(self.skipped_examples) < 100:
                self.skipped_examples.append(outcome.line())
            return
        self.sendable += 1
        self.segments += outcome.segments
        key = str(outcome.segments)
        self.segments_per_message[key] = self.segments_per_message.get(key, 0) + 1
        self.encodings[outcome.encoding] = self.encodings.get(outcome.encoding, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "sendable": self.sendable,
            "skipped": self.skipped,
            "skippedReasons": self.skipped_reasons,
            "skippedRecipients": self.skipped_examples,
            "segments": self.segments,
            "segmentsPerMessage": self.segments_per_message,
            "encodings": self.encodings,
        }


def in_chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
