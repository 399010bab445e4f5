"""The one place that reads the environment (docs/api.md, "Configuration"). Read once per
execution environment (execution_environment.py): variables never change while it lives."""

from __future__ import annotations

import os
from dataclasses import dataclass

from twilio_messaging.errors import ConfigurationError

DEFAULT_API_BASE_URL = "https://api.twilio.com"
MAX_BATCH_CONCURRENCY = 100  # a request has at most 100 recipients
# The send queue's event source mapping runs at most this many invocations at once (template.yaml,
# ScalingConfig.MaximumConcurrency: Lambda's minimum); tests/unit/test_template.py checks they agree.
SEND_QUEUE_MAXIMUM_CONCURRENCY = 2


@dataclass(frozen=True)
class Settings:
    twilio_secret_id: str
    twilio_api_base_url: str = DEFAULT_API_BASE_URL
    default_from: str = ""
    default_messaging_service_sid: str = ""
    public_base_url: str = ""
    # SSM parameter holding the deployed API's base URL: read at run time, because the
    # function's environment cannot reference the API that invokes it (circular dependency).
    public_base_url_parameter: str = ""
    event_bus_name: str = "default"
    state_table_name: str = ""
    secret_max_age_seconds: int = 300
    message_record_days: int = 30  # delivery records live this long after a message's last change
    reconcile_after_minutes: int = 30  # a message not final after this is looked up on Twilio
    reconcile_max_messages: int = 100  # looked up per run of the reconciler
    # The Twilio account's concurrent REST requests: what every concurrency here derives from
    # (a batch's sends in flight, a campaign's map and batches, the send queue's consumers).
    twilio_concurrency_limit: int = 10
    campaign_bucket: str = ""
    campaign_state_machine_arn: str = ""
    campaign_report_days: int = 30  # reports expire, and campaign records are kept, this long
    # The queue between the "Send Message" rule and this function (re-queues of throttled events go
    # there) and its dead-letter queue (events that can never be sent). Read on the queue's path only.
    send_queue_url: str = ""
    send_dead_letter_queue_url: str = ""

    @property
    def batch_concurrency(self) -> int:
        """Sends of one request's recipients (at most 100) in flight at once."""
        return min(self.twilio_concurrency_limit, MAX_BATCH_CONCURRENCY)

    @property
    def aws_connections(self) -> int:
        """Connections kept to each AWS endpoint: as many as the threads that may call it at once
        (a campaign batch has two per send in flight), so that none is opened per call."""
        return max(10, 2 * self.twilio_concurrency_limit)

    @property
    def send_queue_concurrency(self) -> int:
        """Sends in flight at most in one invocation from the send queue, across the records of its
        batch: the queue's invocations together stay within the account's limit."""
        return max(1, self.twilio_concurrency_limit // SEND_QUEUE_MAXIMUM_CONCURRENCY)


def _int_variable(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}")
    return value


def _url_variable(name: str, default: str = "") -> str:
    value = os.environ.get(name, "").strip().rstrip("/")
    if value and not value.startswith(("https://", "http://")):
        raise ConfigurationError(f"{name} must be an http(s) URL")
    return value or default


def read_settings() -> Settings:
    secret_id = os.environ.get("TWILIO_SECRET_ID", "").strip()
    if not secret_id:
        raise ConfigurationError("TWILIO_SECRET_ID is not set")
    return Settings(
        twilio_secret_id=secret_id,
        twilio_api_base_url=_url_variable("TWILIO_API_BASE_URL", DEFAULT_API_BASE_URL),
        default_from=os.environ.get("DEFAULT_FROM", "").strip(),
        default_messaging_service_sid=os.environ.get("DEFAULT_MESSAGING_SERVICE_SID", "").strip(),
        public_base_url=_url_variable("PUBLIC_BASE_URL"),
        public_base_url_parameter=os.environ.get("PUBLIC_BASE_URL_PARAMETER", "").strip(),
        event_bus_name=os.environ.get("EVENT_BUS_NAME", "").strip() or "default",
        state_table_name=os.environ.get("STATE_TABLE_NAME", "").strip(),
        secret_max_age_seconds=_int_variable("SECRET_MAX_AGE_SECONDS", 300),
        message_record_days=_int_variable("MESSAGE_RECORD_DAYS", 30, minimum=1),
        reconcile_after_minutes=_int_variable("RECONCILE_AFTER_MINUTES", 30, minimum=1),
        reconcile_max_messages=_int_variable("RECONCILE_MAX_MESSAGES", 100, minimum=1),
        twilio_concurrency_limit=_int_variable("TWILIO_CONCURRENCY_LIMIT", 10, minimum=1),
        campaign_bucket=os.environ.get("CAMPAIGN_BUCKET", "").strip(),
        campaign_state_machine_arn=os.environ.get("CAMPAIGN_STATE_MACHINE_ARN", "").strip(),
        campaign_report_days=_int_variable("CAMPAIGN_REPORT_DAYS", 30, minimum=15),
        send_queue_url=os.environ.get("SEND_QUEUE_URL", "").strip(),
        send_dead_letter_queue_url=os.environ.get("SEND_DEAD_LETTER_QUEUE_URL", "").strip(),
    )


def tracing_enabled() -> bool:
    """Powertools' own switch; read here so that the X-Ray SDK is imported only when tracing is on."""
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").strip().lower() not in ("true", "1")


@dataclass(frozen=True)
class AwsEnvironment:
    """What a Lambda execution environment tells its code about AWS: region, credentials, endpoints."""

    region: str
    access_key_id: str
    secret_access_key: str
    session_token: str
    endpoint_url: str  # AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, else empty (AWS itself)


def aws_environment(service_env_name: str) -> AwsEnvironment:
    """`service_env_name` is the service's part of AWS_ENDPOINT_URL_<SERVICE>, e.g. SECRETS_MANAGER."""
    env = os.environ
    return AwsEnvironment(
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "",
        access_key_id=env.get("AWS_ACCESS_KEY_ID", ""),
        secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", ""),
        session_token=env.get("AWS_SESSION_TOKEN", ""),
        endpoint_url=(env.get(f"AWS_ENDPOINT_URL_{service_env_name}") or env.get("AWS_ENDPOINT_URL") or "").rstrip("/"),
    )


# Variables that make requests consult the environment (proxies, CA bundles, .netrc).
_REQUESTS_ENVIRONMENT = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def http_uses_environment() -> bool:
    """Whether HTTP sessions must read proxy and CA settings from the environment. requests
    scans the whole environment on every request otherwise: about 0.1 ms per call, measured."""
    return any(os.environ.get(name) or os.environ.get(name.lower()) for name in _REQUESTS_ENVIRONMENT)
