"""What the simulator keeps: messages with their status history and callbacks, and the counters
the admin endpoints report. Guarded by one lock, held only for short in-memory updates."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

API_VERSION = "2010-04-01"
ACCOUNT_PATH = "/2010-04-01/Accounts/{account}"
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "read", "received", "canceled"})
PRICE_PER_SEGMENT = 0.0079  # USD, a US SMS segment: only so that `price` looks like Twilio's


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc2822(moment: datetime | None) -> str | None:
    """Twilio's dates: `Thu, 30 Jul 2015 20:12:31 +0000`, to the second."""
    return None if moment is None else format_datetime(moment.astimezone(UTC).replace(microsecond=0))


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass
class StatusChange:
    status: str
    at: datetime
    error_code: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "at": self.at.isoformat(), "error_code": self.error_code}


@dataclass
class CallbackAttempt:
    status: str
    url: str
    attempt: int  # 1 for the first try; retries keep the token
    token: str  # the I-Twilio-Idempotency-Token
    http_status: int | None  # None: no answer (refused, timed out) or not sent
    error: str | None
    at: datetime
    repeat: bool = False  # a deliberate second delivery (callback mode `repeated`)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


@dataclass
class Message:
    sid: str
    account_sid: str
    to: str
    sender: str | None
    service_sid: str | None
    body: str
    media_urls: list[str]
    direction: str
    status: str
    status_callback: str | None
    num_segments: int
    date_created: datetime
    date_updated: datetime
    date_sent: datetime | None = None
    error_code: int | None = None
    error_message: str | None = None
    price: str | None = None
    send_at: datetime | None = None
    validity_period: int | None = None
    form: dict[str, Any] = field(default_factory=dict)  # the Create Message form, typed
    history: list[StatusChange] = field(default_factory=list)
    callbacks: list[CallbackAttempt] = field(default_factory=list)

    def resource(self) -> dict[str, Any]:
        """The Message resource as Twilio answers it (docs/twilio.md, "The Message resource")."""
        base = ACCOUNT_PATH.format(account=self.account_sid) + f"/Messages/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent),
            "date_updated": rfc2822(self.date_updated),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": self.sender,
            "messaging_service_sid": self.service_sid,
            "num_media": str(len(self.media_urls)),
            "num_segments": str(self.num_segments),
            "price": self.price,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": f"{base}/Media.json", "feedback": f"{base}/Feedback.json"},
            "to": self.to,
            "uri": f"{base}.json",
        }

    def admin_view(self) -> dict[str, Any]:
        return {
            **self.resource(),
            "media_urls": self.media_urls,
            "status_callback": self.status_callback,
            "form": self.form,
            "history": [change.as_json() for change in self.history],
            "callbacks": [attempt.as_json() for attempt in self.callbacks],
        }

    def set_status(self, status: str, at: datetime, error_code: int | None = None, error: str | None = None) -> None:
        self.status = status
        self.date_updated = at
        self.history.append(StatusChange(status, at, error_code))
        if error_code is not None:
            self.error_code, self.error_message = error_code, error
        if status == "sent":
            self.date_sent = at
            self.price = f"-{PRICE_PER_SEGMENT * self.num_segments:.5f}"


@dataclass
class Counters:
    requests: Counter[str] = field(default_factory=Counter)  # "POST /Messages.json" → count
    in_flight: int = 0
    peak_concurrency: int = 0
    rate_limited: int = 0  # 429s
    invalid_requests: list[dict[str, Any]] = field(default_factory=list)
    not_simulated: Counter[str] = field(default_factory=Counter)  # valid requests the simulator cannot serve
    warnings: list[dict[str, Any]] = field(default_factory=list)  # unknown parameters ignored (20001)
    messages_per_recipient: Counter[str] = field(default_factory=Counter)
    callbacks_sent: int = 0  # attempts that got an HTTP answer
    callbacks_failed: int = 0  # attempts without an answer, or answered 5xx (retried)
    callbacks_rejected: int = 0  # answered 4xx, e.g. a signature the webhook refused (not retried)
    callbacks_abandoned: int = 0  # callbacks given up after the last retry
    callbacks_skipped: int = 0  # not sent: the URL is not on this machine (loopback_callbacks_only)
    # When the first and the last message were created (epoch seconds): a sender's throughput.
    first_message_at: float | None = None
    last_message_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["requests"] = dict(self.requests)
        data["messages_per_recipient"] = dict(self.messages_per_recipient)
        data["not_simulated"] = dict(self.not_simulated)
        return data


class State:
    """Messages by sid in creation order, and the counters."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.messages: dict[str, Message] = {}
        self.counters = Counters()

    def add(self, message: Message) -> None:
        with self.lock:
            self.messages[message.sid] = message
            self.counters.messages_per_recipient[message.to] += 1
            now = time.time()
            self.counters.first_message_at = self.counters.first_message_at or now
            self.counters.last_message_at = now

    def get(self, sid: str) -> Message | None:
        with self.lock:
            return self.messages.get(sid)

    def newest_first(self) -> list[Message]:
        with self.lock:
            return list(reversed(self.messages.values()))

    def clear(self) -> None:
        with self.lock:
            in_flight = self.counters.in_flight  # requests being answered now still end
            self.messages.clear()
            self.counters = Counters(in_flight=in_flight)
