"""raw_request against a loopback fake of Twilio: what the fake received, and what callers get."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from werkzeug import Request, Response

from tests.support import ACCOUNT_SID, AUTH_TOKEN, api_event, load_event, load_handler

API = "/2010-04-01"
ACCOUNT = f"{API}/Accounts/{ACCOUNT_SID}"
MESSAGES_PATH = f"{ACCOUNT}/Messages.json"
BASIC_AUTH = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()


def run(event: Any, context: Any) -> Any:
    return load_handler("raw_request").lambda_handler(event, context)


def run_api(payload: Any, context: Any) -> tuple[int, Any]:
    response = run(api_event("raw_request/api_gateway.json", body=payload), context)
    return response["statusCode"], json.loads(response["body"])


class Recorder:
    """A fake endpoint answering a scripted sequence, recording when each request arrived."""

    def __init__(self, *answers: Response) -> None:
        self.answers = list(answers)
        self.times: list[float] = []

    def __call__(self, request: Request) -> Response:
        self.times.append(time.monotonic())
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def gaps(self) -> list[float]:
        return [later - earlier for earlier, later in zip(self.times, self.times[1:], strict=False)]


def json_response(status: int, body: Any, **headers: str) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")


# --- targets, query and headers -------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/Accounts/{AccountSid}/Messages.json", "/Accounts/$TWILIO_ACCOUNT_SID/Messages.json"]
)
def test_the_account_sid_placeholders_are_replaced(aws: Any, twilio: Any, context: Any, path: str) -> None:
    twilio.expect_request(MESSAGES_PATH, method="GET").respond_with_json({"messages": []})

    answer = run({"path": path}, context)

    assert answer["statusCode"] == 200
    assert answer["body"] == {"messages": []}
    request = twilio.log[0][0]
    assert request.path == MESSAGES_PATH
    assert request.headers["Authorization"] == BASIC_AUTH


def test_repeated_query_keys_and_headers_reach_twilio(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGES_PATH).respond_with_json({"messages": []})

    run(
        {
            "path": "/Accounts/{AccountSid}/Messages.json",
            "query": {"To": ["+15558675310", "+15558675311"], "PageSize": 5, "Flag": True},
            "headers": {"X-Trace": "abc-123", "Accept": "application/json"},
        },
        context,
    )

    request = twilio.log[0][0]
    assert request.args.getlist("To") == ["+15558675310", "+15558675311"]
    assert request.args["PageSize"] == "5"
    assert request.args["Flag"] == "true"
    assert request.headers["X-Trace"] == "abc-123"


def test_a_url_on_the_configured_base_is_allowed(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request("/v1/Services").respond_with_json({"services": []})

    answer = run({"url": twilio.url_for("/v1/Services")}, context)

    assert answer["body"] == {"services": []}
    assert twilio.log[0][0].headers["Authorization"] == BASIC_AUTH


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_every_method_is_sent_as_asked(aws: Any, twilio: Any, context: Any, method: str) -> None:
    twilio.expect_request(f"{ACCOUNT}/Things/1.json", method=method).respond_with_data("", status=204)

    answer = run({"method": method.lower(), "path": "/Accounts/{AccountSid}/Things/1.json"}, context)

    assert answer["statusCode"] == 204
    assert answer["body"] is None
    assert twilio.log[0][0].method == method


def test_credential_and_hop_by_hop_headers_are_not_passed_back(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGES_PATH).respond_with_response(
        json_response(
            200,
            {"ok": True},
            **{
                "Twilio-Request-Id": "RQ123",
                "Set-Cookie": "session=secret",
                "WWW-Authenticate": 'Basic realm="Twilio API"',
                "Authorization": "Basic c2VjcmV0",
                "Proxy-Authenticate": "Basic",
                "Keep-Alive": "timeout=5",
                "Upgrade": "h2c",
                "Trailer": "Expires",
            },
        )
    )

    answer = run({"path": "/Accounts/{AccountSid}/Messages.json"}, context)

    headers = answer["headers"]
    assert headers["twilio-request-id"] == "RQ123"
    assert headers["content-type"] == "application/json"
    for name in ("set-cookie", "www-authenticate", "authorization", "proxy-authenticate", "keep-alive", "upgrade"):
        assert name not in headers
    assert "trailer" not in headers and "connection" not in headers and "content-length" not in headers
    assert AUTH_TOKEN not in json.dumps(answer)


# --- bodies ---------------------------------------------------------------------------------


def test_data_is_form_encoded_with_repeated_keys_by_default(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGES_PATH, method="POST").respond_with_json({"sid": "MM1"}, status=201)

    answer = run(_mms(), context)

    assert answer["statusCode"] == 201
    request = twilio.log[0][0]
    assert request.mimetype == "application/x-www-form-urlencoded"
    assert request.form.getlist("MediaUrl") == ["https://demo.twilio.com/owl.png", "https://demo.twilio.com/logo.png"]
    assert request.form["Body"] == "Hello"


def _mms() -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/Accounts/{AccountSid}/Messages.json",
        "data": {
            "To": "+15558675310",
            "From": "+15005550006",
            "Body": "Hello",
            "MediaUrl": ["https://demo.twilio.com/owl.png", "https://demo.twilio.com/logo.png"],
        },
        "retry": {"maxRetries": 0},
    }


def test_data_is_json_when_the_content_type_says_so(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request("/v1/Services", method="POST").respond_with_json({"sid": "MG1"}, status=201)

    run(
        {
            "method": "POST",
            "url": twilio.url_for("/v1/Services"),
            "headers": {"Content-Type": "application/json"},
            "data": {"friendlyName": "Alerts", "nested": {"list": [1, 2]}},
        },
        context,
    )

    request = twilio.log[0][0]
    assert request.mimetype == "application/json"
    assert json.loads(request.get_data()) == {"friendlyName": "Alerts", "nested": {"list": [1, 2]}}


def test_string_data_is_sent_as_is(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGES_PATH, method="POST").respond_with_json({}, status=201)

    run(
        {"method": "POST", "path": "/Accounts/{AccountSid}/Messages.json", "data": "To=%2B15558675310&Body=Hi"}, context
    )

    request = twilio.log[0][0]
    assert request.get_data() == b"To=%2B15558675310&Body=Hi"
    assert request.mimetype == "application/x-www-form-urlencoded"


def test_multipart_sends_fields_and_a_binary_file(aws: Any, twilio: Any, context: Any) -> None:
    content = bytes(range(256)) * 4
    twilio.expect_request("/v1/Services/MG1/Media", method="POST").respond_with_json({"sid": "ME1"}, status=201)

    answer = run(
        {
            "method": "POST",
            "url": twilio.url_for("/v1/Services/MG1/Media"),
            "formData": {"Description": "logo", "Tag": ["a", "b"]},
            "files": [
                {
                    "field": "Media",
                    "filename": "logo.png",
                    "contentType": "image/png",
                    "contentBase64": base64.b64encode(content).decode(),
                }
            ],
        },
        context,
    )

    assert answer["statusCode"] == 201
    request = twilio.log[0][0]
    assert request.mimetype == "multipart/form-data"
    assert request.form["Description"] == "logo"
    assert request.form.getlist("Tag") == ["a", "b"]
    upload = request.files["Media"]
    assert (upload.filename, upload.mimetype, upload.read()) == ("logo.png", "image/png", content)


def test_form_data_alone_is_still_multipart(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request("/v1/Uploads", method="POST").respond_with_json({}, status=201)

    run({"method": "POST", "url": twilio.url_for("/v1/Uploads"), "formData": {"Name": "x"}}, context)

    assert twilio.log[0][0].mimetype == "multipart/form-data"


# --- answers --------------------------------------------------------------------------------


def test_a_binary_answer_comes_back_in_base64(aws: Any, twilio: Any, context: Any) -> None:
    content = b"\x89PNG\r\n\x1a\n\x00\xff\xfe"
    twilio.expect_request(f"{ACCOUNT}/Messages/MM1/Media/ME1").respond_with_data(content, content_type="image/png")

    answer = run({"path": "/Accounts/{AccountSid}/Messages/MM1/Media/ME1", "responseType": "binary"}, context)

    assert base64.b64decode(answer["body"]) == content
    assert answer["headers"]["content-type"] == "image/png"


def test_a_text_answer_comes_back_as_text(aws: Any, twilio: Any, context: Any) -> None:
    xml = "<TwilioResponse><Message/></TwilioResponse>"
    twilio.expect_request(f"{ACCOUNT}/Messages").respond_with_data(xml, content_type="application/xml")

    answer = run({"path": "/Accounts/{AccountSid}/Messages", "responseType": "text"}, context)

    assert answer["body"] == xml


def test_a_json_answer_that_is_not_json_comes_back_as_text(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGES_PATH).respond_with_data("<html>Bad gateway</html>", status=502)

    answer = run({"path": "/Accounts/{AccountSid}/Messages.json"}, context)

    assert answer == {"statusCode": 502, "headers": answer["headers"], "body": "<html>Bad gateway</html>"}


def test_twilio_errors_are_answered_200_over_the_api_with_twilio_status_inside(
    aws: Any, twilio: Any, context: Any
) -> None:
    error = {"code": 21211, "message": "Invalid 'To'", "more_info": "https://www.twilio.com/docs/errors/21211"}
    twilio.expect_request(MESSAGES_PATH, method="POST").respond_with_json(error | {"status": 400}, status=400)

    status, body = run_api(_mms(), context)

    assert status == 200
    assert body["statusCode"] == 400
    assert body["body"]["code"] == 21211
    assert len(twilio.log) == 1


# --- timeouts and retries -------------------------------------------------------------------


class Stalling:
    """Holds each request until released, so that the caller's timeout fires first."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.arrived = 0

    def __call__(self, request: Request) -> Response:
        self.arrived += 1
        self.release.wait(5)
        return json_response(200, {})

    def finish(self, httpserver: Any) -> None:
        """Let the held request complete, so it does not spill into the next test's log."""
        self.release.set()
        for _ in range(200):
            if httpserver.log:
                return
            time.sleep(0.01)


@pytest.fixture
def stalling(twilio: Any) -> Iterator[Stalling]:
    handler = Stalling()
    twilio.expect_request(MESSAGES_PATH).respond_with_handler(handler)
    yield handler
    handler.finish(twilio)


def test_a_timeout_is_504_twilio_unavailable_over_the_api(
    aws: Any, twilio: Any, context: Any, stalling: Stalling
) -> None:
    status, body = run_api({"path": "/Accounts/{AccountSid}/Messages.json", "timeoutMs": 100}, context)

    assert status == 504
    assert body["error"]["code"] == "TWILIO_UNAVAILABLE"
    assert stalling.arrived == 1  # sent once: no retries were asked for


def test_a_timeout_raises_twilio_unavailable_when_invoked_directly(
    aws: Any, twilio: Any, context: Any, stalling: Stalling
) -> None:
    with pytest.raises(Exception) as raised:
        run({"path": "/Accounts/{AccountSid}/Messages.json", "timeoutMs": 100}, context)

    assert type(raised.value).__name__ == "TwilioUnavailable"
    assert json.loads(str(raised.value))["code"] == "TWILIO_UNAVAILABLE"
    assert stalling.arrived == 1


def test_a_post_that_timed_out_without_retries_may_have_been_processed(
    aws: Any, twilio: Any, context: Any, stalling: Stalling
) -> None:
    status, body = run_api(_mms() | {"timeoutMs": 100}, context)

    assert status == 504
    assert body["error"]["code"] == "SEND_OUTCOME_UNKNOWN"  # Twilio may have acted on it: not repeated
    assert stalling.arrived == 1


@pytest.mark.parametrize(
    ("retry", "answers", "expected_requests", "minimum_gaps"),
    [
        ({}, [503], 1, []),
        ({"maxRetries": 2, "delayMs": 100}, [503], 3, [0.1, 0.1]),
        ({"maxRetries": 3, "delayMs": 100, "exponentialBackoff": True}, [503], 4, [0.1, 0.2, 0.4]),
        ({"maxRetries": 3, "delayMs": 50}, [500, 502, 200], 3, [0.05, 0.05]),
        ({"maxRetries": 2, "delayMs": 50}, [400], 1, []),
        ({"maxRetries": 2, "delayMs": 50, "retryOnAllErrors": True}, [400], 3, [0.05, 0.05]),
        ({"maxRetries": 2, "delayMs": 50, "retryOnAllErrors": True}, [404, 200], 2, [0.05]),
    ],
)
def test_retry_settings_decide_how_often_and_how_long_apart(
    aws: Any,
    twilio: Any,
    context: Any,
    retry: dict[str, Any],
    answers: list[int],
    expected_requests: int,
    minimum_gaps: list[float],
) -> None:
    recorder = Recorder(*(json_response(status, {"status": status}) for status in answers))
    twilio.expect_request(MESSAGES_PATH).respond_with_handler(recorder)

    answer = run({"path": "/Accounts/{AccountSid}/Messages.json", "retry": retry}, context)

    assert len(twilio.log) == expected_requests
    assert answer["statusCode"] == answers[min(expected_requests, len(answers)) - 1]
    assert len(recorder.gaps()) == len(minimum_gaps)
    for gap, minimum in zip(recorder.gaps(), minimum_gaps, strict=True):
        assert gap >= minimum


def test_the_callers_retries_apply_to_post_too(aws: Any, twilio: Any, context: Any) -> None:
    recorder = Recorder(json_response(500, {}), json_response(201, {"sid": "SM1"}))
    twilio.expect_request(MESSAGES_PATH, method="POST").respond_with_handler(recorder)

    answer = run(_mms() | {"retry": {"maxRetries": 1, "delayMs": 10}}, context)

    assert answer["statusCode"] == 201
    assert len(twilio.log) == 2
    assert twilio.log[0][0].form == twilio.log[1][0].form


def test_a_post_without_retries_is_sent_once(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGES_PATH, method="POST").respond_with_json({}, status=500)

    answer = run(_mms(), context)

    assert answer["statusCode"] == 500
    assert len(twilio.log) == 1


def test_429_waits_for_retry_after(aws: Any, twilio: Any, context: Any) -> None:
    recorder = Recorder(json_response(429, {"code": 20429}, **{"Retry-After": "1"}), json_response(200, {"ok": 1}))
    twilio.expect_request(MESSAGES_PATH).respond_with_handler(recorder)

    answer = run({"path": "/Accounts/{AccountSid}/Messages.json", "retry": {"maxRetries": 1, "delayMs": 0}}, context)

    assert answer["statusCode"] == 200
    assert len(twilio.log) == 2
    assert recorder.gaps()[0] >= 1.0  # Retry-After, not delayMs


def test_429_is_waited_out_even_without_retries(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_ordered_request(MESSAGES_PATH).respond_with_response(
        json_response(429, {"code": 20429}, **{"Retry-After": "1"})
    )
    twilio.expect_ordered_request(MESSAGES_PATH).respond_with_json({"messages": []})
    started = time.monotonic()

    answer = run({"path": "/Accounts/{AccountSid}/Messages.json"}, context)

    assert answer["statusCode"] == 200
    assert len(twilio.log) == 2 and time.monotonic() - started >= 1.0


def test_429_beyond_the_remaining_time_is_passed_back_with_retry_after(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGES_PATH).respond_with_response(
        json_response(429, {"code": 20429}, **{"Retry-After": "120"})
    )

    answer = run({"path": "/Accounts/{AccountSid}/Messages.json"}, context)

    assert answer["statusCode"] == 429
    assert answer["headers"]["retry-after"] == "120"
    assert len(twilio.log) == 1


# --- redirects ------------------------------------------------------------------------------


def test_a_redirect_to_another_host_is_passed_back_not_followed(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(f"{ACCOUNT}/Messages/MM1/Media/ME1").respond_with_data(
        "", status=307, headers={"Location": "https://evil.com/steal"}
    )

    answer = run({"path": "/Accounts/{AccountSid}/Messages/MM1/Media/ME1", "responseType": "binary"}, context)

    assert answer["statusCode"] == 307
    assert answer["headers"]["location"] == "https://evil.com/steal"
    assert len(twilio.log) == 1


def test_a_redirect_on_the_same_api_is_followed(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(f"{ACCOUNT}/Old.json", method="POST").respond_with_data(
        "", status=307, headers={"Location": f"{ACCOUNT}/New.json"}
    )
    twilio.expect_request(f"{ACCOUNT}/New.json", method="POST").respond_with_json({"moved": True})

    answer = run({"method": "POST", "path": "/Accounts/{AccountSid}/Old.json", "data": {"A": "1"}}, context)

    assert answer["body"] == {"moved": True}
    assert [r.path for r, _ in twilio.log] == [f"{ACCOUNT}/Old.json", f"{ACCOUNT}/New.json"]
    assert twilio.log[1][0].form["A"] == "1"  # 307 keeps method and body


# --- refusals -------------------------------------------------------------------------------

REFUSED = [
    ({"url": "https://evil.com/2010-04-01/Accounts/{AccountSid}/Calls.json"}, "url"),
    ({"url": "https://twilio.com.evil.com/v1/Services"}, "url"),
    ({"url": "https://evil.com#.twilio.com"}, "url"),
    ({"url": "https://evil.com/#.twilio.com"}, "url"),
    ({"url": "https://api.twilio.com@evil.com/2010-04-01/Accounts/{AccountSid}/Calls.json"}, "url"),
    ({"url": "https://user:pass@api.twilio.com/2010-04-01/Accounts/{AccountSid}/Calls.json"}, "url"),
    ({"url": "http://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Calls.json"}, "url"),
    ({"url": "https://eviltwilio.com/v1/Services"}, "url"),
    ({"url": "https://api.twilio.com\\@evil.com/"}, "url"),
    ({"url": "ftp://api.twilio.com/x"}, "url"),
    ({"url": "https://api.twilio.com:8443/2010-04-01/Accounts/{AccountSid}/Calls.json"}, "url"),
    ({"path": "/Accounts/../../evil"}, "path"),
    ({"path": "/Accounts/{AccountSid}/%2e%2e/%2E%2E/x"}, "path"),
    ({"path": "/Accounts/%2E%2e/x"}, "path"),
    ({"path": "/Accounts/%252e%252e/x"}, "path"),
    ({"path": "/Accounts/..%2f..%2fx"}, "path"),
    ({"path": "Accounts/{AccountSid}/Calls.json"}, "path"),
    ({"path": "/Accounts/{AccountSid}/Calls.json", "headers": {"X-Evil": "a\r\nHost: evil.com"}}, "headers.X-Evil"),
    ({"path": "/Accounts/{AccountSid}/Calls.json", "headers": {"X-Evil\nHost": "evil.com"}}, "headers.X-Evil<LF>Host"),
    (
        {"path": "/Accounts/{AccountSid}/Calls.json", "headers": {"Authorization": "Basic eDp5"}},
        "headers.Authorization",
    ),
    ({"path": "/Accounts/{AccountSid}/Calls.json", "headers": {"host": "evil.com"}}, "headers.host"),
    ({"path": "/Accounts/{AccountSid}/Calls.json", "headers": {"CONTENT-LENGTH": "0"}}, "headers.CONTENT-LENGTH"),
    ({"path": "/Accounts/{AccountSid}/Calls.json", "headers": {"X-Padded": " x"}}, "headers.X-Padded"),
    ({"path": "/Accounts/{AccountSid}/Calls.json", "headers": {"X-Euro": "€"}}, "headers.X-Euro"),
]


@pytest.mark.parametrize(("payload", "field"), REFUSED)
def test_refused_requests_answer_400_and_send_nothing(
    aws: Any, twilio: Any, context: Any, monkeypatch: Any, payload: dict[str, Any], field: str
) -> None:
    sent: list[str] = []  # any host at all, not only the fake
    monkeypatch.setattr(requests.Session, "request", lambda self, method, url, **kw: sent.append(url))

    status, body = run_api(payload, context)

    assert status == 400
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert field in {d["field"] for d in body["error"]["details"]}
    assert twilio.log == [] and sent == []


def test_cookies_of_one_answer_never_reach_the_next_request(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_ordered_request(f"{ACCOUNT}/A.json").respond_with_json(
        {}, headers={"Set-Cookie": "session=abc; Path=/"}
    )
    twilio.expect_ordered_request(f"{ACCOUNT}/B.json").respond_with_json({})

    run({"path": "/Accounts/{AccountSid}/A.json"}, context)
    run({"path": "/Accounts/{AccountSid}/B.json"}, context)

    assert "Cookie" not in twilio.log[1][0].headers


@pytest.mark.parametrize(("payload", "field"), REFUSED[:3])
def test_refused_direct_invokes_raise_validation_error_and_send_nothing(
    aws: Any, twilio: Any, context: Any, payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(Exception) as raised:
        run(payload, context)

    assert type(raised.value).__name__ == "ValidationError"
    assert twilio.log == []


def test_every_problem_is_listed_at_once(aws: Any, twilio: Any, context: Any) -> None:
    status, body = run_api(
        {
            "method": "TRACE",
            "url": "https://evil.com",
            "headers": {"Host": "x"},
            "responseType": "xml",
            "timeoutMs": 0,
            "retry": {"maxRetries": 6, "delayMs": -1, "exponentialBackoff": "yes"},
            "typo": 1,
        },
        context,
    )

    assert status == 400
    assert {d["field"] for d in body["error"]["details"]} == {
        "method",
        "url",
        "headers.Host",
        "responseType",
        "timeoutMs",
        "retry.maxRetries",
        "retry.delayMs",
        "retry.exponentialBackoff",
        "typo",
    }
    assert twilio.log == []


# --- sample events --------------------------------------------------------------------------


def test_the_api_gateway_sample_sends_an_mms(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(MESSAGES_PATH, method="POST").respond_with_json(
        {"sid": "MM1", "status": "queued"}, status=201
    )

    response = run(load_event("raw_request/api_gateway.json"), context)

    assert response["statusCode"] == 200
    assert json.loads(response["body"])["statusCode"] == 201
    request = twilio.log[0][0]
    assert request.form["To"] == "+15558675310"
    assert len(request.form.getlist("MediaUrl")) == 2


def test_the_direct_sample_lists_incoming_numbers(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(f"{ACCOUNT}/IncomingPhoneNumbers.json", query_string="PageSize=20").respond_with_json(
        {"incoming_phone_numbers": []}
    )

    answer = run(load_event("raw_request/direct.json"), context)

    assert answer["statusCode"] == 200
    assert answer["body"] == {"incoming_phone_numbers": []}
    assert len(twilio.log) == 1


def test_the_messaging_service_sample_reads_messaging_twilio_com(aws: Any, context: Any) -> None:
    """The one sample that names a host other than the API base: answered by a transport mounted
    on the function's own session, so the handler runs end to end without the internet."""
    from tests.unit.test_raw_request import RecordingTransport
    from twilio_messaging.execution_environment import environment

    url = "https://messaging.twilio.com/v1/Services/MG0123456789abcdef0123456789abcdef"
    service = {"sid": "MG0123456789abcdef0123456789abcdef", "friendly_name": "Alerts"}
    transport = RecordingTransport({url: (200, {"Content-Type": "application/json"}, json.dumps(service).encode())})
    environment.twilio_client().session.mount("https://messaging.twilio.com", transport)

    answer = run(load_event("raw_request/direct_messaging_service.json"), context)

    assert answer == {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": service}
    assert [(r.method, r.url) for r in transport.sent] == [("GET", url)]
    assert transport.sent[0].headers["Authorization"].startswith("Basic ")


# --- credentials never come back ------------------------------------------------------------

SUBACCOUNT = "AC" + "e" * 32
CREDENTIAL_TARGETS = [
    {"path": "/Accounts/{AccountSid}.json"},
    {"path": "/Accounts/$TWILIO_ACCOUNT_SID"},
    {"path": "/Accounts.json", "query": {"FriendlyName": "x"}},
    {"path": f"/accounts/{SUBACCOUNT}.XML"},
    {"path": "/%41ccounts/{AccountSid}.json"},
    {"method": "POST", "path": "/Accounts/{AccountSid}/Keys.json", "data": {"FriendlyName": "k"}},
    {"path": "/Accounts/{AccountSid}/SigningKeys.json"},
    {"path": f"/Accounts/{SUBACCOUNT}/SIP/CredentialLists/CL{'0' * 32}/Credentials.json"},
    {"url": "https://api.twilio.com/2010-04-01/Accounts/{AccountSid}.json"},
    {"url": "https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/{AccountSid}/Keys.json"},
    {"method": "POST", "url": "https://accounts.twilio.com/v1/AuthTokens/Promote"},
    {"url": "https://accounts.twilio.com/v1/Credentials/AWS"},
    {"method": "POST", "url": "https://iam.twilio.com/v1/Keys", "data": {"AccountSid": ACCOUNT_SID}},
]


@pytest.mark.parametrize("payload", CREDENTIAL_TARGETS)
@pytest.mark.parametrize("source", ["api", "direct"])
def test_resources_that_hold_credentials_are_refused_before_any_request(
    aws: Any, twilio: Any, context: Any, monkeypatch: Any, payload: dict[str, Any], source: str
) -> None:
    sent: list[str] = []
    monkeypatch.setattr(requests.Session, "request", lambda self, method, url, **kw: sent.append(url))
    field = "url" if "url" in payload else "path"

    if source == "api":
        status, body = run_api(payload, context)
        assert status == 400
        details = body["error"]["details"]
    else:
        with pytest.raises(Exception) as raised:
            run(payload, context)
        assert type(raised.value).__name__ == "ValidationError"
        details = json.loads(str(raised.value))["details"]
    assert [d["field"] for d in details] == [field]
    assert "holds Twilio credentials" in details[0]["problem"]
    assert twilio.log == [] and sent == []


def test_a_redirect_to_a_resource_that_holds_credentials_is_not_followed(aws: Any, twilio: Any, context: Any) -> None:
    twilio.expect_request(f"{ACCOUNT}/Old.json").respond_with_data(
        "", status=302, headers={"Location": f"{ACCOUNT}.json"}
    )

    answer = run({"path": "/Accounts/{AccountSid}/Old.json"}, context)

    assert answer["statusCode"] == 302
    assert len(twilio.log) == 1


LEAKY = {
    "sid": "CA1",
    "auth_token": "leaked-auth-token",
    "account": {"AuthToken": "leaked-nested", "friendly_name": "Shop"},
    "keys": [{"sid": "SK1", "SECRET": "leaked-secret"}],
    "signing_key": "leaked-signing-key",
    "password": "leaked-password",
    "secondary_auth_token": "leaked-secondary",
}
LEAKY_XML = (
    "<TwilioResponse><Call><Sid>CA1</Sid><AuthToken>leaked-auth-token</AuthToken>"
    "<Password>leaked-password</Password></Call></TwilioResponse>"
)


@pytest.mark.parametrize("response_type", ["json", "text", "binary"])
@pytest.mark.parametrize("answer_shape", ["json", "xml"])
@pytest.mark.parametrize("source", ["api", "direct"])
def test_credential_values_in_any_answer_are_redacted(
    aws: Any, twilio: Any, context: Any, response_type: str, answer_shape: str, source: str
) -> None:
    body = json.dumps(LEAKY) if answer_shape == "json" else LEAKY_XML
    content_type = "application/json" if answer_shape == "json" else "application/xml"
    twilio.expect_request(f"{ACCOUNT}/Calls/CA1.json").respond_with_data(body, content_type=content_type)
    payload = {"path": "/Accounts/{AccountSid}/Calls/CA1.json", "responseType": response_type}

    if source == "api":
        status, envelope = run_api(payload, context)
        assert status == 200
    else:
        envelope = run(payload, context)

    seen = envelope["body"]
    text = base64.b64decode(seen).decode() if response_type == "binary" else json.dumps(seen)
    assert "leaked" not in text, text
    assert "[redacted]" in text and "CA1" in text
    if response_type == "json" and answer_shape == "json":
        assert seen["account"] == {"AuthToken": "[redacted]", "friendly_name": "Shop"}
