"""Each message's delivery record in the state table (`message#<sid>`): its status, error code
and the history of what Twilio reported, kept MESSAGE_RECORD_DAYS after its last change.

Statuses only move forward (docs/twilio.md, "Message statuses"): queued, accepted, scheduled →
sending → sent → one final status (delivered, undelivered, failed, canceled), and delivered →
read. Each report is applied by one conditional write that holds only if the status it moves
from comes before it, so concurrent callbacks never lose an update and a late one never moves a
message back; a report that does not apply is kept in the history, marked not applied.

Messages whose status is not final and that were sent with this deployment's status callback
carry `pending` and `next_check_at`: the sparse index `pending-index` lists exactly those, by
when to look at them next, for the reconciler.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from twilio_messaging.deadline import Deadline
from twilio_messaging.state_table import StateTable
from twilio_messaging.values import format_utc

PENDING_INDEX = "pending-index"
PENDING = "pending"  # the index's one partition: messages whose final status is not known yet
RECONCILE_HOURS = 72  # after the send (or its sendAt): later, a status is no longer looked for
STATUS_RANK = {
    "queued": 1,
    "accepted": 1,
    "scheduled": 1,
    "sending": 2,
    "sent": 3,
    "partially_delivered": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    "read": 5,
}
FINAL_RANK = 4
FINAL_STATUSES = frozenset(status for status, rank in STATUS_RANK.items() if rank >= FINAL_RANK)
INITIAL_STATUSES = frozenset({"queued", "accepted", "scheduled"})


@dataclass(frozen=True)
class StatusReport:
    """What Twilio reported of one message: a status callback, or its resource fetched."""

    sid: str
    status: str
    error_code: int | None = None
    source: str = "callback"  # or "reconciliation", "send"


@dataclass(frozen=True)
class Applied:
    """What applying a report did. `publish`: an event is due, because the report applied now,
    or because it applied before and its event was never published (the invocation that applied
    it failed or was cut off before publishing: Twilio's retry, or the reconciler, finishes it)."""

    applied: bool
    publish: bool
    previous_status: str | None
    final: bool  # the message's status is final with this report (a task waiting for it completes)
    campaign: str | None = None  # the campaign of the message, when the report applied

    @property
    def first_final(self) -> bool:
        """The message reached a final status with this report (not read after delivered)."""
        return self.applied and self.final and rank(self.previous_status or "") < FINAL_RANK


@dataclass(frozen=True)
class PendingMessage:
    sid: str
    reconcile_until: float


def rank(status: str) -> int:
    return STATUS_RANK.get(status, 0)


class DeliveryRecords:
    def __init__(self, table: StateTable, record_days: int) -> None:
        self.table = table
        self.record_days = record_days

    def _expiration(self, until: float | None = None) -> dict[str, str]:
        """Records live `record_days` after the last change, or after a scheduled send's sendAt."""
        return {"N": str(int(max(time.time(), until or 0)) + self.record_days * 86400)}

    def record_sent(
        self,
        message: dict[str, Any],
        *,
        reconcile_after: float | None,
        send_at: float | None,
        deadline: Deadline,
        campaign: str | None = None,
    ) -> str | None:
        """The first record of a message just sent: its status as Twilio answered. A callback may
        have beaten the answer: then the record exists, and only what the send knows is added.
        `reconcile_after`: seconds after which the reconciler looks for a final status (None:
        the message reports to another callback, or none). `campaign`: the campaign it belongs to.
        The final status callbacks already recorded, if any (its campaign has not counted it)."""
        sid, status, now = str(message["sid"]), str(message.get("status") or "queued"), time.time()
        report = StatusReport(sid, status, source="send")
        details = {
            ":to": {"S": str(message.get("to") or "")},
            ":sender": {"S": str(message.get("messagingServiceSid") or message.get("from") or "")},
            ":sent_at": {"N": str(int(now))},
            ":expiration": self._expiration(send_at),
        }
        campaign_set = ""
        if campaign is not None:
            details[":campaign"] = {"S": campaign}
            campaign_set = ", campaign = :campaign"
        names = {"#status": "status"}
        first: dict[str, Any] = {
            **details,
            ":status": {"S": status},
            ":rank": {"N": str(rank(status))},
            ":events": {"L": [_event(report, now, applied=True)]},
        }
        pending = ""
        if reconcile_after is not None and rank(status) < FINAL_RANK:
            pending = ", pending = :pending, next_check_at = :next, reconcile_until = :until"
            first[":pending"] = {"S": PENDING}
            first[":next"] = {"N": str(int(max(now, send_at or 0) + reconcile_after))}
            first[":until"] = {"N": str(int(max(now, send_at or 0)) + RECONCILE_HOURS * 3600)}
        created = self.table.conditional(
            "UpdateItem",
            {
                "Key": _key(sid),
                "UpdateExpression": "SET #status = :status, status_rank = :rank, history = :events, "
                "recipient = :to, sender = :sender, sent_at = :sent_at, updated_at = :sent_at, "
                f"expiration = :expiration{pending}{campaign_set}",
                "ConditionExpression": "attribute_not_exists(status_rank)",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": first,
            },
            deadline,
        )
        if created is not None:
            return None
        return self._add_send_facts(report, details, campaign_set, now, deadline)

    def _add_send_facts(
        self, report: StatusReport, details: dict[str, Any], campaign_set: str, now: float, deadline: Deadline
    ) -> str | None:
        """The callbacks came first: keep their status, add the send's facts; the final status
        they reported, if any."""
        answer = self.table.call(
            "UpdateItem",
            {
                "Key": _key(report.sid),
                "UpdateExpression": "SET recipient = :to, sender = :sender, sent_at = :sent_at, "
                f"expiration = :expiration, history = list_append(history, :events){campaign_set}",
                "ExpressionAttributeValues": {**details, ":events": {"L": [_event(report, now, applied=False)]}},
                "ReturnValues": "ALL_NEW",
            },
            deadline,
        )
        found = answer.get("Attributes", {}).get("status", {}).get("S", "")
        return found if rank(found) >= FINAL_RANK else None

    def check_again_at(self, sid: str, next_check_at: float, deadline: Deadline) -> None:
        """When the reconciler looks at a pending message next (only while it is pending)."""
        self.table.conditional(
            "UpdateItem",
            {
                "Key": _key(sid),
                "UpdateExpression": "SET next_check_at = :next",
                "ConditionExpression": "attribute_exists(pending)",
                "ExpressionAttributeValues": {":next": {"N": str(int(next_check_at))}},
            },
            deadline,
        )

    def apply(self, report: StatusReport, deadline: Deadline) -> Applied:
        """Apply `report` if it moves the message forward; else keep it in the history only."""
        now = time.time()
        new_rank = rank(report.status)
        values: dict[str, Any] = {
            ":status": {"S": report.status},
            ":rank": {"N": str(new_rank)},
            ":limit": {"N": str(min(new_rank, FINAL_RANK))},
            ":events": {"L": [_event(report, now, applied=True)]},
            ":empty": {"L": []},
            ":now": {"N": str(int(now))},
            ":expiration": self._expiration(),
        }
        condition = "attribute_not_exists(status_rank) OR status_rank < :limit"
        if report.status == "read":  # delivered → read, the one move from a final status
            condition += " OR #status = :delivered"
            values[":delivered"] = {"S": "delivered"}
        error = ""
        if report.error_code is not None:
            error = ", error_code = :error"
            values[":error"] = {"N": str(report.error_code)}
        final = " REMOVE pending, next_check_at" if new_rank >= FINAL_RANK else ""
        before = self.table.conditional(
            "UpdateItem",
            {
                "Key": _key(report.sid),
                "UpdateExpression": "SET #status = :status, status_rank = :rank, updated_at = :now, "
                "unpublished = :status, "
                f"expiration = :expiration, history = list_append(if_not_exists(history, :empty), :events){error}"
                f"{final}",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
                "ReturnValues": "ALL_OLD",
            },
            deadline,
        )
        if before is None:
            return self._note_not_applied(report, now, deadline)
        attributes = before.get("Attributes", {})
        previous = attributes.get("status", {}).get("S")
        return Applied(True, True, previous, new_rank >= FINAL_RANK, attributes.get("campaign", {}).get("S"))

    def _note_not_applied(self, report: StatusReport, now: float, deadline: Deadline) -> Applied:
        """Keep the report in the history; and when it is the status applied last, whose event
        was never published, say that its event is still due."""
        answer = self.table.call(
            "UpdateItem",
            {
                "Key": _key(report.sid),
                "UpdateExpression": "SET history = list_append(if_not_exists(history, :empty), :events)",
                "ExpressionAttributeValues": {
                    ":events": {"L": [_event(report, now, applied=False)]},
                    ":empty": {"L": []},
                },
                "ReturnValues": "ALL_NEW",
            },
            deadline,
        )
        item = answer.get("Attributes", {})
        if item.get("unpublished", {}).get("S") != report.status:
            return Applied(False, False, None, False)
        applied = [e["M"]["status"]["S"] for e in item.get("history", {}).get("L", []) if e["M"]["applied"]["BOOL"]]
        previous = applied[-2] if len(applied) > 1 and applied[-1] == report.status else None
        return Applied(False, True, previous, rank(report.status) >= FINAL_RANK)

    def published(self, report: StatusReport, deadline: Deadline) -> None:
        """The event of `report` is out: no retry publishes it again."""
        self.table.conditional(
            "UpdateItem",
            {
                "Key": _key(report.sid),
                "UpdateExpression": "REMOVE unpublished",
                "ConditionExpression": "unpublished = :status",
                "ExpressionAttributeValues": {":status": {"S": report.status}},
            },
            deadline,
        )

    def get(self, sid: str, deadline: Deadline) -> dict[str, Any] | None:
        """The message's status, error code and history, or None when it is unknown here."""
        found = self.table.call("GetItem", {"Key": _key(sid), "ConsistentRead": True}, deadline).get("Item")
        if not found or "status" not in found:
            return None
        code = found.get("error_code", {}).get("N")
        return {
            "sid": sid,
            "status": found["status"]["S"],
            "errorCode": int(code) if code else None,
            "to": found.get("recipient", {}).get("S"),
            "sender": found.get("sender", {}).get("S"),
            "events": [_from_event(e["M"]) for e in found.get("history", {}).get("L", [])],
        }

    def pending(self, due_by: float, limit: int, deadline: Deadline) -> list[PendingMessage]:
        """Pending messages due for a look at `due_by`, oldest first, at most `limit`."""
        answer = self.table.call(
            "Query",
            {
                "IndexName": PENDING_INDEX,
                "KeyConditionExpression": "pending = :pending AND next_check_at <= :due",
                "ExpressionAttributeValues": {":pending": {"S": PENDING}, ":due": {"N": str(int(due_by))}},
                "Limit": limit,
            },
            deadline,
        )
        return [
            PendingMessage(item["id"]["S"].removeprefix("message#"), float(item.get("reconcile_until", {}).get("N", 0)))
            for item in answer.get("Items", [])
        ]

    def stop_reconciling(self, sid: str, deadline: Deadline) -> None:
        """Too late to look for a final status: the message leaves the pending index."""
        self.table.call("UpdateItem", {"Key": _key(sid), "UpdateExpression": "REMOVE pending, next_check_at"}, deadline)


def _key(sid: str) -> dict[str, Any]:
    return {"id": {"S": f"message#{sid}"}}


def _event(report: StatusReport, at: float, *, applied: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "status": {"S": report.status},
        "receivedAt": {"N": str(round(at, 3))},
        "applied": {"BOOL": applied},
        "source": {"S": report.source},
    }
    if report.error_code is not None:
        fields["errorCode"] = {"N": str(report.error_code)}
    return {"M": fields}


def _from_event(fields: dict[str, Any]) -> dict[str, Any]:
    code = fields.get("errorCode", {}).get("N")
    return {
        "status": fields["status"]["S"],
        "errorCode": int(code) if code else None,
        "receivedAt": format_utc(datetime.fromtimestamp(float(fields["receivedAt"]["N"]), UTC)),
        "applied": fields["applied"]["BOOL"],
        "source": fields.get("source", {}).get("S"),
    }
