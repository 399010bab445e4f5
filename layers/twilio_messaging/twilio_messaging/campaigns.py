"""The campaigns function's operations (docs/api.md, "Campaigns"): start a campaign (or dry-run
it), read where it stands, stop it. The sending itself is the campaign state machine's
(campaign_steps): started here once per campaign id, which the Idempotency-Key decides.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from twilio_messaging.campaign_files import CampaignFiles, recipients_key
from twilio_messaging.campaign_recipients import Personal, Personalizer, Skip, Tally, in_chunks
from twilio_messaging.campaign_request import CampaignRequest, parse_campaign_request, template_request
from twilio_messaging.campaign_store import FINISHED, Campaign, CampaignStore
from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import IdempotencyKeyReused, NotFound, ValidationError
from twilio_messaging.observability import logger
from twilio_messaging.opt_outs import suppressed_recipients
from twilio_messaging.settings import Settings
from twilio_messaging.step_functions import StepFunctions
from twilio_messaging.suppressions import Suppressions
from twilio_messaging.validation import has_space_or_control

DRY_RUN_RESERVE_SECONDS = 2.0  # a dry run of a file stops reading this long before its deadline
SUPPRESSION_CHUNK = 100
# The execution's end when the record has not heard of it (the report step never ran).
EXECUTION_ENDS = {"FAILED": "FAILED", "TIMED_OUT": "FAILED", "ABORTED": "ABORTED"}


class CampaignServices(Protocol):
    """What the campaign operations use, each built on first use (execution_environment)."""

    def settings(self) -> Settings: ...

    def campaign_store(self) -> CampaignStore: ...

    def campaign_files(self) -> CampaignFiles: ...

    def step_functions(self) -> StepFunctions: ...

    def suppressions(self) -> Suppressions: ...


def campaign_id_for(idempotency_key: str | None) -> str:
    """From the key, so that a repeat finds the campaign it started; else a new one."""
    if idempotency_key is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"campaign\n{idempotency_key}".encode()).hexdigest()[:32]


def start_campaign(
    request: CampaignRequest, idempotency_key: str | None, services: CampaignServices, deadline: Deadline
) -> dict[str, Any]:
    """The campaign, started (202): once per campaign id, whatever is retried."""
    campaign_id = campaign_id_for(idempotency_key)
    if request.recipients_uri is not None:
        problem = services.campaign_files().check_recipients_file(request.recipients_uri[1])
        if problem is not None:
            raise ValidationError.from_problems([{"field": "recipientsUri", "problem": problem}])
    campaign = Campaign(
        campaign_id=campaign_id,
        fingerprint=request.fingerprint(),
        status="STARTING",
        message=request.message,
        recipients=request.recipients_uri or (services.campaign_files().bucket, recipients_key(campaign_id)),
        name=request.name,
        max_sends_per_second=request.max_sends_per_second,
        total=len(request.recipients) if request.recipients is not None else None,
        started_at=time.time(),
    )
    earlier = services.campaign_store().create(campaign, deadline)
    if earlier is not None:
        if earlier.fingerprint != campaign.fingerprint:
            raise IdempotencyKeyReused("this Idempotency-Key started another campaign: a new campaign needs a new key")
        if earlier.execution_arn is not None or earlier.status != "STARTING":
            logger.info("Campaign already started: its answer again", extra={"campaignId": campaign_id})
            return {key: earlier.answer()[key] for key in ("campaignId", "status", "total")}
        campaign = earlier  # recorded, but its start was cut off: finish it
    if request.recipients is not None:
        lines = [{"to": item} if isinstance(item, str) else item for item in request.recipients]
        services.campaign_files().put_lines(recipients_key(campaign_id), lines)
    arn = services.step_functions().start_execution(
        services.settings().campaign_state_machine_arn, campaign_id, {"campaignId": campaign_id}, deadline
    )
    services.campaign_store().started(campaign_id, arn, deadline)
    logger.info("Campaign started", extra={"campaignId": campaign_id, "total": campaign.total})
    return {"campaignId": campaign_id, "status": "RUNNING", "total": campaign.total}


def dry_run(request: CampaignRequest, services: CampaignServices, deadline: Deadline) -> dict[str, Any]:
    """What the campaign would send and skip, and what it would cost in segments; nothing sent.
    A file is read until the deadline comes near: `complete` says whether all of it was."""
    template = template_request(request.message, services.settings())
    scopes = {scope for scope in (template.sender, template.messaging_service_sid) if scope}
    if request.recipients is not None:
        rows: Any = iter(request.recipients)
    else:
        assert request.recipients_uri is not None
        problem = services.campaign_files().check_recipients_file(request.recipients_uri[1])
        if problem is not None:
            raise ValidationError.from_problems([{"field": "recipientsUri", "problem": problem}])
        rows = services.campaign_files().rows(request.recipients_uri[1])
    tally, personalizer, complete = Tally(), Personalizer(request.message), True
    for chunk in in_chunks(rows, SUPPRESSION_CHUNK):
        if deadline.remaining() < DRY_RUN_RESERVE_SECONDS:
            complete = False
            break
        for outcome in screen(chunk, personalizer, services.suppressions(), scopes, deadline):
            tally.add(outcome)
    return {"dryRun": True, "complete": complete, **tally.as_dict()}


def screen(
    rows: list[Any], personalizer: Personalizer, suppressions: Suppressions, scopes: set[str], deadline: Deadline
) -> list[Personal | Skip]:
    """Each row's own content, or why it is skipped: checked, de-duplicated, then the opt-outs
    of the sendable ones read together."""
    outcomes = [personalizer.personalize(row) for row in rows]
    sendable = [o.to for o in outcomes if isinstance(o, Personal)]
    suppressed = suppressed_recipients(suppressions, sendable, scopes, deadline) if sendable else {}
    return [
        Skip(o.to, "suppressed", f"{entry.reason} (scope {entry.scope}, {entry.source})")
        if isinstance(o, Personal) and (entry := suppressed.get(o.to)) is not None
        else o
        for o in outcomes
    ]


def get_campaign(campaign_id: str, services: CampaignServices, deadline: Deadline) -> dict[str, Any]:
    campaign = _campaign(campaign_id, services, deadline)
    answer = campaign.answer()
    if campaign.status not in FINISHED and campaign.execution_arn:
        ended = services.step_functions().execution_status(campaign.execution_arn, deadline)
        if ended in EXECUTION_ENDS:  # ended without its report step: say so
            answer["status"] = EXECUTION_ENDS[ended]
    return answer


def stop_campaign(campaign_id: str, services: CampaignServices, deadline: Deadline) -> dict[str, Any]:
    """No new send starts (the batches check before each), the execution is stopped, ABORTED."""
    campaign = _campaign(campaign_id, services, deadline)
    if campaign.status not in FINISHED:
        services.campaign_store().request_stop(campaign_id, deadline)
        if campaign.execution_arn:
            services.step_functions().stop_execution(campaign.execution_arn, "DELETE /campaigns/{id}", deadline)
        logger.info("Campaign stopped", extra={"campaignId": campaign_id})
    return _campaign(campaign_id, services, deadline).answer()


def _campaign(campaign_id: str, services: CampaignServices, deadline: Deadline) -> Campaign:
    campaign = services.campaign_store().get(campaign_id, deadline) if _is_campaign_id(campaign_id) else None
    if campaign is None:
        raise NotFound(f"no campaign {json.dumps(campaign_id[:64])}")
    return campaign


def _is_campaign_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


@dataclass(frozen=True)
class CampaignCall:
    """What a caller asked of the campaigns function, whatever invoked it."""

    action: str  # start, get, stop
    campaign_id: str = ""
    payload: Any = None  # the campaign, to start
    idempotency_key: str | None = None


def parse_campaign_call(
    payload: Any,
    *,
    http_method: str | None = None,
    path_id: str | None = None,
    query: dict[str, str] | None = None,
    key_header: str | None = None,
) -> CampaignCall:
    """From an HTTP request (method, path, query, Idempotency-Key) or a direct payload:
    `{"action": "get" | "stop", "campaignId"}`, or a campaign to start (`idempotencyKey` inside)."""
    if http_method is not None:
        if query:
            raise ValidationError.from_problems(
                [{"field": name, "problem": "is not a parameter of this route"} for name in sorted(query)]
            )
        action = {"POST": "start", "GET": "get", "DELETE": "stop"}.get(http_method, "get")
        key = _idempotency_key(key_header, "Idempotency-Key") if action == "start" else None
        return CampaignCall(action, path_id or "", payload, key)
    if isinstance(payload, dict) and payload.get("action") in ("get", "stop"):
        unknown = sorted(set(payload) - {"action", "campaignId"})
        if unknown or not isinstance(payload.get("campaignId"), str):
            problems = [{"field": name, "problem": "is not a field of this action"} for name in unknown]
            raise ValidationError.from_problems(problems or [{"field": "campaignId", "problem": "is required"}])
        return CampaignCall(payload["action"], payload["campaignId"])
    if isinstance(payload, dict) and payload.get("action", "start") == "start":
        body = {k: v for k, v in payload.items() if k not in ("action", "idempotencyKey")}
        return CampaignCall("start", "", body, _idempotency_key(payload.get("idempotencyKey"), "idempotencyKey"))
    raise ValidationError.from_problems([{"field": "action", "problem": "must be start, get or stop"}])


def _idempotency_key(value: Any, field: str) -> str | None:
    if value is None:
        return None
    key = value.strip() if isinstance(value, str) else ""
    if not 1 <= len(key) <= 255 or has_space_or_control(key.replace(" ", "")):
        raise ValidationError.from_problems([{"field": field, "problem": "must be 1 to 255 printable characters"}])
    return key


def answer_campaign_call(
    call: CampaignCall, services: CampaignServices, deadline: Deadline
) -> tuple[int, dict[str, Any]]:
    """The status and answer: 202 for a start or a stop, 200 for a dry run or a read."""
    if call.action == "get":
        return 200, get_campaign(call.campaign_id, services, deadline)
    if call.action == "stop":
        return 202, stop_campaign(call.campaign_id, services, deadline)
    request = parse_campaign_request(call.payload, services.settings())
    if request.dry_run:
        return 200, dry_run(request, services, deadline)
    return 202, start_campaign(request, call.idempotency_key, services, deadline)


def parse_campaign_id(payload: Any) -> str:
    """The campaign a state machine step works on: `{"campaignId": …}`."""
    campaign_id = payload.get("campaignId") if isinstance(payload, dict) else None
    if not isinstance(campaign_id, str) or not _is_campaign_id(campaign_id):
        raise ValidationError.from_problems([{"field": "campaignId", "problem": "must be a campaign id"}])
    return campaign_id
