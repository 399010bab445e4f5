"""The functions' own Twilio client against the simulator: send_message, get_message and
list_messages handlers with TWILIO_API_BASE_URL pointed at it (moto's Secrets Manager holds the
tests' credentials, so the simulator is configured with them). Everything they send must be
within Twilio's description, and the callbacks come back signed with the account's token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from local.prism import SPEC
from local.twilio_simulator import Simulator, SimulatorConfig
from tests.local.test_twilio_simulator import Receiver, check_signature, final_message
from tests.support import ACCOUNT_SID, AUTH_TOKEN, ROTATED_AUTH_TOKEN, SECRET_ID, credentials, load_event, load_handler
from twilio_messaging.execution_environment import environment

pytestmark = pytest.mark.skipif(not SPEC.exists(), reason="Twilio's description is missing: make contract-deps")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    webhook = Receiver()
    yield webhook
    webhook.close()


@pytest.fixture
def simulator(aws: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, time_scale=0.01))
    monkeypatch.setenv("TWILIO_API_BASE_URL", simulator.start())
    # The functions' default status callback: PUBLIC_BASE_URL + /webhooks/twilio, the receiver here.
    monkeypatch.setenv("PUBLIC_BASE_URL", receiver.url.removesuffix("/webhooks/twilio"))
    environment.reset()
    yield simulator
    simulator.stop()


def invoke(function: str, event: Any, context: Any) -> Any:
    return load_handler(function).lambda_handler(event, context)


def test_a_send_through_the_layer_lands_in_the_simulator(
    simulator: Simulator, receiver: Receiver, context: Any
) -> None:
    answer = invoke("send_message", load_event("send_message/api_gateway.json"), context)
    assert answer["statusCode"] == 201, answer["body"]
    sent = json.loads(answer["body"])
    [message] = simulator.messages()
    assert sent["sid"] == message["sid"] and sent["status"] == "queued" and sent["numSegments"] == 1
    assert message["form"] == {
        "To": "+15558675310",
        "From": "+15005550006",
        "Body": "Your order #1234 has shipped.",
        "StatusCallback": receiver.url,
    }
    assert simulator.invalid_requests() == []
    callbacks = receiver.wait_for(3)
    assert [c.status for c in callbacks] == ["sending", "sent", "delivered"]
    for callback in callbacks:
        check_signature(callback, AUTH_TOKEN)


def test_an_mms_get_and_a_paged_list_through_the_layer(simulator: Simulator, context: Any) -> None:
    media = ["https://demo.twilio.com/owl.png", "https://demo.twilio.com/logo.png"]
    for index in range(3):
        event = {"to": "+15558675310", "from": "+15005550006", "body": f"n{index}", "mediaUrl": media}
        assert invoke("send_message", event, context)["sid"].startswith("MM")
    sids = [m["sid"] for m in simulator.messages()]
    final_message(simulator, sids[0], "delivered")
    fetched = invoke("get_message", {"sid": sids[0]}, context)
    assert fetched["sid"] == sids[0] and fetched["status"] == "delivered" and fetched["numMedia"] == 2
    # pageSize 2: the function follows the simulator's next_page_uri to the end.
    listed = invoke(
        "list_messages", {"resource": "messages", "to": "+15558675310", "pageSize": 2, "limit": 10}, context
    )
    assert [m["sid"] for m in listed["messages"]] == sids[::-1] and listed["nextPageToken"] is None
    assert simulator.counters()["requests"]["GET /Messages.json"] == 2
    assert simulator.invalid_requests() == []


def test_a_rotated_token_is_read_again_after_a_401(
    simulator: Simulator, aws: Any, context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twilio_messaging.credentials import CredentialStore

    monkeypatch.setattr(CredentialStore, "reread_interval", 0.0)  # as if the secret was read a minute ago
    assert invoke("send_message", {"to": "+15558675310", "body": "one"}, context)["sid"]
    aws.put_secret_value(SecretId=SECRET_ID, SecretString=json.dumps(credentials(authToken=ROTATED_AUTH_TOKEN)))
    simulator.set_auth_token(ROTATED_AUTH_TOKEN)  # the old, cached token is refused from now on
    assert invoke("send_message", {"to": "+15558675310", "body": "two"}, context)["sid"]
    requests = simulator.counters()["requests"]
    assert requests["POST /Messages.json"] == 3 and len(simulator.messages()) == 2  # one 401, then the retry
