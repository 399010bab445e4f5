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


def test_http_sessions_read_the_environment_only_when_a_proxy_or_ca_bundle_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from twilio_messaging.settings import http_uses_environment
    from twilio_messaging.twilio_client import TwilioClient

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    assert not http_uses_environment()
    assert TwilioClient("https://api.twilio.com", None).session.trust_env is False  # type: ignore[arg-type]
    monkeypatch.setenv("https_proxy", "http://proxy.internal:3128")
    assert http_uses_environment()
    assert TwilioClient("https://api.twilio.com", None).session.trust_env is True  # type: ignore[arg-type]


def test_a_batch_sends_as_many_at_once_as_twilio_allows_up_to_its_100_recipients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TWILIO_CONCURRENCY_LIMIT", raising=False)
    assert (read_settings().twilio_concurrency_limit, read_settings().batch_concurrency) == (10, 10)
    monkeypatch.setenv("TWILIO_CONCURRENCY_LIMIT", "25")
    assert read_settings().batch_concurrency == 25
    monkeypatch.setenv("TWILIO_CONCURRENCY_LIMIT", "500")
    assert (read_settings().twilio_concurrency_limit, read_settings().batch_concurrency) == (500, 100)
    monkeypatch.setenv("TWILIO_CONCURRENCY_LIMIT", "0")
    with pytest.raises(ConfigurationError):
        read_settings()


def test_aws_calls_keep_a_connection_for_each_thread_that_may_make_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A campaign batch has two threads per send in flight, each calling DynamoDB: with fewer
    kept connections, calls would open (and on AWS, handshake) a connection each."""
    from twilio_messaging.execution_environment import environment

    monkeypatch.setenv("TWILIO_CONCURRENCY_LIMIT", "40")
    monkeypatch.setenv("STATE_TABLE_NAME", "state")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    environment.reset()
    try:
        assert read_settings().aws_connections == 80
        assert environment.aws_session().get_adapter("https://dynamodb.us-east-1.amazonaws.com")._pool_maxsize == 80
        assert environment.idempotency_store().persistence.client.meta.config.max_pool_connections == 80
    finally:
        environment.reset()
    monkeypatch.setenv("TWILIO_CONCURRENCY_LIMIT", "2")
    assert read_settings().aws_connections == 10


def test_the_send_queue_halves_the_limit_between_its_two_invocations(monkeypatch: pytest.MonkeyPatch) -> None:
    for limit, per_invocation in (("2", 1), ("3", 1), ("10", 5), ("1000", 500)):
        monkeypatch.setenv("TWILIO_CONCURRENCY_LIMIT", limit)
        assert read_settings().send_queue_concurrency == per_invocation
    monkeypatch.setenv("SEND_QUEUE_URL", " https://sqs.us-east-1.amazonaws.com/123456789012/send ")
    monkeypatch.setenv("SEND_DEAD_LETTER_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/dead")
    settings = read_settings()
    assert settings.send_queue_url == "https://sqs.us-east-1.amazonaws.com/123456789012/send"
    assert settings.send_dead_letter_queue_url.endswith("/dead")
