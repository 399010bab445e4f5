"""What Twilio's report of a message's status does, whether it came as a status callback (the
webhook) or was fetched by the reconciler: the delivery record moves forward (or keeps the
report as not applied), a first final status completes the Step Functions task waiting for it,
a number that does not work is suppressed, and the `Message Status Changed` event is published
with the status it moved from. Each step is idempotent, so a retry after a failure at any point
finishes the work: the record remembers an event it owes until the event is out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twilio_messaging.deadline import Deadline
from twilio_messaging.delivery_records import Applied, DeliveryRecords, StatusReport
from twilio_messaging.errors import TwilioMessagingError
from twilio_messaging.event_bus import EventBus
from twilio_messaging.observability import count, logger
from twilio_messaging.opt_outs import UNDELIVERABLE_CODES, after_final_status
from twilio_messaging.state_table import StateTable
from twilio_messaging.step_functions import StepFunctions
from twilio_messaging.suppressions import Suppressions
from twilio_messaging.task_completion import settle_task

STATUS_CHANGED = "Message Status Changed"


@dataclass(frozen=True)
class DeliveryServices:
    table: StateTable
    records: DeliveryRecords
    suppressions: Suppressions
    bus: EventBus
    step_functions: StepFunctions


def report_status(
    report: StatusReport, detail: dict[str, Any], services: DeliveryServices, deadline: Deadline
) -> Applied:
    """Apply `report`; `detail` is its event's detail (camelCase fields and Twilio's parameters)."""
    applied = services.records.apply(report, deadline)
    if not applied.publish:
        if report.source == "callback":
            count("OutOfOrderCallbacks")
            logger.info(
                "Status not applied: the message has moved past it", extra={"sid": report.sid, "status": report.status}
            )
        return applied
    if applied.final:
        record = services.table.store_final_status(report.sid, detail, deadline)
        settle_task(services.table, services.step_functions, report.sid, record, deadline)
    if applied.first_final and applied.campaign:
        _count_for_campaign(services, applied.campaign, report.status, deadline)
    recipient = detail.get("to")
    if applied.applied and report.error_code in UNDELIVERABLE_CODES and recipient:
        after_final_status(services.suppressions, str(recipient), int(report.error_code or 0), deadline)
    services.bus.publish(STATUS_CHANGED, {**detail, "previousStatus": applied.previous_status}, deadline)
    try:
        services.records.published(report, deadline)
    except TwilioMessagingError as error:  # the event is out: a retry would publish it once more
        logger.warning("Could not mark the status event published", extra={"reason": error.message})
    return applied


def _count_for_campaign(services: DeliveryServices, campaign: str, status: str, deadline: Deadline) -> None:
    """Best effort: a campaign's delivered and undelivered counts are a view, the records the truth."""
    from twilio_messaging.campaign_store import count_delivery

    try:
        count_delivery(services.table, campaign, status, deadline)
    except TwilioMessagingError as error:
        logger.warning("Could not count a campaign's delivery", extra={"reason": error.message})
