"""The fault suite over real HTTP: moto_server in its own process for AWS, and the raw-socket
Twilio fake. In-process moto replaces requests' HTTP adapter, so deadlines, timeouts and
connections are only really exercised here.

The deadline is a promise (docs/architecture.md, "Deadlines"): whatever time is left, a call
answers with a domain error or a result within it, never a 500; and a keyed send whose outcome
is unknown when time runs out (an answer still arriving, the function killed mid-call) is never
sent again by a retry with the same key.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from local.moto_stack import MotoServer, client
from tests.integration.faulty_twilio import FaultyTwilio, Received, Reply, hang, ok, sid_for, trickle, twilio_answer
from tests.support import (
    ROOT,
    SECRET_ID,
    LambdaContext,
    api_event,
    credentials,
    load_event,
    load_handler,
    twilio_message,
)
from twilio_messaging.errors import TwilioMessagingError

TABLE = "twilio-messaging-http-faults"
RECIPIENT = "+15558675310"
BODY = "Fault suite over HTTP: any text will do."


@dataclass
class Aws:
    endpoint: str
    dynamodb: Any

    def notes(self) -> list[str]:
        """Ids of the notes of sends whose outcome is unknown."""
        items = self.dynamodb.scan(TableName=TABLE)["Items"]
        return [item["id"]["S"] for item in items if item["id"]["S"].startswith("send-unknown#")]


@pytest.fixture(scope="module")
def moto_server() -> Iterator[Aws]:
    server = MotoServer()
    server.launch()
    endpoint = server.wait()
    try:
        client("secretsmanager", endpoint).create_secret(Name=SECRET_ID, SecretString=json.dumps(credentials()))
        dynamodb = client("dynamodb", endpoint)
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield Aws(endpoint, dynamodb)
    finally:
        server.stop()


def remembering(fake: FaultyTwilio) -> Any:
    """Twilio's answers, with a list of messages that holds every send the fake received in
    full, answered or not: what Twilio would list after taking a send whose answer was lost."""

    def respond(request: Received) -> Reply:
        if request.method == "GET" and request.path.endswith("/Messages.json"):
            to = parse_qs(urlsplit(request.target).query).get("To", [""])[0]
            sends = [dict(r.form()) for r in fake.requests if r.method == "POST" and r.path.endswith("Messages.json")]
            listed = [
                twilio_message(sid=sid_for(form["To"]), to=form["To"], body=form.get("Body"))
                | {"date_created": formatdate(usegmt=True)}
                for form in sends
                if form["To"] == to
            ]
            return Reply(200, json.dumps({"messages": listed, "next_page_uri": None}).encode())
        return twilio_answer(request)

    return respond


@pytest.fixture
def fake(moto_server: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyTwilio]:
    twilio = FaultyTwilio()
    twilio.responder = remembering(twilio)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    monkeypatch.setenv("STATE_TABLE_NAME", TABLE)
    monkeypatch.setenv("TWILIO_API_BASE_URL", twilio.url)
    yield twilio
    twilio.stop()


def keyed_send(key: str, to: str = RECIPIENT) -> dict[str, Any]:
    payload = {"to": to, "body": BODY, "statusCallback": None}
    return api_event("send_message/api_gateway.json", body=payload, headers={"Idempotency-Key": key})


def invoke(function: str, event: Any, remaining_ms: int) -> Any:
    return load_handler(function).lambda_handler(copy.deepcopy(event), LambdaContext(remaining_ms=remaining_ms))


def error_code(answer: dict[str, Any]) -> str | None:
    body = json.loads(answer["body"]) if answer["body"].startswith("{") else {}
    return body.get("error", {}).get("code")


def test_a_keyed_send_whose_answer_trickles_past_the_deadline_is_never_sent_twice(
    fake: FaultyTwilio, moto_server: Aws
) -> None:
    """Twilio takes the send, and its answer is still arriving when the deadline passes."""
    fake.behave(trickle())
    key = f"trickle-{uuid.uuid4()}"

    first = invoke("send_message", keyed_send(key), remaining_ms=3000)

    assert first["statusCode"] == 504, first
    assert error_code(first) == "SEND_OUTCOME_UNKNOWN"
    assert len(moto_server.notes()) >= 1  # noted before the POST, kept: the outcome is unknown
    retry = invoke("send_message", keyed_send(key), remaining_ms=10_000)
    assert retry["statusCode"] == 201, retry
    assert json.loads(retry["body"])["sid"] == sid_for(RECIPIENT)
    assert fake.count("POST") == 1  # the retry found the message on Twilio instead of sending it again
    again = invoke("send_message", keyed_send(key), remaining_ms=10_000)
    assert json.loads(again["body"])["sid"] == sid_for(RECIPIENT)
    assert fake.count("POST") == 1


def test_a_keyed_send_direct_invoke_raises_outcome_unknown_at_the_deadline(fake: FaultyTwilio) -> None:
    fake.behave(trickle())
    payload = {"to": RECIPIENT, "body": BODY, "statusCallback": None, "idempotencyKey": f"direct-{uuid.uuid4()}"}

    with pytest.raises(TwilioMessagingError) as raised:
        load_handler("send_message").lambda_handler(payload, LambdaContext(remaining_ms=3000))

    assert type(raised.value).__name__ == "SendOutcomeUnknown"
    retried = load_handler("send_message").lambda_handler(payload, LambdaContext(remaining_ms=10_000))
    assert retried["sid"] == sid_for(RECIPIENT)
    assert fake.count("POST") == 1


KILLED_RUN = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from tests.support import LambdaContext, load_handler
print(load_handler("send_message").lambda_handler(json.loads(sys.argv[3]), LambdaContext(remaining_ms=5000)))
"""


def test_a_keyed_send_killed_mid_call_is_never_sent_twice(fake: FaultyTwilio, moto_server: Aws) -> None:
    """A Lambda timeout or out-of-memory kill while the POST is out: nothing after it runs, so
    the note written before the POST is all a retry has to go on."""
    fake.behave(hang())
    key = f"killed-{uuid.uuid4()}"
    layer = str(ROOT / "layers" / "twilio_messaging")
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, layer, str(ROOT), json.dumps(keyed_send(key))],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while fake.count("POST") == 0 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        if fake.count("POST") != 1:
            process.kill()
            pytest.fail(f"the send never reached Twilio: {process.communicate()[0].decode()[-2000:]}")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    fake.behave(then=ok())
    # The killed run's idempotency record is in progress until its remaining time is over.
    while (answer := invoke("send_message", keyed_send(key), remaining_ms=10_000))["statusCode"] == 409:
        assert error_code(answer) == "IDEMPOTENCY_IN_PROGRESS"
        time.sleep(0.5)
    assert answer["statusCode"] == 201, answer
    assert json.loads(answer["body"])["sid"] == sid_for(RECIPIENT)
    assert fake.count("POST") == 1


# --- whatever time is left: an answer in time, never a 500 ----------------------------------

REMAINING_MS = [0, 300, 520, 700, 1100, 1600, 2200]


def _targets(key: str) -> dict[str, tuple[str, Any]]:
    sid = "SM" + "0" * 32
    return {
        "send": ("send_message", api_event("send_message/api_gateway.json", body={"to": RECIPIENT, "body": BODY})),
        "keyed send": ("send_message", keyed_send(key)),
        "batch": (
            "send_message",
            api_event("send_message/api_gateway.json", body={"to": [RECIPIENT, "+15558675311"], "body": BODY}),
        ),
        "keyed direct": ("send_message", {"to": RECIPIENT, "body": BODY, "idempotencyKey": key + "-direct"}),
        "get": ("get_message", load_event("get_message/api_gateway.json") | {"pathParameters": {"sid": sid}}),
        "list": ("list_messages", load_event("list_messages/api_gateway.json")),
        "raw": (
            "raw_request",
            api_event("raw_request/api_gateway.json", body={"path": "/Accounts/{AccountSid}/Calls.json"}),
        ),
    }


@pytest.mark.parametrize("remaining_ms", REMAINING_MS)
@pytest.mark.parametrize("target", list(_targets("x")))
def test_any_remaining_time_gets_an_answer_in_time_and_never_a_500(
    fake: FaultyTwilio, target: str, remaining_ms: int
) -> None:
    fake.behave(then=ok(delay=1.0))  # Twilio answers, slowly: the deadline strikes in any phase
    key = f"deadline-{uuid.uuid4()}"
    function, event = _targets(key)[target]

    started = time.monotonic()
    try:
        answer = invoke(function, event, remaining_ms)
        status, code = answer.get("statusCode", 200), error_code(answer) if "statusCode" in answer else None
    except TwilioMessagingError as error:
        status, code = error.status, error.code
    took = time.monotonic() - started

    assert status != 500 and code != "INTERNAL_ERROR", (status, code)
    assert took <= max(remaining_ms / 1000, 0.2) + 0.3, f"answered after {took:.2f} s"
    if target.startswith("keyed"):
        fake.behave(then=ok())
        retry = _targets(key)[target][1]
        invoke(function, retry, 10_000)
        assert fake.count("POST") <= 1, "a retry with the same key sent again"
