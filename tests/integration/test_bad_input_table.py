"""Bad input, table-driven, for every route and every direct-invoke payload (issue 6).

Each case is one event: an API Gateway request to a route of the template, or the payload of a
direct invoke (Step Functions, Lambda Invoke) or of an EventBridge event. Every one must be
refused before anything happens: over HTTP a 400 `VALIDATION_ERROR` whose details name exactly
the fields expected (403 `INVALID_SIGNATURE` for an unsigned webhook), never a 500; directly a
`ValidationError` with the same details; and in every case no request reaches the Twilio fake and
nothing is stored in the state table.

Cases that still fail because of a bug in a module this suite does not own are strict xfails
(`KNOWN_BUGS`): they turn into failures the moment the bug is fixed, so that the mark is removed.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import MESSAGE_SID, SECRET_ID, api_event, credentials, load_event, load_handler
from twilio_messaging.errors import ValidationError
from twilio_messaging.validation import MORE_PROBLEMS

TABLE = "twilio-messaging-state"
SEND_API = "send_message/api_gateway.json"
GET_API = "get_message/api_gateway.json"
DELETE_API = "get_message/api_gateway_delete.json"
RAW_API = "raw_request/api_gateway.json"
LIST_APIS = {
    "messages": "list_messages/api_gateway.json",
    "phone-numbers": "list_messages/api_gateway_phone_numbers.json",
    "caller-ids": "list_messages/api_gateway_caller_ids.json",
}
WEBHOOK_API = "webhook/status_callback.json"

HUGE = "x" * 100_000  # well under the 256 KB body limit, far over any field's limit


def arabic(digits: str) -> str:
    """ASCII digits as Arabic-Indic ones (U+0660…), which \\d matches unless the pattern is ASCII-only."""
    return "".join(chr(0x660 + int(ch)) if ch.isdigit() else ch for ch in digits)


def fullwidth(text: str) -> str:
    """ASCII letters and digits as their fullwidth forms (U+FF10…)."""
    return "".join(chr(ord(ch) + 0xFEE0) if ch.isalnum() else ch for ch in text)


ARABIC_DIGITS = arabic("+15558675310")
LONE_SURROGATE = "\ud800"  # valid in JSON ("\\ud800"), not encodable as UTF-8
DEEP_JSON = "[" * 100_000 + "]" * 100_000  # recursion limit of the JSON decoder
HUGE_INTEGER = '{"validityPeriod": 1' + "0" * 5000 + "}"  # Python's int digit limit
SEND = {"to": "+15558675310", "body": "Hi"}
RAW = {"method": "GET", "path": "/Accounts/{AccountSid}/IncomingPhoneNumbers.json"}
SERVICE_SID = "MG0123456789abcdef0123456789abcdef"
CONTENT_SID = "HX0123456789abcdef0123456789abcdef"

# Wrong-typed values, by JSON type name.
WRONG = {"number": 12345, "boolean": True, "array": ["x"], "object": {"a": "b"}, "string": "x"}


@dataclass(frozen=True)
class Bad:
    function: str  # functions/<function>
    event: Any  # an API Gateway event, or a direct/EventBridge payload
    fields: frozenset[str]  # the top-level fields the details must name, no more, no fewer
    status: int = 400


CASES: dict[str, Bad] = {}

# Bugs in modules outside this suite's remit, each reproduced by the cases that name it.
KNOWN_BUGS: dict[str, str] = {}


def case(name: str, function: str, event: Any, *fields: str, status: int = 400, bug: str | None = None) -> None:
    assert name not in CASES, name
    CASES[name] = Bad(function, event, frozenset(fields), status)
    if bug:
        KNOWN_BUGS[name] = bug


def top_level(field: str) -> str:
    """`to[3]` → `to`, `headers.Host` → `headers`, `files[0].field` → `files`."""
    return re.split(r"[\[.]", field, maxsplit=1)[0] or field


# --- event builders -------------------------------------------------------------------------


def api(template: str, *, body: Any = None, raw: str | None = None, **changes: Any) -> dict[str, Any]:
    return api_event(template, body=body, raw_body=raw, **changes)


def query_event(template: str, params: dict[str, str | list[str]]) -> dict[str, Any]:
    multi = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    return api(
        template,
        queryStringParameters={k: v[-1] for k, v in multi.items()} or None,
        multiValueQueryStringParameters=multi or None,
    )


def webhook(
    raw: str | None = None,
    *,
    signature: str | None = None,
    content_type: str | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """The sample status callback with another body, signature (None: no header) or content type."""
    event = copy.deepcopy(load_event(WEBHOOK_API))
    headers = {k: v for k, v in event["headers"].items() if k != "X-Twilio-Signature"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    if content_type is not None:
        headers["Content-Type"] = content_type
    event["headers"] = headers
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    if raw is not None:
        event["body"] = raw
    event["isBase64Encoded"] = base64_body
    return event


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def token(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


# --- bodies of POST /messages and POST /twilio-requests ------------------------------------

for route, function, template, valid in (
    ("send", "send_message", SEND_API, SEND),
    ("raw", "raw_request", RAW_API, RAW),
):
    body_cases: dict[str, tuple[dict[str, Any], tuple[str, ...], str | None]] = {
        "malformed JSON": ({"raw": '{"to": '}, ("(body)",), None),
        "single-quoted JSON": ({"raw": "{'to': '+15558675310'}"}, ("(body)",), None),
        "trailing comma": ({"raw": '{"body": "Hi",}'}, ("(body)",), None),
        "form-encoded body": ({"raw": "to=%2B15558675310&body=Hi"}, ("(body)",), None),
        "empty body": ({"raw": ""}, ("(body)",), None),
        "blank body": ({"raw": " \n\t "}, ("(body)",), None),
        "JSON null": ({"raw": "null"}, ("(body)",), None),
        "JSON array": ({"raw": json.dumps([valid])}, ("(body)",), None),
        "JSON string": ({"raw": '"+15558675310"'}, ("(body)",), None),
        "JSON number": ({"raw": "42"}, ("(body)",), None),
        "JSON NaN": ({"raw": "NaN"}, ("(body)",), None),
        "deeply nested JSON": ({"raw": DEEP_JSON}, ("(body)",), None),
        "integer of 5000 digits": ({"raw": HUGE_INTEGER}, ("(body)",), None),
        "body over 256 KB": ({"raw": json.dumps({**valid, "x": "y" * 300_000})}, ("(body)",), None),
        "wrong content type": (
            {"body": valid, "headers": {"Content-Type": "text/plain"}},
            ("Content-Type",),
            None,
        ),
        "form content type": (
            {"body": valid, "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            ("Content-Type",),
            None,
        ),
        "base64 garbage": ({"raw": "!!not base64!!", "isBase64Encoded": True}, ("(body)",), None),
        "base64 with bad padding": ({"raw": "eyJ0byI6", "isBase64Encoded": True}, ("(body)",), None),
        "base64 of non-UTF-8 bytes": ({"raw": b64(b"\xff\xfe{}"), "isBase64Encoded": True}, ("(body)",), None),
        "base64 of non-JSON": ({"raw": b64(b"to=+15558675310"), "isBase64Encoded": True}, ("(body)",), None),
        "base64 of an oversized body": (
            {"raw": b64(json.dumps({**valid, "x": "y" * 300_000}).encode()), "isBase64Encoded": True},
            ("(body)",),
            None,
        ),
        "no body at all": ({"body": None, "raw": None}, ("(body)",), None),
    }
    for label, (changes, fields, bug) in body_cases.items():
        changes = dict(changes)
        event = api(template, body=changes.pop("body", None), raw=changes.pop("raw", None), **changes)
        if label == "no body at all":
            event["body"] = None
        case(f"{route} API: {label}", function, event, *fields, bug=bug)


# --- POST /messages and the send payload (direct, EventBridge) ------------------------------


def send_case(name: str, payload: Any, *fields: str, bug: str | None = None) -> None:
    """The same payload over HTTP (as the JSON body), directly, and as an EventBridge detail."""
    case(f"send API: {name}", "send_message", api(SEND_API, raw=json.dumps(payload)), *fields, bug=bug)
    case(f"send direct: {name}", "send_message", payload, *fields, bug=bug)


for name, payload in {"null": None, "array": [SEND], "string": "+15558675310", "number": 7, "boolean": True}.items():
    case(f"send direct: payload is {name}", "send_message", payload, "(body)")
case(
    "send EventBridge: detail is an array",
    "send_message",
    {**load_event("send_message/eventbridge.json"), "detail": [SEND]},
    "(body)",
)
case(
    "send EventBridge: detail misses to and body",
    "send_message",
    {**load_event("send_message/eventbridge.json"), "detail": {"from": "+15005550006"}},
    "to",
    "body",
)

send_case("empty object", {}, "to", "body")
send_case("missing to", {"body": "Hi"}, "to")
send_case("missing body, mediaUrl and contentSid", {"to": "+15558675310"}, "body")
send_case("unknown field", {**SEND, "priority": "high"}, "priority")
send_case("unknown field with an empty name", {**SEND, "": "x"}, '""')
send_case("unknown field with a unicode name", {**SEND, "cölör": "red"}, "cölör")
send_case("unknown field with a control character", {**SEND, "to\x00": "x"}, "to\x00")
send_case("unknown field with a huge name", {**SEND, HUGE: 1}, HUGE[:99] + "…")
send_case("to is null", {**SEND, "to": None}, "to")
send_case("contentVariables without contentSid", {**SEND, "contentVariables": {"1": "x"}}, "contentVariables")
send_case("sendAt without a messaging service", {**SEND, "sendAt": "2099-01-01T00:00:00Z"}, "sendAt")
send_case("taskToken with several recipients", {**SEND, "to": ["+15558675310"], "taskToken": "t"}, "taskToken")
send_case(
    "taskToken with its own statusCallback",
    {**SEND, "taskToken": "t", "statusCallback": "https://example.com/cb"},
    "taskToken",
)

ACCEPTED_TYPES = {
    "to": {"string", "array"},
    "from": {"string"},
    "messagingServiceSid": set(),
    "body": {"string"},
    "mediaUrl": set(),
    "contentSid": set(),
    "contentVariables": set(),  # an object needs contentSid, which this payload lacks
    "statusCallback": set(),
    "sendAt": set(),
    "validityPeriod": {"number"},  # 12345 seconds is a valid period
    "idempotencyKey": {"string"},
    "taskToken": {"string"},
    "shortenUrls": {"boolean"},
    "sendAsMms": {"boolean"},
    "smartEncoded": {"boolean"},
}
for field_name, accepted in ACCEPTED_TYPES.items():
    for type_label, value in WRONG.items():
        if type_label in accepted:
            continue
        if field_name == "to" and type_label == "string":
            value = "x"  # a string, but not an address
        send_case(f"{field_name} is a {type_label}", {**SEND, field_name: value}, field_name)
send_case("to is an array of a bad string", {**SEND, "to": ["x"]}, "to")

for field_name in ("to", "from", "messagingServiceSid", "contentSid", "statusCallback", "sendAt", "idempotencyKey"):
    send_case(f"{field_name} is an empty string", {**SEND, field_name: ""}, field_name)
send_case("taskToken is an empty string", {**SEND, "taskToken": ""}, "taskToken")
send_case("body is an empty string", {**SEND, "body": ""}, "body")
send_case("to holds an empty string", {**SEND, "to": [""]}, "to")
send_case("mediaUrl holds an empty string", {**SEND, "mediaUrl": [""]}, "mediaUrl")

for field_name in ("to", "from", "messagingServiceSid", "body", "contentSid", "sendAt", "idempotencyKey", "taskToken"):
    send_case(f"{field_name} is a huge string", {**SEND, field_name: HUGE}, field_name)
send_case("statusCallback is a huge non-URL", {**SEND, "statusCallback": HUGE}, "statusCallback")
send_case("body of 1601 characters", {**SEND, "body": "x" * 1601}, "body")
send_case("idempotencyKey of 256 characters", {**SEND, "idempotencyKey": "k" * 256}, "idempotencyKey")
send_case("taskToken of 2049 characters", {**SEND, "taskToken": "t" * 2049}, "taskToken")

send_case("to in Arabic-Indic digits", {**SEND, "to": ARABIC_DIGITS}, "to")
send_case("to in fullwidth digits", {**SEND, "to": fullwidth("+15558675310")}, "to")
send_case("from as a short code in Arabic-Indic digits", {**SEND, "from": arabic("5555")}, "from")
send_case("to ending in a newline", {**SEND, "to": "+15558675310\n"}, "to")
send_case("to with a NUL", {**SEND, "to": "+1555\x008675310"}, "to")
send_case("to as a channel address with a control character", {**SEND, "to": "whatsapp:+1555867531\x07"}, "to")
send_case("from with a control character", {**SEND, "from": "ACME\x1b"}, "from")
send_case("from with a non-ASCII letter", {**SEND, "from": "ÄCME"}, "from")
send_case("from with a lone surrogate", {**SEND, "from": LONE_SURROGATE}, "from")
send_case("statusCallback with a newline", {**SEND, "statusCallback": "https://example.com/cb\n"}, "statusCallback")
send_case(
    "statusCallback with a tab in the host", {**SEND, "statusCallback": "https://exam\tple.com/cb"}, "statusCallback"
)
send_case("mediaUrl with a control character", {**SEND, "mediaUrl": ["https://example.com/a.png\r"]}, "mediaUrl")
send_case("mediaUrl not http", {**SEND, "mediaUrl": ["ftp://example.com/a.png"]}, "mediaUrl")
send_case(
    "messagingServiceSid in Arabic-Indic digits",
    {**SEND, "messagingServiceSid": "MG" + arabic("0" * 32)},
    "messagingServiceSid",
)
send_case("body with a lone surrogate", {**SEND, "body": "Hi " + LONE_SURROGATE}, "body")

send_case("101 recipients", {**SEND, "to": [f"+1555867{n:04d}" for n in range(101)]}, "to")
send_case("10000 recipients", {**SEND, "to": [f"+1555{n:07d}" for n in range(10_000)]}, "to")
send_case("a repeated recipient", {**SEND, "to": ["+15558675310", "+15558675310"]}, "to")
send_case("no recipients", {**SEND, "to": []}, "to")
send_case("11 media URLs", {**SEND, "mediaUrl": [f"https://example.com/{n}.png" for n in range(11)]}, "mediaUrl")
send_case("5000 media URLs", {**SEND, "mediaUrl": ["https://example.com/a.png"] * 5000}, "mediaUrl")
send_case("no media URLs", {"to": "+15558675310", "mediaUrl": []}, "mediaUrl")
send_case("validityPeriod 0", {**SEND, "validityPeriod": 0}, "validityPeriod")
send_case("validityPeriod 36001", {**SEND, "validityPeriod": 36001}, "validityPeriod")
send_case("validityPeriod 1.5", {**SEND, "validityPeriod": 1.5}, "validityPeriod")
send_case(
    "sendAt without a zone", {**SEND, "messagingServiceSid": SERVICE_SID, "sendAt": "2099-01-01T00:00:00"}, "sendAt"
)
send_case(
    "sendAt in the past", {**SEND, "messagingServiceSid": SERVICE_SID, "sendAt": "2020-01-01T00:00:00Z"}, "sendAt"
)
# Dates that exist in their own offset but fall outside years 1 to 9999 once in UTC.
for label, moment in {
    "before year 1 in UTC": "0001-01-01T00:00:00+14:00",
    "after 9999": "9999-12-31T23:59:59-14:00",
}.items():
    payload = {**SEND, "messagingServiceSid": SERVICE_SID, "sendAt": moment}
    send_case(f"sendAt {label}", payload, "sendAt")
    case(
        f"send EventBridge: sendAt {label}",
        "send_message",
        {**load_event("send_message/eventbridge.json"), "detail": payload},
        "sendAt",
    )
    for name in ("dateSentAfter", "dateSentBefore"):
        case(
            f"list messages API: {name} {label}",
            "list_messages",
            query_event(LIST_APIS["messages"], {name: moment}),
            name,
        )
        case(f"list direct: {name} {label}", "list_messages", {name: moment}, name)
# A task token names a task the function completes with its own role: direct invocation only.
case("send API: a taskToken", "send_message", api(SEND_API, raw=json.dumps({**SEND, "taskToken": "t"})), "taskToken")
case(
    "send EventBridge: a taskToken",
    "send_message",
    {**load_event("send_message/eventbridge.json"), "detail": {**SEND, "taskToken": "t"}},
    "taskToken",
)
send_case(
    "statusCallback host with an underscore", {**SEND, "statusCallback": "https://a_b.example.com/"}, "statusCallback"
)
send_case(
    "every problem at once",
    {"to": [], "body": "x" * 1601, "mediaUrl": ["ftp://x"], "validityPeriod": 0, "colour": "red", "sendAsMms": 1},
    "to",
    "body",
    "mediaUrl",
    "validityPeriod",
    "colour",
    "sendAsMms",
)
case(
    "send API: 120000 non-string recipients in 240 KB",
    "send_message",
    api(SEND_API, raw='{"body": "Hi", "to": [' + ",".join(["1"] * 120_000) + "]}"),
    "to",
    MORE_PROBLEMS,
)

# --- GET and DELETE /messages/{sid}, and the get payload ----------------------------------

BAD_SIDS = {
    "empty": "",
    "not a sid": "SMnot-a-sid",
    "upper-case hex": "SM" + "ABCDEF0123456789" * 2,
    "one character short": MESSAGE_SID[:-1],
    "one character long": MESSAGE_SID + "0",
    "another prefix": "AC" + MESSAGE_SID[2:],
    "trailing newline": MESSAGE_SID + "\n",
    "a NUL inside": MESSAGE_SID[:10] + "\x00" + MESSAGE_SID[11:],
    "Arabic-Indic digits": "SM" + arabic("0" * 32),
    "a path": "../Calls/" + MESSAGE_SID,
    "percent-encoded": "SM%2e%2e" + MESSAGE_SID[8:],
    "huge": "SM" + "a" * 100_000,
    "lone surrogate": "SM" + LONE_SURROGATE,
}
for label, sid in BAD_SIDS.items():
    case(f"get API: sid {label}", "get_message", api(GET_API, pathParameters={"sid": sid}), "sid")
    case(f"delete API: sid {label}", "get_message", api(DELETE_API, pathParameters={"sid": sid}), "sid")
    case(f"get direct: sid {label}", "get_message", {"sid": sid}, "sid")
case("get API: no path parameters", "get_message", api(GET_API, pathParameters=None), "sid")
case(
    "get API: unknown query parameter",
    "get_message",
    api(GET_API, queryStringParameters={"colour": "red"}, multiValueQueryStringParameters={"colour": ["red"]}),
    "colour",
)
case(
    "delete API: unknown query parameter",
    "get_message",
    api(DELETE_API, queryStringParameters={"dryRun": "true"}, multiValueQueryStringParameters={"dryRun": ["true"]}),
    "dryRun",
)
for name, payload in {"null": None, "array": [MESSAGE_SID], "string": MESSAGE_SID, "number": 7}.items():
    case(f"get direct: payload is {name}", "get_message", payload, "(event)")
case("get direct: empty object", "get_message", {}, "sid")
case("get direct: unknown field", "get_message", {"sid": MESSAGE_SID, "colour": "red"}, "colour")
case("get direct: sid is null", "get_message", {"sid": None}, "sid")
for type_label, value in WRONG.items():
    if type_label != "string":
        case(f"get direct: sid is a {type_label}", "get_message", {"sid": value}, "sid")
    case(f"get direct: method is a bad {type_label}", "get_message", {"sid": MESSAGE_SID, "method": value}, "method")
for method in ("", "PUT", "POST", "GET\n", "DELETE ", fullwidth("GET"), HUGE):
    case(f"get direct: method {method[:12]!r}", "get_message", {"sid": MESSAGE_SID, "method": method}, "method")
case("get direct: 10000 sids", "get_message", {"sid": [MESSAGE_SID] * 10_000}, "sid")

# --- GET /messages, /phone-numbers, /caller-ids, and the list payload --------------------

MESSAGES_TOKEN_DOC = {
    "v": 1,
    "r": "messages",
    "u": "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json?PageSize=2&Page=1",
    "o": 0,
    "f": {},
}
BAD_TOKENS = {
    "garbage": "!!garbage!!",
    "base64 of non-JSON": b64(b"not json"),
    "base64 of non-UTF-8": b64(b"\xff\xfe"),
    "base64 of a JSON array": token([1]),  # type: ignore[arg-type]
    "of another version": token({**MESSAGES_TOKEN_DOC, "v": 2}),
    "naming another host": token({**MESSAGES_TOKEN_DOC, "u": "https://evil.example.com/2010-04-01/x.json"}),
    "naming a protocol-relative URL": token({**MESSAGES_TOKEN_DOC, "u": "//evil.example.com/x"}),
    "naming another list": token({**MESSAGES_TOKEN_DOC, "u": MESSAGES_TOKEN_DOC["u"].replace("Messages", "Calls")}),
    "with a negative offset": token({**MESSAGES_TOKEN_DOC, "o": -1}),
    "with a float offset": token({**MESSAGES_TOKEN_DOC, "o": 1.5}),
    "with an unknown filter": token({**MESSAGES_TOKEN_DOC, "f": {"colour": "red"}}),
    "with a newline in the URI": token({**MESSAGES_TOKEN_DOC, "u": MESSAGES_TOKEN_DOC["u"] + "\n"}),
    "huge": "A" * 5000,
    "unicode": fullwidth("token"),
}
LIST_QUERY_CASES: dict[str, tuple[dict[str, str | list[str]], tuple[str, ...]]] = {
    "unknown parameter": ({"colour": "red"}, ("colour",)),
    "unknown parameter with a unicode name": ({"cölör": "red"}, ("cölör",)),
    "repeated parameter": ({"pageSize": ["5", "6"]}, ("pageSize",)),
    "pageSize 0": ({"pageSize": "0"}, ("pageSize",)),
    "pageSize 1001": ({"pageSize": "1001"}, ("pageSize",)),
    "pageSize -1": ({"pageSize": "-1"}, ("pageSize",)),
    "pageSize 1.5": ({"pageSize": "1.5"}, ("pageSize",)),
    "pageSize not a number": ({"pageSize": "fifty"}, ("pageSize",)),
    "pageSize empty": ({"pageSize": ""}, ("pageSize",)),
    "pageSize of 30 digits": ({"pageSize": "9" * 30}, ("pageSize",)),
    "pageSize in Arabic-Indic digits": ({"pageSize": arabic("50")}, ("pageSize",)),
    "pageSize with a NUL": ({"pageSize": "5\x00"}, ("pageSize",)),
    "limit 0": ({"limit": "0"}, ("limit",)),
    "limit 10001": ({"limit": "10001"}, ("limit",)),
    "pageToken empty": ({"pageToken": ""}, ("pageToken",)),
    **{f"pageToken {label}": ({"pageToken": value}, ("pageToken",)) for label, value in BAD_TOKENS.items()},
}
MESSAGE_FILTER_CASES: dict[str, tuple[dict[str, str | list[str]], tuple[str, ...]]] = {
    "to empty": ({"to": ""}, ("to",)),
    "to blank": ({"to": "   "}, ("to",)),
    "to not a number": ({"to": "alice"}, ("to",)),
    "to in Arabic-Indic digits": ({"to": ARABIC_DIGITS}, ("to",)),
    "to with a NUL": ({"to": "+1555\x008675310"}, ("to",)),
    "to huge": ({"to": "+1" + "5" * 100_000}, ("to",)),
    "from not a sender": ({"from": "ACME!"}, ("from",)),
    "from huge": ({"from": HUGE}, ("from",)),
    "dateSent not a date": ({"dateSent": "yesterday"}, ("dateSent",)),
    "dateSent month 13": ({"dateSent": "2026-13-01"}, ("dateSent",)),
    "dateSent February 30": ({"dateSent": "2026-02-30"}, ("dateSent",)),
    "dateSent as a date-time": ({"dateSent": "2026-11-01T00:00:00Z"}, ("dateSent",)),
    "dateSent in Arabic-Indic digits": ({"dateSent": arabic("2026-11-01")}, ("dateSent",)),
    "dateSentAfter hour 25": ({"dateSentAfter": "2026-11-01T25:00:00Z"}, ("dateSentAfter",)),
    "dateSentAfter without a zone": ({"dateSentAfter": "2026-11-01T10:00:00"}, ("dateSentAfter",)),
    "dateSentBefore huge": ({"dateSentBefore": HUGE}, ("dateSentBefore",)),
    "dateSentAfter later than dateSentBefore": (
        {"dateSentAfter": "2026-11-02", "dateSentBefore": "2026-11-01"},
        ("dateSentAfter",),
    ),
    "pageToken with other filters": ({"pageToken": token(MESSAGES_TOKEN_DOC), "to": "+15558675310"}, ("pageToken",)),
    "every problem at once": (
        {"to": "x", "pageSize": "0", "limit": "x", "dateSent": "x", "colour": "red"},
        ("to", "pageSize", "limit", "dateSent", "colour"),
    ),
}
for route_name, template in LIST_APIS.items():
    for label, (params, fields) in LIST_QUERY_CASES.items():
        case(f"list {route_name} API: {label}", "list_messages", query_event(template, params), *fields)
for label, (params, fields) in MESSAGE_FILTER_CASES.items():
    case(f"list messages API: {label}", "list_messages", query_event(LIST_APIS["messages"], params), *fields)
for route_name in ("phone-numbers", "caller-ids"):
    for name in ("to", "from", "dateSent"):
        case(
            f"list {route_name} API: messages filter {name}",
            "list_messages",
            query_event(LIST_APIS[route_name], {name: "+15558675310"}),
            name,
        )
    case(
        f"list {route_name} API: a messages pageToken",
        "list_messages",
        query_event(LIST_APIS[route_name], {"pageToken": token(MESSAGES_TOKEN_DOC)}),
        "pageToken",
    )

for name, payload in {"array": [{"resource": "messages"}], "string": "messages", "number": 7, "boolean": True}.items():
    case(f"list direct: payload is {name}", "list_messages", payload, "(event)")
for label, value in {
    "unknown name": "Messages",
    "empty": "",
    "null": None,
    "number": 5,
    "array": ["messages"],
    "object": {"name": "messages"},
    "huge": HUGE,
}.items():
    case(f"list direct: resource {label}", "list_messages", {"resource": value}, "resource")
case(
    "list direct: unknown resource and field", "list_messages", {"resource": "calls", "colour": 1}, "resource", "colour"
)
for resource in ("messages", "phoneNumbers", "callerIds"):
    for name, high in (("pageSize", 1000), ("limit", 10_000)):
        for label, value in {**WRONG, "float": 1.5, "zero": 0, "too big": high + 1, "bad string": "abc"}.items():
            if label != "string":
                payload = {"resource": resource, name: value}
                case(f"list direct {resource}: {name} is {label}", "list_messages", payload, name)
    case(f"list direct {resource}: unknown field", "list_messages", {"resource": resource, "colour": "red"}, "colour")
    for label, value in {"number": 5, "empty": "", "array": ["t"], "huge": HUGE}.items():
        case(
            f"list direct {resource}: pageToken is {label}",
            "list_messages",
            {"resource": resource, "pageToken": value},
            "pageToken",
        )
for name in ("to", "from", "dateSent", "dateSentAfter", "dateSentBefore"):
    for label, value in {**WRONG, "empty": "", "huge": HUGE, "with a NUL": "+1555\x008675310"}.items():
        if label == "string" and name in ("from",):
            continue
        case(f"list direct: {name} is {label}", "list_messages", {name: value}, name)
case("list direct: 10000 recipients as to", "list_messages", {"to": ["+15558675310"] * 10_000}, "to")
case(
    "list direct: no resource, every problem",
    "list_messages",
    {"pageSize": 0, "limit": 0, "to": 5},
    "pageSize",
    "limit",
    "to",
)

# --- POST /twilio-requests and the raw payload ---------------------------------------------


def raw_case(name: str, payload: Any, *fields: str, bug: str | None = None) -> None:
    case(f"raw API: {name}", "raw_request", api(RAW_API, raw=json.dumps(payload)), *fields, bug=bug)
    case(f"raw direct: {name}", "raw_request", payload, *fields, bug=bug)


for name, payload in {"null": None, "array": [RAW], "string": "/Accounts/{AccountSid}/Calls.json", "number": 7}.items():
    case(f"raw direct: payload is {name}", "raw_request", payload, "(body)")
POST = {"method": "POST", "path": "/Accounts/{AccountSid}/Messages.json"}
raw_case("empty object", {}, "path")
raw_case("path and url", {**RAW, "url": "https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Calls.json"}, "url")
raw_case("unknown field", {**RAW, "body": "x"}, "body")
raw_case("unknown field with control characters", {**RAW, "\x1b\x07": 1}, "\x1b\x07")
for field_name in (
    "method",
    "path",
    "url",
    "query",
    "headers",
    "formData",
    "files",
    "responseType",
    "timeoutMs",
    "retry",
):
    for type_label, value in WRONG.items():
        accepted = {("method", "string"), ("query", "object"), ("headers", "object"), ("timeoutMs", "number")}
        if (field_name, type_label) in accepted:
            continue
        if field_name in ("formData", "files"):
            payload = {**POST, field_name: value}
            if (field_name, type_label) == ("formData", "object"):
                continue  # a valid form
        elif field_name == "url":
            payload = {"url": value}
        else:
            payload = {**RAW, field_name: value}
        raw_case(f"{field_name} is a {type_label}", payload, field_name)  # retry {"a": "b"}: retry.a
for label, method in {
    "unknown": "TRACE",
    "empty": "",
    "with a newline": "GET\n",
    "fullwidth": fullwidth("GET"),
}.items():
    raw_case(f"method {label}", {**RAW, "method": method}, "method")
for label, path in {
    "empty": "",
    "relative": "Accounts/{AccountSid}/Calls.json",
    "with ..": "/Accounts/../../Calls.json",
    "with %2e%2e": "/Accounts/%2e%2e/x.json",
    "with double-encoded ..": "/Accounts/%252e%252e/x.json",
    "with a backslash": "/Accounts/..\\x.json",
    "with a fragment": "/Accounts/{AccountSid}/Calls.json#x",
    "with a newline": "/Accounts/{AccountSid}/Calls.json\n",
    "with a NUL": "/Accounts\x00.json",
    "with a space": "/Accounts .json",
    "with a lone surrogate": "/Accounts/" + LONE_SURROGATE + ".json",
}.items():
    raw_case(f"path {label}", {**RAW, "path": path}, "path")
for label, url in {
    "empty": "",
    "another host": "https://evil.example.com/2010-04-01/Accounts/{AccountSid}/Calls.json",
    "a look-alike host": "https://api.twilio.com.evil.example.com/x",
    "http": "http://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Calls.json",
    "user information": "https://api.twilio.com@evil.example.com/x",
    "a fragment": "https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Calls.json#x",
    "a bad port": "https://api.twilio.com:99999/x",
    "a non-numeric port": "https://api.twilio.com:https/x",
    "a broken IPv6 host": "https://[::1/x",
    "a unicode host": "https://\u0430pi.twilio.com/x",  # a Cyrillic a
    "a control character": "https://api.twilio.com/x\x7f",
    "a newline in the host": "https://api.twil\nio.com/x",
    "a lone surrogate": "https://api.twilio.com/" + LONE_SURROGATE,
    "a relative URL": "/2010-04-01/Accounts/{AccountSid}/Calls.json",
    "no scheme": "api.twilio.com/2010-04-01/Accounts/{AccountSid}/Calls.json",
    "a file URL": "file:///etc/passwd",
    "huge": "https://api.twilio.com/" + HUGE + "\n",
    "dot segments": "https://api.twilio.com/2010-04-01/../v1/x",
}.items():
    raw_case(f"url with {label}", {"url": url}, "url")
for label, headers in {
    "Authorization": {"Authorization": "Basic eDp5"},
    "Host": {"host": "evil.example.com"},
    "Content-Length": {"Content-Length": "1"},
    "CR LF in a value": {"X-A": "a\r\nX-B: b"},
    "LF in a name": {"X-A\nX-B": "b"},
    "empty name": {"": "x"},
    "a name with a space": {"X A": "x"},
    "null value": {"X-A": None},
    "array value": {"X-A": ["a", "b"]},
    "non-ASCII value": {"X-A": "é"},
    "lone surrogate value": {"X-A": LONE_SURROGATE},
    "padded value": {"X-A": " a "},
}.items():
    raw_case(f"header {label}", {**RAW, "headers": headers}, "headers")
for label, query in {
    "object value": {"To": {"a": 1}},
    "null value": {"To": None},
    "array of objects": {"To": [{"a": 1}]},
    "lone surrogate value": {"To": LONE_SURROGATE},
    "lone surrogate key": {LONE_SURROGATE: "x"},
}.items():
    raw_case(f"query with {label}", {**RAW, "query": query}, "query")
raw_case("data with GET", {**RAW, "data": {"To": "+15558675310"}}, "data")
raw_case("data with an object value", {**POST, "data": {"To": {"a": 1}}}, "data")
raw_case("data as a string with a lone surrogate", {**POST, "data": "Body=" + LONE_SURROGATE}, "data")
raw_case("data with a lone surrogate value", {**POST, "data": {"Body": LONE_SURROGATE}}, "data")
raw_case("data and formData", {**POST, "data": {"a": "b"}, "formData": {"c": "d"}}, "data")
raw_case("formData with a lone surrogate value", {**POST, "formData": {"Body": LONE_SURROGATE}}, "formData")
raw_case(
    "formData and a Content-Type header",
    {**POST, "formData": {"a": "b"}, "headers": {"Content-Type": "text/plain"}},
    "headers",
)
FILE = {"field": "Media", "filename": "a.png", "contentType": "image/png", "contentBase64": b64(b"png")}
for label, files in {
    "an empty array": [],
    "a null item": [None],
    "a string item": ["a.png"],
    "an unknown key": [{**FILE, "size": 3}],
    "no field": [{k: v for k, v in FILE.items() if k != "field"}],
    "no filename": [{k: v for k, v in FILE.items() if k != "filename"}],
    "a quote in the filename": [{**FILE, "filename": 'a".png'}],
    "CR LF in the field": [{**FILE, "field": "Media\r\nX"}],
    "a lone surrogate in the filename": [{**FILE, "filename": LONE_SURROGATE + ".png"}],
    "a lone surrogate in the contentType": [{**FILE, "contentType": "image/" + LONE_SURROGATE}],
    "a newline in the contentType": [{**FILE, "contentType": "image/png\nX: y"}],
    "base64 garbage": [{**FILE, "contentBase64": "!!!"}],
    "base64 with bad padding": [{**FILE, "contentBase64": "abc"}],
    "base64 as a number": [{**FILE, "contentBase64": 12}],
    "base64 as an object": [{**FILE, "contentBase64": {"a": 1}}],
}.items():
    raw_case(f"files with {label}", {**POST, "files": files}, "files")
raw_case("files with 10000 broken files", {**POST, "files": [None] * 10_000}, "files", MORE_PROBLEMS)
for label, value in {
    "0": 0,
    "900001": 900_001,
    "-1": -1,
    "a float": 1.5,
    "a string": "1000",
    "a boolean": True,
}.items():
    raw_case(f"timeoutMs {label}", {**RAW, "timeoutMs": value}, "timeoutMs")
for label, retry in {
    "an unknown key": {"attempts": 3},
    "maxRetries 6": {"maxRetries": 6},
    "maxRetries -1": {"maxRetries": -1},
    "maxRetries a string": {"maxRetries": "2"},
    "delayMs 60001": {"delayMs": 60_001},
    "delayMs a float": {"delayMs": 0.5},
    "exponentialBackoff a string": {"exponentialBackoff": "true"},
    "retryOnAllErrors a number": {"retryOnAllErrors": 1},
}.items():
    raw_case(f"retry with {label}", {**RAW, "retry": retry}, "retry")
raw_case("responseType xml", {**RAW, "responseType": "xml"}, "responseType")
raw_case("responseType JSON upper case", {**RAW, "responseType": "JSON"}, "responseType")
raw_case(
    "every problem at once",
    {"method": "TRACE", "url": "http://evil.example.com", "timeoutMs": 0, "retry": {"maxRetries": 9}, "x": 1},
    "method",
    "url",
    "timeoutMs",
    "retry",
    "x",
)

# --- POST /webhooks/twilio -----------------------------------------------------------------

FORM = load_event(WEBHOOK_API)["body"]
JSON_TYPE = "application/json"
for label, event in {
    "no signature": webhook(),
    "an empty signature": webhook(signature=""),
    "a wrong signature": webhook(signature="3Y6yaRm1ETuXYh0EzNI3aBrE9G1="),
    "a signature that is not base64": webhook(signature="!!"),
    "a unicode signature": webhook(signature="ś" * 28),
    "a huge signature": webhook(signature="A" * 100_000),
    "a signature for another body": webhook(
        FORM.replace("delivered", "failed"), signature="3Y6yaRm1ETuXYh0EzNI3aBrE9G0="
    ),
    "no signature and an empty body": webhook(""),
    "no signature and malformed JSON": webhook("{", content_type=JSON_TYPE),
    "no signature and non-UTF-8 bytes": webhook(b64(b"\xff\xfe"), base64_body=True),
    "no signature and deeply nested JSON": webhook(DEEP_JSON, content_type=JSON_TYPE),
    "a wrong signature on a JSON body": webhook('{"MessageSid": "SM1"}', signature="x", content_type=JSON_TYPE),
    "a wrong signature on control characters": webhook("Body=%00%1b%7f&To=\x00", signature="x"),
    "a wrong signature on unicode": webhook("Body=" + "é😀" * 1000, signature="x"),
}.items():
    case(f"webhook API: {label}", "webhook", event, status=403)
# A signature that does not match is a 403 whatever the body, even one that cannot be read or
# parsed: such a body cannot have been verified.
for label, event in {
    "a body over 256 KB": webhook("Body=" + "x" * 300_000, signature="x"),
    "base64 garbage": webhook("!!not base64!!", signature="x", base64_body=True),
    "non-UTF-8 bytes": webhook(b64(b"Body=\xff\xfe"), signature="x", base64_body=True),
    "malformed JSON": webhook("{", signature="x", content_type=JSON_TYPE),
    "a JSON array": webhook("[]", signature="x", content_type=JSON_TYPE),
    "JSON with invalid UTF-8": webhook(b64(b'{"a": "\xff"}'), signature="x", content_type=JSON_TYPE, base64_body=True),
    "deeply nested JSON": webhook(DEEP_JSON, signature="x", content_type=JSON_TYPE),
    "a 5000-digit integer": webhook('{"a": 1' + "0" * 5000 + "}", signature="x", content_type=JSON_TYPE),
}.items():
    case(f"webhook API: a wrong signature on {label}", "webhook", event, status=403)
for name, payload in {
    "its body": {"MessageSid": MESSAGE_SID, "MessageStatus": "delivered"},
    "null": None,
    "an EventBridge event": load_event("send_message/eventbridge.json"),
}.items():
    case(f"webhook direct: {name}", "webhook", payload, "(event)")


# --- the test -----------------------------------------------------------------------------


def params() -> list[Any]:
    return [
        pytest.param(
            name,
            id=name.encode("unicode_escape").decode()[:100],
            marks=[pytest.mark.xfail(reason=KNOWN_BUGS[name], strict=True)] if name in KNOWN_BUGS else [],
        )
        for name in CASES
    ]


@pytest.fixture(scope="module")
def module_aws() -> Iterator[Any]:
    """moto for the whole module (started once: hundreds of cases), with the Twilio secret and
    the state table; nothing a case does may change either."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        secrets.create_secret(Name=SECRET_ID, SecretString=json.dumps(credentials()))
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield dynamodb


@pytest.fixture
def state_table(module_aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The webhook's table, so that a refused request can be seen to store nothing."""
    monkeypatch.setenv("STATE_TABLE_NAME", TABLE)
    monkeypatch.setenv("EVENT_BUS_NAME", "default")
    yield module_aws
    assert module_aws.scan(TableName=TABLE)["Items"] == [], "a refused request stored something"


def is_api(event: Any) -> bool:
    return isinstance(event, dict) and "httpMethod" in event and "requestContext" in event


@pytest.mark.parametrize("name", params())
def test_bad_input_is_refused_before_anything_is_sent(name: str, state_table: Any, twilio: Any, context: Any) -> None:
    bad = CASES[name]
    handler = load_handler(bad.function).lambda_handler
    if is_api(bad.event):
        answer = handler(copy.deepcopy(bad.event), context)
        assert answer["statusCode"] == bad.status, answer
        assert answer["headers"]["Content-Type"] == "application/json"
        error = json.loads(answer["body"])["error"]
        if bad.status == 403:
            assert error["code"] == "INVALID_SIGNATURE"
            assert "X-Twilio-Signature" in error["message"]
            assert "details" not in error
        else:
            assert error["code"] == "VALIDATION_ERROR", error
            check_details(error["details"], error["message"], bad.fields)
        assert len(answer["body"]) < 64 * 1024, "the error answer should stay small"
    else:
        with pytest.raises(ValidationError) as caught:
            handler(copy.deepcopy(bad.event), context)
        body = json.loads(str(caught.value))
        assert body["code"] == "VALIDATION_ERROR"
        check_details(body["details"], body["message"], bad.fields)
        assert len(str(caught.value)) < 64 * 1024, "the error should stay small"
    assert twilio.log == [], "Twilio was called"


def check_details(details: list[dict[str, str]], message: str, expected: frozenset[str]) -> None:
    assert details, "no problem listed"
    assert all(set(d) == {"field", "problem"} and d["problem"] for d in details), details
    named = {top_level(d["field"]) for d in details}
    assert named == expected, details[:5]
    for field_name in expected:
        assert field_name[:100] in message


def test_the_table_covers_every_route_and_direct_payload() -> None:
    api_routes = {(event["httpMethod"], event["resource"]) for bad in CASES.values() if is_api(event := bad.event)}
    assert api_routes == {
        ("POST", "/messages"),
        ("GET", "/messages/{sid}"),
        ("DELETE", "/messages/{sid}"),
        ("GET", "/messages"),
        ("GET", "/phone-numbers"),
        ("GET", "/caller-ids"),
        ("POST", "/twilio-requests"),
        ("POST", "/webhooks/twilio"),
    }
    direct = {bad.function for bad in CASES.values() if not is_api(bad.event)}
    assert direct == {"send_message", "get_message", "list_messages", "raw_request", "webhook"}
    resources = {
        bad.event.get("resource", "messages")
        for bad in CASES.values()
        if bad.function == "list_messages"
        and isinstance(bad.event, dict)
        and not is_api(bad.event)
        and isinstance(bad.event.get("resource", "messages"), str)
    }
    assert {"messages", "phoneNumbers", "callerIds"} <= resources
    assert len(CASES) >= 400, len(CASES)
