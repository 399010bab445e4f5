"""One message by its sid: GET and DELETE /messages/{sid} (Twilio's), GET /messages/{sid}/events
(the delivery record kept here), and direct invokes with `{"sid": …}` (add `"method": "DELETE"`
to delete, or `"events": true` for the record). Loads nothing of the send path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twilio_messaging.deadline import Deadline

if TYPE_CHECKING:
    from twilio_messaging.delivery_records import DeliveryRecords
from twilio_messaging.errors import MessageNotFound, TwilioUnavailable
from twilio_messaging.message_model import normalize_message
from twilio_messaging.observability import logger
from twilio_messaging.twilio_client import TwilioClient
from twilio_messaging.validation import MESSAGE_SID, Problems, check_message_sid, check_unknown_fields, type_name

METHODS = ("GET", "DELETE")


@dataclass(frozen=True)
class MessageRequest:
    sid: str
    method: str  # GET or DELETE
    events: bool = False  # the delivery record kept here, not Twilio's message


def parse_message_request(
    payload: Any, *, path_sid: str | None = None, http_method: str | None = None, events_route: bool = False
) -> MessageRequest:
    """From an HTTP request (`path_sid`, `http_method`, and its query fields as `payload`, none
    of which is known: `DELETE …?dryRun=true` must delete nothing), or a direct payload."""
    problems = Problems()
    if http_method is not None:
        sid, method = path_sid, http_method.upper() or "GET"
        check_unknown_fields(dict.fromkeys(payload or {}), set(), problems)
    else:
        if not isinstance(payload, dict):
            problems.add("(event)", f'must be an object like {{"sid": "SM…"}}, not {type_name(payload)}')
            problems.raise_if_any()
        check_unknown_fields(payload, {"sid", "method", "events"}, problems)
        sid, method = payload.get("sid"), payload.get("method", "GET")
        if not isinstance(method, str) or method.upper() not in METHODS:
            problems.add("method", "must be GET or DELETE")
            method = "GET"
        events_route = payload.get("events", False)
        if not isinstance(events_route, bool) or (events_route and method.upper() != "GET"):
            problems.add("events", "must be true (to read the delivery record, with method GET) or false")
    check_message_sid(sid, problems)
    problems.raise_if_any()
    assert isinstance(sid, str) and isinstance(method, str)
    return MessageRequest(sid=sid, method=method.upper(), events=events_route is True)


def get_message(client: TwilioClient, sid: str, deadline: Deadline) -> dict[str, Any]:
    resource = client.request_json(
        "GET", client.account_url(f"/Messages/{sid}.json", deadline), deadline=deadline, not_found=MessageNotFound
    )
    if not MESSAGE_SID.match(str(resource.get("sid") or "")):
        raise TwilioUnavailable("Twilio answered with a body that is not a message")
    return normalize_message(resource)


def delete_message(client: TwilioClient, sid: str, deadline: Deadline) -> None:
    client.request(
        "DELETE", client.account_url(f"/Messages/{sid}.json", deadline), deadline=deadline, not_found=MessageNotFound
    )
    logger.info("Message deleted", extra={"sid": sid})


def message_events(records: DeliveryRecords, sid: str, deadline: Deadline) -> dict[str, Any]:
    """The delivery record kept here: status, error code and what Twilio reported, in order."""
    record = records.get(sid, deadline)
    if record is None:
        raise MessageNotFound(f"no delivery record of {sid} here: not sent nor reported through this deployment")
    return {key: record[key] for key in ("sid", "status", "errorCode", "events")}
