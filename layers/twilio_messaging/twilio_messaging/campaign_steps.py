"""The campaign state machine's steps (statemachines/campaign.asl.json; docs/architecture.md,
"Campaigns"), each a function of its own:

- `prepare`: read the recipients once: check, de-duplicate, fill in each one's content, skip the
  suppressed; plan the budget (campaign_plan); write the batches and the map's items.
- `send_batch`: one batch, each recipient through the layer's send path under a claim keyed by
  the campaign id (send_claims), so that a batch retried by Lambda, by the map or by a redrive
  never sends to a recipient twice. What cannot be settled now (Twilio's 429s, an unknown outcome, no time left)
  is left for the state machine to send again after a wait.
- `finish`: the report, one line per recipient; the final counts; `Campaign Completed`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from twilio_messaging.campaign_files import batch_key, items_key, report_key, results_key, skipped_key
from twilio_messaging.campaign_plan import CampaignPacer, plan_campaign
from twilio_messaging.campaign_recipients import Personal, Personalizer, Skip, Tally, in_chunks
from twilio_messaging.campaign_request import template_request
from twilio_messaging.campaign_store import Campaign
from twilio_messaging.campaigns import SUPPRESSION_CHUNK, CampaignServices, screen
from twilio_messaging.deadline import Deadline
from twilio_messaging.delivery_records import DeliveryRecords
from twilio_messaging.errors import (
    AwsServiceUnavailable,
    ConfigurationError,
    IdempotencyInProgress,
    SendOutcomeUnknown,
    TwilioMessagingError,
    TwilioRateLimited,
    TwilioUnavailable,
    ValidationError,
)
from twilio_messaging.event_bus import EventBus
from twilio_messaging.observability import count, logger
from twilio_messaging.send_claims import SendClaims
from twilio_messaging.send_request import SendRequest
from twilio_messaging.sending import Delivery, record_failure, send_to_recipient
from twilio_messaging.twilio_client import TwilioClient

COMPLETED = "Campaign Completed"
# Not settled now, worth another try later: nothing was sent, or a retry with the key looks first.
LATER = (TwilioRateLimited, TwilioUnavailable, AwsServiceUnavailable, IdempotencyInProgress, SendOutcomeUnknown)
MAX_ROUNDS = 20  # invocations of one batch; then what is left is reported failed
STOP_STARTING_SECONDS = 45.0  # a batch starts no send with less time than this left
SEND_SECONDS = 40.0  # one recipient's send at most: a crashed batch's claims go stale soon after
CLAIM_MARGIN_SECONDS = 5.0
STOP_CHECK_SECONDS = 5.0
CLAIM_DAYS = 15  # a campaign can be redriven for 14 days: its sends' claims outlive that


def prepare(campaign_id: str, services: CampaignServices, deadline: Deadline) -> dict[str, Any]:
    """The map's input: where its items are and how many batches run at once."""
    campaign = _campaign(campaign_id, services, deadline)
    template = template_request(campaign.message, services.settings())
    scopes = {scope for scope in (template.sender, template.messaging_service_sid) if scope}
    tally, personalizer = Tally(), Personalizer(campaign.message)
    sendable: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    rows = services.campaign_files().rows(campaign.recipients[1])
    for chunk in in_chunks(rows, SUPPRESSION_CHUNK):
        for outcome in screen(chunk, personalizer, services.suppressions(), scopes, deadline):
            tally.add(outcome)
            if isinstance(outcome, Personal):
                sendable.append(outcome.entry())
            else:
                skipped.append(outcome.line())
    plan = plan_campaign(
        0 if campaign.stop_requested else len(sendable),
        services.settings().twilio_concurrency_limit,
        campaign.max_sends_per_second,
    )
    items = []
    for index, batch in enumerate(in_chunks(sendable, plan.batch_size) if plan.batches else []):
        services.campaign_files().put_json(batch_key(campaign_id, index), batch)
        items.append({"index": index, "key": batch_key(campaign_id, index), "count": len(batch)})
    services.campaign_files().put_json(items_key(campaign_id), items)
    services.campaign_files().put_lines(skipped_key(campaign_id), skipped)
    services.campaign_store().prepared(campaign_id, tally.total, tally.skipped, deadline)
    logger.info("Campaign prepared", extra={"campaignId": campaign_id, **plan.as_dict(), "skipped": tally.skipped})
    return {
        "campaignId": campaign_id,
        "bucket": services.campaign_files().bucket,
        "itemsKey": items_key(campaign_id),
    } | (plan.as_dict())


@dataclass(frozen=True)
class SendServices:
    """What a batch's sends need besides the campaign's own services."""

    client: TwilioClient
    records: DeliveryRecords
    webhook_url: str | None
    reconcile_after: float


@dataclass(frozen=True)
class BatchOrder:
    """One invocation's orders, as the state machine passes them."""

    campaign_id: str
    index: int
    key: str
    concurrency: int
    spacing: float
    round: int

    @classmethod
    def parse(cls, event: Any) -> BatchOrder:
        try:
            batch = event["batch"]
            return cls(
                str(event["campaignId"]),
                int(batch["index"]),
                str(batch["key"]),
                max(1, int(event["batchConcurrency"])),
                max(0.0, float(event.get("spacingSeconds") or 0)),
                int(event.get("round") or 0),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValidationError(f"not a campaign batch: {type(error).__name__} {error}") from None


def send_batch(
    order: BatchOrder, services: CampaignServices, sends: SendServices, deadline: Deadline
) -> dict[str, Any]:
    """Send what is not settled yet. `done`: every recipient settled (and counted, once)."""
    campaign = _campaign(order.campaign_id, services, deadline)
    entries: list[dict[str, Any]] = services.campaign_files().get_json(order.key) or []
    settled: dict[str, dict[str, Any]] = (
        services.campaign_files().get_json(results_key(order.campaign_id, order.index)) or {}
    )
    waiting = [entry for entry in entries if entry["to"] not in settled]
    if campaign.stop_requested:
        return {"done": True, "stopped": True}
    template = template_request(campaign.message, services.settings())
    batch = _Batch(order, campaign, template, services, sends, deadline)
    for outcome in batch.recheck_opt_outs(waiting):
        settled[outcome["to"]] = outcome
    later = batch.send([entry for entry in waiting if entry["to"] not in settled], settled)
    last_round = order.round + 1 >= MAX_ROUNDS
    for to, error in later.items() if last_round else ():
        settled[to] = {"to": to, "error": error.to_dict()}
    services.campaign_files().put_json(results_key(order.campaign_id, order.index), settled)
    if later and not last_round and not batch.stopped:
        wait = batch.wait_before_next(later)
        logger.info("Batch not finished: sent again later", extra={"left": len(later), "waitSeconds": wait})
        return {"done": False, "retryAfter": wait, "round": order.round + 1}
    counts = _count(settled.values())
    if services.campaign_store().count_batch(order.campaign_id, order.index, counts, deadline):  # once per batch
        count("CampaignRecipientsSent", counts["sent"])
        count("CampaignRecipientsFailed", counts["failed"])
        count("CampaignRecipientsSkipped", counts["skipped"])
    logger.info("Batch done", extra={"campaignId": order.campaign_id, "batch": order.index, **counts})
    return {"done": True, "round": order.round + 1}


class _Batch:
    """One invocation of one batch: its pacer, its sends, and when to stop starting them."""

    def __init__(
        self,
        order: BatchOrder,
        campaign: Campaign,
        template: SendRequest,
        services: CampaignServices,
        sends: SendServices,
        deadline: Deadline,
    ) -> None:
        self.order, self.campaign, self.template = order, campaign, template
        self.services, self.sends, self.deadline = services, sends, deadline
        self.pacer = CampaignPacer(order.concurrency, order.spacing, self._stop_requested)
        # Held a little longer than a send may take: a crashed attempt's claim goes stale then.
        hold = SEND_SECONDS + CLAIM_MARGIN_SECONDS
        self.claims = SendClaims(services.campaign_store().table, f"campaign:{order.campaign_id}", hold, CLAIM_DAYS)
        self.stopped = False
        self._checked_stop = time.monotonic()
        self._lock = threading.Lock()
        self._stop_lock = threading.Lock()

    def recheck_opt_outs(self, waiting: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Opt-outs that came since the campaign was prepared: skipped, not sent."""
        scopes = {scope for scope in (self.template.sender, self.template.messaging_service_sid) if scope}
        from twilio_messaging.opt_outs import suppressed_recipients

        for chunk in in_chunks([entry["to"] for entry in waiting], SUPPRESSION_CHUNK):
            for to, entry in suppressed_recipients(self.services.suppressions(), chunk, scopes, self.deadline).items():
                yield Skip(to, "suppressed", f"{entry.reason} (scope {entry.scope}, {entry.source})").line()

    def send(
        self, entries: list[dict[str, Any]], settled: dict[str, dict[str, Any]]
    ) -> dict[str, TwilioMessagingError]:
        """Send each entry, `concurrency` in flight (twice as many threads, so that a send's
        bookkeeping overlaps another's request); the ones to try again later, with why."""
        later: dict[str, TwilioMessagingError] = {}
        queue = iter(entries)

        def work() -> None:
            while (entry := self._next(queue)) is not None:
                outcome = self._send_one(entry)
                with self._lock:
                    if isinstance(outcome, TwilioMessagingError):
                        later[entry["to"]] = outcome
                    else:
                        settled[entry["to"]] = outcome
            return None

        workers = max(1, min(2 * self.order.concurrency, len(entries)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="campaign") as pool:
            for future in [pool.submit(work) for _ in range(workers)]:
                future.result()
        with self._lock:
            for entry in queue:  # not started: no time left, or the campaign was stopped
                later[entry["to"]] = TwilioUnavailable("not sent yet: the batch ran out of time", timed_out=True)
        self.pacer.wait_out_spacing()
        return later

    def _next(self, queue: Iterator[dict[str, Any]]) -> dict[str, Any] | None:
        with self._lock:
            if self.deadline.remaining() < STOP_STARTING_SECONDS or self._stop_requested():
                return None
            return next(queue, None)

    def _stop_requested(self) -> bool:
        """Read the campaign's record every few seconds: a DELETE stops new sends within that."""
        with self._stop_lock:
            if not self.stopped and time.monotonic() - self._checked_stop > STOP_CHECK_SECONDS:
                self._checked_stop = time.monotonic()
                found = self.services.campaign_store().get(self.order.campaign_id, self.deadline)
                self.stopped = found is None or found.stop_requested
            return self.stopped

    def _send_one(self, entry: dict[str, Any]) -> dict[str, Any] | TwilioMessagingError:
        to = entry["to"]
        request = replace(
            self.template,
            recipients=[to],
            batch=False,
            body=entry.get("body", self.template.body),
            content_variables=entry.get("contentVariables", self.template.content_variables),
        )
        delivery = Delivery(
            self.sends.client,
            request,
            None if request.status_callback_disabled else request.status_callback or self.sends.webhook_url,
            None,
            Deadline.after(min(SEND_SECONDS, max(0.0, self.deadline.remaining() - 1))),
            self.sends.records,
            self.services.suppressions(),
            self.sends.reconcile_after if not (request.status_callback or request.status_callback_disabled) else None,
            campaign=self.order.campaign_id,
            claims=self.claims,
        )
        try:
            message = send_to_recipient(delivery, to, self.pacer)
        except ConfigurationError:
            raise  # the whole batch fails: retrying each recipient cannot help
        except LATER as error:
            return error
        except TwilioMessagingError as error:
            record_failure(error)
            return {"to": to, "error": error.to_dict()}
        return {"to": to, "sid": message["sid"], "status": message.get("status")}

    def wait_before_next(self, later: dict[str, TwilioMessagingError]) -> int:
        """How long the state machine waits before the next round: Twilio's Retry-After when it
        gave one, else a backoff with jitter; none when only time ran out."""
        if all(isinstance(e, TwilioUnavailable) and e.timed_out for e in later.values()):
            return 0
        hinted = max((float(getattr(e, "retry_after", 0) or 0) for e in later.values()), default=0.0)
        backoff = min(300.0, 5.0 * 2**self.order.round)
        return int(max(hinted, random.uniform(backoff / 2, backoff)))


def _count(outcomes: Any) -> dict[str, int]:
    counts = {"sent": 0, "failed": 0, "skipped": 0}
    for outcome in outcomes:
        counts["sent" if "sid" in outcome else "skipped" if "skipped" in outcome else "failed"] += 1
    return counts


def finish(
    campaign_id: str, failure: dict[str, Any] | None, services: CampaignServices, bus: EventBus, deadline: Deadline
) -> dict[str, Any]:
    """The report (skipped recipients, then each batch's), the final counts, the event."""
    _campaign(campaign_id, services, deadline)  # a campaign this deployment knows
    lines = list(services.campaign_files().lines(skipped_key(campaign_id)))
    unfinished = 0
    for item in services.campaign_files().get_json(items_key(campaign_id)) or []:
        settled = services.campaign_files().get_json(results_key(campaign_id, item["index"])) or {}
        for entry in services.campaign_files().get_json(item["key"]) or []:
            outcome = settled.get(entry["to"])
            if outcome is None:
                unfinished += 1
                outcome = {"to": entry["to"], "error": BATCH_NOT_FINISHED}
            lines.append(outcome)
    counts = _count(lines)
    status = "FAILED" if failure or unfinished else "SUCCEEDED"
    services.campaign_files().put_lines(report_key(campaign_id), lines)
    report_uri = services.campaign_files().uri(report_key(campaign_id))
    services.campaign_store().finish(campaign_id, status, counts, report_uri, deadline)
    done = _campaign(campaign_id, services, deadline).answer()
    bus.publish(COMPLETED, done, deadline)
    count("CampaignsCompleted")
    logger.info("Campaign finished", extra={"campaignId": campaign_id, "status": done["status"], **counts})
    return {"status": done["status"], **counts}


BATCH_NOT_FINISHED = {
    "code": "BATCH_NOT_FINISHED",
    "message": "its batch failed before settling it: it may have been sent; a redrive sends it at most once",
}


def _campaign(campaign_id: str, services: CampaignServices, deadline: Deadline) -> Campaign:
    campaign = services.campaign_store().get(campaign_id, deadline)
    if campaign is None:
        raise ValidationError(f"no campaign {campaign_id[:64]} in the state table")
    return campaign
