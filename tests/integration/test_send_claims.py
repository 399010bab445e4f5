"""A campaign recipient's claim in the state table (moto): what a second attempt at the same
send finds, whether the first is still running, sent it, was refused or never learnt."""

from __future__ import annotations

import time
from typing import Any

import pytest

from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import IdempotencyInProgress
from twilio_messaging.send_claims import Claim, SendClaims
from twilio_messaging.state_table import StateTable

TO = "+15550100001"


def claims(table: str, hold: float = 45.0) -> SendClaims:
    return SendClaims(StateTable(table), "campaign:c1", hold, keep_days=15)


def deadline() -> Deadline:
    return Deadline.after(10)


def test_the_first_attempt_claims_the_send_and_a_concurrent_one_is_held_back(state_table: str) -> None:
    first = claims(state_table)
    assert first.claim(TO, deadline()) == Claim()
    with pytest.raises(IdempotencyInProgress):
        claims(state_table).claim(TO, deadline())
    assert claims(state_table).claim("+15550100002", deadline()) == Claim()  # each recipient its own


def test_once_sent_every_later_attempt_gets_the_message_instead_of_sending(state_table: str) -> None:
    message: dict[str, Any] = {"sid": "SM" + "a" * 32, "to": TO, "status": "queued", "numSegments": 1}
    first = claims(state_table)
    first.claim(TO, deadline())
    first.keep(TO, message, deadline())
    assert claims(state_table).claim(TO, deadline()) == Claim(answer=message)
    assert claims(state_table).claim(TO, deadline()) == Claim(answer=message)


def test_a_refused_send_leaves_nothing_behind(state_table: str) -> None:
    first = claims(state_table)
    first.claim(TO, deadline())
    first.let_go(TO, deadline(), outcome_known=True)
    assert claims(state_table).claim(TO, deadline()) == Claim()  # no earlier attempt to look for


def test_after_an_unknown_outcome_the_next_attempt_looks_for_the_first_ones_message(state_table: str) -> None:
    before = time.time()
    first = claims(state_table)
    first.claim(TO, deadline())
    first.let_go(TO, deadline(), outcome_known=False)
    second = claims(state_table).claim(TO, deadline())
    assert second.answer is None and second.earlier is not None
    assert before <= second.earlier <= time.time()
    third = claims(state_table)  # the earliest attempt is the one that counts
    third.let_go(TO, deadline(), outcome_known=False)
    assert third.claim(TO, deadline()).earlier == second.earlier


def test_a_claim_whose_holder_died_goes_stale_and_the_next_attempt_looks_first(state_table: str) -> None:
    claims(state_table, hold=0.2).claim(TO, deadline())  # its Lambda dies here: never let go
    with pytest.raises(IdempotencyInProgress):
        claims(state_table).claim(TO, deadline())
    time.sleep(0.3)
    stale = claims(state_table).claim(TO, deadline())
    assert stale.answer is None and stale.earlier is not None
