"""The simulator's configuration: one frozen dataclass, loadable from a JSON object whose keys are
the field names (docs/local-twilio.md lists them with their defaults)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, cast, get_args

from local.prism import EXAMPLE_ACCOUNT_SID, SPEC

CallbackMode = Literal["ordered", "reordered", "repeated"]
CALLBACK_MODES: tuple[str, ...] = get_args(CallbackMode)

# The local stack's credentials (local.stack.LOCAL_SECRET): the account of the spec's examples and
# a token that is no secret. Not imported from local.stack, which loads SAM CLI and moto.
DEFAULT_ACCOUNT_SID = EXAMPLE_ACCOUNT_SID
DEFAULT_AUTH_TOKEN = "0" * 32
DEFAULT_SENDER = "+15005550006"  # Twilio's magic "valid sender", the local stack's DefaultFrom
DEFAULT_RECIPIENT = "+15558675310"  # the demo's recipient

# Twilio queues up to 10 hours of a sender's throughput (docs/twilio.md, "Queueing").
TWILIO_QUEUE_SECONDS = 36000.0


@dataclass(frozen=True)
class StatusDelays:
    """Seconds between a message's statuses, before the time scale. Short, so that a demo sees
    every status within a second or two."""

    queued: float = 0.05  # accepted → queued (Messaging Service) and scheduled → queued at SendAt
    sending: float = 0.1  # queued → sending, once the sender's queue lets the message out
    sent: float = 0.2  # sending → sent (or → failed)
    final: float = 0.5  # sent → delivered | undelivered
    read: float = 0.5  # delivered → read (whatsapp: recipients)


@dataclass(frozen=True)
class PhoneNumber:
    """A fixture of IncomingPhoneNumbers.json or OutgoingCallerIds.json."""

    phone_number: str
    friendly_name: str = ""
    capabilities: Mapping[str, bool] = field(
        default_factory=lambda: {"voice": True, "sms": True, "mms": True, "fax": False}
    )

    @property
    def name(self) -> str:
        return self.friendly_name or self.phone_number


def _default_numbers() -> tuple[PhoneNumber, ...]:
    return (PhoneNumber(DEFAULT_SENDER, "Local stack sender"),)


def _default_caller_ids() -> tuple[PhoneNumber, ...]:
    return (PhoneNumber(DEFAULT_RECIPIENT, "Local test recipient"),)


@dataclass(frozen=True)
class SimulatorConfig:
    account_sid: str = DEFAULT_ACCOUNT_SID
    auth_token: str = DEFAULT_AUTH_TOKEN
    # An API key is accepted for Basic auth too (SK… and its secret), as Twilio accepts one.
    api_key_sid: str | None = None
    api_key_secret: str | None = None
    status_delays: StatusDelays = field(default_factory=StatusDelays)
    # Multiplies every Twilio-side delay: status delays, the time a segment takes, the queue
    # limit, SendAt waits and callback retry backoff. 0.001 runs a 10-hour queue in 36 s.
    time_scale: float = 1.0
    concurrency_limit: int = 10  # API requests in flight at once; 0: unlimited
    throughput: float = 10.0  # segments per second per sender (From, or the Messaging Service)
    sender_throughput: Mapping[str, float] = field(default_factory=dict)  # per From or MG sid
    queue_limit_seconds: float = TWILIO_QUEUE_SECONDS  # a sender's queue holds this much throughput
    callback_mode: CallbackMode = "ordered"
    callback_retries: int = 3  # further attempts after a callback failed (no answer or a 5xx)
    callback_retry_seconds: float = 1.0  # first backoff, doubled each retry (time-scaled)
    callback_timeout_seconds: float = 15.0  # Twilio waits 15 s for a webhook's answer
    callback_workers: int = 4
    loopback_callbacks_only: bool = True  # never POST a webhook beyond this machine
    inbound_webhook_url: str | None = None
    incoming_phone_numbers: tuple[PhoneNumber, ...] = field(default_factory=_default_numbers)
    outgoing_caller_ids: tuple[PhoneNumber, ...] = field(default_factory=_default_caller_ids)
    check_senders: bool = True  # a From must be one of incoming_phone_numbers (else 21606)
    # Twilio ignores a parameter it does not know (warning 20001); by default we answer 400 20001.
    reject_unknown_parameters: bool = True
    api_latency_seconds: float = 0.0  # added to every API answer (not time-scaled)
    slow_answer_seconds: float = 15.0  # how long the "times out" recipient's answer is held
    spec_path: Path = SPEC
    seed: int | None = None  # for the reordered and repeated callback modes

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError("invalid simulator configuration: " + "; ".join(problems))

    def sender_rate(self, sender: str) -> float:
        return float(self.sender_throughput.get(sender, self.throughput))

    def with_changes(self, **changes: Any) -> SimulatorConfig:
        return replace(self, **changes)

    def public(self) -> dict[str, Any]:
        """The configuration as JSON, without the auth token and the API key's secret."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.pop("auth_token")
        data.pop("api_key_secret")
        data["status_delays"] = vars(self.status_delays)
        data["sender_throughput"] = dict(self.sender_throughput)
        data["spec_path"] = str(self.spec_path)
        for key in ("incoming_phone_numbers", "outgoing_caller_ids"):
            data[key] = [{**vars(n), "capabilities": dict(n.capabilities)} for n in data[key]]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SimulatorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown configuration keys: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        values = dict(data)
        if "status_delays" in values:
            values["status_delays"] = StatusDelays(**values["status_delays"])
        for key in ("incoming_phone_numbers", "outgoing_caller_ids"):
            if key in values:
                values[key] = tuple(_phone_number(item) for item in values[key])
        if "spec_path" in values:
            values["spec_path"] = Path(values["spec_path"])
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> SimulatorConfig:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the configuration must be a JSON object")
        return cls.from_dict(cast(dict[str, Any], data))


def _phone_number(item: Any) -> PhoneNumber:
    if isinstance(item, str):
        return PhoneNumber(item)
    if isinstance(item, dict):
        return PhoneNumber(**item)
    raise ValueError(f"a phone number fixture is a string or an object, not {item!r}")


def _problems(config: SimulatorConfig) -> list[str]:
    problems = []
    if config.callback_mode not in CALLBACK_MODES:
        problems.append(f"callback_mode must be one of {', '.join(CALLBACK_MODES)}")
    if not (config.time_scale > 0 and math.isfinite(config.time_scale)):
        problems.append("time_scale must be a positive number")
    if config.concurrency_limit < 0:
        problems.append("concurrency_limit must be 0 (unlimited) or more")
    rates = [config.throughput, *config.sender_throughput.values()]
    if any(not rate > 0 for rate in rates):
        problems.append("throughput values must be positive")
    if bool(config.api_key_sid) != bool(config.api_key_secret):
        problems.append("an API key needs both api_key_sid and api_key_secret")
    delays = vars(config.status_delays).values()
    others = (config.queue_limit_seconds, config.callback_retry_seconds, config.api_latency_seconds)
    if any(value < 0 for value in (*delays, *others, config.slow_answer_seconds, config.callback_retries)):
        problems.append("delays, limits and retries must not be negative")
    if config.callback_workers < 1 or config.callback_timeout_seconds <= 0:
        problems.append("callback_workers and callback_timeout_seconds must be positive")
    return problems
