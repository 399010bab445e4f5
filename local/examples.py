"""curl commands for the routes of the template, as `make local` prints them. Routes come from
the template; this module only knows a good example request for the ones it recognises, and
prints a bare request for any other."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from local.prism import EXAMPLE_ACCOUNT_SID
from local.sign_webhook import DEFAULT_URL

if TYPE_CHECKING:
    from local.stack import StackInfo
    from local.template import LocalTemplate

EXAMPLE_SID = "SM" + "a" * 32  # the shape the functions accept: send first, then use the sid it answers
STATUS_CALLBACK = (
    f"MessageSid={EXAMPLE_SID}&MessageStatus=delivered&SmsStatus=delivered&AccountSid={EXAMPLE_ACCOUNT_SID}"
    "&From=%2B15005550006&To=%2B15558675310&ApiVersion=2010-04-01"
)

_JSON_BODIES: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("POST", "/messages"): ("send an SMS (DefaultFrom is +15005550006 locally)", {"to": "+15558675310", "body": "Hi"}),
    ("POST", "/twilio-requests"): (
        "any Twilio request: the account's incoming numbers",
        {"path": "/Accounts/{AccountSid}/IncomingPhoneNumbers.json", "query": {"PageSize": 5}},
    ),
}
_QUERIES: dict[tuple[str, str], tuple[str, str]] = {
    ("GET", "/messages"): ("list messages (pass nextPageToken back as pageToken)", "?pageSize=2"),
    ("GET", "/messages/{sid}"): ("fetch a message", ""),
    ("DELETE", "/messages/{sid}"): ("delete a message (204)", ""),
    ("GET", "/phone-numbers"): ("the account's incoming numbers", ""),
    ("GET", "/caller-ids"): ("verified caller IDs", ""),
}


def _json_curl(url: str, method: str, body: dict[str, Any]) -> str:
    return f"curl -s -X {method} {url} -H 'Content-Type: application/json' -d '{json.dumps(body)}'"


def curl_examples(info: StackInfo, template: LocalTemplate) -> list[str]:
    lines: list[str] = []
    for route in template.routes:
        key = (route.method, route.path)
        url = info.api_url + route.path.replace("{sid}", EXAMPLE_SID)
        if key in _JSON_BODIES:
            what, body = _JSON_BODIES[key]
            lines += [f"  # {route.method} {route.path}: {what}", "  " + _json_curl(url, route.method, body)]
            if key == ("POST", "/messages"):
                mms = {"to": "+15558675310", "mediaUrl": ["https://demo.twilio.com/owl.png"]}
                lines += ["  # an MMS", "  " + _json_curl(url, route.method, mms)]
        elif key in _QUERIES:
            what, query = _QUERIES[key]
            method = "" if route.method == "GET" else f"-X {route.method} "
            lines += [f"  # {route.method} {route.path}: {what}", f"  curl -s {method}'{url}{query}'"]
        elif key == ("POST", "/webhooks/twilio"):
            sign = ".venv/bin/python -m local.sign_webhook" + ("" if url == DEFAULT_URL else f" --url {url}")
            lines += [
                f"  # {route.method} {route.path}: a status callback, signed with the local auth token as Twilio",
                "  # signs it (URL plus sorted parameters, HMAC-SHA1): 200 and an event on the bus",
                f"  PARAMS='{STATUS_CALLBACK}'",
                f'  curl -s -X POST {url} -d "$PARAMS" \\',
                f'    -H "X-Twilio-Signature: $({sign} "$PARAMS")"',
                "  # the same without a valid signature: 403",
                f'  curl -s -X POST {url} -d "$PARAMS" -H "X-Twilio-Signature: forged"',
            ]
        else:
            lines += [f"  # {route.method} {route.path} ({route.function})", f"  curl -s -X {route.method} '{url}'"]
        lines.append("")
    if not template.route("POST", "/webhooks/twilio"):
        lines += ["  # template.yaml declares no POST /webhooks/twilio route yet: no webhooks locally", ""]
    if info.simulator:
        lines += [
            "  # an inbound message from a phone to your number, signed and posted to the webhook by the simulator",
            f"  .venv/bin/python -m local.twilio_simulator inbound --simulator {info.twilio_url} \\",
            "    --from +15558675310 --to +15005550006 --body STOP",
            "  # the example workflow: send, then wait until the simulator's callback reports delivery",
            f"  aws --endpoint-url {info.aws_endpoint} stepfunctions start-execution \\",
            f"    --state-machine-arn {next(iter(info.state_machines.values()), '<arn>')} \\",
            """    --input '{"to": "+15558675310", "body": "Hi"}'""",
            "",
        ]
    return lines
