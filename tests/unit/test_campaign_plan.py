"""The campaign's budget: concurrency within the account's limit, the rate over every 10-second
window, batches far from Lambda's 15 minutes (campaign_plan)."""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twilio_messaging.campaign_plan import (
    BATCH_TARGET_SECONDS,
    MAX_BATCH_SIZE,
    SECONDS_PER_SEND,
    WINDOW_SECONDS,
    CampaignPacer,
    plan_campaign,
)
from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import TwilioUnavailable


def run_at_once(send: Callable[[], None], times: int) -> None:
    threads = [threading.Thread(target=send) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@settings(max_examples=300, deadline=None)
@given(
    recipients=st.integers(0, 1_000_000),
    limit=st.integers(2, 1000),
    rate=st.one_of(st.none(), st.floats(0.1, 10_000)),
)
def test_every_plan_keeps_the_limit_the_rate_and_lambdas_time(recipients: int, limit: int, rate: float | None) -> None:
    plan = plan_campaign(recipients, limit, rate)
    assert plan.lanes * plan.per_batch <= limit
    assert plan.batches * plan.batch_size >= recipients and plan.batch_size <= MAX_BATCH_SIZE
    assert plan.batches == 0 or (plan.batches - 1) * plan.batch_size < recipients
    if rate is not None:
        per_lane = round(WINDOW_SECONDS / plan.spacing)
        assert plan.lanes * per_lane <= WINDOW_SECONDS * rate + 1e-6  # lanes chains, k starts per window each
        seconds = plan.batch_size * max(plan.spacing, SECONDS_PER_SEND / plan.per_batch)
    else:
        assert plan.spacing == 0
        seconds = plan.batch_size * SECONDS_PER_SEND / plan.per_batch
    assert seconds <= BATCH_TARGET_SECONDS * 2  # far from 900 s, even at one second a send
    waves = math.ceil(plan.batches / plan.lanes) if plan.batches else 0
    assert waves == 0 or waves * plan.lanes * plan.batch_size - recipients < waves * plan.lanes  # finish together


@pytest.mark.parametrize(
    ("recipients", "limit", "rate", "expected"),
    [
        (2000, 10, None, (200, 10, 10, 1, 0.0)),  # every lane busy, one send each
        (10_000, 10, None, (250, 40, 10, 1, 0.0)),  # 4 whole waves, not 3 and 4 batches of 300
        (100_000, 10, None, (295, 339, 10, 1, 0.0)),  # ~300 sends of at most a second: 5 minutes
        (100_000, 100, 1.0, (30, 3334, 10, 10, 10.0)),  # a US long code: 1/s, 1 a window per lane
        (5, 10, None, (1, 5, 5, 2, 0.0)),
        (1000, 4, 0.25, (30, 34, 2, 2, 10.0)),  # 2.5 sends a window: 2 lanes of 1
    ],
)
def test_plans(recipients: int, limit: int, rate: float | None, expected: tuple[int, int, int, int, float]) -> None:
    plan = plan_campaign(recipients, limit, rate)
    assert (plan.batch_size, plan.batches, plan.lanes, plan.per_batch, plan.spacing) == expected


def test_the_pacer_starts_sends_spacing_apart_and_waits_out_the_last() -> None:
    pacer = CampaignPacer(in_flight=3, spacing=0.05)
    starts: list[float] = []
    lock = threading.Lock()

    def send() -> None:
        with pacer.slot(Deadline.after(5)), lock:
            starts.append(time.monotonic())

    run_at_once(send, 6)
    pacer.wait_out_spacing()
    ended = time.monotonic()
    starts.sort()
    assert all(b - a >= 0.045 for a, b in itertools.pairwise(starts))
    assert ended - starts[-1] >= 0.045


def test_a_send_that_waited_for_a_place_in_flight_still_starts_spacing_after_the_one_before() -> None:
    """Turns taken before a place was free let two sends start closer than the spacing (a send
    stuck behind two slow ones, then the next on time): 21 starts in a 10-second window for 20."""
    pacer = CampaignPacer(in_flight=2, spacing=0.05)
    durations = iter([0.2, 0.09, 0.01, 0.01, 0.01, 0.01])
    starts: list[float] = []
    lock = threading.Lock()

    def send() -> None:
        with pacer.slot(Deadline.after(5)):
            with lock:
                starts.append(time.monotonic())
                duration = next(durations)
            time.sleep(duration)

    run_at_once(send, 6)
    starts.sort()
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.05


def test_a_stopped_campaign_starts_no_send_even_once_its_turn_came() -> None:
    pacer = CampaignPacer(in_flight=1, spacing=0, stopped=lambda: True)
    with pytest.raises(TwilioUnavailable, match="stopped"), pacer.slot(Deadline.after(1)):
        pytest.fail("a send started")
    assert math.isclose(pacer.concurrency.limit, 1)
