"""`make demo`: bring the local stack up, use the product through its HTTP API as a client would,
print every request, answer and the events that reached the bus, and stop everything.

Exit status 0 when every answer was the one expected, 1 otherwise (each miss is listed).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from local.prism import EXAMPLE_ACCOUNT_SID
from local.processes import LOOPBACK, LocalStackError, exit_on_sigterm
from local.stack import WEBHOOK_PATH, LocalStack

LOGS = Path(__file__).resolve().parent / "logs"
REQUEST_TIMEOUT_SECONDS = 35  # above API Gateway's 29 s and the functions' budget within it
MAX_LINES = 30
MAX_LINE = 160
TO = "+15558675310"
FROM = "+15005550006"
UNDELIVERED = "+15005550100"  # the simulator's number for `undelivered` 30003 (docs/local-twilio.md)
WORKFLOW = "SendAndWaitForDeliveryStateMachine"
BUS_WAIT_SECONDS = 15.0


def _show(value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False) if not isinstance(value, str) else value
    lines = [
        line if len(line) <= MAX_LINE else f"{line[:MAX_LINE]}… ({len(line)} characters)" for line in text.splitlines()
    ]
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES], f"… ({len(lines) - MAX_LINES} more lines)"]
    return textwrap.indent("\n".join(lines), "    ")


class Demo:
    def __init__(self, stack: LocalStack) -> None:
        assert stack.info is not None
        self.stack = stack
        self.base = stack.info.api_url
        self.session = requests.Session()
        self.misses: list[str] = []
        self.steps = 0
        self.events = 0
        self.sent = 0
        self.callbacks = 0
        self.workflows: list[str] = []

    def call(
        self,
        title: str,
        method: str,
        path: str,
        expect: int,
        *,
        body: Any = None,
        form: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response | None:
        self.steps += 1
        print(f"\n{self.steps}. {title}\n  → {method} {path}")
        if body is not None:
            print(_show(body))
        if form is not None:
            print(_show(form))
        for name, value in (headers or {}).items():
            print(f"    {name}: {value}")
        try:
            response = self.session.request(
                method,
                self.base + path,
                json=body,
                data=form,
                headers={**({"Content-Type": "application/x-www-form-urlencoded"} if form else {}), **(headers or {})},
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except requests.RequestException as error:
            self.miss(f"{title}: no answer ({type(error).__name__})")
            return None
        print(f"  ← {response.status_code} {response.reason} ({response.headers.get('Content-Type', 'no body')})")
        if response.content:
            try:
                print(_show(response.json()))
            except ValueError:
                print(_show(response.text))
        if response.status_code != expect:
            self.miss(f"{title}: expected {expect}, got {response.status_code}")
        return response

    def miss(self, what: str) -> None:
        print(f"  ✗ {what}")
        self.misses.append(what)

    def bus(self, title: str, message_sid: str, expected: int, detail_type: str = "Message Status Changed") -> None:
        """Wait for `expected` events about `message_sid` on the bus (0: check none came), print them."""
        matching: list[dict[str, Any]] = []
        deadline = time.monotonic() + (BUS_WAIT_SECONDS if expected else 1.0)
        while time.monotonic() < deadline and (not expected or len(matching) < expected):
            events = self.stack.bus_events(wait_seconds=0.5)
            matching += [e for e in events if (e.get("detail") or {}).get("messageSid") == message_sid]
        print(f"  Events about {message_sid} that reached the bus: {len(matching)}")
        for event in matching:
            detail = event.get("detail") or {}
            shown = ("status", "errorCode", "from", "to", "body", "recipient", "scope")
            fields = {k: detail.get(k) for k in shown if detail.get(k)}
            print(f"    {event.get('detail-type')}: {json.dumps(fields, ensure_ascii=False)}")
        self.events += len(matching)
        if len(matching) < expected or (not expected and matching):
            self.miss(f"{title}: {len(matching)} event(s) about {message_sid} reached the bus, expected {expected}")

    def workflow(self, title: str, recipient: str, expect: str) -> None:
        """Start the example state machine (send, then wait for the final status) and wait for its end."""
        self.steps += 1
        arn = self.stack.info.state_machines.get(WORKFLOW) if self.stack.info else None
        print(f"\n{self.steps}. {title}\n  → Step Functions StartExecution {WORKFLOW}")
        if not arn:
            self.miss(f"{title}: the template declares no {WORKFLOW}")
            return
        from local.moto_hooks import wait_for_execution
        from local.moto_stack import client

        sfn = client("stepfunctions", self.stack.info.aws_endpoint if self.stack.info else "")
        payload = {"to": recipient, "body": "Your table is ready."}
        print(_show(payload))
        execution = sfn.start_execution(stateMachineArn=arn, name=f"demo-{time.time_ns()}", input=json.dumps(payload))
        outcome = wait_for_execution(sfn, execution["executionArn"], timeout=BUS_WAIT_SECONDS)
        shown = {k: outcome.get(k) for k in ("status", "error", "cause") if outcome.get(k)}
        if outcome.get("output"):
            detail = json.loads(outcome["output"])
            shown["output"] = {k: detail.get(k) for k in ("messageSid", "status", "to")}
        print(f"  ← execution {outcome['status']}")
        print(_show(shown))
        self.workflows.append(outcome["status"])
        if outcome["status"] != expect:
            self.miss(f"{title}: the execution ended {outcome['status']}, expected {expect}")

    def run(self) -> None:
        sms = self.call("Send an SMS", "POST", "/messages", 201, body={"to": TO, "body": "Your order has shipped."})
        sid = (sms.json().get("sid") if sms is not None and sms.ok else None) or "SM" + "a" * 32
        print("  Twilio (simulated) now moves it through sending, sent and delivered, calling back each time:")
        self.bus("The status callbacks", sid, 3)
        self.call(
            "Send an MMS (two images; Twilio wants MediaUrl as repeated form keys)",
            "POST",
            "/messages",
            201,
            body={
                "to": TO,
                "from": FROM,
                "body": "Your order, pictured.",
                "mediaUrl": ["https://demo.twilio.com/owl.png", "https://demo.twilio.com/logo.png"],
            },
        )
        self.call("Fetch the SMS: Twilio reports it delivered", "GET", f"/messages/{sid}", 200)
        self.call("Its delivery history, as the callbacks recorded it", "GET", f"/messages/{sid}/events", 200)
        first = self.call(
            "List the messages to that number, one a page", "GET", f"/messages?to=%2B{TO[1:]}&pageSize=1", 200
        )
        token = first.json().get("nextPageToken") if first is not None and first.ok else None
        if token:
            self.call("The next page", "GET", "/messages?" + urlencode({"pageToken": token, "pageSize": 1}), 200)
        self.call(
            "A raw Twilio request: the account's incoming phone numbers",
            "POST",
            "/twilio-requests",
            200,
            body={"path": "/Accounts/{AccountSid}/IncomingPhoneNumbers.json", "query": {"PageSize": 2}},
        )
        self.workflow("The example workflow: send, and wait until Twilio reports delivery", TO, "SUCCEEDED")
        self.workflow(
            f"The same workflow for {UNDELIVERED}, a number the simulator reports undelivered (30003)",
            UNDELIVERED,
            "FAILED",
        )
        self.inbound()
        self.webhooks(sid)
        self.campaign()
        self.contract()

    def inbound(self) -> None:
        """A reply STOP from the phone, as Twilio posts it to the number's webhook."""
        from local.twilio_simulator import Inbound

        self.steps += 1
        print(f"\n{self.steps}. An inbound message: {TO} replies STOP to {FROM}")
        if self.stack.simulator is None:
            self.miss("inbound: the local stack runs no simulator")
            return
        answer = self.stack.simulator.inject_inbound(Inbound(sender=TO, to=FROM, body="STOP"))
        print(f"  → signed POST {WEBHOOK_PATH}\n  ← {answer['status']} {answer['body']}")
        if answer["status"] != 200:
            self.miss(f"inbound STOP: the webhook answered {answer['status']}")
        # Its Message Received event, and the Recipient Opted Out the keyword asks for.
        self.bus("The inbound STOP", answer["message_sid"], 2)
        self.call("The opt-out STOP recorded", "GET", f"/opt-outs/%2B{TO[1:]}", 200)
        self.call(
            f"A send to {TO} now: refused before Twilio is called",
            "POST",
            "/messages",
            422,
            body={"to": TO, "body": "One more thing…"},
        )

    def webhooks(self, sid: str) -> None:
        form = urlencode(
            {
                "MessageSid": sid,
                "MessageStatus": "undelivered",
                "SmsStatus": "undelivered",
                "AccountSid": EXAMPLE_ACCOUNT_SID,
                "From": FROM,
                "To": TO,
                "ApiVersion": "2010-04-01",
            }
        )
        self.call(
            "A forged status callback (no valid signature): refused, nothing published",
            "POST",
            WEBHOOK_PATH,
            403,
            form=form,
            headers={"X-Twilio-Signature": "forged"},
        )
        self.bus("The forged callback", sid, 0)

    def campaign(self) -> None:
        """A small campaign: each recipient's own text, the opted-out and the incomplete skipped."""
        rows = [
            {"to": "+15558675320", "firstName": "Ada"},
            {"to": "+15558675321", "firstName": "Grace"},
            {"to": "+15558675322", "firstName": "Linus"},
            {"to": TO, "firstName": "Sam"},  # replied STOP above
            {"to": "+15558675323"},  # no firstName for the placeholder
        ]
        body = {"name": "Sunday opening", "recipients": rows, "message": {"body": "Hi {{firstName}}, we open at 9."}}
        started = self.call("A campaign: five recipients, each their own text", "POST", "/campaigns", 202, body=body)
        campaign_id = started.json().get("campaignId") if started is not None and started.ok else None
        if not campaign_id:
            return
        deadline = time.monotonic() + BUS_WAIT_SECONDS * 2
        while time.monotonic() < deadline:  # moto runs the campaign's state machine meanwhile
            answer = self.session.get(f"{self.base}/campaigns/{campaign_id}", timeout=REQUEST_TIMEOUT_SECONDS)
            if answer.ok and answer.json().get("status") != "RUNNING":
                break
            time.sleep(0.3)
        done = self.call("The campaign, once its state machine ended", "GET", f"/campaigns/{campaign_id}", 200)
        outcome = done.json() if done is not None and done.ok else {}
        if (outcome.get("status"), outcome.get("sent"), outcome.get("skipped")) != ("SUCCEEDED", 3, 2):
            self.miss(f"the campaign ended {outcome.get('status')}, sent {outcome.get('sent')}, expected 3 sent")
        self.report(str(outcome.get("reportUri") or ""))

    def report(self, uri: str) -> None:
        from local.moto_stack import client

        if not uri.startswith("s3://") or self.stack.info is None:
            return
        bucket, key = uri[len("s3://") :].split("/", 1)
        lines = client("s3", self.stack.info.aws_endpoint).get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        print(f"  Its report, {uri}:")
        print(textwrap.indent(lines.strip(), "    "))

    def contract(self) -> None:
        """Every request the functions made was inside Twilio's OpenAPI description."""
        simulator = self.stack.simulator
        if simulator is None:
            return
        counters = simulator.counters()
        self.sent = int(
            counters.get("messages_created") or sum((counters.get("messages_per_recipient") or {}).values())
        )
        self.callbacks = int(counters.get("callbacks_sent") or 0)
        invalid = simulator.invalid_requests()
        if invalid:
            self.miss(f"{len(invalid)} request(s) outside Twilio's description: {json.dumps(invalid)[:500]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=3000, help="local API port (0: a free one); default 3000")
    parser.add_argument("--twilio-url", help="use this Twilio stand-in instead of the simulator")
    parser.add_argument("--function-log", type=Path, default=LOGS / "demo-functions.log", help="the functions' logs")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    started = time.monotonic()
    log: Path = args.function_log
    log.unlink(missing_ok=True)
    stack = LocalStack(host=args.host, port=args.port, twilio_url=args.twilio_url, function_log=log, log_requests=False)
    try:
        print("Starting the local stack: the Twilio simulator, moto_server (AWS), the local API Gateway…", flush=True)
        info = stack.start()
        print(
            f"Up in {time.monotonic() - started:.1f} s. Local API {info.api_url}, Twilio {info.twilio_url}, "
            f"moto_server {info.aws_endpoint}.\n"
            "The Twilio simulator checks every request the functions make against Twilio's OpenAPI description,\n"
            "keeps the messages, moves them through Twilio's statuses and posts signed status callbacks to the\n"
            "local webhook; moto executes the example workflow, its Lambda task served by the send function.",
            flush=True,
        )
        demo = Demo(stack)
        demo.run()
    except LocalStackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted: stopping the local stack.", file=sys.stderr)
        return 130
    finally:
        stack.stop()
    print(f"\nThe functions' logs: {log}")
    if demo.misses:
        print(f"Demo finished with {len(demo.misses)} unexpected answer(s):", file=sys.stderr)
        for miss in demo.misses:
            print(f"  - {miss}", file=sys.stderr)
        return 1
    print(
        f"Demo finished: {demo.steps} steps, every answer as expected: {demo.sent} messages sent, "
        f"{demo.callbacks} signed callbacks, {demo.events} events on the bus, workflows "
        f"{' and '.join(demo.workflows) or 'none'}, in {time.monotonic() - started:.1f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
