"""At most one message per campaign and recipient, in one state table item each
(`send-claim#<sha256 of key and recipient>`; docs/architecture.md, "Campaigns"):

- claimed before the POST: `claimed_until` keeps a concurrent attempt (a batch Lambda retried
  while the first still runs) from sending too, and `attempted_at` survives the claim, so that
  an attempt whose outcome is unknown makes the next one look on Twilio first;
- the answer kept after Twilio's: a retried batch, Lambda, map or redrive returns it instead of
  sending;
- let go after a definite refusal (nothing was sent: the item goes), or kept with its
  `attempted_at` after an unknown outcome.

Two writes per message, where a keyed send of the API (Powertools' record and the note of its
attempt) needs four: campaigns make many sends with one key and never need a repeat's
fingerprint check, since each recipient's content is fixed by its batch file.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import IdempotencyInProgress
from twilio_messaging.idempotency_store import marker_for
from twilio_messaging.state_table import StateTable


@dataclass(frozen=True)
class Claim:
    """The right to send to one recipient, or what an earlier attempt already got."""

    answer: dict[str, Any] | None = None  # the message an earlier attempt sent: nothing to send
    earlier: float | None = None  # an earlier attempt, outcome unknown, began then: look first


@dataclass(frozen=True)
class SendClaims:
    """Claims under one key (`campaign:<id>`); each held `hold_seconds` at most (a send's
    longest), and kept `keep_days` (as long as the campaign can be retried or redriven)."""

    table: StateTable
    key: str
    hold_seconds: float
    keep_days: int

    def _item_key(self, recipient: str) -> dict[str, Any]:
        return {"id": {"S": f"send-claim#{marker_for(self.key, recipient)}"}}

    def claim(self, recipient: str, deadline: Deadline) -> Claim:
        """Claim the send; IdempotencyInProgress while another attempt holds it."""
        now = time.time()
        taken = self.table.conditional(
            "UpdateItem",
            {
                "Key": self._item_key(recipient),
                "UpdateExpression": "SET attempted_at = if_not_exists(attempted_at, :now), "
                "claimed_until = :until, expiration = :expiration",
                "ConditionExpression": "attribute_not_exists(answer) AND "
                "(attribute_not_exists(claimed_until) OR claimed_until < :now)",
                "ExpressionAttributeValues": {
                    ":now": {"N": str(now)},
                    ":until": {"N": str(now + self.hold_seconds)},
                    ":expiration": {"N": str(int(now) + self.keep_days * 86400)},
                },
                "ReturnValues": "ALL_OLD",  # an earlier attempt's time, if any
            },
            deadline,
        )
        if taken is not None:
            earlier = taken.get("Attributes", {}).get("attempted_at", {}).get("N")
            return Claim(earlier=float(earlier) if earlier else None)
        found = self.table.call("GetItem", {"Key": self._item_key(recipient), "ConsistentRead": True}, deadline)
        answer = found.get("Item", {}).get("answer", {}).get("S")
        if answer:
            return Claim(answer=json.loads(answer))
        raise IdempotencyInProgress("another attempt is sending this message; retry later", retry_after=5)

    def keep(self, recipient: str, message: dict[str, Any], deadline: Deadline) -> None:
        """The message is out: every later attempt gets it instead of sending."""
        self.table.call(
            "UpdateItem",
            {
                "Key": self._item_key(recipient),
                "UpdateExpression": "SET answer = :answer REMOVE claimed_until",
                "ExpressionAttributeValues": {":answer": {"S": json.dumps(message, separators=(",", ":"))}},
            },
            deadline,
        )

    def let_go(self, recipient: str, deadline: Deadline, *, outcome_known: bool) -> None:
        """Twilio refused it (`outcome_known`: nothing sent, the item goes), or its outcome is
        unknown (the attempt's time stays, so that the next attempt looks on Twilio first)."""
        if outcome_known:
            self.table.call("DeleteItem", {"Key": self._item_key(recipient)}, deadline)
        else:
            self.table.call(
                "UpdateItem", {"Key": self._item_key(recipient), "UpdateExpression": "REMOVE claimed_until"}, deadline
            )
