"""The time an invocation has left, so that retries and timeouts never outlive the function."""

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

    def timeouts(self, read_timeout: float, connect_timeout: float = 3.05) -> tuple[float, float]:
        """Connect and read timeouts for one HTTP call that together fit in the remaining time."""
        remaining = self.remaining()
        connect = min(connect_timeout, remaining / 2)
        return connect, max(0.01, min(read_timeout, remaining - connect))
