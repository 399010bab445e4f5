import json

import pytest

from tests.support import ACCOUNT_SID, API_KEY_SECRET, API_KEY_SID, AUTH_TOKEN
from twilio_messaging.credentials import parse_secret
from twilio_messaging.errors import ConfigurationError


def test_api_key_is_preferred_for_rest_calls() -> None:
    secret = {
        "accountSid": ACCOUNT_SID,
        "authToken": AUTH_TOKEN,
        "apiKeySid": API_KEY_SID,
        "apiKeySecret": API_KEY_SECRET,
    }
    credentials = parse_secret(json.dumps(secret))
    assert credentials.basic_auth == (API_KEY_SID, API_KEY_SECRET)
    assert credentials.signing_tokens == [AUTH_TOKEN]


def test_auth_token_alone() -> None:
    assert parse_secret(json.dumps({"accountSid": ACCOUNT_SID, "authToken": AUTH_TOKEN})).basic_auth == (
        ACCOUNT_SID,
        AUTH_TOKEN,
    )


def test_repr_shows_no_secret() -> None:
    secret = {
        "accountSid": ACCOUNT_SID,
        "authToken": AUTH_TOKEN,
        "apiKeySid": API_KEY_SID,
        "apiKeySecret": API_KEY_SECRET,
    }
    text = repr(parse_secret(json.dumps(secret)))
    assert AUTH_TOKEN not in text and API_KEY_SECRET not in text


@pytest.mark.parametrize(
    ("secret", "field"),
    [
        ("not json", "JSON"),
        ("[]", "JSON object"),
        ({"authToken": AUTH_TOKEN}, "accountSid"),
        ({"accountSid": "AC123", "authToken": AUTH_TOKEN}, "accountSid"),
        ({"accountSid": ACCOUNT_SID}, "authToken"),
        ({"accountSid": ACCOUNT_SID, "apiKeySid": API_KEY_SID}, "apiKeySecret"),
        ({"accountSid": ACCOUNT_SID, "authToken": AUTH_TOKEN, "apiKeySecret": API_KEY_SECRET}, "apiKeySid"),
        ({"accountSid": ACCOUNT_SID, "authToken": 5}, "authToken"),
        ({"accountSid": ACCOUNT_SID, "authToken": AUTH_TOKEN, "webhookSharedKeys": ["k"]}, "webhookSharedKeys"),
    ],
)
def test_malformed_secret_names_the_field_never_a_value(secret: object, field: str) -> None:
    text = secret if isinstance(secret, str) else json.dumps(secret)
    with pytest.raises(ConfigurationError) as caught:
        parse_secret(text)
    assert field in caught.value.message
    assert AUTH_TOKEN not in str(caught.value) and API_KEY_SECRET not in str(caught.value)
