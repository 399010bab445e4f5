"""One message by its sid: GET and DELETE /messages/{sid}, and direct invokes with
`{"sid": …}` (add `"method": "DELETE"` to delete). Loads nothing of the send path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twilio_messaging.deadline import Deadline
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


def parse_message_request(
    payload: Any, *, path_sid: str | None = None, http_method: str | None = None
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
        check_unknown_fields(payload, {"sid", "method"}, problems)
        sid, method = payload.get("sid"), payload.get("method", "GET")
        if not isinstance(method, str) or method.upper() not in METHODS:
            problems.add("method", "must be GET or DELETE")
            method = "GET"
    check_message_sid(sid, problems)
    problems.raise_if_any()
    assert isinstance(sid, str) and isinstance(method, str)
    return MessageRequest(sid=sid, method=method.upper())


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
