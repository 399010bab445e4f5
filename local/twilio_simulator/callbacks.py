"""Webhooks as Twilio sends them: form-encoded POSTs signed with `X-Twilio-Signature`, with an
`I-Twilio-Idempotency-Token`, on a pool of threads.

A message's callbacks go out one at a time, in the order given (its "lane"), so that `ordered`
means ordered even when the webhook is slow; a failed attempt (no answer, or a 5xx) is retried
with the same token after a growing backoff, and the lane waits for it. A 4xx is an answer: the
webhook refused the callback (a bad signature, say), so it is counted and not retried."""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import threading
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

from local.twilio_simulator.config import SimulatorConfig
from local.twilio_simulator.scheduler import Scheduler
from local.twilio_simulator.signing import signature
from local.twilio_simulator.state import CallbackAttempt, State, utc_now

USER_AGENT = "TwilioProxy/1.1"


@dataclass(frozen=True)
class WebhookAnswer:
    status: int | None  # None: no answer
    body: str
    content_type: str
    error: str | None


@dataclass(frozen=True)
class Delivery:
    message_sid: str
    status: str
    url: str
    params: tuple[tuple[str, str], ...]
    token: str
    repeat: bool = False
    attempt: int = 1


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Twilio does not follow a webhook's redirect with the POST; neither do we."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxy from the environment: webhooks here are local, and a proxy would see the signature.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


def is_local_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def post_form(
    url: str, params: Sequence[tuple[str, str]], auth_token: str, token: str, timeout: float
) -> WebhookAnswer:
    """One signed POST; never raises for what the network or the webhook does."""
    request = urllib.request.Request(
        url,
        data=urlencode(list(params)).encode(),
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature(url, params, auth_token),
            "I-Twilio-Idempotency-Token": token,
            "User-Agent": USER_AGENT,
            "Accept": "*/*",
        },
    )
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            return WebhookAnswer(answer.status, _text(answer.read()), answer.headers.get("Content-Type", ""), None)
    except urllib.error.HTTPError as error:
        return WebhookAnswer(error.code, _text(error.read()), error.headers.get("Content-Type", ""), None)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        return WebhookAnswer(None, "", "", f"{type(error).__name__}: {reason}")


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


class CallbackDispatcher:
    def __init__(self, state: State, scheduler: Scheduler, config: SimulatorConfig, auth_token: Callable[[], str]):
        self._state = state
        self._scheduler = scheduler
        self._config = config
        self._auth_token = auth_token
        self._pool = ThreadPoolExecutor(config.callback_workers, thread_name_prefix="twilio-simulator-callback")
        self._lanes: dict[str, deque[Delivery]] = {}
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def submit(self, deliveries: Sequence[Delivery]) -> None:
        """Queue callbacks of one message, delivered in this order."""
        if not deliveries:
            return
        lane = deliveries[0].message_sid
        with self._lock:
            self._lanes.setdefault(lane, deque()).extend(deliveries)
            if lane in self._busy:
                return
            self._busy.add(lane)
        self._next(lane)

    def idle(self) -> bool:
        with self._lock:
            return not self._busy

    def clear(self) -> None:
        """Forget queued callbacks; one being sent now ends on its own (its retries do not)."""
        with self._lock:
            self._lanes.clear()
            self._busy.clear()

    def stop(self) -> None:
        self.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _next(self, lane: str) -> None:
        with self._lock:
            queue = self._lanes.get(lane)
            if not queue:
                self._busy.discard(lane)
                self._lanes.pop(lane, None)
                return
            delivery = queue.popleft()
        self._submit(delivery)

    def _submit(self, delivery: Delivery) -> None:
        with contextlib.suppress(RuntimeError):  # the pool is shut down: the simulator stopped
            self._pool.submit(self._attempt, delivery)

    def _attempt(self, delivery: Delivery) -> None:
        if self._config.loopback_callbacks_only and not is_local_url(delivery.url):
            self._record(delivery, WebhookAnswer(None, "", "", "not sent: not a loopback URL"), skipped=True)
            self._next(delivery.message_sid)
            return
        answer = post_form(
            delivery.url, delivery.params, self._auth_token(), delivery.token, self._config.callback_timeout_seconds
        )
        failed = answer.status is None or answer.status >= 500
        self._record(delivery, answer, abandoned=failed and delivery.attempt > self._config.callback_retries)
        if failed and delivery.attempt <= self._config.callback_retries:
            backoff = self._config.callback_retry_seconds * 2 ** (delivery.attempt - 1) * self._config.time_scale
            retry = replace(delivery, attempt=delivery.attempt + 1)
            self._scheduler.call_later(backoff, lambda: self._submit(retry))
            return
        self._next(delivery.message_sid)

    def _record(
        self, delivery: Delivery, answer: WebhookAnswer, *, skipped: bool = False, abandoned: bool = False
    ) -> None:
        attempt = CallbackAttempt(
            delivery.status,
            delivery.url,
            delivery.attempt,
            delivery.token,
            answer.status,
            answer.error,
            utc_now(),
            delivery.repeat,
        )
        with self._state.lock:
            message = self._state.messages.get(delivery.message_sid)
            if message is not None:
                message.callbacks.append(attempt)
            counters = self._state.counters
            if skipped:
                counters.callbacks_skipped += 1
                return
            if answer.status is not None:
                counters.callbacks_sent += 1
            if answer.status is None or answer.status >= 500:
                counters.callbacks_failed += 1
            elif answer.status >= 400:
                counters.callbacks_rejected += 1
            counters.callbacks_abandoned += int(abandoned)
