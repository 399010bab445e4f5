"""Opt-outs, honoured before Twilio is called (docs/api.md, "Opt-outs").

What suppresses a recipient: an inbound STOP (and Twilio's other opt-out keywords, or its
`OptOutType=STOP`) for the number or messaging service it was sent to; a send Twilio rejects with
21610 for that sender; a final status with 30005 or 30006 (the number does not work) for every
sender, 30 days. START, YES, UNSTOP (or `OptOutType=START`) lift an inbound opt-out. The opt_outs
function reads and changes them by hand. Every change is logged with its source.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote

from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import RecipientSuppressed
from twilio_messaging.observability import count, count_by, logger
from twilio_messaging.suppressions import EVERY_SENDER, Suppression, Suppressions
from twilio_messaging.validation import (
    MESSAGING_SERVICE_SID,
    Problems,
    check_text,
    check_unknown_fields,
    is_recipient,
    is_sender,
    type_name,
)
from twilio_messaging.values import format_utc

OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
OPTED_OUT_CODE = 21610  # Twilio's "the recipient replied STOP" on a send
UNDELIVERABLE_CODES = frozenset({30005, 30006})  # unknown destination, landline or unreachable carrier
UNDELIVERABLE_DAYS = 30

Change = Literal["out", "in"]


@dataclass(frozen=True)
class OptChange:
    change: Change
    recipient: str
    scope: str
    source: str


def keyword_change(body: str | None, opt_out_type: str | None) -> Change | None:
    """What an inbound message asks: Twilio's own verdict (Advanced Opt-Out) first, else the
    whole message, trimmed, in any case, as one of the keywords."""
    verdict = (opt_out_type or "").strip().upper()
    if verdict in ("STOP", "START"):
        return "out" if verdict == "STOP" else "in"
    word = (body or "").strip().upper()
    if word in OPT_OUT_KEYWORDS:
        return "out"
    return "in" if word in OPT_IN_KEYWORDS else None


def record_inbound(params: dict[str, Any], suppressions: Suppressions, deadline: Deadline) -> OptChange | None:
    """An inbound message's opt-out or opt-in, recorded; None when it is neither. The scope is
    the messaging service it came through, else the number it was sent to."""
    first = {k: v[0] if isinstance(v, list) else v for k, v in params.items()}
    change = keyword_change(first.get("Body"), first.get("OptOutType"))
    recipient, scope = first.get("From"), first.get("MessagingServiceSid") or first.get("To")
    if change is None or not recipient or not scope:
        return None
    word = (first.get("OptOutType") or first.get("Body") or "").strip().upper()
    source = f"inbound:{word}"
    if change == "out":
        suppress(suppressions, recipient, Suppression(scope, "opted out", time.time(), source), deadline)
    else:
        lift(suppressions, recipient, scope, source, deadline)
    return OptChange(change, recipient, scope, source)


def suppress(suppressions: Suppressions, recipient: str, entry: Suppression, deadline: Deadline) -> None:
    suppressions.add(recipient, entry, deadline)
    count_by("OptOuts", "Source", entry.source.split(":", 1)[0])
    logger.info(
        "Recipient suppressed",
        extra={"to": recipient, "scope": entry.scope, "reason": entry.reason, "source": entry.source},
    )


def lift(suppressions: Suppressions, recipient: str, scope: str | None, source: str, deadline: Deadline) -> list[str]:
    lifted = suppressions.remove(recipient, scope, deadline)
    if lifted:
        count_by("OptIns", "Source", source.split(":", 1)[0])
    logger.info("Suppression lifted", extra={"to": recipient, "scopes": lifted, "source": source})
    return lifted


def after_rejection(suppressions: Suppressions, recipient: str, scope: str, deadline: Deadline) -> None:
    """Twilio refused a send with 21610: that sender may not write to that recipient."""
    entry = Suppression(scope, "opted out", time.time(), f"twilio_error:{OPTED_OUT_CODE}")
    suppress(suppressions, recipient, entry, deadline)


def after_final_status(suppressions: Suppressions, recipient: str, error_code: int, deadline: Deadline) -> None:
    """The number does not work (30005, 30006): no sender tries it for 30 days."""
    now = time.time()
    entry = Suppression(
        EVERY_SENDER, "undeliverable", now, f"twilio_error:{error_code}", now + UNDELIVERABLE_DAYS * 86400
    )
    suppress(suppressions, recipient, entry, deadline)


def suppressed_recipients(
    suppressions: Suppressions, recipients: list[str], scopes: set[str], deadline: Deadline
) -> dict[str, Suppression]:
    """The recipients a send from `scopes` (its number and messaging service) must skip, each
    with what suppresses it: one read per recipient, batched."""
    now, wanted = time.time(), scopes | {EVERY_SENDER}
    entries = (
        {recipients[0]: suppressions.of(recipients[0], deadline)}
        if len(recipients) == 1
        else suppressions.of_many(recipients, deadline)
    )
    found: dict[str, Suppression] = {}
    for recipient, suppressions_of in entries.items():
        active = [e for e in suppressions_of if e.scope in wanted and e.active(now)]
        if active:
            found[recipient] = active[0]
    return found


def suppressed_error(recipient: str, entry: Suppression) -> RecipientSuppressed:
    count("SuppressedSends")
    logger.info("Send refused: the recipient is suppressed", extra={"to": recipient, "scope": entry.scope})
    scope = "every sender" if entry.scope == EVERY_SENDER else entry.scope
    return RecipientSuppressed(
        f"{recipient} is suppressed for {scope} ({entry.reason}); nothing was sent",
        details=[{"field": "to", "problem": f"suppressed: {entry.reason} (scope {entry.scope}, {entry.source})"}],
    )


# --- the opt_outs function: read and change opt-outs by hand ------------------------------------

ACTIONS = ("get", "put", "delete")
OPT_OUT_FIELDS = {"action", "number", "scope", "reason"}
MAX_REASON_CHARACTERS = 200


@dataclass(frozen=True)
class OptOutRequest:
    action: str
    number: str
    scope: str | None  # put: default every sender; delete: None lifts every scope
    reason: str


def parse_opt_out_request(
    payload: Any, *, path_number: str | None = None, http_method: str | None = None
) -> OptOutRequest:
    """From an HTTP request (`http_method`, `path_number`, and as `payload` the JSON body of a
    PUT or the query of a DELETE) or a direct payload (`{"action", "number", "scope", "reason"}`)."""
    problems = Problems()
    payload = {} if payload is None else payload
    if not isinstance(payload, dict):
        problems.add("(body)", f"must be a JSON object, not {type_name(payload)}")
        problems.raise_if_any()
    check_text(payload, problems)
    if http_method is not None:
        action, number = http_method.lower(), unquote(path_number or "")
        check_unknown_fields(payload, {"scope", "reason"} if action != "get" else set(), problems)
    else:
        check_unknown_fields(payload, OPT_OUT_FIELDS, problems)
        action, number = payload.get("action", "get"), payload.get("number")
        if action not in ACTIONS:
            problems.add("action", "must be get, put or delete")
    scope, reason = _scope_and_reason(payload, action, problems)
    _check_number(number, problems)
    problems.raise_if_any()
    return OptOutRequest(str(action), str(number), scope, reason)


def _check_number(number: Any, problems: Problems) -> None:
    if not isinstance(number, str) or not is_recipient(number):
        problems.add("number", "must be an E.164 number (+ and 8-15 digits, %2B in a path) or a channel address")


def _scope_and_reason(payload: dict[str, Any], action: str, problems: Problems) -> tuple[str | None, str]:
    scope = payload.get("scope", EVERY_SENDER if action == "put" else None)
    if scope is not None and not (
        isinstance(scope, str) and (scope == EVERY_SENDER or is_sender(scope) or MESSAGING_SERVICE_SID.match(scope))
    ):
        problems.add("scope", "must be *, a sender (number, short code, sender ID) or a messaging service sid")
    reason = payload.get("reason", "opted out")
    if not isinstance(reason, str) or not 1 <= len(reason) <= MAX_REASON_CHARACTERS:
        problems.add("reason", f"must be 1 to {MAX_REASON_CHARACTERS} characters")
    return scope, str(reason)


def answer_opt_out_request(
    request: OptOutRequest, suppressions: Suppressions, source: str, deadline: Deadline
) -> dict[str, Any]:
    """The number's opt-outs after the request (get, put), or the scopes it lifted (delete)."""
    if request.action == "put":
        entry = Suppression(request.scope or EVERY_SENDER, request.reason, time.time(), source)
        suppress(suppressions, request.number, entry, deadline)
    elif request.action == "delete":
        return {"number": request.number, "lifted": lift(suppressions, request.number, request.scope, source, deadline)}
    now = time.time()
    return {
        "number": request.number,
        "optOuts": [_shown(e) for e in suppressions.of(request.number, deadline) if e.active(now)],
    }


def _shown(entry: Suppression) -> dict[str, Any]:
    shown = {
        "scope": entry.scope,
        "reason": entry.reason,
        "since": format_utc(datetime.fromtimestamp(entry.since, UTC)),
        "source": entry.source,
    }
    if entry.until is not None:
        shown["until"] = format_utc(datetime.fromtimestamp(entry.until, UTC))
    return shown
