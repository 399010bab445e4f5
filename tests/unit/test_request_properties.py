"""Property-based tests (hypothesis) of the request models: send, get, list and raw.

For any JSON-like input a parser either returns a request or raises `ValidationError` listing at
least one problem (never another exception); every valid request it is given parses, and what
it sends Twilio is what it was given. The webhook signature check has its own properties in
test_webhook_signature.py.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from twilio_messaging.adapters import Invocation
from twilio_messaging.errors import ValidationError
from twilio_messaging.listing import (
    RESOURCE_BY_ROUTE,
    RESOURCES,
    PagePosition,
    decode_token,
    encode_token,
    parse_list_request,
)
from twilio_messaging.message_by_sid import parse_message_request
from twilio_messaging.raw_request import RAW_FIELDS, parse_raw_request, url_problem
from twilio_messaging.send_request import SEND_FIELDS, parse_send_request
from twilio_messaging.settings import Settings
from twilio_messaging.twilio_client import TwilioClient

EXAMPLES = 150
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SETTINGS = Settings(twilio_secret_id="s", default_from="+15005550006")
ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
CLIENT = TwilioClient("https://api.twilio.com", cast(Any, None))  # only its URL rule is used here

# --- strategies -----------------------------------------------------------------------------

# Any text, lone surrogates included: JSON carries them ("\ud800") and UTF-8 cannot. (st.text
# leaves surrogates out whatever its alphabet says; a list of characters does not.)
surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
any_text = st.lists(st.characters() | surrogates, max_size=40).map("".join)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | any_text


def json_like(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """JSON values whose object keys are mostly the given field names, so that parsers get past
    their first checks; values nest a few levels."""
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys | any_text, children, max_size=6),
        max_leaves=12,
    )


def payloads(fields: set[str], good: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """A JSON-like request: any JSON value, or (mostly) an object of known fields with arbitrary
    values, some of them replaced by plausible ones (`good`) so that parsing gets further."""
    keys = st.sampled_from(sorted(fields))
    objects = st.builds(
        lambda base, plausible: {**base, **plausible},
        st.dictionaries(keys | any_text, json_like(keys), max_size=len(fields)),
        st.fixed_dictionaries({}, optional=good),
    )
    return st.one_of(json_like(keys), objects, objects)


def digits(low: int, high: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=low, max_size=high)


e164 = st.builds(lambda first, rest: f"+{first}{rest}", st.sampled_from("123456789"), digits(7, 14))
channel_address = st.builds(lambda kind, number: f"{kind}:{number}", st.sampled_from(["whatsapp", "rcs"]), e164)
recipient = e164 | channel_address
short_code = digits(3, 8)
alphanumeric_sender = st.from_regex(r"\A[A-Za-z][A-Za-z0-9 ]{0,10}\Z")
sender = e164 | channel_address | short_code | alphanumeric_sender
hex32 = st.text("0123456789abcdef", min_size=32, max_size=32)
service_sid = hex32.map(lambda h: "MG" + h)
message_sid = st.builds(lambda prefix, h: prefix + h, st.sampled_from(["SM", "MM"]), hex32)
url_path = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_/", max_size=30)
https_url = st.builds(
    lambda host, path: f"https://{host}.example.com/{path}", st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z"), url_path
)
# Message bodies: any text but lone surrogates (see test_a_lone_surrogate_in_a_send_body_is_a_validation_error).
body_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=1600)


def top_level(field: str) -> str:
    return re.split(r"[\[.]", field, maxsplit=1)[0] or field


def assert_listed(error: ValidationError) -> None:
    """A ValidationError lists every problem: at least one, each naming a field and the problem."""
    assert error.details, "a ValidationError without details"
    for detail in error.details:
        assert set(detail) == {"field", "problem"}
        assert isinstance(detail["field"], str) and detail["field"]
        assert isinstance(detail["problem"], str) and detail["problem"]
        assert f"{detail['field']}: {detail['problem']}" in error.message
    json.dumps(error.to_dict()).encode("utf-8")  # the error itself is sendable


def encodable(*texts: str) -> bool:
    try:
        for text in texts:
            text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- send -----------------------------------------------------------------------------------


@PROPERTY
@given(payloads(SEND_FIELDS, {"to": recipient | st.lists(recipient, max_size=3), "body": body_text, "from": sender}))
def test_send_parses_or_lists_its_problems(payload: Any) -> None:
    try:
        request = parse_send_request(payload, SETTINGS)
    except ValidationError as error:
        assert_listed(error)
        event("refused")
        return
    event("parsed")
    assert request.recipients
    for to in request.recipients:
        form = request.twilio_form(to, "https://hooks.example.com/webhooks/twilio")
        assert form[0] == ("To", to)
        assert all(isinstance(value, str) for _, value in form)


@st.composite
def valid_sends(draw: st.DrawFn) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if draw(st.booleans()):
        payload["to"] = draw(st.lists(recipient, min_size=1, max_size=5, unique=True))
    else:
        payload["to"] = draw(recipient)
    sender_kind = draw(st.sampled_from(["from", "messagingServiceSid", "default"]))
    if sender_kind == "from":
        payload["from"] = draw(sender)
    elif sender_kind == "messagingServiceSid":
        payload["messagingServiceSid"] = draw(service_sid)
    media = draw(st.lists(https_url, max_size=10))
    if media:
        payload["mediaUrl"] = media
    if not media or draw(st.booleans()):
        payload["body"] = draw(body_text)
    if draw(st.booleans()):
        payload["validityPeriod"] = draw(st.integers(1, 36000))
    callback = draw(st.sampled_from(["absent", "null", "url"]))
    if callback == "null":
        payload["statusCallback"] = None
    elif callback == "url":
        payload["statusCallback"] = draw(https_url)
    for flag in ("shortenUrls", "sendAsMms", "smartEncoded"):
        if draw(st.booleans()):
            payload[flag] = draw(st.booleans())
    return payload


@PROPERTY
@given(valid_sends())
def test_a_valid_send_parses_and_reaches_twilio_unchanged(payload: dict[str, Any]) -> None:
    request = parse_send_request(payload, SETTINGS)
    recipients = payload["to"] if isinstance(payload["to"], list) else [payload["to"]]
    assert request.recipients == recipients
    assert request.batch is isinstance(payload["to"], list)
    default_callback = "https://api.example.com/prod/webhooks/twilio"
    for to in recipients:
        form = request.twilio_form(to, default_callback)
        fields = dict(form)
        assert form[0] == ("To", to)
        if "from" in payload:
            assert fields["From"] == payload["from"] and "MessagingServiceSid" not in fields
        elif "messagingServiceSid" in payload:
            assert fields["MessagingServiceSid"] == payload["messagingServiceSid"] and "From" not in fields
        else:
            assert fields["From"] == SETTINGS.default_from
        assert fields.get("Body") == payload.get("body")
        assert [v for k, v in form if k == "MediaUrl"] == payload.get("mediaUrl", [])
        assert fields.get("ValidityPeriod") == (str(payload["validityPeriod"]) if "validityPeriod" in payload else None)
        expected_callback = payload.get("statusCallback", default_callback)
        assert fields.get("StatusCallback") == expected_callback
        for flag, twilio_name in (("shortenUrls", "ShortenUrls"), ("sendAsMms", "SendAsMms")):
            if flag in payload:
                assert fields[twilio_name] == ("true" if payload[flag] else "false")
        allowed = {"To", "From", "MessagingServiceSid", "Body", "MediaUrl", "StatusCallback", "ValidityPeriod"}
        assert {k for k, _ in form} <= allowed | {"ShortenUrls", "SendAsMms", "SmartEncoded"}


BREAKERS: dict[str, tuple[str, Any]] = {
    "to": ("to", 15558675310),
    "body": ("body", "x" * 1601),
    "validityPeriod": ("validityPeriod", 0),
    "mediaUrl": ("mediaUrl", ["ftp://example.com/a.png"]),
    "messagingServiceSid": ("messagingServiceSid", "MG-not-a-sid"),
    "contentSid": ("contentSid", "HX"),
    "sendAsMms": ("sendAsMms", "yes"),
    "statusCallback": ("statusCallback", "not a url"),
    "idempotencyKey": ("idempotencyKey", ""),
    "colour": ("colour", "red"),
}


@PROPERTY
@given(valid_sends(), st.sets(st.sampled_from(sorted(BREAKERS)), min_size=1))
def test_every_problem_of_a_send_is_listed_at_once(payload: dict[str, Any], broken: set[str]) -> None:
    for name in broken:
        field, value = BREAKERS[name]
        payload[field] = value
    if "messagingServiceSid" in broken:
        payload.pop("from", None)
    with pytest.raises(ValidationError) as caught:
        parse_send_request(payload, SETTINGS)
    assert_listed(caught.value)
    assert {top_level(d["field"]) for d in caught.value.details} == broken


def test_a_lone_surrogate_in_a_send_body_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        request = parse_send_request({"to": "+15558675310", "body": "Hi \ud800"}, SETTINGS)
        for _, value in request.twilio_form("+15558675310", None):
            value.encode("utf-8")


# --- get ------------------------------------------------------------------------------------


@PROPERTY
@given(payloads({"sid", "method"}, {"sid": message_sid}))
def test_get_direct_parses_or_lists_its_problems(payload: Any) -> None:
    try:
        request = parse_message_request(payload)
    except ValidationError as error:
        assert_listed(error)
        event("refused")
        return
    event("parsed")
    assert re.fullmatch(r"(SM|MM)[0-9a-f]{32}", request.sid) and request.method in ("GET", "DELETE")


@PROPERTY
@given(
    st.sampled_from(["GET", "DELETE"]),
    st.dictionaries(st.just("sid"), any_text | message_sid),
    st.dictionaries(any_text, st.lists(any_text, max_size=2), max_size=2),
)
def test_get_over_the_api_parses_or_lists_its_problems(
    method: str, path: dict[str, str], query: dict[str, list[str]]
) -> None:
    fields, _ = Invocation(source="api", method=method, path_parameters=path, query=query).query_fields()
    try:
        request = parse_message_request(fields, path_sid=path.get("sid", ""), http_method=method)
    except ValidationError as error:
        assert_listed(error)
        event("refused")
        return
    event("parsed")
    assert request.sid == path["sid"] and request.method == method and not query


@PROPERTY
@given(message_sid, st.sampled_from(["get", "GET", "Get", "delete", "DELETE"]))
def test_a_valid_get_parses(sid: str, method: str) -> None:
    request = parse_message_request({"sid": sid, "method": method})
    assert (request.sid, request.method) == (sid, method.upper())


# --- list -----------------------------------------------------------------------------------

LIST_FIELDS = {
    "resource",
    "pageSize",
    "pageToken",
    "limit",
    "to",
    "from",
    "dateSent",
    "dateSentAfter",
    "dateSentBefore",
}
dates = st.dates().map(lambda d: d.isoformat())
list_values: dict[str, st.SearchStrategy[Any]] = {
    "resource": st.sampled_from(sorted(RESOURCES)),
    "pageSize": st.integers(-5, 1005) | st.integers(-5, 1005).map(str),
    "to": recipient,
    "dateSent": dates,
}


@PROPERTY
@given(payloads(LIST_FIELDS, list_values))
def test_list_direct_parses_or_lists_its_problems(payload: Any) -> None:
    try:
        request = parse_list_request(payload)
    except ValidationError as error:
        assert_listed(error)
        event("refused")
        return
    event("parsed")
    assert 1 <= request.page_size <= 1000 and 1 <= request.limit <= 10000
    assert all(encodable(k, v) for k, v in request.twilio_params())


@PROPERTY
@given(
    st.sampled_from(sorted(RESOURCE_BY_ROUTE)),
    st.dictionaries(
        st.sampled_from(sorted(LIST_FIELDS - {"resource"})) | any_text,
        st.lists(any_text | digits(1, 4) | recipient | dates, min_size=1, max_size=2),
        max_size=5,
    ),
)
def test_list_over_the_api_parses_or_lists_its_problems(route: str, query: dict[str, list[str]]) -> None:
    try:
        fields, repeated = Invocation(source="api", resource=route, query=query).query_fields()
        request = parse_list_request(fields, route=route, repeated=repeated)
    except ValidationError as error:
        assert_listed(error)
        event("refused")
        return
    event("parsed")
    assert request.resource.route == route
    assert all(encodable(k, v) for k, v in request.twilio_params())


@st.composite
def valid_lists(draw: st.DrawFn) -> dict[str, Any]:
    payload: dict[str, Any] = {"resource": draw(st.sampled_from(sorted(RESOURCES)))}
    if draw(st.booleans()):
        payload["pageSize"] = draw(st.integers(1, 1000))
    if draw(st.booleans()):
        payload["limit"] = draw(st.integers(1, 10000))
    if payload["resource"] == "messages":
        if draw(st.booleans()):
            payload["to"] = draw(recipient)
        if draw(st.booleans()):
            payload["from"] = draw(sender)
        if draw(st.booleans()):
            payload["dateSent"] = draw(dates)
    return payload


@PROPERTY
@given(valid_lists())
def test_a_valid_list_parses_into_twilios_parameters(payload: dict[str, Any]) -> None:
    request = parse_list_request(payload)
    params = dict(request.twilio_params())
    assert params["PageSize"] == str(payload.get("pageSize", 50))
    assert request.limit == payload.get("limit", request.page_size)
    for name, twilio_name in (("to", "To"), ("from", "From")):
        given = payload.get(name)
        assert params.get(twilio_name) == (given.strip() if isinstance(given, str) else given)  # trimmed
    if "dateSent" in payload:
        assert params["DateSent"] == payload["dateSent"] + "T00:00:00Z"


@PROPERTY
@given(
    st.sampled_from(sorted(RESOURCES)),
    st.integers(0, 999),
    st.integers(0, 10**6),
    st.dictionaries(st.sampled_from(["to", "from"]), recipient, max_size=2),
)
def test_a_page_token_round_trips(resource_name: str, offset: int, page: int, filters: dict[str, str]) -> None:
    resource = RESOURCES[resource_name]
    if resource_name != "messages":
        filters = {}
    uri = f"/2010-04-01/Accounts/{ACCOUNT_SID}{resource.twilio_path}?PageSize=50&Page={page}"
    token = encode_token(resource, PagePosition(uri, offset), filters)
    assert decode_token(token, resource) == (PagePosition(uri, offset), filters, None)
    request = parse_list_request({"resource": resource_name, "pageToken": token})
    assert request.position == PagePosition(uri, offset) and request.filters == filters


@PROPERTY
@given(st.sampled_from(sorted(RESOURCES)), json_like(st.sampled_from(["v", "r", "u", "o", "f"])))
def test_a_forged_page_token_never_names_another_host(resource_name: str, document: Any) -> None:
    """Whatever a token holds, a position it yields is a page path of this list on the API."""
    resource = RESOURCES[resource_name]
    token = base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")
    position, _, problem = decode_token(token, resource)
    if problem is None:
        assert position is not None
        parts = urlsplit(position.uri)
        assert not parts.scheme and not parts.netloc and parts.path.endswith(resource.twilio_path)


# --- raw ------------------------------------------------------------------------------------

raw_values: dict[str, st.SearchStrategy[Any]] = {
    "method": st.sampled_from(["GET", "POST", "put", "TRACE", ""]),
    "path": st.builds(lambda p: "/" + p, any_text),
    "url": st.builds(lambda p: "https://api.twilio.com/" + p, any_text),
    "query": st.dictionaries(any_text, scalars | st.lists(scalars, max_size=3), max_size=3),
    "headers": st.dictionaries(st.sampled_from(["Content-Type", "Accept", "X-Test", "Host"]) | any_text, scalars),
}


@PROPERTY
@given(payloads(RAW_FIELDS, raw_values))
def test_raw_parses_or_lists_its_problems(payload: Any) -> None:
    try:
        request = parse_raw_request(payload, CLIENT.may_receive_credentials)
    except ValidationError as error:
        assert_listed(error)
        event("refused")
        return
    event("parsed")
    # Whatever was accepted can be sent: every string encodes, no header carries a line break.
    texts = [text for pair in [*request.query, *request.form_fields] for text in pair]
    if isinstance(request.body, list):
        texts += [text for pair in request.body for text in pair]
    texts += [*request.headers, *request.headers.values(), request.path or "", request.url or ""]
    texts += [text for f in request.files for text in (f.field_name, f.filename, f.content_type)]
    assert encodable(*texts)
    assert not any("\r" in text or "\n" in text for text in [*request.headers, *request.headers.values()])
    assert request.method in ("GET", "POST", "PUT", "PATCH", "DELETE")


@PROPERTY
@given(
    st.sampled_from(["/Accounts/{AccountSid}/Messages.json", "/Accounts/$TWILIO_ACCOUNT_SID/Calls.json"]),
    st.dictionaries(
        st.from_regex(r"\A[A-Za-z][A-Za-z0-9]{0,15}\Z"),
        st.text() | st.lists(st.text(), min_size=1, max_size=3),  # st.text(): no lone surrogates
        max_size=4,
    ),
)
def test_a_valid_raw_query_reaches_twilio_unchanged(path: str, query: dict[str, Any]) -> None:
    request = parse_raw_request({"path": path, "query": query}, CLIENT.may_receive_credentials)
    expected = [(k, item) for k, v in query.items() for item in (v if isinstance(v, list) else [v])]
    assert request.query == expected and request.method == "GET" and request.path == path


hosts = st.sampled_from(
    [
        "api.twilio.com",
        "messaging.twilio.com",
        "twilio.com",
        "evil.com",
        "api.twilio.com.evil.com",
        "eviltwilio.com",
        "api.twilio.com@evil.com",
        "evil.com#@api.twilio.com",
        "evil.com\\@api.twilio.com",
        "api.twilio.com:443",
        "api.twilio.com:8443",
        "API.TWILIO.COM",
        "[::1]",
        "127.0.0.1",
        "",
    ]
)
path_segments = st.sampled_from(["v1", "..", ".", "%2e%2e", "%252e%252e", "Services", "a b", "x\ty", "%0a", "?q=1"])


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["https", "http", "HTTPS", "ftp", ""]),
    hosts,
    st.lists(path_segments, max_size=4),
    st.sampled_from(["", "?a=b", "#frag"]),
)
def test_credentials_only_ever_go_to_twilio_over_https(scheme: str, host: str, segments: list[str], tail: str) -> None:
    url = f"{scheme}://{host}/{'/'.join(segments)}{tail}" if scheme else f"//{host}/{'/'.join(segments)}"
    if url_problem(url, CLIENT.may_receive_credentials) is not None:
        return
    parts = urlsplit(url)
    hostname = parts.hostname or ""
    assert parts.scheme == "https"
    assert hostname == "twilio.com" or hostname.endswith(".twilio.com")
    assert "@" not in parts.netloc and not parts.fragment
    assert parts.port in (None, 443)
    decoded = unquote(unquote(parts.path))
    assert not any(segment in (".", "..") for segment in decoded.split("/"))


@PROPERTY
@given(st.sampled_from(sorted(RAW_FIELDS)), st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3))
def test_a_lone_surrogate_anywhere_in_a_raw_request_is_a_problem_of_its_field(field: str, surrogate: str) -> None:
    containers: dict[str, Any] = {
        "query": {"To": surrogate},
        "headers": {"X-Test": surrogate},
        "data": {"Body": surrogate},
        "formData": {"Body": surrogate},
        "files": [{"field": "f", "filename": surrogate, "contentBase64": ""}],
        "retry": {surrogate: 1},
    }
    payload: dict[str, Any] = {"method": "POST", "path": "/Accounts/{AccountSid}/Calls.json"}
    payload[field] = containers.get(field, surrogate)
    if field == "url":
        payload.pop("path")
    assume(not (field == "data" and "formData" in payload))
    with pytest.raises(ValidationError) as caught:
        parse_raw_request(payload, CLIENT.may_receive_credentials)
    assert_listed(caught.value)
    assert field in {top_level(d["field"]) for d in caught.value.details}
