"""What happens to a message, by its `To` (and a few `From`s): Twilio's magic test numbers where
Twilio has them (https://www.twilio.com/docs/iam/test-credentials, "Test SMS messages"), and
numbers of our own, in the same +1500555… range, for what Twilio's test numbers cannot show
(delivery failures, timeouts, 500s). Every other number is delivered. A `whatsapp:` (or other
channel) prefix is ignored when a number is looked up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from local.twilio_simulator import errors

OutcomeKind = Literal["rejected", "final", "slow_answer", "server_error"]


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    # rejected: the HTTP 400's code. final: the final status and its ErrorCode.
    code: int | None
    status: str | None
    description: str
    source: Literal["Twilio", "simulator"]


def _rejected(code: int, description: str, source: Literal["Twilio", "simulator"] = "Twilio") -> Outcome:
    return Outcome("rejected", code, None, description, source)


def _final(status: str, code: int | None, description: str) -> Outcome:
    return Outcome("final", code, status, description, "simulator")


RECIPIENT_OUTCOMES: dict[str, Outcome] = {
    "+15005550001": _rejected(errors.INVALID_TO, "an invalid number"),
    "+15005550002": _rejected(errors.CANNOT_ROUTE, "Twilio cannot route to it"),
    "+15005550003": _rejected(errors.INTERNATIONAL_NOT_ENABLED, "no permission for its region"),
    "+15005550004": _rejected(errors.OPTED_OUT, "blocked: the recipient opted out (replied STOP)"),
    "+15005550009": _rejected(errors.NOT_SMS_CAPABLE, "cannot receive SMS"),
    "+15005550100": _final("undelivered", errors.UNREACHABLE, "the handset is unreachable"),
    "+15005550101": _final("undelivered", errors.UNKNOWN_DESTINATION, "an unknown destination"),
    "+15005550102": _final("undelivered", errors.LANDLINE, "a landline or a carrier that cannot be reached"),
    "+15005550103": _final("failed", errors.UNKNOWN_ERROR, "fails while sending, never sent"),
    "+15005550104": Outcome(
        "slow_answer",
        None,
        None,
        "the answer (201) is held back slow_answer_seconds, so the client times out; "
        "the message is created and delivered all the same",
        "simulator",
    ),
    "+15005550105": Outcome(
        "server_error",
        errors.INTERNAL_ERROR,
        None,
        "answered 500 after the message was created; it is delivered all the same",
        "simulator",
    ),
}

SENDER_OUTCOMES: dict[str, Outcome] = {
    "+15005550001": _rejected(errors.INVALID_FROM, "an invalid From"),
    "+15005550007": _rejected(errors.FROM_NOT_OWNED, "a From the account does not own"),
    "+15005550008": _rejected(errors.QUEUE_FULL, "a From whose queue is full"),
}

DELIVERED = Outcome("final", None, "delivered", "delivered (then read, for whatsapp: recipients)", "simulator")


def bare_number(address: str) -> str:
    """`whatsapp:+1…` → `+1…`: outcomes are per number, whatever the channel."""
    return address.split(":", 1)[1] if ":" in address else address


def recipient_outcome(to: str) -> Outcome:
    return RECIPIENT_OUTCOMES.get(bare_number(to), DELIVERED)


def sender_outcome(sender: str) -> Outcome | None:
    return SENDER_OUTCOMES.get(bare_number(sender))


def _result(outcome: Outcome) -> str:
    if outcome.kind == "rejected":
        return f"400 at create, {outcome.code}"
    if outcome.kind == "final":
        return f"`{outcome.status}`, {outcome.code}" if outcome.code else f"`{outcome.status}`"
    if outcome.kind == "server_error":
        return f"500 at create, {outcome.code}"
    return "no answer in time"


def outcomes_table() -> str:
    """The tables as Markdown (docs/local-twilio.md holds this text; a test keeps them equal)."""
    rows = [("To", RECIPIENT_OUTCOMES), ("From", SENDER_OUTCOMES)]
    lines: list[str] = []
    for field, table in rows:
        lines += [f"| `{field}` | result | what it stands for | numbers from |", "| --- | --- | --- | --- |"]
        lines += [f"| `{n}` | {_result(o)} | {o.description} | {o.source} |" for n, o in table.items()]
        if field == "To":
            lines += [
                "| any other | `delivered` (then `read` for `whatsapp:`) | a phone that gets it | simulator |",
                "",
            ]
    return "\n".join(lines)
