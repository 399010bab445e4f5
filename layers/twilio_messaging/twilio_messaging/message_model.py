"""The normalized Message (docs/api.md, "The Message") built from Twilio's snake_case resource."""

from __future__ import annotations

from typing import Any

from twilio_messaging.values import as_int, iso_utc


def as_str(value: Any) -> str | None:
    return None if value is None else str(value)


def normalize_message(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "sid": resource.get("sid"),
        "accountSid": resource.get("account_sid"),
        "messagingServiceSid": resource.get("messaging_service_sid"),
        "from": resource.get("from"),
        "to": resource.get("to"),
        "body": resource.get("body"),
        "status": resource.get("status"),
        "direction": resource.get("direction"),
        "numSegments": as_int(resource.get("num_segments")),
        "numMedia": as_int(resource.get("num_media")),
        "price": as_str(resource.get("price")),
        "priceUnit": resource.get("price_unit"),
        "errorCode": as_int(resource.get("error_code")),
        "errorMessage": resource.get("error_message"),
        "dateCreated": iso_utc(resource.get("date_created")),
        "dateSent": iso_utc(resource.get("date_sent")),
        "dateUpdated": iso_utc(resource.get("date_updated")),
        "apiVersion": resource.get("api_version"),
        "uri": resource.get("uri"),
    }
