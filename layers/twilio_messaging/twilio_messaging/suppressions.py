"""Opt-outs in the state table: one record per recipient (`optout#<recipient>`, the address as
sent: `whatsapp:+1…` is a recipient of its own), holding a map of scopes, each a sender number,
a messaging service sid or `*` (every sender), to what suppressed it.

Consent records: no expiration attribute, so DynamoDB's TTL never removes them; an entry may
carry `until` (an undeliverable number is suppressed for 30 days), after which it no longer
counts. One read per recipient (BatchGetItem for a batch) tells a send all it needs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import AwsServiceUnavailable
from twilio_messaging.state_table import StateTable

EVERY_SENDER = "*"
BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem


@dataclass(frozen=True)
class Suppression:
    scope: str
    reason: str
    since: float
    source: str
    until: float | None = None

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until


class Suppressions:
    def __init__(self, table: StateTable) -> None:
        self.table = table

    def of(self, recipient: str, deadline: Deadline) -> list[Suppression]:
        """Every entry of `recipient`, active or not."""
        answer = self.table.call("GetItem", {"Key": _key(recipient), "ConsistentRead": True}, deadline)
        return _entries(answer.get("Item") or {})

    def of_many(self, recipients: list[str], deadline: Deadline) -> dict[str, list[Suppression]]:
        """Every entry of each recipient, with as few reads as DynamoDB allows."""
        found: dict[str, list[Suppression]] = {}
        unique = list(dict.fromkeys(recipients))
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            keys = [_key(r) for r in unique[start : start + BATCH_GET_LIMIT]]
            for item in self._batch_get(keys, deadline):
                found[item["id"]["S"].removeprefix("optout#")] = _entries(item)
        return found

    def _batch_get(self, keys: list[dict[str, Any]], deadline: Deadline) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for _ in range(5):  # DynamoDB may leave some keys unprocessed: asked again
            request = {self.table.table_name: {"Keys": keys, "ConsistentRead": True}}
            answer = self.table.client_call("BatchGetItem", {"RequestItems": request}, deadline)
            items += answer.get("Responses", {}).get(self.table.table_name, [])
            keys = answer.get("UnprocessedKeys", {}).get(self.table.table_name, {}).get("Keys", [])
            if not keys:
                return items
            time.sleep(0.05)
        raise AwsServiceUnavailable("the state table left opt-out reads unprocessed", retry_after=1)

    def add(self, recipient: str, entry: Suppression, deadline: Deadline) -> None:
        """Set one scope's entry (a new one replaces the old)."""
        value = _entry_value(entry)
        for _ in range(3):  # the map must exist to set a key in it: create it, unless a race did
            if self.table.conditional(
                "UpdateItem",
                {
                    "Key": _key(recipient),
                    "UpdateExpression": "SET scopes.#scope = :entry",
                    "ConditionExpression": "attribute_exists(scopes)",
                    "ExpressionAttributeNames": {"#scope": entry.scope},
                    "ExpressionAttributeValues": {":entry": value},
                },
                deadline,
            ):
                return
            if self.table.conditional(
                "UpdateItem",
                {
                    "Key": _key(recipient),
                    "UpdateExpression": "SET scopes = :scopes",
                    "ConditionExpression": "attribute_not_exists(scopes)",
                    "ExpressionAttributeValues": {":scopes": {"M": {entry.scope: value}}},
                },
                deadline,
            ):
                return
        raise AwsServiceUnavailable("the opt-out could not be recorded (concurrent changes)", retry_after=1)

    def remove(self, recipient: str, scope: str | None, deadline: Deadline) -> list[str]:
        """Lift one scope (or every scope, `scope` None); the scopes that were there."""
        if scope is None:
            answer = self.table.call("DeleteItem", {"Key": _key(recipient), "ReturnValues": "ALL_OLD"}, deadline)
            return [e.scope for e in _entries(answer.get("Attributes") or {})]
        removed = self.table.conditional(
            "UpdateItem",
            {
                "Key": _key(recipient),
                "UpdateExpression": "REMOVE scopes.#scope",
                "ConditionExpression": "attribute_exists(scopes.#scope)",
                "ExpressionAttributeNames": {"#scope": scope},
            },
            deadline,
        )
        return [] if removed is None else [scope]


def _key(recipient: str) -> dict[str, Any]:
    return {"id": {"S": f"optout#{recipient}"}}


def _entry_value(entry: Suppression) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "reason": {"S": entry.reason},
        "since": {"N": str(int(entry.since))},
        "source": {"S": entry.source},
    }
    if entry.until is not None:
        fields["until"] = {"N": str(int(entry.until))}
    return {"M": fields}


def _entries(item: dict[str, Any]) -> list[Suppression]:
    scopes = item.get("scopes", {}).get("M", {})
    return [
        Suppression(
            scope=scope,
            reason=value["M"]["reason"]["S"],
            since=float(value["M"]["since"]["N"]),
            source=value["M"]["source"]["S"],
            until=float(value["M"]["until"]["N"]) if "until" in value["M"] else None,
        )
        for scope, value in sorted(scopes.items())
    ]
