"""The Twilio simulator (local/twilio_simulator, docs/local-twilio.md), in process and on loopback:
validation against Twilio's description and Twilio's error shape, auth, state and paging, statuses
and signed callbacks (checked with Twilio's own SDK as the oracle), the outcomes table, limits,
admin endpoints, inbound messages and the command line. Time-scaled, every wait bounded."""

from __future__ import annotations

import email.utils
import itertools
import json
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
from twilio.request_validator import RequestValidator

from local.prism import SPEC
from local.twilio_simulator import RECIPIENT_OUTCOMES, Inbound, Simulator, SimulatorConfig
from local.twilio_simulator.__main__ import main as cli
from local.twilio_simulator.outcomes import outcomes_table
from local.twilio_simulator.segments import segment_count
from local.twilio_simulator.spec_validation import spec_validator
from tests.support import ROOT

pytestmark = pytest.mark.skipif(not SPEC.exists(), reason="Twilio's description is missing: make contract-deps")

FAST = 0.01  # time scale: every status within a few milliseconds
TIMEOUT = 5.0  # every wait and every request
FROM = "+15005550006"
TO = "+15558675310"
SERVICE = "MG" + "0" * 32
SID = re.compile(r"^(SM|MM)[0-9a-f]{32}$")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    params: list[tuple[str, str]]

    def param(self, name: str) -> str | None:
        return next((value for key, value in self.params if key == name), None)

    @property
    def status(self) -> str | None:
        return self.param("MessageStatus")


class Receiver:
    """A loopback webhook: records every POST, answers each with the next of `answers`, then 200."""

    def __init__(self, answers: Sequence[int] = (), body: str = "<Response/>") -> None:
        self.requests: list[Received] = []
        self._answers = deque(answers)
        self._condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                with receiver._condition:
                    status = receiver._answers.popleft() if receiver._answers else 200
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.requests.append(Received(self.path, headers, parse_qsl(data, keep_blank_values=True)))
                    receiver._condition.notify_all()
                payload = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/twilio"

    def wait_for(self, count: int, timeout: float = TIMEOUT) -> list[Received]:
        with self._condition:
            self._condition.wait_for(lambda: len(self.requests) >= count, timeout)
            assert len(self.requests) >= count, f"{len(self.requests)} webhook requests, expected {count}"
            return list(self.requests)

    def statuses(self, sid: str | None = None) -> list[str | None]:
        return [r.status for r in self.requests if sid is None or r.param("MessageSid") == sid]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Api:
    """Twilio's REST API on the simulator, with its credentials."""

    def __init__(self, simulator: Simulator, user: str | None = None, password: str | None = None) -> None:
        self.simulator = simulator
        self.account = simulator.config.account_sid
        self.auth = (user or self.account, password or simulator.config.auth_token)

    def path(self, resource: str = "Messages.json") -> str:
        return f"/2010-04-01/Accounts/{self.account}/{resource}"

    def send(self, **form: Any) -> requests.Response:
        data = {"To": TO, "From": FROM, "Body": "Hello", **form}
        return self.post("Messages.json", {k: v for k, v in data.items() if v is not None})

    def post(self, resource: str, data: Any, timeout: float = TIMEOUT) -> requests.Response:
        url = self.simulator.base_url + self.path(resource)
        return requests.post(url, data=data, auth=self.auth, timeout=timeout)

    def get(self, resource: str = "Messages.json", params: Any = None) -> requests.Response:
        return requests.get(
            self.simulator.base_url + self.path(resource), params=params, auth=self.auth, timeout=TIMEOUT
        )

    def get_uri(self, uri: str) -> requests.Response:
        return requests.get(self.simulator.base_url + uri, auth=self.auth, timeout=TIMEOUT)


@pytest.fixture
def start() -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def make(**changes: Any) -> Simulator:
        simulator = Simulator(SimulatorConfig(**{"time_scale": FAST, **changes}))
        simulator.start()
        started.append(simulator)
        return simulator

    yield make
    for simulator in started:
        simulator.stop()


@pytest.fixture
def simulator(start: Callable[..., Simulator]) -> Simulator:
    return start()


@pytest.fixture
def api(simulator: Simulator) -> Api:
    return Api(simulator)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    webhook = Receiver()
    yield webhook
    webhook.close()


def assert_twilio_error(answer: requests.Response, status: int, code: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["code"] == code and body["status"] == status and body["message"]
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    return body


def wait_until(condition: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"not true within {timeout} s")


def history(simulator: Simulator, sid: str) -> list[str]:
    message = simulator.message(sid)
    assert message is not None
    return [change["status"] for change in message["history"]]


def final_message(simulator: Simulator, sid: str, status: str) -> dict[str, Any]:
    message: dict[str, Any] = wait_until(lambda: (m := simulator.message(sid)) and m["status"] == status and m)
    return message


def check_signature(received: Received, token: str) -> None:
    """The oracle: Twilio's own SDK."""
    validator = RequestValidator(token)
    assert validator.validate(received_url(received), dict(received.params), received.headers["x-twilio-signature"])


def received_url(received: Received) -> str:
    host = received.headers["host"]
    return f"http://{host}{received.path}"


# Validation against Twilio's description, and Twilio's error shape


def test_a_valid_send_is_created_with_twilio_shape_and_headers(simulator: Simulator, api: Api) -> None:
    answer = api.send(Body="Hello")
    assert answer.status_code == 201, answer.text
    message = answer.json()
    assert SID.match(message["sid"]) and message["sid"].startswith("SM")
    assert message["status"] == "queued" and message["num_segments"] == "1" and message["num_media"] == "0"
    assert message["account_sid"] == api.account and message["from"] == FROM and message["to"] == TO
    assert message["uri"] == api.path(f"Messages/{message['sid']}.json")
    created = email.utils.parsedate_to_datetime(message["date_created"])
    assert abs((created - datetime.now(UTC)).total_seconds()) < 60
    assert message["date_created"].endswith(" +0000") and message["date_sent"] is None
    assert answer.headers["Twilio-Concurrent-Requests"] == "1"
    assert float(answer.headers["Twilio-Request-Duration"]) >= 0
    assert simulator.invalid_requests() == []


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"To": None}, 21604),  # Twilio: "A 'To' phone number is required"
        ({"Bogus": "1"}, 20001),  # not in the description (Twilio itself only warns)
        ({"ValidityPeriod": "abc"}, 21624),  # not an integer
        ({"ValidityPeriod": "36001"}, 21624),  # Twilio's range, 1 to 36000
        ({"MessagingServiceSid": "MG1"}, 20001),  # the description's pattern
        ({"SmartEncoded": "maybe"}, 20001),  # not a boolean
        ({"To": "5551234"}, 21211),
        ({"From": None}, 21603),
        ({"Body": None}, 21602),
        ({"Body": "x" * 1601}, 21617),
        ({"StatusCallback": "http://bad_host.example/x"}, 21609),
        ({"MediaUrl": ["https://a.example/1.png"] * 11}, 21623),
        ({"MediaUrl": "owl.png"}, 21620),
    ],
)
def test_an_invalid_send_gets_twilio_error_and_is_recorded(
    simulator: Simulator, api: Api, form: dict[str, Any], code: int
) -> None:
    answer = api.send(**form)
    assert_twilio_error(answer, 400, code)
    [record] = simulator.invalid_requests()
    assert record["code"] == code and record["method"] == "POST" and record["path"] == api.path()
    assert simulator.messages() == []


@pytest.mark.parametrize(
    "params",
    [{"PageSize": "abc"}, {"PageSize": "5000"}, {"DateSent>": "yesterday"}, {"Foo": "1"}, {"Page": "-1"}],
)
def test_an_invalid_list_request_gets_20001_and_is_recorded(simulator: Simulator, api: Api, params: Any) -> None:
    body = assert_twilio_error(api.get(params=params), 400, 20001)
    assert body["details"]["problems"][0]["name"] == next(iter(params))
    assert [r["code"] for r in simulator.invalid_requests()] == [20001]


def test_unknown_parameters_can_be_ignored_as_twilio_ignores_them(start: Callable[..., Simulator]) -> None:
    simulator = start(reject_unknown_parameters=False)
    assert Api(simulator).send(Bogus="1").status_code == 201
    assert simulator.invalid_requests() == []
    [warning] = simulator.counters()["warnings"]
    assert warning["code"] == 20001 and warning["message"] == "Unknown parameters: Bogus"


def test_media_urls_as_repeated_keys_make_an_mms(simulator: Simulator, api: Api) -> None:
    answer = api.send(MediaUrl=["https://demo.twilio.com/owl.png", "https://demo.twilio.com/logo.png"])
    assert answer.status_code == 201, answer.text
    message = answer.json()
    assert message["sid"].startswith("MM") and message["num_media"] == "2"
    kept = simulator.message(message["sid"])
    assert kept is not None and kept["form"]["MediaUrl"] == [
        "https://demo.twilio.com/owl.png",
        "https://demo.twilio.com/logo.png",
    ]


def test_a_json_body_is_not_a_form(simulator: Simulator, api: Api) -> None:
    url = simulator.base_url + api.path()
    answer = requests.post(url, json={"To": TO, "From": FROM, "Body": "Hi"}, auth=api.auth, timeout=TIMEOUT)
    body = assert_twilio_error(answer, 400, 21604)
    assert {p["kind"] for p in body["details"]["problems"]} == {"content_type", "required"}


def test_paths_and_methods_outside_the_description(simulator: Simulator, api: Api) -> None:
    assert_twilio_error(api.get("Nonsense.json"), 404, 20404)
    answer = requests.put(simulator.base_url + api.path(), auth=api.auth, timeout=TIMEOUT)
    assert_twilio_error(answer, 405, 20004)
    assert_twilio_error(api.get("Messages/SMnot-a-sid.json"), 404, 20404)
    assert [r["status"] for r in simulator.invalid_requests()] == [404, 405, 404]
    # A resource that is merely not there is no invalid request.
    assert_twilio_error(api.get(f"Messages/SM{'0' * 32}.json"), 404, 20404)
    # Valid, but not simulated: said so, counted apart.
    assert_twilio_error(api.get("Calls.json"), 404, 20404)
    assert len(simulator.invalid_requests()) == 3
    assert simulator.counters()["not_simulated"] == {"GET /Calls.json": 1}


def test_validation_is_fast(simulator: Simulator, api: Api) -> None:
    validator = spec_validator()
    operation, params, _ = validator.route("POST", api.path())
    assert operation is not None
    body = b"To=%2B15558675310&From=%2B15005550006&Body=Hi&MediaUrl=https%3A%2F%2Fa%2F1&MediaUrl=https%3A%2F%2Fb%2F2"
    durations = []
    for _ in range(200):
        started = time.perf_counter()
        checked = validator.check(operation, params, "", body, "application/x-www-form-urlencoded")
        durations.append(time.perf_counter() - started)
        assert not checked.problems
    assert statistics.median(durations) < 0.005  # measured: about 0.4 ms
    assert validator.operation_count() > 100 and validator.load_seconds < 5


# Authentication


def test_missing_or_wrong_credentials_get_20003(simulator: Simulator) -> None:
    url = simulator.base_url + Api(simulator).path()
    assert_twilio_error(requests.get(url, timeout=TIMEOUT), 401, 20003)
    answer = Api(simulator, password="wrong").get()
    assert_twilio_error(answer, 401, 20003)
    assert answer.headers["Twilio-Concurrent-Requests"] == "1"
    other = Api(simulator)
    other.account = "AC" + "b" * 32
    assert_twilio_error(other.get(), 401, 20003)
    assert simulator.invalid_requests() == []


def test_an_api_key_is_accepted(start: Callable[..., Simulator]) -> None:
    simulator = start(api_key_sid="SK" + "1" * 32, api_key_secret="key-secret")
    assert Api(simulator, "SK" + "1" * 32, "key-secret").get().status_code == 200
    assert Api(simulator, "SK" + "1" * 32, "other").get().status_code == 401


def test_the_auth_token_can_be_changed_at_run_time(simulator: Simulator, receiver: Receiver) -> None:
    old = simulator.config.auth_token
    answer = requests.post(
        simulator.base_url + "/__simulator/auth-token", json={"auth_token": "rotated-token"}, timeout=TIMEOUT
    )
    assert answer.status_code == 200
    assert Api(simulator, password=old).get().status_code == 401
    sent = Api(simulator, password="rotated-token").send(StatusCallback=receiver.url)
    assert sent.status_code == 201
    callback = receiver.wait_for(1)[0]
    check_signature(callback, "rotated-token")  # webhooks are signed with the new token
    simulator.reset()
    assert Api(simulator, password=old).get().status_code == 200


# State: create, fetch, delete, list, paging


def test_fetch_and_delete(simulator: Simulator, api: Api) -> None:
    sid = api.send().json()["sid"]
    fetched = api.get(f"Messages/{sid}.json")
    assert fetched.status_code == 200 and fetched.json()["sid"] == sid
    final_message(simulator, sid, "delivered")
    fetched = api.get(f"Messages/{sid}.json").json()
    assert fetched["status"] == "delivered" and fetched["date_sent"] and fetched["price"] == "-0.00790"
    deleted = requests.delete(simulator.base_url + api.path(f"Messages/{sid}.json"), auth=api.auth, timeout=TIMEOUT)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_twilio_error(api.get(f"Messages/{sid}.json"), 404, 20404)


def test_a_message_still_in_progress_cannot_be_deleted(start: Callable[..., Simulator]) -> None:
    simulator = start(time_scale=100.0)  # it stays queued
    api = Api(simulator)
    sid = api.send().json()["sid"]
    answer = requests.delete(simulator.base_url + api.path(f"Messages/{sid}.json"), auth=api.auth, timeout=TIMEOUT)
    assert_twilio_error(answer, 400, 20009)


def test_lists_are_filtered_newest_first_and_paged_as_twilio_pages(simulator: Simulator, api: Api) -> None:
    sids = [api.send(To=TO if i % 3 else "+15558675311", Body=f"n{i}").json()["sid"] for i in range(8)]
    mine = [sid for i, sid in enumerate(sids) if i % 3][::-1]  # newest first
    first = api.get(params={"To": TO, "PageSize": 2})
    assert first.status_code == 200
    page = first.json()
    assert page["next_page_uri"].startswith(api.path() + "?To=%2B15558675310&PageSize=2&Page=1&PageToken=PA")
    assert page["first_page_uri"] == api.path() + "?To=%2B15558675310&PageSize=2&Page=0"
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (0, 2, 0, 1)
    seen = [m["sid"] for m in page["messages"]]
    pages = 1
    while page["next_page_uri"]:
        page = api.get_uri(page["next_page_uri"]).json()
        seen += [m["sid"] for m in page["messages"]]
        pages += 1
        assert pages < 10
    assert seen == mine and pages == 3
    assert page["previous_page_uri"].startswith(api.path() + "?To=%2B15558675310&PageSize=2&Page=1&PageToken=PB")
    assert [m["sid"] for m in api.get(params={"From": FROM}).json()["messages"]] == sids[::-1]


def test_date_sent_filters(simulator: Simulator, api: Api) -> None:
    sid = api.send().json()["sid"]
    final_message(simulator, sid, "delivered")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    def listed(name: str, day: datetime) -> list[str]:
        answer = api.get(params={name: day.strftime("%Y-%m-%dT%H:%M:%SZ")})
        assert answer.status_code == 200, answer.text
        return [m["sid"] for m in answer.json()["messages"]]

    assert listed("DateSent", today) == [sid]
    assert listed("DateSent<", today - timedelta(days=1)) == []
    assert listed("DateSent>", today - timedelta(days=1)) == [sid]
    assert listed("DateSent", today + timedelta(days=1)) == []


def test_phone_numbers_and_caller_ids_from_the_fixtures(start: Callable[..., Simulator]) -> None:
    numbers = [FROM, "+15005550010", "+15005550011"]
    simulator = start(incoming_phone_numbers=tuple(map(_number, numbers)))
    api = Api(simulator)
    page = api.get("IncomingPhoneNumbers.json", {"PageSize": 2}).json()
    assert [n["phone_number"] for n in page["incoming_phone_numbers"]] == numbers[:2]
    assert page["incoming_phone_numbers"][0]["capabilities"]["sms"] is True
    rest = api.get_uri(page["next_page_uri"]).json()
    assert [n["phone_number"] for n in rest["incoming_phone_numbers"]] == numbers[2:]
    assert rest["next_page_uri"] is None
    ids = api.get("OutgoingCallerIds.json").json()
    assert [c["phone_number"] for c in ids["outgoing_caller_ids"]] == [TO]
    assert ids["outgoing_caller_ids"][0]["sid"].startswith("PN")


def _number(phone: str) -> Any:
    from local.twilio_simulator import PhoneNumber

    return PhoneNumber(phone)


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # an extension character counts twice
        ("€" * 81, 2),
        ("é" * 160, 1),  # in GSM-7's basic set
        ("ж" * 70, 1),
        ("ж" * 71, 2),
        ("😀" * 35, 1),  # two UTF-16 units each
        ("😀" * 36, 2),
        ("x" * 134 + "ж", 3),  # one UCS-2 character makes the whole body UCS-2
    ],
)
def test_segments(body: str, segments: int) -> None:
    assert segment_count(body) == segments


def test_segments_in_the_resource(api: Api) -> None:
    assert api.send(Body="ж" * 71).json()["num_segments"] == "2"


# Statuses and callbacks


def test_statuses_and_signed_callbacks_in_order(simulator: Simulator, api: Api, receiver: Receiver) -> None:
    sid = api.send(StatusCallback=receiver.url).json()["sid"]
    received = receiver.wait_for(3)
    assert simulator.wait_idle(TIMEOUT)
    assert [r.status for r in received] == ["sending", "sent", "delivered"]  # none for queued
    assert history(simulator, sid) == ["queued", "sending", "sent", "delivered"]
    tokens = set()
    for callback in received:
        check_signature(callback, simulator.config.auth_token)
        assert callback.headers["content-type"] == "application/x-www-form-urlencoded"
        assert callback.param("MessageSid") == callback.param("SmsSid") == sid
        assert callback.param("SmsStatus") == callback.status
        assert (callback.param("AccountSid"), callback.param("From"), callback.param("To")) == (api.account, FROM, TO)
        assert callback.param("ApiVersion") == "2010-04-01" and callback.param("ErrorCode") is None
        tokens.add(callback.headers["i-twilio-idempotency-token"])
    assert len(tokens) == 3
    assert re.fullmatch(r"[0-9]{10}", received[-1].param("RawDlrDoneDate") or "")
    assert simulator.counters()["callbacks_sent"] == 3


def test_whatsapp_is_read_after_delivered(api: Api, receiver: Receiver) -> None:
    api.send(To="whatsapp:" + TO, From="whatsapp:" + FROM, StatusCallback=receiver.url)
    assert [r.status for r in receiver.wait_for(4)] == ["sending", "sent", "delivered", "read"]


def test_a_messaging_service_accepts_then_queues(simulator: Simulator, api: Api, receiver: Receiver) -> None:
    answer = api.send(From=None, MessagingServiceSid=SERVICE, StatusCallback=receiver.url).json()
    assert answer["status"] == "accepted" and answer["messaging_service_sid"] == SERVICE
    received = receiver.wait_for(4)
    assert [r.status for r in received] == ["queued", "sending", "sent", "delivered"]
    assert {r.param("MessagingServiceSid") for r in received} == {SERVICE}
    assert {r.param("From") for r in received} == {FROM}  # picked from the service's pool


def test_reordered_callbacks(start: Callable[..., Simulator], receiver: Receiver) -> None:
    simulator = start(callback_mode="reordered", seed=7)
    Api(simulator).send(StatusCallback=receiver.url)
    statuses = [r.status for r in receiver.wait_for(3)]
    assert sorted(statuses, key=str) == ["delivered", "sending", "sent"]
    assert statuses != ["sending", "sent", "delivered"]


def test_repeated_callbacks_have_new_tokens(start: Callable[..., Simulator], receiver: Receiver) -> None:
    simulator = start(callback_mode="repeated", seed=1)
    sid = Api(simulator).send(StatusCallback=receiver.url).json()["sid"]
    final_message(simulator, sid, "delivered")
    assert simulator.wait_idle(TIMEOUT)
    statuses = receiver.statuses()
    assert statuses.count("delivered") == 2 and set(statuses) == {"sending", "sent", "delivered"}
    delivered = [r for r in receiver.requests if r.status == "delivered"]
    assert delivered[0].headers["i-twilio-idempotency-token"] != delivered[1].headers["i-twilio-idempotency-token"]
    assert history(simulator, sid) == ["queued", "sending", "sent", "delivered"]


def test_the_mode_can_be_switched_over_http(simulator: Simulator, receiver: Receiver) -> None:
    url = simulator.base_url + "/__simulator/callback-mode"
    assert requests.post(url, json={"mode": "nonsense"}, timeout=TIMEOUT).status_code == 400
    assert requests.post(url, json={"mode": "repeated"}, timeout=TIMEOUT).status_code == 200
    assert simulator.callback_mode == "repeated"


def test_failed_callbacks_are_retried_with_the_same_token(start: Callable[..., Simulator]) -> None:
    webhook = Receiver(answers=[500, 503])
    try:
        simulator = start(callback_retry_seconds=0.5)
        Api(simulator).send(StatusCallback=webhook.url)
        received = webhook.wait_for(5)
        assert [r.status for r in received[:3]] == ["sending"] * 3
        assert len({r.headers["i-twilio-idempotency-token"] for r in received[:3]}) == 1
        assert simulator.wait_idle(TIMEOUT)
        counters = simulator.counters()
        assert (counters["callbacks_failed"], counters["callbacks_sent"], counters["callbacks_abandoned"]) == (2, 5, 0)
    finally:
        webhook.close()


def test_an_unreachable_webhook_is_abandoned_after_the_retries(start: Callable[..., Simulator]) -> None:
    closed = Receiver()
    closed.close()  # nothing listens there any more
    simulator = start(callback_retries=2, callback_retry_seconds=0.5)
    sid = Api(simulator).send(StatusCallback=closed.url).json()["sid"]
    final_message(simulator, sid, "delivered")
    assert simulator.wait_idle(TIMEOUT)
    counters = simulator.counters()
    assert counters["callbacks_abandoned"] == 3 and counters["callbacks_failed"] == 9
    message = simulator.message(sid)
    assert message is not None and {c["http_status"] for c in message["callbacks"]} == {None}


def test_callbacks_beyond_this_machine_are_not_sent(simulator: Simulator, api: Api) -> None:
    sid = api.send(StatusCallback="https://example.com/webhooks/twilio").json()["sid"]
    final_message(simulator, sid, "delivered")
    assert simulator.wait_idle(TIMEOUT)
    assert simulator.counters()["callbacks_skipped"] == 3


# Outcomes by number


@pytest.mark.parametrize("number", [n for n, o in RECIPIENT_OUTCOMES.items() if o.kind == "rejected"])
def test_numbers_rejected_at_create(simulator: Simulator, api: Api, number: str) -> None:
    assert_twilio_error(api.send(To=number), 400, RECIPIENT_OUTCOMES[number].code or 0)
    assert simulator.messages() == [] and simulator.invalid_requests() == []  # Twilio's answer, not a bad request


@pytest.mark.parametrize("number", [n for n, o in RECIPIENT_OUTCOMES.items() if o.kind == "final"])
def test_numbers_that_fail_later(simulator: Simulator, api: Api, receiver: Receiver, number: str) -> None:
    outcome = RECIPIENT_OUTCOMES[number]
    sid = api.send(To=number, StatusCallback=receiver.url).json()["sid"]
    message = final_message(simulator, sid, outcome.status or "")
    assert message["error_code"] == outcome.code and message["error_message"]
    last = wait_until(lambda: [r for r in receiver.requests if r.status == outcome.status])[0]
    assert last.param("ErrorCode") == str(outcome.code)
    expected = (
        ["queued", "sending", "failed"] if outcome.status == "failed" else ["queued", "sending", "sent", outcome.status]
    )
    assert history(simulator, sid) == expected


@pytest.mark.parametrize(
    ("sender", "code"), [("+15005550001", 21212), ("+15005550007", 21606), ("+15005550008", 21611)]
)
def test_twilio_test_senders(api: Api, sender: str, code: int) -> None:
    assert_twilio_error(api.send(From=sender), 400, code)


def test_a_sender_the_account_does_not_own(simulator: Simulator, api: Api) -> None:
    assert_twilio_error(api.send(From="+15557770000"), 400, 21606)
    assert api.send(From="MyShop").status_code == 201  # an alphanumeric sender ID


def test_a_create_that_times_out_is_created_all_the_same(start: Callable[..., Simulator]) -> None:
    simulator = start(slow_answer_seconds=1.0)
    with pytest.raises(requests.Timeout):
        Api(simulator).post("Messages.json", {"To": "+15005550104", "From": FROM, "Body": "Hi"}, timeout=0.3)
    [message] = simulator.messages()
    assert message["to"] == "+15005550104"
    final_message(simulator, message["sid"], "delivered")


def test_a_create_answered_500_is_created_all_the_same(simulator: Simulator, api: Api) -> None:
    assert_twilio_error(api.send(To="+15005550105"), 500, 20500)
    [message] = simulator.messages()
    final_message(simulator, message["sid"], "delivered")


def test_the_outcomes_table_is_documented() -> None:
    assert outcomes_table() in (ROOT / "docs" / "local-twilio.md").read_text()


# Limits


def test_requests_beyond_the_concurrency_limit_get_429(start: Callable[..., Simulator]) -> None:
    simulator = start(concurrency_limit=3, api_latency_seconds=0.3)
    api = Api(simulator)
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda i: api.send(Body=f"burst {i}"), range(12)))
    limited = [a for a in answers if a.status_code == 429]
    created = [a for a in answers if a.status_code == 201]
    assert limited and created and len(limited) + len(created) == 12
    for answer in limited:
        assert_twilio_error(answer, 429, 20429)
        assert int(answer.headers["Twilio-Concurrent-Requests"]) > 3
    assert all(int(a.headers["Twilio-Concurrent-Requests"]) <= 3 for a in created)
    counters = simulator.counters()
    assert counters["peak_concurrency"] == 3 and counters["rate_limited"] == len(limited)
    assert len(simulator.messages()) == len(created)  # a 429 was never processed


def test_a_sender_queue_paces_sending_by_throughput(start: Callable[..., Simulator]) -> None:
    simulator = start(throughput=1.0, time_scale=0.1)  # a segment takes 0.1 s
    api = Api(simulator)
    paced = [api.send().json()["sid"] for _ in range(3)]
    other = api.send(From="MyShop").json()["sid"]  # another sender: not behind them
    for sid in [*paced, other]:
        final_message(simulator, sid, "delivered")

    def sending_at(sid: str) -> datetime:
        message = simulator.message(sid)
        assert message is not None
        return datetime.fromisoformat(next(h["at"] for h in message["history"] if h["status"] == "sending"))

    times = [sending_at(sid) for sid in paced]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert all(gap >= 0.08 for gap in gaps), gaps
    assert sending_at(other) < times[-1]


def test_a_full_queue_refuses_a_from_at_once(start: Callable[..., Simulator]) -> None:
    simulator = start(throughput=1.0, time_scale=0.5, queue_limit_seconds=2)  # 2 segments may wait
    api = Api(simulator)
    answers = [api.send(Body=f"n{i}") for i in range(6)]
    codes = [a.status_code for a in answers]
    assert codes[:3] == [201] * 3 and codes[-1] == 400, codes
    assert_twilio_error(answers[-1], 400, 21611)
    assert len(simulator.messages()) == codes.count(201) and simulator.invalid_requests() == []


def test_a_full_service_queue_fails_later_with_30001(start: Callable[..., Simulator]) -> None:
    simulator = start(throughput=1.0, time_scale=0.5, queue_limit_seconds=2)
    api = Api(simulator)
    answers = [api.send(From=None, MessagingServiceSid=SERVICE, Body=f"n{i}") for i in range(6)]
    assert {a.status_code for a in answers} == {201} and {a.json()["status"] for a in answers} == {"accepted"}
    last = final_message(simulator, answers[-1].json()["sid"], "failed")
    assert last["error_code"] == 30001
    first = answers[0].json()["sid"]
    assert wait_until(lambda: history(simulator, first)[:2] == ["accepted", "queued"])


def test_a_message_that_outlives_its_validity_period_fails(start: Callable[..., Simulator]) -> None:
    simulator = start(throughput=1.0, time_scale=0.1)
    api = Api(simulator)
    sids = [api.send(ValidityPeriod="1").json()["sid"] for _ in range(4)]
    assert final_message(simulator, sids[-1], "failed")["error_code"] == 30036
    final_message(simulator, sids[0], "delivered")


# Scheduling


def test_a_scheduled_message_is_sent_at_send_at(start: Callable[..., Simulator], receiver: Receiver) -> None:
    simulator = start(time_scale=0.0005)  # ten minutes: 0.3 s
    send_at = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    form = {"MessagingServiceSid": SERVICE, "ScheduleType": "fixed", "SendAt": send_at, "StatusCallback": receiver.url}
    answer = Api(simulator).send(From=None, **form).json()
    assert answer["status"] == "scheduled"
    assert [r.status for r in receiver.wait_for(4)] == ["queued", "sending", "sent", "delivered"]


def test_a_scheduled_message_can_be_canceled(start: Callable[..., Simulator], receiver: Receiver) -> None:
    simulator = start(time_scale=0.0005)
    api = Api(simulator)
    send_at = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    form = {"MessagingServiceSid": SERVICE, "ScheduleType": "fixed", "SendAt": send_at, "StatusCallback": receiver.url}
    sid = api.send(From=None, **form).json()["sid"]
    canceled = api.post(f"Messages/{sid}.json", {"Status": "canceled"})
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert [r.status for r in receiver.wait_for(1)] == ["canceled"]
    assert_twilio_error(api.post(f"Messages/{sid}.json", {"Status": "canceled"}), 400, 30409)
    assert_twilio_error(api.send(ScheduleType="fixed", SendAt=send_at), 400, 35118)
    assert_twilio_error(api.send(From=None, MessagingServiceSid=SERVICE, ScheduleType="fixed"), 400, 35111)
    soon = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_twilio_error(api.send(From=None, MessagingServiceSid=SERVICE, ScheduleType="fixed", SendAt=soon), 400, 35114)


# Admin endpoints and inbound messages


def test_admin_endpoints(simulator: Simulator, api: Api) -> None:
    sid = api.send().json()["sid"]
    final_message(simulator, sid, "delivered")
    admin = simulator.base_url + "/__simulator"
    counters = requests.get(f"{admin}/counters", timeout=TIMEOUT).json()
    assert counters["requests"] == {"POST /Messages.json": 1} and counters["messages_per_recipient"] == {TO: 1}
    assert counters["in_flight"] == 0 and counters["peak_concurrency"] == 1
    messages = requests.get(f"{admin}/messages", timeout=TIMEOUT).json()
    assert [m["sid"] for m in messages] == [sid]
    assert [h["status"] for h in messages[0]["history"]] == ["queued", "sending", "sent", "delivered"]
    assert requests.get(f"{admin}/messages/{sid}", timeout=TIMEOUT).json()["sid"] == sid
    config = requests.get(f"{admin}/config", timeout=TIMEOUT).json()
    assert config["account_sid"] == api.account and "auth_token" not in config
    assert "GET  /__simulator/counters" in " ".join(requests.get(admin, timeout=TIMEOUT).json()["endpoints"])
    assert requests.post(f"{admin}/reset", timeout=TIMEOUT).status_code == 200
    assert simulator.messages() == [] and simulator.counters()["requests"] == {}
    assert requests.get(f"{admin}/nothing", timeout=TIMEOUT).status_code == 404


def test_an_injected_inbound_message_is_posted_signed(simulator: Simulator, receiver: Receiver) -> None:
    result = simulator.inject_inbound(
        Inbound(TO, FROM, "STOP", media_urls=["https://demo.twilio.com/owl.png"], url=receiver.url)
    )
    assert result["status"] == 200 and result["body"] == "<Response/>"
    [received] = receiver.wait_for(1)
    check_signature(received, simulator.config.auth_token)
    params = dict(received.params)
    assert params["MessageSid"] == params["SmsSid"] == params["SmsMessageSid"] == result["message_sid"]
    assert (params["From"], params["To"], params["Body"], params["SmsStatus"]) == (TO, FROM, "STOP", "received")
    assert (params["NumMedia"], params["NumSegments"], params["MediaContentType0"]) == ("1", "1", "image/png")
    assert params["AccountSid"] == simulator.config.account_sid and params["ApiVersion"] == "2010-04-01"
    listed = Api(simulator).get(params={"From": TO}).json()["messages"]
    assert [(m["sid"], m["direction"], m["status"]) for m in listed] == [(result["message_sid"], "inbound", "received")]


def test_the_inbound_command_line(start: Callable[..., Simulator], receiver: Receiver, capsys: Any) -> None:
    simulator = start(inbound_webhook_url=receiver.url)
    code = cli(["inbound", "--from", TO, "--to", FROM, "--body", "STOP", "--simulator", simulator.base_url])
    output = capsys.readouterr().out
    assert code == 0 and f"POST {receiver.url}" in output and "← 200 (text/xml)" in output and "<Response/>" in output
    assert [r.param("Body") for r in receiver.wait_for(1)] == ["STOP"]


def test_serve_from_the_command_line_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "local.twilio_simulator", "serve", "--port", "0", "--time-scale", "0.01"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout = process.stdout
        assert stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=20)
        url = re.search(r"http://127\.0\.0\.1:\d+", lines[0] if lines else "")
        assert url, f"no URL in {lines!r}"
        answer = requests.get(url.group(0) + "/__simulator/counters", timeout=TIMEOUT)
        assert answer.status_code == 200 and answer.json()["in_flight"] == 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


# Configuration


def test_defaults_are_the_local_stacks() -> None:
    from local.stack import LOCAL_PARAMETERS, LOCAL_SECRET

    config = SimulatorConfig()
    assert (config.account_sid, config.auth_token) == (LOCAL_SECRET["accountSid"], LOCAL_SECRET["authToken"])
    assert config.incoming_phone_numbers[0].phone_number == LOCAL_PARAMETERS["DefaultFrom"]


def test_configuration_from_json(tmp_path: Any) -> None:
    path = tmp_path / "simulator.json"
    path.write_text(
        json.dumps(
            {
                "time_scale": 0.5,
                "status_delays": {"final": 2.0},
                "incoming_phone_numbers": ["+15005550006", {"phone_number": "+15005550010", "friendly_name": "Two"}],
                "sender_throughput": {"+15005550006": 3},
            }
        )
    )
    config = SimulatorConfig.load(path)
    assert config.time_scale == 0.5 and config.status_delays.final == 2.0 and config.status_delays.sent == 0.2
    assert [n.name for n in config.incoming_phone_numbers] == ["+15005550006", "Two"]
    assert config.sender_rate("+15005550006") == 3 and config.sender_rate("other") == config.throughput
    with pytest.raises(ValueError, match="unknown configuration keys: nope"):
        SimulatorConfig.from_dict({"nope": 1})
    with pytest.raises(ValueError, match="callback_mode"):
        SimulatorConfig(callback_mode="sideways")  # type: ignore[arg-type]
