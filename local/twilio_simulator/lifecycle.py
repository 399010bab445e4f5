"""A message's life after its create: each sender's queue (throughput in segments per second,
at most `queue_limit_seconds` of it waiting), the statuses Twilio moves it through, and the
status callbacks those changes send (docs/twilio.md, "Message statuses").

    queued (no Messaging Service) ─────────────┐
    accepted (Messaging Service) → queued ─────┼→ sending → sent → delivered [→ read] | undelivered
    scheduled → (at SendAt) queued ────────────┘         └→ failed
    scheduled → canceled

No callback is sent for the first status (Twilio sends none for it); every later status sends one
to the message's StatusCallback. Every delay is multiplied by the configured time scale."""

from __future__ import annotations

import functools
import random
import threading
import time
import uuid
from dataclasses import dataclass, replace

from local.twilio_simulator import errors
from local.twilio_simulator.callbacks import CallbackDispatcher, Delivery
from local.twilio_simulator.config import SimulatorConfig
from local.twilio_simulator.outcomes import Outcome, recipient_outcome
from local.twilio_simulator.scheduler import Scheduler
from local.twilio_simulator.state import API_VERSION, Message, State, utc_now


@dataclass(frozen=True)
class Step:
    at: float  # monotonic time
    status: str
    error_code: int | None = None


class SenderQueues:
    """When each sender (a From, or a Messaging Service) is free again, in monotonic time."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._config = config
        self._free_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, sender: str, segments: int, at: float) -> float | None:
        """When a message of `segments` may start sending; None when the queue is full."""
        scale = self._config.time_scale
        per_segment = scale / self._config.sender_rate(sender)
        with self._lock:
            free_at = self._free_at.get(sender, at)
            if free_at - at > self._config.queue_limit_seconds * scale:
                return None
            start = max(at, free_at)
            self._free_at[sender] = start + segments * per_segment
            return start

    def clear(self) -> None:
        with self._lock:
            self._free_at.clear()


class Lifecycle:
    def __init__(self, config: SimulatorConfig, state: State, scheduler: Scheduler, dispatcher: CallbackDispatcher):
        self.config = config
        self.mode = config.callback_mode
        self._state = state
        self._scheduler = scheduler
        self._dispatcher = dispatcher
        self._queues = SenderQueues(config)
        self._timers: dict[str, list[int]] = {}
        self._held: dict[str, list[Delivery]] = {}  # callbacks kept back to be reordered
        self._random = random.Random(config.seed)
        self._lock = threading.Lock()

    def admit(self, message: Message) -> list[Step]:
        """The steps of a new message, its place in its sender's queue taken. A single From whose
        queue is full gets 21611 at once, and the message is not created."""
        if message.send_at is not None:
            return []
        now = time.monotonic()
        steps = self._plan(message, recipient_outcome(message.to), now)
        if steps is None:
            raise errors.rejected(
                errors.QUEUE_FULL, "This 'From' number has exceeded the maximum number of queued messages"
            )
        return steps

    def start(self, message: Message, steps: list[Step]) -> None:
        if message.send_at is not None:
            wait = max(0.0, (message.send_at - utc_now()).total_seconds()) * self.config.time_scale
            self._schedule(message.sid, [Step(time.monotonic() + wait, "__release__")])
            return
        self._schedule(message.sid, steps)

    def cancel(self, sid: str) -> None:
        """Status=canceled: only while the message is scheduled (else 30409)."""
        with self._state.lock:
            message = self._state.messages.get(sid)
            if message is None or message.status != "scheduled":
                raise errors.rejected(errors.CANNOT_CANCEL, "This message cannot be canceled")
            with self._lock:
                for handle in self._timers.pop(sid, []):
                    self._scheduler.cancel(handle)
        self._apply(sid, Step(time.monotonic(), "canceled"), last=True)

    def clear(self) -> None:
        with self._lock:
            self._timers.clear()
            self._held.clear()
        self._queues.clear()

    def _plan(self, message: Message, outcome: Outcome, now: float) -> list[Step] | None:
        delays = self.config.status_delays
        scale = self.config.time_scale
        steps: list[Step] = []
        at = now
        if message.service_sid or message.history[-1].status == "scheduled":
            at = now + delays.queued * scale
        start = self._queues.reserve(message.service_sid or message.sender or "", message.num_segments, at)
        if start is None:
            if not message.service_sid:
                return None
            return [Step(at, "failed", errors.QUEUE_OVERFLOW)]  # a service's queue overflows later
        if at > now:
            steps.append(Step(at, "queued"))
        sending = max(at + delays.sending * scale, start)
        if message.validity_period is not None and sending - now > message.validity_period * scale:
            return [*steps, Step(now + message.validity_period * scale, "failed", errors.VALIDITY_EXPIRED)]
        steps.append(Step(sending, "sending"))
        sent = sending + delays.sent * scale
        if outcome.status == "failed":
            return [*steps, Step(sent, "failed", outcome.code)]
        final = sent + delays.final * scale
        steps += [Step(sent, "sent"), Step(final, outcome.status or "delivered", outcome.code)]
        if outcome.status in (None, "delivered") and message.to.startswith("whatsapp:"):
            steps.append(Step(final + delays.read * scale, "read"))
        return steps

    def _schedule(self, sid: str, steps: list[Step]) -> None:
        handles = [
            self._scheduler.call_at(step.at, functools.partial(self._apply, sid, step, index == len(steps) - 1))
            for index, step in enumerate(steps)
        ]
        with self._lock:
            self._timers[sid] = handles

    def _release(self, sid: str) -> None:
        """SendAt is here: the scheduled message joins its sender's queue like a new one."""
        message = self._state.get(sid)
        if message is None or message.status != "scheduled":
            return
        steps = self._plan(message, recipient_outcome(message.to), time.monotonic()) or []
        self._schedule(sid, steps)

    def _apply(self, sid: str, step: Step, last: bool) -> None:
        if step.status == "__release__":
            self._release(sid)
            return
        with self._state.lock:
            message = self._state.messages.get(sid)
            if message is None or message.status == "canceled":
                return
            if message.sender is None and message.service_sid:
                # Twilio picks a sender from the service's pool: here, the first incoming number.
                message.sender = self.config.incoming_phone_numbers[0].phone_number
            code = step.error_code
            message.set_status(step.status, utc_now(), code, errors.DELIVERY_ERROR_MESSAGES.get(code or 0))
            params = callback_params(message, step.status, code)
            url = message.status_callback
        if last:
            with self._lock:
                self._timers.pop(sid, None)
        if url:
            self._callback(sid, Delivery(sid, step.status, url, params, new_token()), last)

    def _callback(self, sid: str, delivery: Delivery, last: bool) -> None:
        if self.mode == "repeated":
            # Twilio sometimes sends a callback twice, each a new request with its own token.
            twice = last or self._random.random() < 0.5
            again = [replace(delivery, token=new_token(), repeat=True)] if twice else []
            self._dispatcher.submit([delivery, *again])
        elif self.mode == "reordered":
            with self._lock:
                held = self._held.setdefault(sid, [])
                held.append(delivery)
                if not last:
                    return
                deliveries = self._held.pop(sid)
            self._dispatcher.submit(self._shuffled(deliveries))
        else:
            self._dispatcher.submit([delivery])

    def _shuffled(self, deliveries: list[Delivery]) -> list[Delivery]:
        shuffled = deliveries[:]
        self._random.shuffle(shuffled)
        if len(shuffled) > 1 and shuffled == deliveries:
            shuffled.reverse()  # a shuffle may leave them in order: reordered must reorder
        return shuffled


def callback_params(message: Message, status: str, error_code: int | None) -> tuple[tuple[str, str], ...]:
    """Twilio's status callback parameters (docs/twilio.md, "Webhooks")."""
    params: list[tuple[str, str]] = [
        ("AccountSid", message.account_sid),
        ("ApiVersion", API_VERSION),
        ("From", message.sender or ""),
        ("MessageSid", message.sid),
        ("MessageStatus", status),
        ("SmsSid", message.sid),
        ("SmsStatus", status),
        ("To", message.to),
    ]
    if message.service_sid:
        params.append(("MessagingServiceSid", message.service_sid))
    if error_code is not None and status in ("failed", "undelivered"):
        params.append(("ErrorCode", str(error_code)))
    if status in ("delivered", "undelivered"):
        params.append(("RawDlrDoneDate", utc_now().strftime("%y%m%d%H%M")))
    return tuple(params)


def new_token() -> str:
    return str(uuid.uuid4())
