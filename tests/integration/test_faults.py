"""The fault suite (docs/api.md, "Errors" and "Idempotency and retries"): every function against a Twilio that fails in
every way a network can, Secrets Manager and EventBridge failures, and concurrent duplicates.

For each fault, function and invocation source the test asserts the error type (direct invoke:
the exception class, Step Functions' `errorType`) or HTTP status and error code (API Gateway),
how many requests reached the fake (bounded retries, a send never repeated once Twilio may have
taken it), and that the function answered within the remaining time its context reported.

AWS is moto, started once for the module (a secret, the state table, a bus whose events land in
an SQS queue); each test uses its own keys. Twilio is `FaultyTwilio`, a raw-socket fake that can
reset connections, hang, dribble and lie about lengths.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from tests.integration.faulty_twilio import (
    Fault,
    FaultyTwilio,
    Received,
    Reply,
    answer,
    closed_port_url,
    hang,
    ok,
    reset,
    reset_mid_body,
    sid_for,
    stall,
    trickle,
    truncated,
    twilio_error,
)
from tests.support import (
    MESSAGE_SID,
    SECRET_ID,
    LambdaContext,
    api_event,
    atomic_moto_dynamodb,
    credentials,
    load_event,
    load_handler,
    signed_webhook_event,
    twilio_message,
)
from twilio_messaging.errors import TwilioMessagingError
from twilio_messaging.sending import PACED_RETRY

TABLE = "twilio-messaging-faults"
RECIPIENTS = ["+15558675310", "+15558675311"]
BODY = "Fault suite: any text will do."

IDEMPOTENT_RETRIES = 3  # RetryPolicy.max_retries: repeats of a GET or DELETE on 5xx / network errors
RATE_LIMIT_RETRIES = 3  # repeats of a 429, for every call
RAW_RETRIES = 2  # the raw GET target asks for {"maxRetries": 2}


# --- AWS: moto once per module ---------------------------------------------------------------


@dataclass
class Cloud:
    sqs: Any
    dynamodb: Any
    queue_url: str

    def published(self) -> list[dict[str, Any]]:
        """Every event the bus delivered to the queue since the last call."""
        found: list[dict[str, Any]] = []
        while True:
            answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            if not answer.get("Messages"):
                return found
            for message in answer["Messages"]:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def record(self, key: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.dynamodb.get_item(TableName=TABLE, Key={"id": {"S": key}}).get("Item")
        return item


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    import boto3
    from moto import mock_aws

    with atomic_moto_dynamodb(), mock_aws():
        region = "us-east-1"
        boto3.client("secretsmanager", region_name=region).create_secret(
            Name=SECRET_ID, SecretString=json.dumps(credentials())
        )
        dynamodb = boto3.client("dynamodb", region_name=region)
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sqs = boto3.client("sqs", region_name=region)
        queue_url = sqs.create_queue(QueueName="fault-suite-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events", region_name=region)
        events.put_rule(Name="all-twilio", EventPattern=json.dumps({"source": ["twilio.messaging"]}))
        events.put_targets(Rule="all-twilio", Targets=[{"Id": "queue", "Arn": queue_arn}])
        yield Cloud(sqs, dynamodb, queue_url)


@pytest.fixture
def fake(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyTwilio]:
    """The misbehaving Twilio, with the functions pointed at it and the module's AWS in place."""
    cloud.published()  # nothing left over from an earlier test
    monkeypatch.setenv("STATE_TABLE_NAME", TABLE)
    monkeypatch.setenv("EVENT_BUS_NAME", "default")
    twilio = FaultyTwilio()
    monkeypatch.setenv("TWILIO_API_BASE_URL", twilio.url)
    yield twilio
    twilio.stop()


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in backoff (0.25 s doubling, full jitter) at a twentieth of its length: the same
    number of attempts and the same deadline arithmetic, in a fraction of the suite's time. The
    real delays are exercised by `test_real_backoff_*`."""
    from twilio_messaging.twilio_client import RetryPolicy

    real_delay = RetryPolicy.delay
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt: real_delay(self, attempt) / 20)


@pytest.fixture
def quick_aws_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The AWS client's pauses between attempts (full jitter under 0.2 s, 0.4 s) at a twentieth."""
    import random
    from types import SimpleNamespace

    from twilio_messaging import aws_json

    monkeypatch.setattr(aws_json, "random", SimpleNamespace(uniform=lambda low, high: random.uniform(low, high) / 20))


@dataclass
class Attempts:
    """Every HTTP call the functions tried towards Twilio, reached or not (refused connections too)."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.calls)


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> Attempts:
    import requests

    seen = Attempts()
    real_request = requests.Session.request

    def counting(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith("http://127.0.0.1"):
            seen.calls.append((method, url))
        return real_request(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", counting)
    return seen


# --- the functions under test ---------------------------------------------------------------

Kind = Literal["send", "batch", "read", "delete", "raw_retry", "raw_post"]
Source = Literal["api", "direct"]


@dataclass(frozen=True)
class Target:
    name: str
    function: str
    kind: Kind
    api: Callable[[], dict[str, Any]]
    direct: Callable[[], Any]


def _send_payload(to: str | list[str]) -> dict[str, Any]:
    return {"to": to, "from": "+15005550006", "body": BODY, "statusCallback": None}


def _raw_payload(method: str) -> dict[str, Any]:
    if method == "GET":
        return {
            "method": "GET",
            "path": f"/Accounts/{{AccountSid}}/Messages/{MESSAGE_SID}.json",
            "retry": {"maxRetries": RAW_RETRIES, "delayMs": 20},
        }
    return {
        "method": "POST",
        "path": "/Accounts/{AccountSid}/Messages.json",
        "data": {"To": RECIPIENTS[0], "From": "+15005550006", "Body": BODY},
        "retry": {"delayMs": 20},  # no retries; 429 waits 20 ms when Twilio names no Retry-After
    }


TARGETS = [
    Target(
        "send",
        "send_message",
        "send",
        lambda: api_event("send_message/api_gateway.json", body=_send_payload(RECIPIENTS[0])),
        lambda: _send_payload(RECIPIENTS[0]),
    ),
    Target(
        "send batch",
        "send_message",
        "batch",
        lambda: api_event("send_message/api_gateway.json", body=_send_payload(RECIPIENTS)),
        lambda: _send_payload(RECIPIENTS),
    ),
    Target(
        "get", "get_message", "read", lambda: load_event("get_message/api_gateway.json"), lambda: {"sid": MESSAGE_SID}
    ),
    Target(
        "delete",
        "get_message",
        "delete",
        lambda: load_event("get_message/api_gateway_delete.json"),
        lambda: {"sid": MESSAGE_SID, "method": "DELETE"},
    ),
    Target(
        "list",
        "list_messages",
        "read",
        lambda: load_event("list_messages/api_gateway.json"),
        lambda: {"resource": "messages", "pageSize": 20},
    ),
    Target(
        "raw GET",
        "raw_request",
        "raw_retry",
        lambda: api_event("raw_request/api_gateway.json", body=_raw_payload("GET")),
        lambda: _raw_payload("GET"),
    ),
    Target(
        "raw POST",
        "raw_request",
        "raw_post",
        lambda: api_event("raw_request/api_gateway.json", body=_raw_payload("POST")),
        lambda: _raw_payload("POST"),
    ),
]
TARGET = {target.name: target for target in TARGETS}


def invoke(function: str, event: Any, context: LambdaContext) -> Any:
    return load_handler(function).lambda_handler(event, context)


@dataclass(frozen=True)
class Outcome:
    """What the caller saw: the HTTP answer, or the answer object / exception of a direct invoke."""

    status: int  # HTTP status; direct invoke: the status the error maps to, 200 on success
    error_type: str | None  # class name of the raised error (direct), from the code (API)
    code: str | None
    body: Any
    headers: dict[str, str]
    seconds: float


ERROR_TYPES = {
    "TWILIO_UNAVAILABLE": "TwilioUnavailable",
    "SEND_OUTCOME_UNKNOWN": "SendOutcomeUnknown",
    "RATE_LIMITED": "TwilioRateLimited",
    "CONFIGURATION_ERROR": "ConfigurationError",
    "INTERNAL_ERROR": "InternalError",
    "IDEMPOTENCY_IN_PROGRESS": "IdempotencyInProgress",
    "AWS_SERVICE_UNAVAILABLE": "AwsServiceUnavailable",
    "VALIDATION_ERROR": "ValidationError",
}


def run(target: Target, source: Source, remaining_ms: int) -> Outcome:
    context = LambdaContext(remaining_ms=remaining_ms)
    event = target.api() if source == "api" else target.direct()
    started = time.monotonic()
    if source == "api":
        response = invoke(target.function, event, context)
        seconds = time.monotonic() - started
        body = json.loads(response["body"]) if response["body"] and response["body"][0] in "{[" else response["body"]
        code = body["error"]["code"] if isinstance(body, dict) and "error" in body else None
        return Outcome(response["statusCode"], ERROR_TYPES.get(code or ""), code, body, response["headers"], seconds)
    try:
        result = invoke(target.function, event, context)
    except TwilioMessagingError as error:
        seconds = time.monotonic() - started
        detail = json.loads(str(error))  # Lambda's errorMessage: a JSON object
        return Outcome(error.status, type(error).__name__, detail["code"], detail, {}, seconds)
    return Outcome(200, None, None, result, {}, time.monotonic() - started)


# --- the fault table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """The answer docs/api.md describes ("Errors", "Idempotency and retries").

    `error` None is a success: `status` is then the HTTP status over API Gateway (raw requests:
    `twilio_status` is Twilio's status inside the 200 envelope). For a batch, `error` is the code
    of every failed recipient (`failed` of them) and the answer is 200. `requests` is how many
    requests reached the fake: exact, or an inclusive range.
    """

    error: str | None
    status: int
    requests: int | tuple[int, int]
    attempts: int | None = None  # calls tried, reached or not (connection refused)
    twilio_status: int | None = None
    retry_after: str | None = None
    failed: int = 0
    xfail: str | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    faults: tuple[Fault, ...]
    then: Fault | None
    expect: dict[str, Expect]  # by target name
    remaining_ms: int = 3000
    refused: bool = False


SOU, TU, RL = "SendOutcomeUnknown", "TwilioUnavailable", "TwilioRateLimited"
SHORT_MS = 800  # remaining time for the cases that wait for a timeout: keeps the suite fast
GET_TRIES = 1 + IDEMPOTENT_RETRIES
RAW_TRIES = 1 + RAW_RETRIES
RATE_TRIES = 1 + RATE_LIMIT_RETRIES
PACED_RATE_TRIES = 1 + PACED_RETRY.max_rate_limit_retries

# Unexpected 2xx bodies: what a caller should get. A send that Twilio answered 2xx was probably
# accepted, so anything but a Message is SendOutcomeUnknown (retry only with the same
# idempotency key); a read is TwilioUnavailable; DELETE ignores the body; raw passes it through.


def _network_failure(timed_out: bool, reached: bool) -> dict[str, Expect]:
    """Reset, truncated or timed out (`reached`), or refused: nothing was answered."""
    status = 504 if timed_out else 502
    if not reached:
        return {
            "send": Expect(TU, 502, 0, attempts=GET_TRIES),  # never connected: safe to repeat, even a send
            "send batch": Expect("TWILIO_UNAVAILABLE", 200, 0, attempts=2 * GET_TRIES, failed=2),
            "get": Expect(TU, 502, 0, attempts=GET_TRIES),
            "delete": Expect(TU, 502, 0, attempts=GET_TRIES),
            "list": Expect(TU, 502, 0, attempts=GET_TRIES),
            "raw GET": Expect(TU, 502, 0, attempts=RAW_TRIES),
            "raw POST": Expect(TU, 502, 0, attempts=1),
        }
    # A timed-out call leaves no time for another in the small budget these cases run with.
    get_tries: int | tuple[int, int] = (1, GET_TRIES) if timed_out else GET_TRIES
    raw_tries: int | tuple[int, int] = (1, RAW_TRIES) if timed_out else RAW_TRIES
    return {
        "send": Expect(SOU, status, 1),
        "send batch": Expect("SEND_OUTCOME_UNKNOWN", 200, 2, failed=2),
        "get": Expect(TU, status, get_tries),
        "delete": Expect(TU, status, get_tries),
        "list": Expect(TU, status, get_tries),
        "raw GET": Expect(TU, status, raw_tries),
        "raw POST": Expect(SOU, status, 1),
    }


def _server_error(status: int) -> dict[str, Expect]:
    return {
        "send": Expect(SOU, 502, 1),
        "send batch": Expect("SEND_OUTCOME_UNKNOWN", 200, 2, failed=2),
        "get": Expect(TU, 502, GET_TRIES),
        "delete": Expect(TU, 502, GET_TRIES),
        "list": Expect(TU, 502, GET_TRIES),
        "raw GET": Expect(None, 200, RAW_TRIES, twilio_status=status),
        "raw POST": Expect(None, 200, 1, twilio_status=status),
    }


def _bad_success_body(*, object_shape: bool) -> dict[str, Expect]:
    return {
        "send": Expect(SOU, 502, 1),
        "send batch": Expect("SEND_OUTCOME_UNKNOWN", 200, 2, failed=2),
        "get": Expect(TU, 502, 1),
        "delete": Expect(None, 204, 1),
        "list": Expect(TU, 502, 1),
        "raw GET": Expect(None, 200, 1, twilio_status=200),
        "raw POST": Expect(None, 200, 1, twilio_status=200),
    }


RATE_LIMITED = twilio_error(429, 20429, "Too Many Requests")

SCENARIOS = [
    Scenario("connection refused", (), None, _network_failure(timed_out=False, reached=False), refused=True),
    Scenario("reset before the answer", (), reset(), _network_failure(timed_out=False, reached=True)),
    Scenario("reset in the middle of the body", (), reset_mid_body(), _network_failure(timed_out=False, reached=True)),
    Scenario("body shorter than Content-Length", (), truncated(), _network_failure(timed_out=False, reached=True)),
    Scenario("no answer before the timeout", (), hang(), _network_failure(timed_out=True, reached=True), SHORT_MS),
    Scenario("body stalled after the headers", (), stall(), _network_failure(timed_out=True, reached=True), SHORT_MS),
    Scenario(
        "answer dribbled past the deadline", (), trickle(), _network_failure(timed_out=True, reached=True), SHORT_MS
    ),
    Scenario(
        "429 without Retry-After",
        (),
        answer(429, RATE_LIMITED),
        {
            "send": Expect(RL, 429, RATE_TRIES, retry_after="1"),  # a 429 was never processed: safe to repeat
            # A batch's paced sends may wait out more 429s (messaging.PACED_RETRY), one at a time.
            "send batch": Expect("RATE_LIMITED", 200, 2 * PACED_RATE_TRIES, failed=2),
            "get": Expect(RL, 429, RATE_TRIES, retry_after="1"),
            "delete": Expect(RL, 429, RATE_TRIES, retry_after="1"),
            "list": Expect(RL, 429, RATE_TRIES, retry_after="1"),
            "raw GET": Expect(None, 200, RATE_TRIES, twilio_status=429),
            "raw POST": Expect(None, 200, RATE_TRIES, twilio_status=429),
        },
    ),
    Scenario(
        "429 with a Retry-After beyond the remaining time",
        (),
        answer(429, RATE_LIMITED, (("Retry-After", "120"),)),
        {
            "send": Expect(RL, 429, 1, retry_after="120"),
            "send batch": Expect("RATE_LIMITED", 200, 2, failed=2),
            "get": Expect(RL, 429, 1, retry_after="120"),
            "delete": Expect(RL, 429, 1, retry_after="120"),
            "list": Expect(RL, 429, 1, retry_after="120"),
            "raw GET": Expect(None, 200, 1, twilio_status=429, retry_after="120"),
            "raw POST": Expect(None, 200, 1, twilio_status=429, retry_after="120"),
        },
    ),
    Scenario(
        "429, then an answer",
        (answer(429, RATE_LIMITED),),
        ok(),
        {
            "send": Expect(None, 201, 2),
            "send batch": Expect(None, 200, 3),  # one recipient's POST was rate limited and repeated
            "get": Expect(None, 200, 2),
            "delete": Expect(None, 204, 2),
            "list": Expect(None, 200, 2),
            "raw GET": Expect(None, 200, 2, twilio_status=200),
            "raw POST": Expect(None, 200, 2, twilio_status=201),
        },
    ),
    Scenario("500 with Twilio's error body", (), answer(500, twilio_error(500, 20500, "Internal")), _server_error(500)),
    Scenario(
        "502 with a proxy's HTML page",
        (),
        answer(502, "<html><body>Bad Gateway</body></html>", (("Content-Type", "text/html"),)),
        _server_error(502),
    ),
    Scenario("503 without a body", (), answer(503), _server_error(503)),
    Scenario(
        "503, then an answer",
        (answer(503),),
        ok(),
        {
            "send": Expect(SOU, 502, 1),
            "send batch": Expect("SEND_OUTCOME_UNKNOWN", 200, 2, failed=1),
            "get": Expect(None, 200, 2),
            "delete": Expect(None, 204, 2),
            "list": Expect(None, 200, 2),
            "raw GET": Expect(None, 200, 2, twilio_status=200),
            "raw POST": Expect(None, 200, 1, twilio_status=503),
        },
    ),
    Scenario(
        "2xx with JSON cut short",
        (),
        answer(200, '{"sid": "SM0123456789abcdef', (("Content-Type", "application/json"),)),
        _bad_success_body(object_shape=False),
    ),
    Scenario(
        "2xx with an HTML body",
        (),
        answer(200, "<html><body>Welcome</body></html>", (("Content-Type", "text/html"),)),
        _bad_success_body(object_shape=False),
    ),
    Scenario("2xx with a JSON array", (), answer(200, [twilio_message()]), _bad_success_body(object_shape=False)),
    Scenario(
        "2xx with another JSON object", (), answer(200, {"unexpected": True}), _bad_success_body(object_shape=True)
    ),
]

CASES = [
    pytest.param(
        scenario,
        TARGET[name],
        source,
        id=f"{scenario.name} | {name} | {source}",
        marks=[pytest.mark.xfail(strict=True, reason=expect.xfail)] if expect.xfail else [],
    )
    for scenario in SCENARIOS
    for name, expect in scenario.expect.items()
    for source in ("api", "direct")
]


def check(outcome: Outcome, expect: Expect, target: Target, source: Source) -> None:
    """The answer of one case against its expectation."""
    if target.kind == "batch":
        assert outcome.status == 200 and outcome.error_type is None, outcome.body
        failed = outcome.body["failed"]
        assert len(failed) == expect.failed, outcome.body
        assert {f["error"]["code"] for f in failed} <= ({expect.error} if expect.error else set())
        assert len(outcome.body["messages"]) == len(RECIPIENTS) - expect.failed
        assert outcome.body["failedNumbers"] == ",".join(f["to"] for f in failed)
        return
    if expect.error is None:
        assert outcome.error_type is None, outcome.body
        if source == "api":
            assert outcome.status == expect.status, outcome.body
        if target.kind.startswith("raw"):
            assert outcome.body["statusCode"] == expect.twilio_status, outcome.body
            if expect.retry_after:
                assert outcome.body["headers"]["retry-after"] == expect.retry_after
        elif target.kind == "send":
            assert outcome.body["sid"] == sid_for(RECIPIENTS[0]), outcome.body
        elif target.name == "get":
            assert outcome.body["sid"] == MESSAGE_SID, outcome.body
        elif target.name == "list":
            assert [m["sid"] for m in outcome.body["messages"]] == [MESSAGE_SID], outcome.body
        return
    assert outcome.error_type == expect.error, outcome.body
    assert outcome.status == expect.status, outcome.body
    if source == "api":
        error = outcome.body["error"]
        assert error["message"] and "Traceback" not in error["message"]
        if expect.retry_after:
            assert outcome.headers["Retry-After"] == expect.retry_after
        else:
            assert "Retry-After" not in outcome.headers


@pytest.mark.parametrize(("scenario", "target", "source"), CASES)
def test_fault(
    scenario: Scenario,
    target: Target,
    source: Source,
    fake: FaultyTwilio,
    attempts: Attempts,
    quick_backoff: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expect = scenario.expect[target.name]
    if scenario.refused:
        monkeypatch.setenv("TWILIO_API_BASE_URL", closed_port_url())
    else:
        fake.behave(*scenario.faults, then=scenario.then)

    outcome = run(target, source, scenario.remaining_ms)

    check(outcome, expect, target, source)
    # Sends: the POSTs. A send whose outcome is unknown then looks for the message on Twilio
    # (GET Messages.json?To=…): safe to repeat, and bounded like every read.
    sends = target.kind in ("send", "batch")
    received = fake.count("POST") if sends else len(fake.requests)
    if sends:
        lookups_allowed = GET_TRIES * (len(RECIPIENTS) if target.kind == "batch" else 1)
        assert fake.count("GET") <= lookups_allowed, [(r.method, r.target) for r in fake.requests]
    if isinstance(expect.requests, tuple):
        low, high = expect.requests
        assert low <= received <= high, f"{received} requests reached Twilio"
    else:
        assert received == expect.requests, f"{received} requests reached Twilio, not {expect.requests}"
    if expect.attempts is not None:
        assert len(attempts) == expect.attempts, attempts.calls
    if target.kind in ("send", "batch", "raw_post") and not scenario.name.startswith("429"):
        # No send is ever repeated once Twilio may have taken it: one POST per recipient at most.
        posted_to = [dict(r.form())["To"] for r in fake.requests if r.method == "POST"]
        assert len(posted_to) == len(set(posted_to)), posted_to
    assert outcome.seconds < scenario.remaining_ms / 1000, f"answered after {outcome.seconds:.2f} s"


# --- real backoff and Retry-After, end to end -------------------------------------------------


def test_real_backoff_repeats_a_get_three_times_within_the_remaining_time(fake: FaultyTwilio) -> None:
    """Without the suite's quick backoff: exponential waits with full jitter under 0.25, 0.5 and
    1 s, then TwilioUnavailable, all within the 3 s the context reports."""
    fake.behave(then=answer(503, twilio_error(503, 20503, "Service Unavailable")))
    outcome = run(TARGET["get"], "direct", 3000)
    assert outcome.error_type == "TwilioUnavailable" and outcome.status == 502
    times = [r.at for r in fake.requests]
    assert len(times) == GET_TRIES
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap <= ceiling + 0.1 for gap, ceiling in zip(gaps, (0.25, 0.5, 1.0), strict=True)), gaps
    assert outcome.seconds < 3.0


def test_retry_after_is_waited_out_as_long_as_the_remaining_time_allows(fake: FaultyTwilio) -> None:
    """Retry-After: 1 with 1.5 s of budget: one wait of a second fits, a second would not; the
    caller then gets 429 with Twilio's Retry-After, before its own timeout."""
    fake.behave(then=answer(429, RATE_LIMITED, (("Retry-After", "1"),)))
    outcome = run(TARGET["send"], "api", 2000)
    assert outcome.status == 429 and outcome.code == "RATE_LIMITED"
    assert outcome.headers["Retry-After"] == "1"
    first, second = (r.at for r in fake.requests)
    assert second - first >= 1.0
    assert outcome.seconds < 2.0


def test_a_get_that_timed_out_is_repeated_and_answered(fake: FaultyTwilio) -> None:
    fake.behave(hang(), then=ok())
    outcome = run(TARGET["get"], "api", 2000)  # 1.5 s: half for the first call, half for the repeat
    assert outcome.status == 200 and outcome.body["sid"] == MESSAGE_SID
    assert len(fake.requests) == 2
    assert outcome.seconds < 2.0


def test_an_answer_with_its_headers_dribbled_in_is_cut_off_at_the_deadline(fake: FaultyTwilio) -> None:
    """Slowloris in reverse: every read of the status line and headers gets a byte before the
    read timeout, so only the deadline can end the call."""
    fake.behave(then=Fault("trickle", 201, headers=(("X-Dribble", "head"),)))
    outcome = run(TARGET["send"], "direct", SHORT_MS)
    assert outcome.error_type == "SendOutcomeUnknown" and outcome.status == 504
    assert fake.count("POST") == 1
    assert outcome.seconds < SHORT_MS / 1000


# --- Secrets Manager --------------------------------------------------------------------------


def _secret_answer(request: Received) -> Reply:
    assert request.headers.get("x-amz-target") == "secretsmanager.GetSecretValue"
    secret = {"ARN": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{SECRET_ID}", "Name": SECRET_ID}
    return Reply(200, json.dumps({**secret, "SecretString": json.dumps(credentials())}).encode())


def aws_error(status: int, error_type: str) -> Fault:
    return answer(status, {"__type": error_type, "message": "fault suite"}, (("x-amzn-ErrorType", error_type),))


SECRET_FAULTS = {
    "throttled": aws_error(400, "ThrottlingException"),
    "access denied": aws_error(400, "AccessDeniedException"),
    "internal error": aws_error(500, "InternalServiceError"),
    "connection reset": reset(),
    "no answer": hang(),
    "connection refused": None,
}


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


def _webhook_event(sid: str | None = None, base: str = "webhook/status_callback.json") -> dict[str, Any]:
    """The signed sample webhook about message `sid` (a new one by default): a delivery that is
    no duplicate of another test's."""
    return signed_webhook_event(base, message_sid=sid or new_sid())


def _claim_id(sid: str, base: str = "webhook/status_callback.json") -> str:
    """The state table id of a webhook's de-duplication claim: what Twilio signed identifies it."""
    return f"webhook#message:{sid}:delivered" if "status" in base else f"webhook#message:{sid}"


WEBHOOK = Target("webhook", "webhook", "read", _webhook_event, lambda: None)
SECRET_CASES = [
    pytest.param(fault, target, source, id=f"{fault} | {target.name} | {source}")
    for fault in SECRET_FAULTS
    for target, sources in (
        (TARGET["send"], ("api", "direct")),
        (TARGET["send batch"], ("api", "direct")),
        (TARGET["get"], ("api", "direct")),
        (TARGET["list"], ("api", "direct")),
        (TARGET["raw POST"], ("api", "direct")),
        (WEBHOOK, ("api",)),
    )
    for source in sources
]


@pytest.fixture
def secrets_manager(
    fake: FaultyTwilio, monkeypatch: pytest.MonkeyPatch, quick_aws_backoff: None
) -> Iterator[FaultyTwilio]:
    """A loopback Secrets Manager (AWS_ENDPOINT_URL_SECRETS_MANAGER) that can fail on cue."""
    endpoint = FaultyTwilio(responder=_secret_answer)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint.url)
    yield endpoint
    endpoint.stop()


@pytest.mark.parametrize(("fault", "target", "source"), SECRET_CASES)
def test_secrets_manager_failure_is_a_configuration_error_and_the_next_call_recovers(
    fault: str,
    target: Target,
    source: Source,
    fake: FaultyTwilio,
    secrets_manager: FaultyTwilio,
    cloud: Cloud,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    behaviour = SECRET_FAULTS[fault]
    if behaviour is None:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", closed_port_url())
    else:
        secrets_manager.behave(then=behaviour)
    remaining_ms = SHORT_MS if fault == "no answer" else 3000

    failed = run(target, source, remaining_ms)

    # A batch too fails once as a whole, not recipient by recipient.
    assert failed.error_type == "ConfigurationError" and failed.status == 500, failed.body
    assert failed.code == "CONFIGURATION_ERROR"
    assert "secret" in json.dumps(failed.body)
    assert fake.requests == []  # nothing reaches Twilio without credentials
    assert len(secrets_manager.requests) <= 3  # a bounded number of reads
    assert failed.seconds < remaining_ms / 1000
    assert cloud.published() == []

    # The failure was not cached: the next invocation reads the secret and goes through.
    if behaviour is None:  # another endpoint: clients are built once per execution environment
        from twilio_messaging.execution_environment import environment

        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_manager.url)
        environment.reset()
    secrets_manager.behave(then=ok())
    recovered = run(target, source, 3000)
    assert recovered.error_type is None, recovered.body
    if target is WEBHOOK:
        assert recovered.status == 200 and len(cloud.published()) == 1
    else:
        assert len(fake.requests) == (len(RECIPIENTS) if target.kind == "batch" else 1)


def test_a_throttled_secret_read_is_repeated_within_the_call(fake: FaultyTwilio, secrets_manager: FaultyTwilio) -> None:
    """One ThrottlingException is what the AWS SDKs retry without telling anyone: so does the
    function, within its remaining time, rather than fail the send for good (ConfigurationError
    is never retried by a Step Functions Catch on it)."""
    secrets_manager.behave(aws_error(400, "ThrottlingException"), then=ok())
    outcome = run(TARGET["send"], "direct", 3000)
    assert outcome.error_type is None, outcome.body
    assert len(secrets_manager.requests) == 2 and fake.count("POST") == 1


# --- the webhook: EventBridge failures and concurrent deliveries ------------------------------


def call_webhook(event: dict[str, Any], remaining_ms: int = 3000) -> dict[str, Any]:
    answer: dict[str, Any] = invoke("webhook", copy.deepcopy(event), LambdaContext(remaining_ms=remaining_ms))
    return answer


@pytest.fixture
def webhook_env(cloud: Cloud, monkeypatch: pytest.MonkeyPatch, quick_aws_backoff: None) -> Cloud:
    cloud.published()
    monkeypatch.setenv("STATE_TABLE_NAME", TABLE)
    monkeypatch.setenv("EVENT_BUS_NAME", "default")
    return cloud


@pytest.mark.parametrize("base", ["webhook/status_callback.json", "webhook/inbound_message.json"])
@pytest.mark.parametrize("failure", ["partial failure", "throttled on every attempt"])
def test_put_events_failure_is_5xx_and_twilios_retry_publishes_the_event_once(
    webhook_env: Cloud, monkeypatch: pytest.MonkeyPatch, base: str, failure: str
) -> None:
    from twilio_messaging.aws_json import AwsCallFailed, AwsJsonClient

    real_call = AwsJsonClient.call
    failing = {"on": True}
    put_events: list[dict[str, Any]] = []

    def call(self: AwsJsonClient, operation: str, payload: dict[str, Any], timeout: Any = None) -> Any:
        if operation == "PutEvents":
            put_events.append(payload)
            if failing["on"]:
                if failure == "partial failure":  # 200, but the one entry was not taken
                    entry = {"ErrorCode": "InternalFailure", "ErrorMessage": "fault suite"}
                    return {"FailedEntryCount": 1, "Entries": [entry]}
                raise AwsCallFailed("ThrottlingException", 400)
        return real_call(self, operation, payload, timeout)

    monkeypatch.setattr(AwsJsonClient, "call", call)
    sid = new_sid()
    event = _webhook_event(sid, base)

    started = time.monotonic()
    first = call_webhook(event)
    assert time.monotonic() - started < 3.0
    assert first["statusCode"] == 503, first["body"]
    assert json.loads(first["body"])["error"]["code"] == "AWS_SERVICE_UNAVAILABLE"
    assert first["headers"]["Retry-After"] == "1"
    assert webhook_env.published() == []
    assert webhook_env.record(_claim_id(sid, base)) is None  # the claim was released
    assert len(put_events) == (1 if failure == "partial failure" else 3)

    failing["on"] = False
    retried = call_webhook(event)  # Twilio's retry: the same signed body
    assert retried["statusCode"] == 200 and retried["headers"]["Content-Type"] == "text/xml"
    [published] = webhook_env.published()
    assert json.loads(put_events[-1]["Entries"][0]["Detail"]) == published["detail"]
    assert put_events[0] == put_events[-1]  # the retry published what the first delivery tried to

    assert call_webhook(event)["statusCode"] == 200  # a further retry is a duplicate
    assert webhook_env.published() == []
    assert len(put_events) == (2 if failure == "partial failure" else 4)


def test_eventbridge_that_never_answers_leaves_time_to_release_the_claim(
    webhook_env: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EventBridge hangs: the webhook answers 5xx within its remaining time, and the claim it
    took is released with time to spare, so that Twilio's retry is processed, not held off."""
    from twilio_messaging.aws_json import AwsJsonClient
    from twilio_messaging.execution_environment import environment

    endpoint = FaultyTwilio()
    endpoint.behave(then=hang())
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", endpoint.url)
    real_call = AwsJsonClient.call
    timeouts: dict[str, Any] = {}

    def call(self: AwsJsonClient, operation: str, payload: dict[str, Any], timeout: Any = None) -> Any:
        timeouts[operation] = timeout
        return real_call(self, operation, payload, timeout)

    monkeypatch.setattr(AwsJsonClient, "call", call)
    sid = new_sid()
    try:
        started = time.monotonic()
        first = call_webhook(_webhook_event(sid), remaining_ms=1500)
        seconds = time.monotonic() - started
    finally:
        endpoint.stop()
    assert first["statusCode"] == 503, first["body"]
    assert seconds < 1.5
    assert webhook_env.record(_claim_id(sid)) is None
    # moto answers in-process whatever the timeout: check the release had time to be answered.
    connect, read = timeouts["DeleteItem"]
    assert min(connect, read) >= 0.1, timeouts["DeleteItem"]

    monkeypatch.delenv("AWS_ENDPOINT_URL_EVENTBRIDGE")
    environment.reset()  # a new execution environment: its clients read the changed endpoint
    assert call_webhook(_webhook_event(sid))["statusCode"] == 200
    assert len(webhook_env.published()) == 1


CONCURRENCY = 50


def _together(function: str, work: Callable[[], Any], count: int = CONCURRENCY) -> list[Any]:
    """`work()` in `count` threads released at once; their results, or the exceptions they raised.
    The handler of `function` is loaded first: loading a module is not for threads to race."""
    load_handler(function)
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work()
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_fifty_concurrent_deliveries_of_one_webhook_publish_one_event(webhook_env: Cloud) -> None:
    event = _webhook_event()
    answers = _together("webhook", lambda: call_webhook(event, remaining_ms=30_000))
    statuses = [a["statusCode"] if isinstance(a, dict) else repr(a) for a in answers]
    assert set(statuses) <= {200, 409}, statuses  # 409: the same delivery is in progress elsewhere
    assert statuses.count(200) >= 1
    assert len(webhook_env.published()) == 1
    for answer_ in answers:
        if answer_["statusCode"] == 409:
            assert json.loads(answer_["body"])["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS"
    # Twilio retries the 409s: each is now a duplicate, answered 200 and not published again.
    assert {call_webhook(event)["statusCode"] for _ in range(statuses.count(409) or 1)} == {200}
    assert webhook_env.published() == []


def test_fifty_concurrent_deliveries_while_eventbridge_fails_publish_once_on_retry(
    webhook_env: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delivery that holds the claim fails to publish: it answers 503 and releases the
    claim; the others answered 409 or 503; Twilio's retries then publish the event once."""
    from twilio_messaging.aws_json import AwsJsonClient

    real_call = AwsJsonClient.call
    failing = {"on": True}

    def call(self: AwsJsonClient, operation: str, payload: dict[str, Any], timeout: Any = None) -> Any:
        if operation == "PutEvents" and failing["on"]:
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"}]}
        return real_call(self, operation, payload, timeout)

    monkeypatch.setattr(AwsJsonClient, "call", call)
    event = _webhook_event()
    answers = _together("webhook", lambda: call_webhook(event, remaining_ms=30_000))
    statuses = {a["statusCode"] if isinstance(a, dict) else repr(a) for a in answers}
    assert statuses <= {503, 409} and 503 in statuses, statuses
    assert webhook_env.published() == []

    failing["on"] = False
    retries = _together("webhook", lambda: call_webhook(event, remaining_ms=30_000))
    assert {a["statusCode"] if isinstance(a, dict) else repr(a) for a in retries} <= {200, 409}
    assert call_webhook(event)["statusCode"] == 200
    assert len(webhook_env.published()) == 1


def test_fifty_concurrent_sends_with_one_idempotency_key_post_once(fake: FaultyTwilio) -> None:
    """The idempotency contract (docs/api.md, "Idempotency and retries"): concurrent duplicates make one call; each
    caller gets the first answer (201, the same sid) or 409 IDEMPOTENCY_IN_PROGRESS."""
    fake.behave(then=ok(delay=0.5))  # Twilio takes its time: every duplicate arrives meanwhile
    key = f"fault-suite-{uuid.uuid4()}"
    event = api_event(
        "send_message/api_gateway.json", body=_send_payload(RECIPIENTS[0]), headers={"Idempotency-Key": key}
    )

    def send() -> dict[str, Any]:
        answer: dict[str, Any] = invoke("send_message", copy.deepcopy(event), LambdaContext(remaining_ms=30_000))
        return answer

    answers = _together("send_message", send)
    assert fake.count("POST") == 1
    statuses = [a["statusCode"] if isinstance(a, dict) else repr(a) for a in answers]
    assert set(statuses) <= {201, 409}, statuses
    sids = {json.loads(a["body"])["sid"] for a in answers if a["statusCode"] == 201}
    assert len(sids) == 1, sids
    for answer_ in answers:
        if answer_["statusCode"] == 409:
            assert json.loads(answer_["body"])["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS"
            assert answer_["headers"]["Retry-After"]
    # Once the first send is done, a repeat gets its answer and sends nothing.
    repeat = send()
    assert repeat["statusCode"] == 201 and json.loads(repeat["body"])["sid"] in sids
    assert fake.count("POST") == 1
