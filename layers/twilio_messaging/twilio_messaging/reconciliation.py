"""Lost callbacks are found (docs/architecture.md, "Delivery state"): a scheduled run looks up on
Twilio the messages sent with this deployment's status callback whose status is not final some
time after the send, and applies what Twilio says as a callback would (delivery_state): the
record moves, the task completes, the event is published. Found through the sparse
`pending-index`, never by scanning the table; a message is given up 72 hours after its send (or
its sendAt).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from twilio_messaging.deadline import Deadline
from twilio_messaging.delivery_records import PendingMessage, StatusReport, rank
from twilio_messaging.delivery_state import DeliveryServices, report_status
from twilio_messaging.errors import MessageNotFound, TwilioMessagingError
from twilio_messaging.message_by_sid import get_message
from twilio_messaging.observability import count, logger
from twilio_messaging.twilio_client import TwilioClient

MIN_SECONDS_PER_MESSAGE = 2.0  # left in the invocation to look one more message up


@dataclass
class Summary:
    checked: int = 0
    applied: int = 0
    unchanged: int = 0
    given_up: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "checked": self.checked,
            "applied": self.applied,
            "unchanged": self.unchanged,
            "givenUp": self.given_up,
            "failed": self.failed,
        }


def reconcile(
    client: TwilioClient, services: DeliveryServices, check_again_after: float, limit: int, deadline: Deadline
) -> dict[str, int]:
    """Look up at most `limit` pending messages due now; look again `check_again_after` seconds
    later at those still not final."""
    summary = Summary()
    now = time.time()
    for pending in services.records.pending(now, limit, deadline):
        if deadline.remaining() < MIN_SECONDS_PER_MESSAGE:
            logger.info("Reconciliation stops to end in time", extra=summary.as_dict())
            break
        if now > pending.reconcile_until:
            services.records.stop_reconciling(pending.sid, deadline)
            summary.given_up += 1
            logger.warning("No final status within 72 hours: no longer looked for", extra={"sid": pending.sid})
            continue
        try:
            _look_up(client, services, pending, summary, deadline)
        except TwilioMessagingError as error:
            summary.failed += 1
            logger.warning("Could not reconcile a message", extra={"sid": pending.sid, "error": error.to_dict()})
            continue
        services.records.check_again_at(pending.sid, now + check_again_after, deadline)
    count("ReconciledMessages", summary.applied)
    logger.info("Reconciliation done", extra=summary.as_dict())
    return summary.as_dict()


def _look_up(
    client: TwilioClient, services: DeliveryServices, pending: PendingMessage, summary: Summary, deadline: Deadline
) -> None:
    summary.checked += 1
    try:
        message = get_message(client, pending.sid, deadline)
    except MessageNotFound:  # deleted on Twilio: nothing more will come
        services.records.stop_reconciling(pending.sid, deadline)
        summary.given_up += 1
        return
    status = "sent" if message["status"] == "partially_delivered" else str(message["status"])
    statuses = ["delivered", "read"] if status == "read" else [status]  # a read before delivered: both
    applied_any = False
    for reported in statuses:
        report = StatusReport(pending.sid, reported, message.get("errorCode"), source="reconciliation")
        if rank(reported) and report_status(report, _detail(message, reported), services, deadline).publish:
            applied_any = True
    if applied_any:
        summary.applied += 1
    else:
        summary.unchanged += 1


def _detail(message: dict[str, Any], status: str) -> dict[str, Any]:
    """The event's detail, as a callback's would be; `reconciled` says where it came from."""
    return {
        "messageSid": message["sid"],
        "accountSid": message.get("accountSid"),
        "from": message.get("from"),
        "to": message.get("to"),
        "body": None,
        "status": status,
        "errorCode": message.get("errorCode"),
        "messagingServiceSid": message.get("messagingServiceSid"),
        "numMedia": message.get("numMedia"),
        "media": [],
        "params": {},
        "reconciled": True,
    }
