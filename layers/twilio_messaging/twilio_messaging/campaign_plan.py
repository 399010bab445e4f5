"""A campaign's budget (docs/architecture.md, "Campaigns"): how many batches run at once, how many
sends each has in flight, how far apart each batch starts its sends, and how big a batch is.

- Concurrency: the map runs `lanes` batches at once, each with at most `per_batch` sends in
  flight, and lanes * per_batch ≤ the account's limit (TwilioConcurrencyLimit).
- Rate (`maxSendsPerSecond`, r): over any 10-second window the campaign starts at most 10·r
  sends. Each batch starts its sends at least `spacing` seconds apart and, before it ends, waits
  out the spacing after its last one; at most `lanes` batches run at once, so their sends form
  `lanes` chains in which starts are `spacing` apart. With spacing = 10 / k and k = ⌊10·r /
  lanes⌋, a chain starts at most k sends in any 10 seconds, the campaign lanes·k ≤ 10·r.
- Size: a batch is meant to last about BATCH_TARGET_SECONDS at the pace it is allowed (its rate,
  else per_batch sends per SECONDS_PER_SEND), far from Lambda's 15 minutes; a batch that runs
  out of time anyway stops starting sends and the state machine invokes it again for the rest.
  When the batches are more than the lanes, they are made as many as whole waves of lanes, of
  equal size, so that the lanes finish together.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import TwilioRateLimited, TwilioUnavailable
from twilio_messaging.send_pacer import SendPacer

MAX_LANES = 100  # batches of one campaign in flight at most
MAX_BATCH_SIZE = 1000
BATCH_TARGET_SECONDS = 300.0
SECONDS_PER_SEND = 1.0  # a slow Twilio answer plus the send's bookkeeping, to size batches
WINDOW_SECONDS = 10.0
SPACING_MARGIN = 1.02


@dataclass(frozen=True)
class CampaignPlan:
    batch_size: int
    batches: int
    lanes: int  # the map's MaxConcurrency
    per_batch: int  # sends in flight in one batch
    spacing: float  # seconds between two send starts in one batch; 0: no rate limit

    def as_dict(self) -> dict[str, float | int]:
        return {
            "batchSize": self.batch_size,
            "batches": self.batches,
            "mapConcurrency": self.lanes,
            "batchConcurrency": self.per_batch,
            "spacingSeconds": self.spacing,
        }


def plan_campaign(recipients: int, concurrency_limit: int, max_sends_per_second: float | None) -> CampaignPlan:
    """The plan for `recipients` sends within the account's limit and the campaign's rate."""
    most_lanes = max(1, min(MAX_LANES, concurrency_limit))
    if max_sends_per_second is not None:
        most_lanes = max(1, min(most_lanes, math.floor(WINDOW_SECONDS * max_sends_per_second)))
    # Each lane's pace as if every lane ran: the batch size that lasts about the target.
    per_batch = max(1, concurrency_limit // most_lanes)
    pace = per_batch / SECONDS_PER_SEND
    if max_sends_per_second is not None:
        pace = min(pace, _sends_per_window(max_sends_per_second, most_lanes) / WINDOW_SECONDS)
    size_for_time = max(1, math.floor(pace * BATCH_TARGET_SECONDS))
    batch_size = max(1, min(MAX_BATCH_SIZE, size_for_time, math.ceil(max(recipients, 1) / most_lanes)))
    batches = math.ceil(recipients / batch_size) if recipients else 0
    if batches > most_lanes:
        # Whole waves of equal batches: a last wave of a few would leave the other lanes idle
        # while it runs (34 batches of 300 on 10 lanes: 15 % of the time). Batches only shrink.
        batch_size = math.ceil(recipients / (math.ceil(batches / most_lanes) * most_lanes))
        batches = math.ceil(recipients / batch_size)
    lanes = max(1, min(most_lanes, batches))
    per_batch = max(1, concurrency_limit // lanes)
    spacing = 0.0
    if max_sends_per_second is not None:
        spacing = WINDOW_SECONDS / _sends_per_window(max_sends_per_second, lanes)
    return CampaignPlan(batch_size, batches, lanes, per_batch, spacing)


def _sends_per_window(max_sends_per_second: float, lanes: int) -> int:
    return max(1, math.floor(WINDOW_SECONDS * max_sends_per_second / lanes + 1e-9))


class CampaignPacer:
    """A batch's pacer: Twilio's concurrency (a SendPacer: 429s lower it) and the campaign's
    rate (starts `spacing` apart). Used where a SendPacer is: around each attempt of a POST."""

    def __init__(self, in_flight: int, spacing: float, stopped: Callable[[], bool] = lambda: False) -> None:
        self.concurrency = SendPacer(in_flight)
        # A little over the spacing: two starts exactly `spacing` apart could reach Twilio closer
        # than that (one delayed on its way more than the other) and put one too many in a window.
        self.spacing = spacing * SPACING_MARGIN
        self.stopped = stopped  # asked once a send may start: a stopped campaign starts none
        self._next_start = 0.0
        self._turn = threading.Lock()  # held while waiting for a turn: starts happen in order

    @contextmanager
    def slot(self, deadline: Deadline) -> Iterator[None]:
        with self.concurrency.slot(deadline):
            if self.spacing:
                self._wait_for_turn(deadline)
            if self.stopped():
                raise TwilioUnavailable("not sent: the campaign was stopped")
            yield

    def _wait_for_turn(self, deadline: Deadline) -> None:
        """The next start is counted from this one as it happens, once the send holds its place in
        flight: a turn taken before waiting for a place could start late, close to the next."""
        if not self._turn.acquire(timeout=max(0.0, deadline.remaining())):
            raise TwilioRateLimited("no turn to send within the campaign's rate in the time left", retry_after=1.0)
        try:
            wait = self._next_start - time.monotonic()
            if wait >= deadline.remaining():
                raise TwilioRateLimited("no turn to send within the campaign's rate in the time left", retry_after=1.0)
            if wait > 0:
                time.sleep(wait)
            self._next_start = time.monotonic() + self.spacing
        finally:
            self._turn.release()

    def rate_limited(self) -> None:
        self.concurrency.rate_limited()

    def succeeded(self) -> None:
        self.concurrency.succeeded()

    def wait_out_spacing(self) -> None:
        """Before the batch ends: the next batch of this lane may start right away, so the last
        start's spacing is waited out here."""
        wait = self._next_start - time.monotonic()
        if wait > 0:
            time.sleep(wait)
