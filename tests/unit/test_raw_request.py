"""Raw request parsing and URL checks, and execution against Twilio hosts through a recording
transport mounted on the client's session (no network)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from tests.support import ACCOUNT_SID, AUTH_TOKEN
from twilio_messaging.credentials import Credentials
from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import ValidationError
from twilio_messaging.raw_request import (
    UserRetryPolicy,
    execute_raw_request,
    parse_raw_request,
    path_problem,
    target_url,
    url_problem,
)
from twilio_messaging.twilio_client import TwilioClient


class StubStore:
    def get(self, deadline: Any = None) -> Credentials:
        return Credentials(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)

    def reread_after_rejection(self, stale: Credentials, deadline: Any = None) -> Credentials | None:
        return None


class RecordingTransport(BaseAdapter):
    """Answers every request from a dict of URL -> (status, headers, body) and records it."""

    def __init__(self, answers: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        super().__init__()
        self.answers = answers
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:
        self.sent.append(request)
        status, headers, body = self.answers.get(str(request.url), (599, {}, b"no answer scripted"))
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        response._content = body
        response.url = str(request.url)
        response.request = request
        return response

    def close(self) -> None:
        pass


def client_with(answers: dict[str, tuple[int, dict[str, str], bytes]]) -> tuple[TwilioClient, RecordingTransport]:
    client = TwilioClient("https://api.twilio.com", StubStore())  # type: ignore[arg-type]
    transport = RecordingTransport(answers)
    client.session.mount("https://", transport)
    client.session.mount("http://", transport)
    return client, transport


def parse(payload: Any) -> Any:
    client, _ = client_with({})
    return parse_raw_request(payload, client.may_receive_credentials)


def problems(payload: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as raised:
        parse(payload)
    return {d["field"]: d["problem"] for d in raised.value.details}


def basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()


# --- URL and path checks --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Calls.json",
        "https://messaging.twilio.com/v1/Services",
        "https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/{AccountSid}/Calls.json",
        "https://API.TWILIO.COM/x",
    ],
)
def test_twilio_https_urls_are_accepted(url: str) -> None:
    client, _ = client_with({})
    assert url_problem(url, client.may_receive_credentials) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.com/",
        "https://twilio.com.evil.com/",
        "https://evil.com#.twilio.com",
        "https://evil.com?.twilio.com",
        "https://api.twilio.com@evil.com/",
        "https://api.twilio.com:443@evil.com/",
        "http://api.twilio.com/",
        "https://eviltwilio.com/",
        "https://api.twilio.com\\@evil.com/",
        "https://api.twilio.com\n.evil.com/",
        "https://api.twilio.com:99999/",
        "https://api.twilio.com/2010-04-01/../../x",
        "https://api.twilio.com/%2E%2E/x",
        "https://xn--twilio-.com/",
        "https://api.twilio.com\u3002evil.com/",
        "//api.twilio.com/x",
        "/2010-04-01/Accounts/{AccountSid}/Calls.json",
        "javascript:alert(1)",
        # twilio.com hosts that are not REST APIs never see the credentials
        "https://twilio.com/x",
        "https://www.twilio.com/console",
        "https://status.twilio.com/api/v2/summary.json",
        "https://support.twilio.com/hc",
        "https://example.sip.twilio.com/x",
        "https://api.sip.twilio.com/x",
        "https://console.twilio.com/x",
        "https://demo.twilio.com/owl.png",
        "https://media.twiliocdn.com/x",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    client, _ = client_with({})
    assert url_problem(url, client.may_receive_credentials) is not None


@pytest.mark.parametrize(
    "path",
    ["/../x", "/a/..", "/a/./b", "/%2e%2e/x", "/%2E%2e/x", "/%252E%252E/x", "/a%2f..%2fb", "/a\\b", "/a#b", "/a b"],
)
def test_paths_that_may_leave_the_api_root_are_refused(path: str) -> None:
    assert path_problem(path) is not None


@pytest.mark.parametrize(
    "path", ["/Accounts/{AccountSid}/Calls.json", "/Accounts/{AccountSid}/Messages.json?PageSize=5", "/a..b/c.json"]
)
def test_ordinary_paths_are_accepted(path: str) -> None:
    assert path_problem(path) is None


def test_the_configured_base_may_use_http() -> None:
    client = TwilioClient("http://127.0.0.1:4010", StubStore())  # type: ignore[arg-type]
    assert url_problem("http://127.0.0.1:4010/v1/Services", client.may_receive_credentials) is None
    assert url_problem("http://127.0.0.1:4011/v1/Services", client.may_receive_credentials) is not None


# --- parsing --------------------------------------------------------------------------------


def test_defaults() -> None:
    request = parse({"path": "/Accounts/{AccountSid}/Calls.json"})

    assert (request.method, request.response_type, request.timeout) == ("GET", "json", 10.0)
    assert (request.retry.max_retries, request.retry.max_rate_limit_retries) == (0, 3)  # 429 is always waited out
    assert request.body is None and not request.multipart


def test_query_values_become_pairs_with_repeated_keys() -> None:
    request = parse({"path": "/x.json", "query": {"To": ["+1", "+2"], "PageSize": 20, "On": False}})

    assert request.query == [("To", "+1"), ("To", "+2"), ("PageSize", "20"), ("On", "false")]


def test_json_data_is_serialized_only_with_a_json_content_type() -> None:
    as_json = parse({"method": "POST", "path": "/x", "headers": {"content-type": "application/json"}, "data": [1]})
    as_form = parse({"method": "POST", "path": "/x", "data": {"A": [1, 2]}})

    assert as_json.body == b"[1]"
    assert as_form.body == [("A", "1"), ("A", "2")]


def test_retry_settings_become_a_policy_without_jitter() -> None:
    request = parse({"path": "/x", "retry": {"maxRetries": 3, "delayMs": 200, "exponentialBackoff": True}})

    assert request.retry.max_retries == request.retry.max_rate_limit_retries == 3
    assert [request.retry.delay(n) for n in (1, 2, 3)] == [0.2, 0.4, 0.8]
    assert UserRetryPolicy(base_delay=0.3, exponential=False).delay(4) == 0.3


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, {"path"}),
        ([], {"(body)"}),
        ({"path": "/x", "url": "https://api.twilio.com/x"}, {"url"}),
        ({"path": 5}, {"path"}),
        ({"url": 5}, {"url"}),
        ({"path": "/x", "query": {"a": {"b": 1}}}, {"query.a"}),
        ({"path": "/x", "query": "a=b"}, {"query"}),
        ({"path": "/x", "headers": {"X-A": None}}, {"headers.X-A"}),
        ({"path": "/x", "headers": {"Bad Name": "x"}}, {"headers.Bad Name"}),
        ({"path": "/x", "headers": {"Proxy-Authorization": "x"}}, {"headers.Proxy-Authorization"}),
        ({"path": "/x", "headers": {"Transfer-Encoding": "chunked"}}, {"headers.Transfer-Encoding"}),
        ({"path": "/x", "data": {"a": 1}}, {"data"}),
        ({"method": "POST", "path": "/x", "data": {"a": 1}, "formData": {"b": 2}}, {"data"}),
        (
            {"method": "POST", "path": "/x", "formData": {"b": 2}, "headers": {"Content-Type": "text/plain"}},
            {"headers.Content-Type"},
        ),
        ({"method": "POST", "path": "/x", "files": []}, {"files"}),
        (
            {"method": "POST", "path": "/x", "files": [{"field": "f", "filename": "a\r\n.png", "contentBase64": "%"}]},
            {"files[0].filename", "files[0].contentBase64"},
        ),
        (
            {"method": "POST", "path": "/x", "files": [{"field": "f", "filename": "a", "contentBase64": "", "x": 1}]},
            {"files[0].x"},
        ),
        ({"path": "/x", "timeoutMs": "1000"}, {"timeoutMs"}),
        ({"path": "/x", "timeoutMs": 900_001}, {"timeoutMs"}),
        ({"path": "/x", "retry": {"maxRetries": True}}, {"retry.maxRetries"}),
        ({"path": "/x", "retry": {"tries": 1}}, {"retry.tries"}),
        ({"path": "/x", "retry": 3}, {"retry"}),
        ({"path": "/x", "responseType": "blob"}, {"responseType"}),
    ],
)
def test_problems_are_named_by_field(payload: Any, expected: set[str]) -> None:
    assert set(problems(payload)) == expected


def test_placeholders_are_replaced_in_path_and_url() -> None:
    client, _ = client_with({})
    by_path = parse_raw_request({"path": "/Accounts/$TWILIO_ACCOUNT_SID/X.json"}, client.may_receive_credentials)
    by_url = parse_raw_request(
        {"url": "https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Y.json"}, client.may_receive_credentials
    )

    assert target_url(client, by_path) == f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/X.json"
    assert target_url(client, by_url) == f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Y.json"


# --- execution ------------------------------------------------------------------------------


def test_a_messaging_service_is_read_from_messaging_twilio_com_with_the_credentials() -> None:
    url = "https://messaging.twilio.com/v1/Services/MG0123456789abcdef0123456789abcdef"
    service = {"sid": "MG0123456789abcdef0123456789abcdef", "friendly_name": "Alerts"}
    client, transport = client_with({url: (200, {"Content-Type": "application/json"}, json.dumps(service).encode())})
    request = parse_raw_request(json.loads(_sample("direct_messaging_service.json")), client.may_receive_credentials)

    answer = execute_raw_request(client, request, Deadline.after(30))

    assert answer == {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": service}
    assert [(r.method, r.url) for r in transport.sent] == [("GET", url)]
    assert transport.sent[0].headers["Authorization"] == basic_auth()


def _sample(name: str) -> str:
    from tests.support import EVENTS

    return (EVENTS / "raw_request" / name).read_text()


def test_a_redirect_to_another_twilio_host_is_followed() -> None:
    first = "https://api.twilio.com/2010-04-01/Accounts/X/Media/ME1"
    second = "https://media.twilio.com/v1/ME1"
    client, transport = client_with(
        {first: (302, {"Location": second}, b""), second: (200, {"Content-Type": "image/png"}, b"\x89PNG")}
    )
    request = parse_raw_request({"url": first, "responseType": "binary"}, client.may_receive_credentials)

    answer = execute_raw_request(client, request, Deadline.after(30))

    assert answer["statusCode"] == 200
    assert base64.b64decode(answer["body"]) == b"\x89PNG"
    assert [r.url for r in transport.sent] == [first, second]


@pytest.mark.parametrize(
    "location", ["https://evil.com/x", "http://media.twilio.com/x", "https://media.twiliocdn.com/x", "//evil.com/x"]
)
def test_a_redirect_elsewhere_is_answered_not_followed(location: str) -> None:
    first = "https://api.twilio.com/2010-04-01/Accounts/X/Media/ME1"
    client, transport = client_with({first: (307, {"Location": location}, b"")})
    request = parse_raw_request({"url": first}, client.may_receive_credentials)

    answer = execute_raw_request(client, request, Deadline.after(30))

    assert answer["statusCode"] == 307
    assert answer["headers"]["location"] == location
    assert [r.url for r in transport.sent] == [first]


def test_a_303_after_a_post_is_followed_with_a_get_without_the_body() -> None:
    first = "https://api.twilio.com/2010-04-01/Accounts/X/Jobs.json"
    second = "https://api.twilio.com/2010-04-01/Accounts/X/Jobs/1.json"
    client, transport = client_with({first: (303, {"Location": second}, b""), second: (200, {}, b"{}")})
    request = parse_raw_request({"method": "POST", "url": first, "data": {"A": "1"}}, client.may_receive_credentials)

    execute_raw_request(client, request, Deadline.after(30))

    assert [(r.method, r.url, r.body) for r in transport.sent] == [("POST", first, "A=1"), ("GET", second, None)]


def test_redirect_loops_stop() -> None:
    url = "https://api.twilio.com/2010-04-01/Loop.json"
    client, transport = client_with({url: (302, {"Location": url}, b"")})
    request = parse_raw_request({"url": url}, client.may_receive_credentials)

    answer = execute_raw_request(client, request, Deadline.after(30))

    assert answer["statusCode"] == 302
    assert len(transport.sent) == 4  # the request and three redirects
