"""No log line, at any level, from any logger, holds a secret, a message body or a full number.

The Lambda runtime sets the root logger to the function's log level and writes what reaches it:
at DEBUG, every library's records. This suite puts a handler on the root logger at DEBUG, as
the runtime does, and runs each function over loopback HTTP (urllib3 logs URLs) and moto
(botocore logs requests), then reads everything that was written.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.logging.filters import SuppressFilter

from tests.support import (
    BODIES,
    MESSAGE_SID,
    SECRETS,
    LambdaContext,
    api_event,
    load_event,
    load_handler,
    twilio_message,
)
from twilio_messaging.observability import logger, quiet_libraries

FULL_NUMBER = re.compile(r"(\+|%2[bB])\d{8,15}")
MESSAGES = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"


@pytest.fixture
def root_at_debug() -> Iterator[io.StringIO]:
    """The runtime's handler on the root logger, at DEBUG (its level follows the function's)."""
    root = logging.getLogger()
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    # As on the runtime's handler, which exists before the layer's Logger: its own lines are
    # written by its own handler, not again through the root logger.
    handler.addFilter(SuppressFilter(logger.service))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    quiet_libraries()  # what importing the layer does with the runtime's handlers
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _leaks(output: str) -> list[str]:
    found = [value for value in (*SECRETS, *BODIES) if value in output]
    return found + [match.group(0) for match in FULL_NUMBER.finditer(output)]


def test_every_function_at_debug_logs_no_secret_body_or_number(
    root_at_debug: io.StringIO, state_table: str, twilio: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENT_BUS_NAME", "default")
    context = LambdaContext()
    body = BODIES[0]
    twilio.expect_request(MESSAGES, method="POST").respond_with_json(
        twilio_message(to="+15558675310", body=body), status=201
    )
    twilio.expect_request(MESSAGES, method="GET").respond_with_json(
        {"messages": [twilio_message(body=body)], "next_page_uri": None}
    )
    twilio.expect_request(f"{MESSAGES[:-5]}/{MESSAGE_SID}.json").respond_with_json(twilio_message(body=body))

    keyed = {"to": "+15558675310", "body": body, "idempotencyKey": "logs-1", "statusCallback": None}
    assert (
        load_handler("send_message").lambda_handler(api_event("send_message/api_gateway.json", body=keyed), context)[
            "statusCode"
        ]
        == 201
    )
    listing = load_event("list_messages/api_gateway.json")
    listing["queryStringParameters"] = {"to": "+15558675310"}
    listing["multiValueQueryStringParameters"] = {"to": ["+15558675310"]}
    assert load_handler("list_messages").lambda_handler(listing, context)["statusCode"] == 200
    assert (
        load_handler("get_message").lambda_handler(load_event("get_message/api_gateway.json"), context)["statusCode"]
        == 200
    )
    raw = {"path": "/Accounts/{AccountSid}/Messages.json", "query": {"To": "+15558675310"}}
    assert load_handler("raw_request").lambda_handler(raw, context)["statusCode"] == 200
    inbound = load_event("webhook/inbound_message.json")
    assert load_handler("webhook").lambda_handler(inbound, context)["statusCode"] == 200

    logging.getLogger("tests.probe").debug("probe for %s", "+15558675399")  # the handler writes, and masks
    output = root_at_debug.getvalue()
    assert "probe for +***5399" in output
    assert not _leaks(output), _leaks(output)


def test_the_libraries_loggers_stay_at_warning_whatever_the_root_level(root_at_debug: io.StringIO) -> None:
    for name in ("botocore", "boto3", "urllib3", "requests", "aws_lambda_powertools"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, name
    logging.getLogger("botocore.endpoint").debug("Making request with body %s", json.dumps({"Body": BODIES[1]}))
    assert BODIES[1] not in root_at_debug.getvalue()
