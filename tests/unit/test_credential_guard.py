"""Where credentials may go and what never comes back: REST API hosts only, resources that hold
credentials refused however they are spelled, credential values redacted in any answer."""

from __future__ import annotations

import base64
import json

import pytest

from twilio_messaging.credential_guard import (
    REDACTED,
    api_product,
    is_sensitive,
    redact_bytes,
    redact_text,
    redact_value,
    refuses,
)

API = "https://api.twilio.com/2010-04-01"
SUB = "AC" + "f" * 32  # a subaccount: not the one in the secret


@pytest.mark.parametrize(
    ("host", "product"),
    [
        ("api.twilio.com", "api"),
        ("API.Twilio.COM", "api"),
        ("api.dublin.ie1.twilio.com", "api"),
        ("api.ie1.twilio.com", "api"),
        ("api.sao-paulo.br1.twilio.com", "api"),
        ("messaging.twilio.com", "messaging"),
        ("flex-api.twilio.com", "flex-api"),
        ("verify.sydney.au1.twilio.com", "verify"),
        ("accounts.twilio.com", "accounts"),
    ],
)
def test_rest_api_hosts_are_known(host: str, product: str) -> None:
    assert api_product(host) == product


@pytest.mark.parametrize(
    "host",
    [
        "twilio.com",
        "www.twilio.com",
        "status.twilio.com",
        "support.twilio.com",
        "console.twilio.com",
        "demo.twilio.com",
        "example.sip.twilio.com",
        "api.sip.twilio.com",  # a customer SIP domain named api
        "api.twilio.com.evil.com",
        "api.evil.com",
        "evilapi.twilio.com",
        "api.dublin.twilio.com.evil.com",
        "media.twiliocdn.com",
    ],
)
def test_other_hosts_are_not_rest_api_hosts(host: str) -> None:
    assert api_product(host) is None


@pytest.mark.parametrize(
    "url",
    [
        f"{API}/Accounts.json",
        f"{API}/Accounts",
        f"{API}/Accounts.xml",
        f"{API}/accounts.JSON",
        f"{API}/Accounts.csv?PageSize=5",
        f"{API}/Accounts/{SUB}.json",
        f"{API}/Accounts/{SUB}",
        f"{API}/Accounts/{SUB}/",
        f"{API}//Accounts//{SUB}.json",
        f"{API}/ACCOUNTS/{SUB.lower()}.XML",
        f"{API}/%41ccounts/{SUB}.json",
        f"{API}/%2541ccounts/{SUB}.json",
        f"{API}/Accounts;v=1/{SUB}.json",
        f"{API}/Accounts/{SUB}/Keys.json",
        f"{API}/Accounts/{SUB}/Keys/SK{'0' * 32}.json",
        f"{API}/Accounts/{SUB}/keys",
        f"{API}/Accounts/{SUB}/SigningKeys.json",
        f"{API}/Accounts/{SUB}/SIP/CredentialLists.json",
        f"{API}/Accounts/{SUB}/SIP/CredentialLists/CL{'0' * 32}/Credentials.json",
        f"{API}/Accounts/{SUB}/SIP/CredentialLists/CL{'0' * 32}/Credentials/CR{'0' * 32}.xml",
        f"{API}/Accounts/{SUB}/sip/credentiallists",
        f"https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/{SUB}.json",
        f"http://127.0.0.1:4010/2010-04-01/Accounts/{SUB}.json",  # the configured base URL too
        "https://accounts.twilio.com/v1/AuthTokens/Promote",
        "https://accounts.twilio.com/v1/AuthTokens/Secondary",
        "https://accounts.twilio.com/v1/authtokens/secondary.json",
        "https://accounts.twilio.com/v1/Credentials/AWS",
        "https://accounts.twilio.com/v1/Credentials/PublicKeys/CR123",
        "https://accounts.dublin.ie1.twilio.com/v1/Credentials/AWS",
        "https://iam.twilio.com/v1/Keys",
        "https://IAM.twilio.com/v1/keys/SK123",
        "https://iam.twilio.com/v1/%4Beys",
    ],
)
def test_resources_that_hold_credentials_are_refused_however_spelled(url: str) -> None:
    assert refuses(url)


@pytest.mark.parametrize(
    "url",
    [
        f"{API}/Accounts/{SUB}/Messages.json",
        f"{API}/Accounts/{SUB}/Calls.json",
        f"{API}/Accounts/{SUB}/IncomingPhoneNumbers.json",
        f"{API}/Accounts/{SUB}/SIP/Domains.json",
        f"{API}/Accounts/{SUB}/Usage/Records.json",
        "https://messaging.twilio.com/v1/Services",
        "https://accounts.twilio.com/v1/SafeList/Numbers",
        "https://conversations.twilio.com/v1/Credentials",  # push credentials: Twilio never returns their secrets
        "https://iam.twilio.com/v1/Other",
    ],
)
def test_other_resources_are_allowed(url: str) -> None:
    assert not refuses(url)


@pytest.mark.parametrize(
    "name",
    [
        "auth_token",
        "AUTH_TOKEN",
        "authToken",
        "AuthToken",
        "secondary_auth_token",
        "secret",
        "Secret",
        "signing_key",
        "SigningKey",
        "password",
        "Password",
        "api_key_secret",
        "ns:Password",
    ],
)
def test_credential_field_names_are_sensitive(name: str) -> None:
    assert is_sensitive(name)


@pytest.mark.parametrize("name", ["sid", "friendly_name", "signing_key_sid", "secret_sid", "token_type", "status"])
def test_other_field_names_are_not(name: str) -> None:
    assert not is_sensitive(name)


def test_json_values_are_redacted_at_any_depth_and_in_any_case() -> None:
    answer = {
        "sid": "AC1",
        "auth_token": "t0k3n",
        "accounts": [{"sid": "AC2", "AUTH_TOKEN": "t2", "nested": {"Secret": "s", "Password": 1234}}],
        "signing_key": {"whole": "object"},
        "secondaryAuthToken": None,  # nothing to hide
        "secret_sid": "SK1",
    }
    assert redact_value(answer) == {
        "sid": "AC1",
        "auth_token": REDACTED,
        "accounts": [{"sid": "AC2", "AUTH_TOKEN": REDACTED, "nested": {"Secret": REDACTED, "Password": REDACTED}}],
        "signing_key": REDACTED,
        "secondaryAuthToken": None,
        "secret_sid": "SK1",
    }


XML = (
    "<TwilioResponse><Account><Sid>AC1</Sid><AuthToken>t0k3n</AuthToken>"
    '<secondary_auth_token type="x">t2</secondary_auth_token><Secret><![CDATA[s<3]]></Secret>'
    "<FriendlyName>Shop</FriendlyName></Account></TwilioResponse>"
)


def test_xml_elements_are_redacted() -> None:
    redacted = redact_text(XML)
    for value in ("t0k3n", "t2", "s<3"):
        assert value not in redacted
    assert "<AuthToken>[redacted]</AuthToken>" in redacted
    assert '<secondary_auth_token type="x">[redacted]</secondary_auth_token>' in redacted
    assert "<Sid>AC1</Sid>" in redacted and "<FriendlyName>Shop</FriendlyName>" in redacted


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ('{"sid": "SK1", "secret": "k3y"}', "SK1"),
        ('not quite json {"auth_token": "t0k3n", "x": 1', "not quite json"),
        ('{"a": "b", "password": "p\\"w"', '"a": "b"'),
        ("auth_token=t0k3n&sid=AC1", "sid=AC1"),
        ("Secret: ok\npassword = 'p4ss' and more", "Secret: ok"),
        ('<Key Secret="k3y" Sid="SK1"/>', 'Sid="SK1"'),
    ],
)
def test_text_answers_are_redacted(text: str, kept: str) -> None:
    redacted = redact_text(text)
    for value in ("k3y", "t0k3n", "p4ss", 'p\\"w'):
        assert value not in redacted, redacted
    assert kept in redacted


def test_text_without_credentials_is_unchanged() -> None:
    text = '{"sid":  "SM1",\n "body": "password reset done"}'
    assert redact_text(text) == text
    assert redact_text("<Message><Body>secret plans</Body></Message>") == "<Message><Body>secret plans</Body></Message>"


def test_bytes_are_redacted_whatever_their_encoding() -> None:
    utf8 = json.dumps({"name": "café ☕", "secret": "k3y"}, ensure_ascii=False).encode("utf-8")
    redacted = json.loads(redact_bytes(utf8))
    assert redacted == {"name": "café ☕", "secret": REDACTED}
    latin = b"\xff\xfe<Secret>k3y</Secret>\x00\x81"
    assert redact_bytes(latin) == b"\xff\xfe<Secret>[redacted]</Secret>\x00\x81"
    image = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    assert redact_bytes(image) is image
