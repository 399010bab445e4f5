"""List request parsing, page tokens and page walking, with a stub in place of the Twilio client."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.support import ACCOUNT_SID, twilio_message
from twilio_messaging.adapters import Invocation
from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import NotFound, TwilioUnavailable, ValidationError
from twilio_messaging.listing import (
    RESOURCES,
    ListRequest,
    PagePosition,
    decode_token,
    encode_token,
    list_resource,
    page_uri_problem,
    parse_list_request,
)

MESSAGES = RESOURCES["messages"]
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
OTHER_ACCOUNT = "AC" + "f" * 32


class StubClient:
    """Answers GETs from a dict of URI -> page and records the URIs asked for."""

    base_url = "https://api.twilio.com"

    def account_sid(self, deadline: Any = None) -> str:
        return ACCOUNT_SID

    def __init__(self, pages: dict[str, dict[str, Any]]) -> None:
        self.pages = pages
        self.requested: list[str] = []

    def request_json(self, method: str, url: str, **_: Any) -> dict[str, Any]:
        assert method == "GET"
        uri = url.removeprefix(self.base_url)
        self.requested.append(uri)
        return self.pages[uri]


def direct(**payload: Any) -> dict[str, Any]:
    return payload


def api(resource: str, **query: list[str]) -> tuple[dict[str, str], str, list[str]]:
    """What the list function hands the parser for an API request: one value each, the route,
    and the names given more than once."""
    fields, repeated = Invocation(source="api", method="GET", resource=resource, query=query).query_fields()
    return fields, resource, repeated


def parsed(request: Any) -> ListRequest:
    """`direct(...)` or `api(...)` through the parser, as the list function calls it."""
    return parse_list_request(*request) if isinstance(request, tuple) else parse_list_request(request)


def token_of(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def problems_of(error: ValidationError) -> dict[str, str]:
    return {d["field"]: d["problem"] for d in error.details}


# --- parsing --------------------------------------------------------------------------------


def test_defaults_are_page_size_50_and_a_limit_of_one_page() -> None:
    request = parsed(direct())

    assert request.resource is MESSAGES
    assert (request.page_size, request.limit, request.filters, request.position) == (50, 50, {}, None)
    assert request.twilio_params() == [("PageSize", "50")]


def test_api_query_values_are_parsed_and_routed_by_resource() -> None:
    request = parsed(api("/phone-numbers", pageSize=["10"], limit=["25"]))

    assert request.resource is RESOURCES["phoneNumbers"]
    assert (request.page_size, request.limit) == (10, 25)


def test_filters_are_refused_on_lists_that_do_not_have_them() -> None:
    with pytest.raises(ValidationError) as raised:
        parsed(direct(resource="callerIds", to="+15558675310"))

    assert problems_of(raised.value) == {"to": "is not a known field"}


def test_an_unknown_api_route_is_not_found() -> None:
    with pytest.raises(NotFound):
        parsed(api("/numbers"))


def test_a_repeated_query_parameter_is_a_problem() -> None:
    with pytest.raises(ValidationError) as raised:
        parsed(api("/messages", to=["+15558675310", "+15558675311"]))

    assert problems_of(raised.value) == {"to": "must be given once"}


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ValidationError) as raised:
        parsed(
            direct(
                pageSize=True,
                limit=10001,
                to="555",
                dateSent="2026-02-30",
                dateSentAfter="2026-11-22",
                dateSentBefore="2026-11-01T00:00:00Z",
                pageToken="",
                extra=1,
            )
        )

    assert set(problems_of(raised.value)) == {
        "pageSize",
        "limit",
        "to",
        "dateSent",
        "dateSentAfter",
        "pageToken",
        "extra",
    }


def test_dates_and_date_times_are_sent_as_utc_date_times() -> None:
    request = parsed(direct(dateSentAfter="2026-11-01T08:00:00-05:00", dateSentBefore="2026-11-22"))

    assert request.twilio_params() == [
        ("DateSent>", "2026-11-01T13:00:00Z"),
        ("DateSent<", "2026-11-22T00:00:00Z"),
        ("PageSize", "50"),
    ]


def test_date_sent_takes_a_date_only() -> None:
    with pytest.raises(ValidationError) as raised:
        parsed(direct(dateSent="2026-11-01T08:00:00Z"))

    assert problems_of(raised.value) == {"dateSent": "must be YYYY-MM-DD"}


# --- tokens ---------------------------------------------------------------------------------


def test_a_token_round_trips_its_position_and_filters() -> None:
    position = PagePosition(f"{MESSAGES_PATH}?To=%2B15558675310&PageSize=3&Page=1&PageToken=PA1", 2)
    token = encode_token(MESSAGES, position, {"to": "+15558675310"})

    assert "=" not in token and "/" not in token and "+" not in token  # URL-safe, unpadded
    assert decode_token(token, MESSAGES) == (position, {"to": "+15558675310"}, None)


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json",
        "//evil.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json",
        f"{MESSAGES_PATH}/../../../Calls.json",
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json",
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers.json",
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json#x",
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json?a=b\r\nHost: evil.com",
        f"/v1/Accounts/{ACCOUNT_SID}/Messages.json",
        "Messages.json",
        42,
    ],
)
def test_a_page_uri_must_name_this_list_on_the_configured_api(uri: Any) -> None:
    assert page_uri_problem(uri, MESSAGES) is not None
    token = token_of({"v": 1, "r": "messages", "u": uri, "o": 0, "f": {}})
    with pytest.raises(ValidationError) as raised:
        parsed(direct(pageToken=token))
    assert set(problems_of(raised.value)) == {"pageToken"}


@pytest.mark.parametrize(
    "document",
    [
        {"v": 2, "r": "messages", "u": MESSAGES_PATH, "o": 0, "f": {}},
        {"v": 1, "r": "callerIds", "u": MESSAGES_PATH, "o": 0, "f": {}},
        {"v": 1, "r": "messages", "u": MESSAGES_PATH, "o": -1, "f": {}},
        {"v": 1, "r": "messages", "u": MESSAGES_PATH, "o": "1", "f": {}},
        {"v": 1, "r": "messages", "u": MESSAGES_PATH, "o": 0, "f": {"colour": "blue"}},
        {"v": 1, "r": "messages", "u": MESSAGES_PATH, "o": 0},
        ["not", "an", "object"],
    ],
)
def test_tampered_tokens_are_refused(document: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        parsed(direct(pageToken=token_of(document)))

    assert set(problems_of(raised.value)) == {"pageToken"}


@pytest.mark.parametrize("token", ["%%%", "bm90IGpzb24", "x" * 5000])
def test_garbage_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValidationError):
        parsed(direct(pageToken=token))


def test_a_token_of_another_account_is_refused_before_any_call() -> None:
    uri = f"/2010-04-01/Accounts/{OTHER_ACCOUNT}/Messages.json?PageSize=3"
    request = parsed(direct(pageToken=encode_token(MESSAGES, PagePosition(uri), {})))
    client = StubClient({})

    with pytest.raises(ValidationError) as raised:
        list_resource(client, request, Deadline.after(30))  # type: ignore[arg-type]

    assert problems_of(raised.value) == {"pageToken": "belongs to another Twilio account"}
    assert client.requested == []


# --- walking --------------------------------------------------------------------------------


def pages_of(count: int, size: int) -> dict[str, dict[str, Any]]:
    uris = [f"{MESSAGES_PATH}?PageSize={size}"] + [
        f"{MESSAGES_PATH}?PageSize={size}&Page={n}&PageToken=PA{n}" for n in range(1, count)
    ]
    return {
        uri: {
            "messages": [twilio_message(f"SM{index * size + n:032x}") for n in range(1, size + 1)],
            "next_page_uri": uris[index + 1] if index + 1 < count else None,
        }
        for index, uri in enumerate(uris)
    }


def test_walking_resumes_inside_a_cut_page_and_returns_every_record_once() -> None:
    client = StubClient(pages_of(3, 4))
    seen: list[str] = []
    token = None
    for _ in range(5):
        fields: dict[str, Any] = {"pageSize": 4, "limit": 3}
        if token:
            fields["pageToken"] = token
        answer = list_resource(client, parsed(direct(**fields)), Deadline.after(30))  # type: ignore[arg-type]
        seen += [m["sid"] for m in answer["messages"]]
        token = answer["nextPageToken"]
        if token is None:
            break

    assert seen == [f"SM{n:032x}" for n in range(1, 13)]
    assert token is None


def test_a_short_deadline_stops_after_the_first_page_with_a_token_for_the_rest() -> None:
    client = StubClient(pages_of(3, 2))
    request = parsed(direct(pageSize=2, limit=6))

    answer = list_resource(client, request, Deadline.after(0.5))  # type: ignore[arg-type]

    assert [m["sid"] for m in answer["messages"]] == [f"SM{n:032x}" for n in (1, 2)]
    assert len(client.requested) == 1
    position, _, problem = decode_token(answer["nextPageToken"], MESSAGES)
    assert problem is None and position == PagePosition(f"{MESSAGES_PATH}?PageSize=2&Page=1&PageToken=PA1", 0)


def test_a_next_page_uri_elsewhere_is_not_followed() -> None:
    client = StubClient(
        {f"{MESSAGES_PATH}?PageSize=1": {"messages": [twilio_message()], "next_page_uri": "https://evil.com/x.json"}}
    )

    with pytest.raises(TwilioUnavailable):
        list_resource(client, parsed(direct(pageSize=1, limit=2)), Deadline.after(30))  # type: ignore[arg-type]

    assert client.requested == [f"{MESSAGES_PATH}?PageSize=1"]


def test_a_page_without_its_list_is_twilio_unavailable() -> None:
    client = StubClient({f"{MESSAGES_PATH}?PageSize=50": {"unexpected": []}})

    with pytest.raises(TwilioUnavailable):
        list_resource(client, parsed(direct()), Deadline.after(30))  # type: ignore[arg-type]
