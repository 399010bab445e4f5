"""Warm overhead: what one invocation of a warm function costs beyond the Twilio call it makes.

In one process (a warm execution environment: secret cached, connections kept alive), each
handler serves its API Gateway event from events/ against a loopback fake of Twilio and
moto_server (each in its own process). The floor is the same network work done with bare
`requests` calls on a kept-alive session: for get the same Twilio request; for send the same
Twilio request and the AWS requests the handler made (the opt-out read, the delivery record),
recorded once and replayed; for the webhook (a signed `delivered` status callback, about a new
message each time) the AWS requests the handler made (DynamoDB claim, delivery record, final
status, EventBridge PutEvents, event published, claim done), recorded and replayed. Overhead =
median(handler) - median(floor). The SDK references (bench/reference_handler) are measured the
same way. The functions' logs and metrics are written, to /dev/null.

Targets (issue 7): overhead under 1 ms median for get, under 2 ms for send and the webhook
(signature check included).

Usage: python bench/warm_overhead.py [--iterations 2000] [--aws moto|fake] [--source]
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import harness
from harness import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, MESSAGE_SID, LambdaContext, median, table

WARM_UP = 30

Event = dict[str, Any]


@dataclass
class Operation:
    name: str
    function: str
    reference_module: str  # bench/reference_handler/<module>.py
    reference: str  # its handler
    target_ms: float
    event: Callable[[], Event]  # a fresh event per call (not timed)


def same(event: Event) -> Callable[[], Event]:
    return lambda: event


def fresh_webhook(relative: str) -> Callable[[], Event]:
    """The signed webhook about a new message each time: never a duplicate."""
    return lambda: harness.webhook_event(relative, "SM" + uuid.uuid4().hex)


def webhook_sid(event: Event) -> bytes:
    from urllib.parse import parse_qs

    return parse_qs(event["body"])["MessageSid"][0].encode()


OPERATIONS = [
    Operation(
        "send",
        "send_message",
        "app",
        "lambda_handler",
        2.0,
        same(harness.load_event("send_message/api_gateway.json")),
    ),
    Operation("get", "get_message", "app", "get", 1.0, same(harness.load_event("get_message/api_gateway.json"))),
    Operation(
        "webhook",
        "webhook",
        "webhook_app",
        "lambda_handler",
        2.0,
        fresh_webhook("webhook/status_callback.json"),
    ),
]


def ok(answer: Any) -> bool:
    return isinstance(answer, dict) and int(answer.get("statusCode", 500)) < 300


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - started) / 1e6


def twilio_floor(name: str, session: Any, url: str) -> Callable[[Event], Any]:
    """The Twilio request send or get makes, with a bare kept-alive session."""
    messages = f"{url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages"
    if name == "send":
        form = {"To": "+15558675310", "From": FROM_NUMBER, "Body": "Your order #1234 has shipped."}
        return lambda event: session.post(f"{messages}.json", data=form)
    return lambda event: session.get(f"{messages}/{MESSAGE_SID}.json")


def recorded_aws_floor(
    handler: Callable[[Event, Any], Any],
    make_event: Callable[[], Event],
    sid_of: Callable[[Event], str] | None = None,
    twilio_call: Callable[[Event], Any] | None = None,
) -> Callable[[Event], Any]:
    """Records the AWS requests one invocation makes (through the layer's shared session), and
    returns a replay of them for another event (its message sid swapped in, with `sid_of`),
    after the Twilio request when there is one."""
    import requests

    from twilio_messaging.execution_environment import environment

    recorded: list[Any] = []

    def record(response: Any, *args: Any, **kwargs: Any) -> None:
        recorded.append(response.request)

    layer_session = environment.aws_session()
    layer_session.hooks["response"].append(record)
    event = make_event()
    try:
        if not ok(handler(event, LambdaContext())):
            raise SystemExit("the handler failed while its AWS calls were recorded")
    finally:
        layer_session.hooks["response"].remove(record)
    old = sid_of(event) if sid_of else ""
    session = requests.Session()

    def replay(event: Event) -> None:
        new = sid_of(event) if sid_of else ""
        if twilio_call is not None:
            twilio_call(event)
        for request in recorded:
            body = request.body.replace(old, new) if old else request.body
            answer = session.post(request.url, data=body, headers=dict(request.headers))
            # A replayed conditional write may find the condition already false: still a round trip.
            if answer.status_code >= 300 and "ConditionalCheckFailed" not in answer.text:
                raise SystemExit(f"replayed AWS call answered {answer.status_code}: {answer.text[:300]}")

    return replay


def main() -> None:
    arguments = harness.parser(__doc__, iterations=2000)
    arguments.add_argument("--source", action="store_true", help="measure the source tree even when built")
    arguments.add_argument(
        "--aws",
        choices=["moto", "fake"],
        default="moto",
        help="AWS on moto_server, or on the fake Twilio's minimal AWS stand-in (answers at once: a floor "
        "of under 1 ms per call instead of moto's 4-5 ms, so a more precise webhook overhead)",
    )
    args = arguments.parse_args()
    code = harness.locate_code(args.source)
    operations = [op for op in OPERATIONS if code.function_dir(op.function) is not None]

    with (
        harness.fake_twilio() as twilio,
        harness.moto_server() if args.aws == "moto" else nullcontext(twilio.url) as aws,
        harness.quiet_stdout() as out,
    ):
        env = harness.handler_environment(twilio.url, aws)
        with harness.environment(env):
            sys.path[:0] = [str(code.layer)]
            import requests

            session = requests.Session()
            session.auth = (ACCOUNT_SID, AUTH_TOKEN)
            context = LambdaContext()
            # (event maker, timed call) per measured series
            series: dict[str, tuple[Callable[[], Event], Callable[[Event], Any]]] = {}
            for op in operations:
                folder = code.function_dir(op.function)
                assert folder is not None
                handler = harness.load_module(f"{op.function}_app", folder / "app.py").lambda_handler
                module = f"reference_{op.reference_module}"
                reference = sys.modules.get(module) or harness.load_module(
                    module, harness.REFERENCE / f"{op.reference_module}.py"
                )
                reference_handler = getattr(reference, op.reference)
                for kind, call in (("ours", handler), ("ref", reference_handler)):
                    answer = call(op.event(), context)
                    if not ok(answer):
                        raise SystemExit(f"{kind} {op.name} failed: {str(answer)[:500]}")
                series[f"ours:{op.name}"] = (op.event, lambda event, h=handler: h(event, context))
                series[f"ref:{op.name}"] = (op.event, lambda event, h=reference_handler: h(event, context))
                if op.name == "webhook":
                    floor = recorded_aws_floor(handler, op.event, webhook_sid)
                elif op.name == "send":  # its opt-out read and delivery record write too
                    floor = recorded_aws_floor(handler, op.event, None, twilio_floor(op.name, session, twilio.url))
                else:
                    floor = twilio_floor(op.name, session, twilio.url)
                series[f"floor:{op.name}"] = (op.event, floor)
            for _ in range(WARM_UP):
                for make_event, call in series.values():
                    call(make_event())
            samples: dict[str, list[float]] = {name: [] for name in series}
            for _ in range(args.iterations):  # interleaved, so that noise hits all alike
                for name, (make_event, call) in series.items():
                    event = make_event()
                    samples[name].append(timed(lambda call=call, event=event: call(event)))

        print(
            f"Warm overhead per invocation, median of {args.iterations} (after {WARM_UP} warm-up calls); "
            f"Python {sys.version.split()[0]}; {code.label}",
            file=out,
        )
        where = "moto_server" if args.aws == "moto" else "the minimal AWS stand-in"
        print(
            "floor: bare requests calls (kept-alive session) making the same requests to the same fakes "
            "(get: Twilio; send: Twilio and its DynamoDB calls; webhook: its DynamoDB and EventBridge calls; "
            f"on {where})",
            file=out,
        )
        rows = []
        for op in operations:
            floor_ms = median(samples[f"floor:{op.name}"])
            ours = median(samples[f"ours:{op.name}"])
            reference_ms = median(samples[f"ref:{op.name}"])
            overhead, reference_overhead = ours - floor_ms, reference_ms - floor_ms
            rows.append(
                [
                    op.name,
                    f"{floor_ms:.3f}",
                    f"{ours:.3f}",
                    f"{overhead:.3f}",
                    f"< {op.target_ms:g}",
                    "yes" if overhead < op.target_ms else "NO",
                    f"{reference_ms:.3f}",
                    f"{reference_overhead:.3f}",
                    harness.ratio(overhead, reference_overhead),
                ]
            )
        headers = ["operation", "floor ms", "ours ms", "overhead ms", "target", "met", "SDK ref ms", "ref overhead"]
        print(table([*headers, "overhead/ref"], rows), file=out)


if __name__ == "__main__":
    main()
