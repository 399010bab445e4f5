"""local/send_queue_poller.py, the emulation of the send queue's event source mapping: with the
Twilio simulator refusing (429) anything beyond the limit, every recipient gets its message once
and Twilio never sees more than TwilioConcurrencyLimit requests in flight."""

from __future__ import annotations

import os

from local.send_queue_poller import run


def test_the_emulated_mapping_stays_within_the_twilio_limit() -> None:
    from twilio_messaging.execution_environment import environment

    saved = dict(os.environ)  # the emulation sets the functions' environment, as Lambda would
    environment.reset()
    try:
        result = run(events=30, limit=4, latency_ms=50, timeout=120)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        environment.reset()
    assert result["sent"] == result["recipients"] == 42 and result["duplicates"] == 0  # 24 single, 6 batch sends
    assert result["peak"] <= 4 and result["rate_limited"] == 0, result
    # Nothing throttled back onto the queue, nothing dead-lettered. An item failure (an AWS call
    # that timed out on a loaded machine, delivered again by SQS) is the designed recovery: the
    # counts above say it ended in one message per recipient.
    assert result["requeued"] == result["dead_lettered"] == 0, result
