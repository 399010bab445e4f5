"""Campaigns end to end in moto: POST /campaigns through the campaigns handler, the campaign state
machine (statemachines/campaign.asl.json) executed by moto, its Distributed Map over the batch
files in S3, each step served by its real handler (local/moto_hooks.py), and a loopback Twilio
that records every message it was asked to create."""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest

from local.moto_hooks import enable_execution, plug, wait_for_execution
from tests.support import (
    ACCOUNT_SID,
    ROOT,
    Bus,
    LambdaContext,
    api_event,
    load_handler,
    signed_webhook_event,
    twilio_message,
)

BUCKET = "twilio-messaging-campaigns-test"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
FUNCTIONS = {
    "CampaignPrepareFunction": "campaign_prepare",
    "CampaignSendBatchFunction": "campaign_send_batch",
    "CampaignReportFunction": "campaign_report",
}
TEMPLATE_ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"


@dataclass
class Twilio:
    """Twilio's Messages API: a new message per POST, each request kept; `answers` overrides the
    answer for a recipient (a status and a body), once per entry; `lost` recipients' messages are
    created but answered with a 502, once, and listed only from the second GET on."""

    server: Any
    received: list[dict[str, str]] = field(default_factory=list)
    answers: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)  # (status, body[, headers])
    in_flight: int = 0
    peak: int = 0
    latency: float = 0.0
    lost: set[str] = field(default_factory=set)
    lists: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: Any) -> Any:
        from werkzeug.wrappers import Response

        form = {k: v[-1] for k, v in parse_qs(request.get_data(as_text=True)).items()}
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            planned = self.answers.get(form["To"])
            answer = planned.pop(0) if planned else None
        try:
            time.sleep(self.latency)
            if answer is not None:
                status, body, *headers = answer
                return Response(
                    json.dumps(body), status, headers=headers[0] if headers else None, mimetype="application/json"
                )
            with self.lock:
                self.received.append(form)
                sid = f"SM{len(self.received):032x}"
            message = twilio_message(sid, form["To"], body=form.get("Body", ""))
            if form["To"] in self.lost:
                self.lost.discard(form["To"])
                return Response("Bad Gateway", status=502)  # taken, but the answer is lost
            return Response(json.dumps(message), status=201, content_type="application/json")
        finally:
            with self.lock:
                self.in_flight -= 1

    def recipients(self) -> list[str]:
        return [form["To"] for form in self.received]

    def list_messages(self, request: Any) -> Any:
        """GET Messages.json?To=: empty the first time (Twilio's list lags behind its sends)."""
        from werkzeug.wrappers import Response

        with self.lock:
            self.lists += 1
            listed = [] if self.lists == 1 else list(enumerate(self.received, 1))
        to = request.args.get("To")
        created = email.utils.formatdate(time.time(), usegmt=True)
        messages = [
            twilio_message(f"SM{n:032x}", form["To"], body=form.get("Body", ""), date_created=created)
            for n, form in listed
            if form["To"] == to
        ]
        return Response(json.dumps({"messages": messages}), status=200, content_type="application/json")


ACTIVE = {"invocations": 0, "last": 0.0}
ACTIVE_LOCK = threading.Lock()


def invoke(function_name_or_arn: str, event: Any) -> Any:
    context = LambdaContext(remaining_ms=900_000)
    with ACTIVE_LOCK:
        ACTIVE["invocations"] += 1
    try:
        return load_handler(FUNCTIONS[function_name_or_arn.rsplit(":", 1)[-1]]).lambda_handler(event, context)
    finally:
        with ACTIVE_LOCK:
            ACTIVE["invocations"] -= 1
            ACTIVE["last"] = time.monotonic()


def wait_until_quiet(timeout: float = 30.0) -> None:
    """moto runs executions on threads that outlive a stopped one: none may outlive its test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with ACTIVE_LOCK:
            if ACTIVE["invocations"] == 0 and time.monotonic() - ACTIVE["last"] > 1.0:
                return
        time.sleep(0.1)


@pytest.fixture
def twilio(monkeypatch: pytest.MonkeyPatch) -> Iterator[Twilio]:
    """Threaded, unlike the shared `httpserver`: batches' sends are concurrent, as Twilio sees them."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    fake = Twilio(server)
    server.expect_request(MESSAGES, method="POST").respond_with_handler(fake.handle)
    server.expect_request(MESSAGES, method="GET").respond_with_handler(fake.list_messages)
    monkeypatch.setenv("TWILIO_API_BASE_URL", server.url_for("/").rstrip("/"))
    yield fake
    server.clear()
    server.stop()


@dataclass
class Campaigns:
    sfn: Any
    s3: Any
    machine: str

    def post(self, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
        event = api_event("campaigns/api_gateway_start.json", body=body, headers=headers)
        answer: dict[str, Any] = load_handler("campaigns").lambda_handler(event, LambdaContext())
        return answer

    def call(self, method: str, campaign_id: str) -> dict[str, Any]:
        event = api_event(
            "campaigns/api_gateway_get.json",
            httpMethod=method,
            pathParameters={"id": campaign_id},
            path=f"/campaigns/{campaign_id}",
        )
        answer: dict[str, Any] = load_handler("campaigns").lambda_handler(event, LambdaContext())
        return answer

    def run(self, body: Any, timeout: float = 60) -> dict[str, Any]:
        """Start a campaign, wait for its execution's end, and answer its GET."""
        started = self.post(body)
        assert started["statusCode"] == 202, started
        campaign_id = json.loads(started["body"])["campaignId"]
        self.wait(campaign_id, timeout)
        return json.loads(self.call("GET", campaign_id)["body"])

    def wait(self, campaign_id: str, timeout: float = 60) -> dict[str, Any]:
        arn = self.machine.replace(":stateMachine:", ":execution:") + f":{campaign_id}"
        return wait_for_execution(self.sfn, arn, timeout)

    def report(self, campaign: dict[str, Any]) -> list[dict[str, Any]]:
        key = campaign["reportUri"].split("/", 3)[3]
        body = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        return [json.loads(line) for line in body.splitlines()]


@pytest.fixture
def campaigns(state_table: str, twilio: Twilio, monkeypatch: pytest.MonkeyPatch) -> Iterator[Campaigns]:
    import boto3
    from moto.core.config import default_user_config

    monkeypatch.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://abc123defg.execute-api.us-east-1.amazonaws.com/prod")
    monkeypatch.setenv("CAMPAIGN_BUCKET", BUCKET)
    enable_execution()
    plug(invoke)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    definition = (ROOT / "statemachines" / "campaign.asl.json").read_text()
    for logical_id in FUNCTIONS:
        definition = definition.replace("${" + logical_id + "Arn}", TEMPLATE_ARN.format(logical_id))
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    machine = sfn.create_state_machine(
        name="local-campaign", definition=definition, roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    monkeypatch.setenv("CAMPAIGN_STATE_MACHINE_ARN", machine)
    yield Campaigns(sfn, s3, machine)
    for execution in sfn.list_executions(stateMachineArn=machine)["executions"]:
        wait_for_execution(sfn, execution["executionArn"], timeout=30)
    wait_until_quiet()


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"+1555010{i:04d}" for i in range(start, start + count)]


def test_a_campaign_sends_each_recipient_its_own_message_once(campaigns: Campaigns, twilio: Twilio) -> None:
    bus = Bus()
    recipients = [{"to": to, "name": f"Ada {i}"} for i, to in enumerate(numbers(25))]
    started = campaigns.post({"recipients": recipients, "message": {"body": "Hi {{name}}, your order shipped."}})
    assert started["statusCode"] == 202
    answer = json.loads(started["body"])
    assert answer == {"campaignId": answer["campaignId"], "status": "RUNNING", "total": 25}
    assert started["headers"]["Location"].endswith(f"/prod/campaigns/{answer['campaignId']}")
    assert campaigns.wait(answer["campaignId"])["status"] == "SUCCEEDED"
    campaign = json.loads(campaigns.call("GET", answer["campaignId"])["body"])
    assert campaign["status"] == "SUCCEEDED", campaign
    assert (campaign["total"], campaign["sent"], campaign["failed"], campaign["skipped"]) == (25, 25, 0, 0)
    assert sorted(twilio.recipients()) == numbers(25)
    bodies = {form["To"]: form["Body"] for form in twilio.received}
    assert bodies["+15550100003"] == "Hi Ada 3, your order shipped."
    report = campaigns.report(campaign)
    assert sorted(line["to"] for line in report) == numbers(25) and all(line["sid"] for line in report)
    [completed] = [e for e in bus.published() if e["detail-type"] == "Campaign Completed"]
    assert completed["detail"] == campaign


def test_recipients_that_cannot_be_sent_are_skipped_with_their_reason(campaigns: Campaigns, twilio: Twilio) -> None:
    from twilio_messaging.deadline import Deadline
    from twilio_messaging.execution_environment import environment
    from twilio_messaging.suppressions import Suppression

    opted_out = "+15550100009"
    environment.suppressions().add(opted_out, Suppression("*", "opted out", time.time(), "api:test"), Deadline.after(5))
    recipients = [
        {"to": "+15550100001", "name": "Ada"},
        {"to": "+15550100001", "name": "Ada again"},
        {"to": "12345", "name": "Bob"},
        {"to": "+15550100002"},
        {"to": "+15550100003", "name": "x" * 1600},
        {"to": opted_out, "name": "Eve"},
        {"to": "+15550100004", "name": {"nested": True}},
    ]
    campaign = campaigns.run({"recipients": recipients, "message": {"body": "Hi {{name}}"}})
    assert campaign["status"] == "SUCCEEDED", campaign
    assert (campaign["total"], campaign["sent"], campaign["skipped"], campaign["failed"]) == (7, 1, 6, 0)
    assert twilio.recipients() == ["+15550100001"]
    skipped = {(line["to"], line["skipped"]) for line in campaigns.report(campaign) if "skipped" in line}
    assert skipped == {
        ("+15550100001", "duplicate"),
        ("12345", "invalid_recipient"),
        ("+15550100002", "missing_variable"),
        ("+15550100003", "body_too_long"),
        (opted_out, "suppressed"),
        ("+15550100004", "invalid_variable"),
    }


def executions(campaigns: Campaigns) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = campaigns.sfn.list_executions(stateMachineArn=campaigns.machine)["executions"]
    return found


def test_the_idempotency_key_never_starts_a_second_campaign(campaigns: Campaigns, twilio: Twilio) -> None:
    body = {"recipients": numbers(5), "message": {"body": "Doors open at 9."}}
    key = {"Idempotency-Key": "doors-2026-12-06"}
    first, again = campaigns.post(body, key), campaigns.post(body, key)
    assert (first["statusCode"], again["statusCode"]) == (202, 202)
    campaign_id = json.loads(first["body"])["campaignId"]
    assert json.loads(again["body"])["campaignId"] == campaign_id
    campaigns.wait(campaign_id)
    after = campaigns.post(body, key)  # after the end too: the same campaign, finished
    assert json.loads(after["body"])["status"] == "SUCCEEDED"
    assert len(executions(campaigns)) == 1 and sorted(twilio.recipients()) == numbers(5)
    other = campaigns.post({**body, "message": {"body": "Doors open at 10."}}, key)
    assert other["statusCode"] == 422 and json.loads(other["body"])["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_an_invalid_campaign_is_a_400_listing_every_problem_and_starts_nothing(
    campaigns: Campaigns, twilio: Twilio
) -> None:
    answer = campaigns.post(
        {
            "recipients": "+15550100001",
            "message": {"to": "+15550100001", "body": "Hi", "sendAt": "2026-12-24T09:00:00Z", "colour": "red"},
            "maxSendsPerSecond": 0,
            "dryRun": "yes",
            "priority": "high",
        }
    )
    assert answer["statusCode"] == 400
    fields = {d["field"] for d in json.loads(answer["body"])["error"]["details"]}
    assert fields == {
        "recipients",
        "message.to",
        "message.sendAt",
        "message.colour",
        "maxSendsPerSecond",
        "dryRun",
        "priority",
    }
    too_many = campaigns.post({"recipients": numbers(10_001), "message": {"body": "Hi"}})
    assert too_many["statusCode"] == 400 and "recipientsUri" in too_many["body"]
    outside = campaigns.post({"recipientsUri": "s3://someone-elses-bucket/list.csv", "message": {"body": "Hi"}})
    assert outside["statusCode"] == 400 and "campaign bucket" in outside["body"]
    assert executions(campaigns) == [] and twilio.received == []


@pytest.mark.parametrize(
    ("key", "content"),
    [
        ("uploads/customers.csv", "\ufeffto,firstName\n+15550100001,Ada\n+15550100002,Grace\n\n+15550100003,\n"),
        (
            "uploads/customers.jsonl",
            '{"to": "+15550100001", "firstName": "Ada"}\n{"to": "+15550100002", "firstName": "Grace"}\n'
            'not json\n{"to": "+15550100003"}\n',
        ),
    ],
    ids=["csv", "json-lines"],
)
def test_recipients_from_a_file_in_the_campaign_bucket(
    campaigns: Campaigns, twilio: Twilio, key: str, content: str
) -> None:
    campaigns.s3.put_object(Bucket=BUCKET, Key=key, Body=content.encode())
    body = {"recipientsUri": f"s3://{BUCKET}/{key}", "message": {"body": "Hi {{firstName}}"}}
    started = campaigns.post(body)
    assert started["statusCode"] == 202 and json.loads(started["body"])["total"] is None  # not counted yet
    campaign_id = json.loads(started["body"])["campaignId"]
    campaigns.wait(campaign_id)
    campaign = json.loads(campaigns.call("GET", campaign_id)["body"])
    rows = 4 if key.endswith(".jsonl") else 3
    assert (campaign["total"], campaign["sent"], campaign["skipped"]) == (rows, 2, rows - 2)
    assert {form["Body"] for form in twilio.received} == {"Hi Ada", "Hi Grace"}


def test_a_recipients_file_that_cannot_be_used_is_a_400(campaigns: Campaigns) -> None:
    campaigns.s3.put_object(Bucket=BUCKET, Key="uploads/bad.csv", Body=b"phone,name\n+15550100001,Ada\n")
    for key, problem in [("uploads/bad.csv", "no `to` column"), ("uploads/missing.csv", "no such file")]:
        answer = campaigns.post({"recipientsUri": f"s3://{BUCKET}/{key}", "message": {"body": "Hi"}})
        assert answer["statusCode"] == 400 and problem in answer["body"], answer["body"]
    assert executions(campaigns) == []


def test_a_dry_run_counts_segments_and_skips_and_sends_nothing(campaigns: Campaigns, twilio: Twilio) -> None:
    recipients = [
        {"to": "+15550100001", "name": "Ada"},
        {"to": "+15550100002", "name": "Zoë 😀"},
        {"to": "+15550100003", "name": "x" * 200},
        {"to": "bad"},
    ]
    answer = campaigns.post({"recipients": recipients, "message": {"body": "Hi {{name}}"}, "dryRun": True})
    assert answer["statusCode"] == 200
    result = json.loads(answer["body"])
    assert (result["dryRun"], result["complete"], result["total"], result["sendable"]) == (True, True, 4, 3)
    assert result["skippedReasons"] == {"invalid_recipient": 1}
    assert result["encodings"] == {"GSM-7": 2, "UCS-2": 1}
    assert result["segmentsPerMessage"] == {"1": 2, "2": 1} and result["segments"] == 4
    assert twilio.received == [] and executions(campaigns) == []


def test_a_stopped_campaign_starts_no_new_send_and_ends_aborted(campaigns: Campaigns, twilio: Twilio) -> None:
    twilio.latency = 0.2
    started = campaigns.post({"recipients": numbers(200), "message": {"body": "Sale!"}, "maxSendsPerSecond": 5})
    campaign_id = json.loads(started["body"])["campaignId"]
    deadline = time.monotonic() + 20
    while len(twilio.received) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    stopped = campaigns.call("DELETE", campaign_id)
    assert stopped["statusCode"] == 202 and json.loads(stopped["body"])["status"] == "ABORTED"
    time.sleep(6)  # a batch reads the stop within 5 seconds
    sent = len(twilio.received)
    time.sleep(2)
    assert len(twilio.received) == sent < 200
    assert json.loads(campaigns.call("GET", campaign_id)["body"])["status"] == "ABORTED"
    unknown = campaigns.call("GET", "0" * 32)
    assert unknown["statusCode"] == 404 and json.loads(unknown["body"])["error"]["code"] == "NOT_FOUND"


def test_a_batch_that_dies_after_half_its_sends_is_retried_and_sends_nobody_twice(
    campaigns: Campaigns, twilio: Twilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    import twilio_messaging.campaign_steps as steps

    real, sends, lock = steps.send_to_recipient, [0], threading.Lock()

    def dies_after_five(*args: Any, **kwargs: Any) -> Any:
        message = real(*args, **kwargs)
        with lock:
            sends[0] += 1
            if sends[0] == 5:  # sent, recorded as sent, but the batch never writes its results
                raise RuntimeError("the batch's Lambda died")
        return message

    monkeypatch.setattr(steps, "send_to_recipient", dies_after_five)
    monkeypatch.setenv("TWILIO_CONCURRENCY_LIMIT", "2")
    campaign = campaigns.run({"recipients": numbers(10), "message": {"body": "Once only"}})
    assert campaign["status"] == "SUCCEEDED", campaign
    assert sorted(twilio.recipients()) == numbers(10)  # each once, although a batch ran twice
    assert (campaign["sent"], campaign["failed"]) == (10, 0)


def test_a_send_whose_answer_was_lost_is_looked_up_in_the_next_round_not_sent_again(
    campaigns: Campaigns, twilio: Twilio
) -> None:
    twilio.lost.add("+15550100002")  # created, answered 502, and not listed by the first lookup
    campaign = campaigns.run({"recipients": numbers(3), "message": {"body": "Once only"}}, timeout=90)
    assert campaign["status"] == "SUCCEEDED", campaign
    assert sorted(twilio.recipients()) == numbers(3)  # one POST each: the second round looked first
    assert twilio.lists == 2
    assert (campaign["sent"], campaign["failed"]) == (3, 0)
    line = next(line for line in campaigns.report(campaign) if line["to"] == "+15550100002")
    assert line["sid"] == f"SM{twilio.recipients().index('+15550100002') + 1:032x}"


def test_a_throttled_task_is_retried_by_the_state_machine(
    campaigns: Campaigns, twilio: Twilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    import local.moto_hooks as hooks

    throttled = type("Lambda.TooManyRequestsException", (Exception,), {})
    calls = {"throttled": 0}

    def throttles_first_batch(name: str, event: Any) -> Any:
        if name.endswith("CampaignSendBatchFunction") and calls["throttled"] == 0:
            calls["throttled"] += 1
            raise throttled("Rate exceeded")
        return invoke(name, event)

    monkeypatch.setattr(retrier_decl, "time", type("NoSleep", (), {"sleep": staticmethod(lambda s: None)}))
    hooks.plug(throttles_first_batch)
    campaign = campaigns.run({"recipients": numbers(4), "message": {"body": "Hi"}})
    assert calls["throttled"] == 1 and campaign["status"] == "SUCCEEDED", campaign
    assert sorted(twilio.recipients()) == numbers(4)


def test_twilios_429s_slow_a_campaign_down_instead_of_failing_recipients(campaigns: Campaigns, twilio: Twilio) -> None:
    throttled = (429, {"code": 20429, "message": "Too Many Requests", "status": 429}, {"Retry-After": "0"})
    twilio.answers["+15550100001"] = [throttled] * 12  # more than one send's own retries
    campaign = campaigns.run({"recipients": numbers(3), "message": {"body": "Hi"}}, timeout=90)
    assert campaign["status"] == "SUCCEEDED", campaign
    assert (campaign["sent"], campaign["failed"]) == (3, 0)
    assert sorted(twilio.recipients()) == numbers(3)
    assert twilio.answers["+15550100001"] == []  # all 12 refused: a second invocation sent it


def test_delivered_and_undelivered_follow_the_status_callbacks(
    campaigns: Campaigns, twilio: Twilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = campaigns.run({"recipients": numbers(3), "message": {"body": "Hi"}})
    sids = [line["sid"] for line in campaigns.report(campaign)]
    webhook = load_handler("webhook")
    for sid, status, code in [(sids[0], "delivered", None), (sids[1], "undelivered", "30003")]:
        event = signed_webhook_event(message_sid=sid, status=status, error_code=code)
        assert webhook.lambda_handler(event, LambdaContext())["statusCode"] == 200
    again = signed_webhook_event(message_sid=sids[0], status="read")  # after delivered: not counted again
    assert webhook.lambda_handler(again, LambdaContext())["statusCode"] == 200
    campaign = json.loads(campaigns.call("GET", campaign["campaignId"])["body"])
    assert (campaign["delivered"], campaign["undelivered"]) == (1, 1)


def test_sends_in_flight_never_exceed_the_accounts_limit(
    campaigns: Campaigns, twilio: Twilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_CONCURRENCY_LIMIT", "4")
    twilio.latency = 0.05
    campaign = campaigns.run({"recipients": numbers(60), "message": {"body": "Hi"}})
    assert campaign["sent"] == 60 and 1 < twilio.peak <= 4


def test_max_sends_per_second_holds_over_every_10_second_window(campaigns: Campaigns, twilio: Twilio) -> None:
    starts: list[float] = []
    handle = twilio.handle

    def timed(request: Any) -> Any:
        starts.append(time.monotonic())
        return handle(request)

    twilio.handle = timed  # type: ignore[method-assign]
    twilio.server.clear()
    twilio.server.expect_request(MESSAGES, method="POST").respond_with_handler(timed)
    campaign = campaigns.run({"recipients": numbers(26), "message": {"body": "Hi"}, "maxSendsPerSecond": 2}, 90)
    assert campaign["sent"] == 26
    assert max(sum(1 for t in starts if s <= t < s + 10) for s in starts) <= 20
    assert starts[-1] - starts[0] >= 10  # 26 sends at 2 a second: more than one window


def test_the_sample_direct_events_are_what_the_functions_take(campaigns: Campaigns, twilio: Twilio) -> None:
    """events/campaigns/direct_*.json run through the handler; the steps' samples have the
    fields the state machine gives each step."""
    from tests.support import EVENTS

    start = json.loads((EVENTS / "campaigns/direct_start.json").read_text())
    key = start["recipientsUri"].split("/", 3)[3]
    campaigns.s3.put_object(Bucket=BUCKET, Key=key, Body=b"to,firstName\n+15550100001,Ada\n+15550100002,Grace\n")
    start["recipientsUri"] = f"s3://{BUCKET}/{key}"
    started = load_handler("campaigns").lambda_handler(start, LambdaContext())
    history = campaigns.wait(started["campaignId"])
    get = json.loads((EVENTS / "campaigns/direct_get.json").read_text())
    campaign = load_handler("campaigns").lambda_handler({**get, "campaignId": started["campaignId"]}, LambdaContext())
    assert (campaign["status"], campaign["sent"]) == ("SUCCEEDED", 2), campaign
    assert sorted(twilio.recipients()) == ["+15550100001", "+15550100002"]

    arn = campaigns.machine.replace(":stateMachine:", ":execution:") + f":{started['campaignId']}"
    given: dict[str, set[str]] = {}
    for event in campaigns.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]:
        scheduled = event.get("lambdaFunctionScheduledEventDetails") or event.get("taskScheduledEventDetails")
        if scheduled and "parameters" in scheduled:
            parameters = json.loads(scheduled["parameters"])
            function = parameters["FunctionName"].rsplit(":", 1)[-1]
            given[FUNCTIONS[function]] = set(parameters["Payload"])
    assert history["status"] == "SUCCEEDED"
    for function in ("campaign_prepare", "campaign_report"):
        assert set(json.loads((EVENTS / f"{function}/direct.json").read_text())) == given[function]
