"""Campaign records in the state table (`campaign#<id>`): what was asked (the message, the
recipients' file, the rate, a fingerprint of the request), where it stands (status, counts,
times, the execution, the report) and which batches were counted already, so that a retried
batch never counts twice. Kept CAMPAIGN_REPORT_DAYS, as long as the report.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from twilio_messaging.deadline import Deadline
from twilio_messaging.state_table import StateTable
from twilio_messaging.values import format_utc

COUNTS = ("sent", "failed", "skipped", "delivered", "undelivered")
FINISHED = frozenset({"SUCCEEDED", "FAILED", "ABORTED"})
DELIVERED = frozenset({"delivered", "read"})


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    fingerprint: str
    status: str  # STARTING (recorded, no execution yet), RUNNING, SUCCEEDED, FAILED, ABORTED
    message: dict[str, Any]
    recipients: tuple[str, str]  # bucket, key
    name: str | None = None
    max_sends_per_second: float | None = None
    total: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    execution_arn: str | None = None
    report_uri: str | None = None
    stop_requested: bool = False

    def answer(self) -> dict[str, Any]:
        return {
            "campaignId": self.campaign_id,
            "name": self.name,
            "status": "RUNNING" if self.status == "STARTING" else self.status,
            "total": self.total,
            **{name: self.counts.get(name, 0) for name in COUNTS},
            "startedAt": _time(self.started_at),
            "finishedAt": _time(self.finished_at),
            "reportUri": self.report_uri,
        }


def _time(at: float | None) -> str | None:
    return None if at is None else format_utc(datetime.fromtimestamp(at, UTC))


class CampaignStore:
    def __init__(self, table: StateTable, record_days: int) -> None:
        self.table = table
        self.record_days = record_days

    def create(self, campaign: Campaign, deadline: Deadline) -> Campaign | None:
        """Record a new campaign; the one already recorded under its id, if any."""
        item: dict[str, Any] = {
            **_key(campaign.campaign_id),
            "fingerprint": {"S": campaign.fingerprint},
            "status": {"S": campaign.status},
            "message": {"S": json.dumps(campaign.message, separators=(",", ":"))},
            "recipients_bucket": {"S": campaign.recipients[0]},
            "recipients_key": {"S": campaign.recipients[1]},
            "started_at": {"N": str(campaign.started_at or time.time())},
            "expiration": {"N": str(int(time.time()) + self.record_days * 86400)},
        }
        if campaign.name is not None:
            item["campaign_name"] = {"S": campaign.name}
        if campaign.max_sends_per_second is not None:
            item["max_rate"] = {"N": str(campaign.max_sends_per_second)}
        if campaign.total is not None:
            item["total_recipients"] = {"N": str(campaign.total)}
        created = self.table.conditional(
            "PutItem", {"Item": item, "ConditionExpression": "attribute_not_exists(id)"}, deadline
        )
        return None if created is not None else self.get(campaign.campaign_id, deadline)

    def get(self, campaign_id: str, deadline: Deadline) -> Campaign | None:
        found = self.table.call("GetItem", {"Key": _key(campaign_id), "ConsistentRead": True}, deadline).get("Item")
        return None if not found else _campaign(campaign_id, found)

    def started(self, campaign_id: str, execution_arn: str, deadline: Deadline) -> None:
        self._update(campaign_id, "SET execution_arn = :arn", {":arn": {"S": execution_arn}}, deadline)
        self._update(  # unless it was stopped meanwhile
            campaign_id,
            "SET #status = :running",
            {":running": {"S": "RUNNING"}, ":starting": {"S": "STARTING"}},
            deadline,
            condition="#status = :starting",
        )

    def prepared(self, campaign_id: str, total: int, skipped: int, deadline: Deadline) -> None:
        self._update(
            campaign_id,
            "SET total_recipients = :total, skipped = :skipped",
            {":total": {"N": str(total)}, ":skipped": {"N": str(skipped)}},
            deadline,
        )

    def count_batch(self, campaign_id: str, index: int, counts: dict[str, int], deadline: Deadline) -> bool:
        """Add one finished batch's counts, once whatever retries it; False when counted before."""
        names = [name for name in ("sent", "failed", "skipped") if counts.get(name)]
        adds = ", ".join([f"{name} :{name}" for name in names] + ["counted :batch"])
        values = {f":{name}": {"N": str(counts[name])} for name in names}
        return self._update(
            campaign_id,
            f"ADD {adds}",
            {**values, ":batch": {"SS": [str(index)]}, ":index": {"S": str(index)}},
            deadline,
            condition="NOT contains(counted, :index)",
        )

    def finish(
        self, campaign_id: str, status: str, counts: dict[str, int], report_uri: str, deadline: Deadline
    ) -> None:
        """The final counts and status, unless the campaign was stopped meanwhile (it stays ABORTED)."""
        values = {f":{name}": {"N": str(counts.get(name, 0))} for name in ("sent", "failed", "skipped")}
        self._update(
            campaign_id,
            "SET #status = :status, finished_at = :now, report_uri = :report, total_recipients = :total, "
            "sent = :sent, failed = :failed, skipped = :skipped",
            {
                **values,
                ":status": {"S": status},
                ":now": {"N": str(time.time())},
                ":report": {"S": report_uri},
                ":total": {"N": str(sum(counts.get(name, 0) for name in ("sent", "failed", "skipped")))},
                ":aborted": {"S": "ABORTED"},
            },
            deadline,
            condition="#status <> :aborted",
        )

    def request_stop(self, campaign_id: str, deadline: Deadline) -> None:
        """No batch starts another send; a campaign not finished yet is ABORTED from now on."""
        self._update(campaign_id, "SET stop_requested = :yes", {":yes": {"BOOL": True}}, deadline)
        self._update(
            campaign_id,
            "SET #status = :aborted, finished_at = :now",
            {
                ":aborted": {"S": "ABORTED"},
                ":now": {"N": str(time.time())},
                ":running": {"S": "RUNNING"},
                ":starting": {"S": "STARTING"},
            },
            deadline,
            condition="#status IN (:running, :starting)",
        )

    def _update(
        self,
        campaign_id: str,
        expression: str,
        values: dict[str, Any],
        deadline: Deadline,
        *,
        condition: str | None = None,
    ) -> bool:
        """One update; False when its condition did not hold."""
        payload: dict[str, Any] = {
            "Key": _key(campaign_id),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if "#status" in expression or "#status" in (condition or ""):
            payload["ExpressionAttributeNames"] = {"#status": "status"}
        if condition is not None:
            payload["ConditionExpression"] = f"attribute_exists(id) AND ({condition})"
        return self.table.conditional("UpdateItem", payload, deadline) is not None


def count_delivery(table: StateTable, campaign_id: str, final_status: str, deadline: Deadline) -> None:
    """One of the campaign's messages reached its final status: delivered (or read), or not."""
    counter = "delivered" if final_status in DELIVERED else "undelivered"
    table.conditional(
        "UpdateItem",
        {
            "Key": _key(campaign_id),
            "UpdateExpression": f"ADD {counter} :one",
            "ConditionExpression": "attribute_exists(id)",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        },
        deadline,
    )


def _key(campaign_id: str) -> dict[str, Any]:
    return {"id": {"S": f"campaign#{campaign_id}"}}


def _number(item: dict[str, Any], name: str) -> float | None:
    value = item.get(name, {}).get("N")
    return float(value) if value is not None else None


def _campaign(campaign_id: str, item: dict[str, Any]) -> Campaign:
    total = _number(item, "total_recipients")
    return Campaign(
        campaign_id=campaign_id,
        fingerprint=item.get("fingerprint", {}).get("S", ""),
        status=item.get("status", {}).get("S", "RUNNING"),
        message=json.loads(item.get("message", {}).get("S", "{}")),
        recipients=(item.get("recipients_bucket", {}).get("S", ""), item.get("recipients_key", {}).get("S", "")),
        name=item.get("campaign_name", {}).get("S"),
        max_sends_per_second=_number(item, "max_rate"),
        total=int(total) if total is not None else None,
        counts={name: int(_number(item, name) or 0) for name in COUNTS},
        started_at=_number(item, "started_at"),
        finished_at=_number(item, "finished_at"),
        execution_arn=item.get("execution_arn", {}).get("S"),
        report_uri=item.get("report_uri", {}).get("S"),
        stop_requested=bool(item.get("stop_requested", {}).get("BOOL")),
    )
