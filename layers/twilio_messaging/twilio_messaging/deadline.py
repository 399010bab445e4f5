"""The time an invocation has left, so that retries and timeouts never outlive the function.

A promise, not a hope: every outgoing call gets a positive timeout that fits in the time left,
keeps a reserve for the bookkeeping after it (`less`), or is not made at all (DeadlineExpired).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

# Kept back from the function's remaining time to shape and return an answer.
SAFETY_MARGIN_SECONDS = 0.5
# Without a Lambda context (tests, scripts) a call gets this long.
DEFAULT_BUDGET_SECONDS = 30.0
# API Gateway's integration timeout is 29 s: answer before it does, with our own error body.
API_GATEWAY_BUDGET_SECONDS = 28.0
# No outgoing call is started with less time than this: it could not complete.
MIN_CALL_SECONDS = 0.05


@dataclass(frozen=True)
class Deadline:
    expires_at: float  # time.monotonic() value

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    @classmethod
    def from_context(cls, context: Any, cap_seconds: float | None = None) -> Deadline:
        """The function's remaining time less a margin, and at most `cap_seconds` (API Gateway
        stops waiting for an integration after 29 s, whatever the function's timeout)."""
        remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
        budget = DEFAULT_BUDGET_SECONDS
        if callable(remaining_ms):
            budget = max(0.0, remaining_ms() / 1000 - SAFETY_MARGIN_SECONDS)
        return cls.after(min(budget, cap_seconds) if cap_seconds is not None else budget)

    def remaining(self) -> float:
        return max(0.0, self.expires_at - time.monotonic())

    def less(self, reserve: float) -> Deadline:
        """The deadline of a call that must leave `reserve` seconds for the work after it."""
        return Deadline(self.expires_at - reserve)

    def timeouts(self, read_timeout: float, connect_timeout: float = 3.05) -> tuple[float, float]:
        """Connect and read timeouts for one HTTP call that together fit in the remaining time:
        each at least half of MIN_CALL_SECONDS, never zero. DeadlineExpired when even that is
        not left (a zero timeout would make requests raise ValueError, not a timeout)."""
        remaining = self.remaining()
        if remaining < MIN_CALL_SECONDS:
            raise DeadlineExpired(f"{remaining:.3f} s left, less than a call needs")
        connect = min(connect_timeout, remaining / 2)
        return connect, min(read_timeout, remaining - connect)


class DeadlineExpired(Exception):
    """No time is left for the call about to be made. Each client maps it to its own domain
    error (the call was not made), so that it never reaches a caller as it is."""
