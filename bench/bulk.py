"""Bulk throughput: one send_message invocation to 100 recipients (a direct invoke, as from Step
Functions) against a fake Twilio that answers each request in 100 ms and allows N requests in
flight, answering 429 (Twilio's error 20429, no Retry-After) to any request beyond N.

The reference is the limit itself: N / 0.1 s messages per second. Printed per N: the rate
achieved, its share of the limit, the 429s the fake answered, the most requests it saw in
flight, and recipients that failed.

Target (issue 7): at least 90% of the limit, and no 429 storm when the fake enforces N.

Usage: python bench/bulk.py [--iterations 5] [--limits 5,10,20,50] [--recipients 100]
                           [--twilio-concurrency-limit K] [--source]
"""

from __future__ import annotations

import sys
import time
from typing import Any

import harness
from harness import FROM_NUMBER, LambdaContext, median, table

LATENCY_SECONDS = 0.1


def main() -> None:
    arguments = harness.parser(__doc__, iterations=5)
    arguments.add_argument("--limits", default="5,10,20,50", help="concurrency limits N of the fake, comma-separated")
    arguments.add_argument("--recipients", type=int, default=100)
    arguments.add_argument("--source", action="store_true", help="measure the source tree even when built")
    arguments.add_argument(
        "--twilio-concurrency-limit",
        type=int,
        default=0,
        help="TWILIO_CONCURRENCY_LIMIT of the function (the template's TwilioConcurrencyLimit); default: unset, 10",
    )
    args = arguments.parse_args()
    code = harness.locate_code(args.source)
    folder = code.function_dir("send_message")
    if folder is None:
        raise SystemExit("functions/send_message is missing")
    limits = [int(n) for n in args.limits.split(",")]
    event = {
        "to": [f"+1555010{i:04d}" for i in range(args.recipients)],
        "from": FROM_NUMBER,
        "body": "Maintenance tonight at 22:00 UTC.",
    }

    rows = []
    with harness.moto_server() as aws, harness.quiet_stdout() as out:
        print(
            f"Bulk: one send_message invocation to {args.recipients} recipients, fake Twilio answering in "
            f"{LATENCY_SECONDS * 1000:.0f} ms with a concurrency limit N (429 beyond it); "
            f"median of {args.iterations}; {code.label}; "
            f"TWILIO_CONCURRENCY_LIMIT={args.twilio_concurrency_limit or 'unset'}",
            file=out,
        )
        for limit in limits:
            with harness.fake_twilio(LATENCY_SECONDS, limit) as twilio:
                limit_set = args.twilio_concurrency_limit
                concurrency = {"TWILIO_CONCURRENCY_LIMIT": str(limit_set)} if limit_set else {}
                env = harness.handler_environment(twilio.url, aws, **concurrency)
                rates, rejected, in_flight, failed = [], [], [], []
                with harness.environment(env):
                    if str(code.layer) not in sys.path:
                        sys.path.insert(0, str(code.layer))
                    handler = harness.load_module("send_message_app", folder / "app.py")
                    from twilio_messaging.execution_environment import environment

                    environment.reset()  # a new fake and settings: a new client
                    handler.lambda_handler({"to": "+15550100000", "body": "warm-up"}, LambdaContext())
                    for _ in range(args.iterations):
                        twilio.stats(reset=True)
                        started = time.perf_counter()
                        answer: Any = handler.lambda_handler(event, LambdaContext())
                        elapsed = time.perf_counter() - started
                        stats = twilio.stats()
                        rates.append(len(answer["messages"]) / elapsed)
                        failed.append(len(answer["failed"]))
                        rejected.append(stats["rejected429"])
                        in_flight.append(stats["maxInFlight"])
            rate, ceiling = median(rates), limit / LATENCY_SECONDS
            rows.append(
                [
                    str(limit),
                    f"{ceiling:.0f}",
                    f"{rate:.1f}",
                    f"{rate / ceiling:.1%}",
                    "yes" if rate >= 0.9 * ceiling else "NO",
                    f"{median(rejected):.0f}",
                    str(max(in_flight)),
                    f"{median(failed):.0f}",
                ]
            )
        headers = ["N", "limit msg/s", "msg/s", "of limit", ">= 90%", "429s", "max in flight", "failed"]
        print(table(headers, rows), file=out)


if __name__ == "__main__":
    main()
