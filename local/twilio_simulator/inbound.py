"""An inbound message, as Twilio posts it to a number's webhook (docs/twilio.md, "Webhooks"):
form parameters signed with X-Twilio-Signature, and the message kept like any other, so that
Twilio's list shows it."""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from local.twilio_simulator.segments import segment_count
from local.twilio_simulator.state import API_VERSION, Message, StatusChange, new_sid, utc_now


@dataclass(frozen=True)
class Inbound:
    sender: str
    to: str
    body: str = ""
    media_urls: Sequence[str] = ()
    messaging_service_sid: str | None = None
    url: str | None = None  # the webhook; else the configured inbound_webhook_url
    params: Mapping[str, str] = field(default_factory=dict)  # added to (or replacing) Twilio's

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Inbound:
        sender, to = data.get("from"), data.get("to")
        if not isinstance(sender, str) or not isinstance(to, str):
            raise ValueError("an inbound message needs 'from' and 'to' (strings)")
        media = data.get("media_urls") or []
        params = data.get("params") or {}
        if not isinstance(media, list) or not isinstance(params, dict):
            raise ValueError("'media_urls' is a list of URLs and 'params' an object")
        return cls(
            sender,
            to,
            str(data.get("body") or ""),
            [str(url) for url in media],
            data.get("messaging_service_sid") or None,
            data.get("url") or None,
            {str(k): str(v) for k, v in params.items()},
        )


def inbound_message(inbound: Inbound, account_sid: str) -> Message:
    now = utc_now()
    return Message(
        sid=new_sid("MM" if inbound.media_urls else "SM"),
        account_sid=account_sid,
        to=inbound.to,
        sender=inbound.sender,
        service_sid=inbound.messaging_service_sid,
        body=inbound.body,
        media_urls=list(inbound.media_urls),
        direction="inbound",
        status="received",
        status_callback=None,
        num_segments=segment_count(inbound.body),
        date_created=now,
        date_updated=now,
        date_sent=now,
        history=[StatusChange("receiving", now), StatusChange("received", now)],
    )


def inbound_params(inbound: Inbound, message: Message) -> list[tuple[str, str]]:
    params = {
        "MessageSid": message.sid,
        "SmsSid": message.sid,
        "SmsMessageSid": message.sid,
        "AccountSid": message.account_sid,
        "From": inbound.sender,
        "To": inbound.to,
        "Body": inbound.body,
        "NumMedia": str(len(inbound.media_urls)),
        "NumSegments": str(message.num_segments),
        "SmsStatus": "received",
        "ApiVersion": API_VERSION,
    }
    if inbound.messaging_service_sid:
        params["MessagingServiceSid"] = inbound.messaging_service_sid
    for index, url in enumerate(inbound.media_urls):
        params[f"MediaUrl{index}"] = url
        params[f"MediaContentType{index}"] = mimetypes.guess_type(url)[0] or "image/jpeg"
    for side, number in (("From", inbound.sender), ("To", inbound.to)):
        us = number.removeprefix("whatsapp:").startswith("+1")
        params.update({f"{side}City": "", f"{side}State": "", f"{side}Zip": "", f"{side}Country": "US" if us else ""})
    params.update(inbound.params)
    return list(params.items())
