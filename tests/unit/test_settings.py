import pytest

from twilio_messaging.errors import ConfigurationError
from twilio_messaging.settings import read_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TWILIO_API_BASE_URL", "DEFAULT_FROM", "EVENT_BUS_NAME", "SECRET_MAX_AGE_SECONDS", "STATE_TABLE_NAME"):
        monkeypatch.delenv(name, raising=False)
    settings = read_settings()
    assert settings.twilio_api_base_url == "https://api.twilio.com"
    assert settings.event_bus_name == "default"
    assert settings.secret_max_age_seconds == 300
    assert settings.default_from == "" and settings.public_base_url == ""


def test_values_are_read_and_trimmed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://sms.example.com/v1/")
    monkeypatch.setenv("SECRET_MAX_AGE_SECONDS", "60")
    monkeypatch.setenv("DEFAULT_MESSAGING_SERVICE_SID", " MG0123456789abcdef0123456789abcdef ")
    settings = read_settings()
    assert settings.public_base_url == "https://sms.example.com/v1"
    assert settings.secret_max_age_seconds == 60
    assert settings.default_messaging_service_sid == "MG0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("TWILIO_SECRET_ID", "", "TWILIO_SECRET_ID"),
        ("SECRET_MAX_AGE_SECONDS", "five", "SECRET_MAX_AGE_SECONDS"),
        ("SECRET_MAX_AGE_SECONDS", "-1", "at least 0"),
        ("TWILIO_API_BASE_URL", "api.twilio.com", "TWILIO_API_BASE_URL"),
    ],
)
def test_bad_values_are_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=fragment):
        read_settings()
