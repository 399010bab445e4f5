"""End to end through the local stack, as `make local` runs it: HTTP requests to the local API
Gateway, the functions in its process, moto_server for AWS and Prism (Twilio's OpenAPI
description) for Twilio. One test per route the template declares, at least."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from local.examples import EXAMPLE_SID
from local.moto_stack import LocalAws, client
from local.prism import EXAMPLE_ACCOUNT_SID
from local.sign_webhook import signature
from local.stack import LOCAL_AUTH_TOKEN, WEBHOOK_PATH
from local.template import load_template
from tests.contract.conftest import StackProcess
from tests.support import BODIES

pytestmark = pytest.mark.contract
TIMEOUT = 35
TEMPLATE = load_template(parameters={"TwilioSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"})
HAS_WEBHOOK = TEMPLATE.route("POST", WEBHOOK_PATH) is not None
TESTED_ROUTES = {
    ("POST", "/messages"),
    ("GET", "/messages/{sid}"),
    ("DELETE", "/messages/{sid}"),
    ("GET", "/messages/{sid}/events"),
    ("GET", "/opt-outs/{number}"),
    ("PUT", "/opt-outs/{number}"),
    ("DELETE", "/opt-outs/{number}"),
    ("POST", "/campaigns"),
    ("GET", "/campaigns/{id}"),
    ("DELETE", "/campaigns/{id}"),
    ("GET", "/messages"),
    ("GET", "/phone-numbers"),
    ("GET", "/caller-ids"),
    ("POST", "/twilio-requests"),
    ("POST", WEBHOOK_PATH),
}


def call(stack: dict[str, Any], method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, stack["api_url"] + path, timeout=TIMEOUT, **kwargs)


def bus(stack: dict[str, Any]) -> LocalAws:
    return LocalAws(stack["aws_endpoint"], "", capture_queue_url=stack["capture_queue_url"])


def test_every_route_of_the_template_has_a_test_here() -> None:
    assert {(r.method, r.path) for r in TEMPLATE.routes} <= TESTED_ROUTES


def test_a_route_the_template_does_not_declare_is_api_gateways_403(local_stack: dict[str, Any]) -> None:
    answer = call(local_stack, "GET", "/nothing-here")
    assert answer.status_code == 403 and answer.json() == {"message": "Missing Authentication Token"}
    assert call(local_stack, "PUT", "/messages").status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"to": "+15558675310", "from": "+15005550006", "body": BODIES[0]},
        {"to": "+15558675310", "body": "Uses the local DefaultFrom"},
        {"to": "+15558675310", "mediaUrl": ["https://demo.twilio.com/owl.png", "https://demo.twilio.com/logo.png"]},
    ],
    ids=["sms", "sms-default-from", "mms"],
)
def test_send(local_stack: dict[str, Any], body: dict[str, Any]) -> None:
    answer = call(local_stack, "POST", "/messages", json=body)
    assert answer.status_code == 201, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    message = answer.json()
    assert message["sid"].startswith(("SM", "MM")) and message["accountSid"] == EXAMPLE_ACCOUNT_SID


def test_send_to_several_recipients(local_stack: dict[str, Any]) -> None:
    answer = call(local_stack, "POST", "/messages", json={"to": ["+15558675310", "+15558675311"], "body": BODIES[1]})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["messages"]) == 2 and answer.json()["failed"] == []


def test_a_bad_request_is_the_functions_400(local_stack: dict[str, Any]) -> None:
    answer = call(local_stack, "POST", "/messages", json={"to": "+15558675310", "colour": "red"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "VALIDATION_ERROR"
    assert call(local_stack, "POST", "/messages", data="not json").status_code == 400


def test_get_and_delete(local_stack: dict[str, Any]) -> None:
    answer = call(local_stack, "GET", f"/messages/{EXAMPLE_SID}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["sid"].startswith(("SM", "MM")) and answer.json()["dateCreated"].endswith("Z")
    deleted = call(local_stack, "DELETE", f"/messages/{EXAMPLE_SID}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert call(local_stack, "GET", "/messages/not-a-sid").status_code == 400


def test_a_sent_messages_delivery_history(local_stack: dict[str, Any]) -> None:
    sent = call(local_stack, "POST", "/messages", json={"to": "+15558675312", "body": BODIES[2]})
    assert sent.status_code == 201, sent.text
    history = call(local_stack, "GET", f"/messages/{sent.json()['sid']}/events")
    assert history.status_code == 200, history.text
    assert history.json()["sid"] == sent.json()["sid"]
    assert [(e["status"], e["source"]) for e in history.json()["events"]][:1] == [(sent.json()["status"], "send")]
    unknown = call(local_stack, "GET", "/messages/SM" + "f" * 32 + "/events")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "MESSAGE_NOT_FOUND"


def test_an_opt_out_recorded_refuses_sends_until_lifted(local_stack: dict[str, Any]) -> None:
    number = "/opt-outs/%2B15558675313"
    put = call(local_stack, "PUT", number, json={"reason": "asked by phone"})
    assert put.status_code == 200, put.text
    assert [(o["scope"], o["reason"]) for o in put.json()["optOuts"]] == [("*", "asked by phone")]
    assert call(local_stack, "GET", number).json()["optOuts"] == put.json()["optOuts"]
    refused = call(local_stack, "POST", "/messages", json={"to": "+15558675313", "body": BODIES[0]})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "RECIPIENT_SUPPRESSED"
    deleted = call(local_stack, "DELETE", number)
    assert deleted.status_code == 204 and deleted.content == b""
    assert call(local_stack, "GET", number).json() == {"number": "+15558675313", "optOuts": []}
    assert call(local_stack, "POST", "/messages", json={"to": "+15558675313", "body": BODIES[0]}).status_code == 201


def test_a_campaign_runs_through_its_state_machine_and_each_send_meets_twilios_contract(
    local_stack: dict[str, Any],
) -> None:
    """POST /campaigns starts the campaign state machine, which moto executes: each batch's sends
    reach Prism, which checks them against Twilio's description."""
    body = {
        "name": "contract",
        "recipients": [{"to": f"+1555867532{i}", "name": f"Ada {i}"} for i in range(3)] + ["not a number"],
        "message": {"body": "Hi {{name}}, your order has shipped."},
    }
    started = call(local_stack, "POST", "/campaigns", json=body, headers={"Idempotency-Key": "contract-campaign"})
    assert started.status_code == 202, started.text
    campaign_id = started.json()["campaignId"]
    assert started.headers["Location"].endswith(f"/campaigns/{campaign_id}")
    deadline = time.monotonic() + 60
    while (campaign := call(local_stack, "GET", f"/campaigns/{campaign_id}").json())["status"] == "RUNNING":
        assert time.monotonic() < deadline, campaign
        time.sleep(0.2)
    assert (campaign["status"], campaign["total"], campaign["sent"], campaign["skipped"]) == ("SUCCEEDED", 4, 3, 1)
    again = call(local_stack, "POST", "/campaigns", json=body, headers={"Idempotency-Key": "contract-campaign"})
    assert again.status_code == 202 and again.json()["campaignId"] == campaign_id
    stopped = call(local_stack, "DELETE", f"/campaigns/{campaign_id}")
    assert stopped.status_code == 202 and stopped.json()["status"] == "SUCCEEDED"  # it had ended
    unknown = call(local_stack, "GET", "/campaigns/" + "f" * 32)  # (32 zeros is the local auth token)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"


def test_list_and_its_second_page(local_stack: dict[str, Any]) -> None:
    first = call(
        local_stack, "GET", "/messages", params={"to": "+15558675310", "dateSentAfter": "2026-11-01", "pageSize": 2}
    )
    assert first.status_code == 200, first.text
    assert len(first.json()["messages"]) == 2 and first.json()["nextPageToken"]
    second = call(
        local_stack, "GET", "/messages?" + urlencode({"pageToken": first.json()["nextPageToken"], "pageSize": 2})
    )
    assert second.status_code == 200, second.text
    assert second.json()["messages"] and "nextPageToken" in second.json()


def test_phone_numbers(local_stack: dict[str, Any]) -> None:
    answer = call(local_stack, "GET", "/phone-numbers", params={"pageSize": 5})
    assert answer.status_code == 200, answer.text
    assert answer.json()["phoneNumbers"][0]["phoneNumber"].startswith("+")


def test_caller_ids(local_stack: dict[str, Any]) -> None:
    answer = call(local_stack, "GET", "/caller-ids", params={"pageSize": 5})
    assert answer.status_code == 200, answer.text
    assert answer.json()["callerIds"] and answer.json()["phoneNumbers"]


def test_raw_request(local_stack: dict[str, Any]) -> None:
    answer = call(
        local_stack,
        "POST",
        "/twilio-requests",
        json={"path": "/Accounts/{AccountSid}/IncomingPhoneNumbers.json", "query": {"PageSize": 5}},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["statusCode"] == 200 and "incoming_phone_numbers" in answer.json()["body"]


def test_raw_request_outside_twilios_contract_comes_back_as_prisms_422(local_stack: dict[str, Any]) -> None:
    answer = call(
        local_stack,
        "POST",
        "/twilio-requests",
        json={"method": "POST", "path": "/Accounts/{AccountSid}/Messages.json", "data": {"Body": "no To"}},
    )
    assert answer.status_code == 200 and answer.json()["statusCode"] == 422


def status_callback(status: str) -> str:
    return urlencode(
        {
            "MessageSid": EXAMPLE_SID,
            "MessageStatus": status,
            "AccountSid": EXAMPLE_ACCOUNT_SID,
            "From": "+15005550006",
            "To": "+15558675310",
            "ApiVersion": "2010-04-01",
        }
    )


@pytest.mark.skipif(not HAS_WEBHOOK, reason="template.yaml declares no POST /webhooks/twilio route yet")
def test_signed_webhook_reaches_the_bus(local_stack: dict[str, Any]) -> None:
    bus(local_stack).bus_events()  # what earlier tests left
    form = status_callback("delivered")
    url = local_stack["api_url"] + WEBHOOK_PATH
    answer = call(
        local_stack,
        "POST",
        WEBHOOK_PATH,
        data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature(form, url)},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/xml") and "<Response/>" in answer.text
    events = bus(local_stack).bus_events(wait_seconds=5)
    assert [(e["source"], e["detail-type"], e["detail"]["status"]) for e in events] == [
        ("twilio.messaging", "Message Status Changed", "delivered")
    ]
    assert events[0]["detail"]["params"]["MessageSid"] == EXAMPLE_SID


@pytest.mark.skipif(not HAS_WEBHOOK, reason="template.yaml declares no POST /webhooks/twilio route yet")
@pytest.mark.parametrize("signed_with", [None, "not-the-auth-token"])
def test_unsigned_or_forged_webhook_is_403_and_publishes_nothing(
    local_stack: dict[str, Any], signed_with: str | None
) -> None:
    bus(local_stack).bus_events()
    form = status_callback("failed")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signed_with:
        headers["X-Twilio-Signature"] = signature(form, local_stack["api_url"] + WEBHOOK_PATH, signed_with)
    answer = call(local_stack, "POST", WEBHOOK_PATH, data=form, headers=headers)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "INVALID_SIGNATURE"
    assert bus(local_stack).bus_events(wait_seconds=1) == []


def test_the_aws_resources_the_template_names_exist_in_moto(local_stack: dict[str, Any]) -> None:
    dynamodb = client("dynamodb", local_stack["aws_endpoint"])
    for table in TEMPLATE.tables:
        described = dynamodb.describe_table(TableName=table.name)["Table"]
        assert described["KeySchema"] == table.key_schema
        ttl = dynamodb.describe_time_to_live(TableName=table.name)["TimeToLiveDescription"]
        assert ttl.get("AttributeName") == table.ttl_attribute
    secret = client("secretsmanager", local_stack["aws_endpoint"]).get_secret_value(SecretId="twilio/local")
    assert json.loads(secret["SecretString"]) == {"accountSid": EXAMPLE_ACCOUNT_SID, "authToken": LOCAL_AUTH_TOKEN}


def test_the_functions_logs_hold_no_message_body_and_no_token(local_stack: dict[str, Any]) -> None:
    """Last in this file: the local stack's logs after every request above."""
    log = local_stack["function_log"].read_text()
    assert '"level":"INFO"' in log  # the functions do log there
    leaked = [value for value in (*BODIES, LOCAL_AUTH_TOKEN) if value in log]
    assert not leaked


def test_ctrl_c_stops_the_stack_and_everything_it_started(prism_url: str, tmp_path: Path) -> None:
    stack = StackProcess(prism_url, tmp_path)
    info = stack.wait_ready()
    assert call(info, "GET", "/caller-ids").status_code == 200
    assert stack.stop(signal.SIGINT) == 0
    assert not stack.children_alive()
    with pytest.raises(requests.ConnectionError):
        call(info, "GET", "/caller-ids")
