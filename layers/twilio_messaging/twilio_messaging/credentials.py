"""Twilio credentials from Secrets Manager (docs/architecture.md, "Credentials"): cached, re-read on demand,
never logged. Read with a SigV4-signed call (aws_json) rather than boto3, whose import is the
costliest part of a cold start; boto3 only finds credentials where the environment has none."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twilio_messaging.deadline import Deadline, DeadlineExpired
from twilio_messaging.errors import AwsServiceUnavailable, ConfigurationError, TwilioMessagingError
from twilio_messaging.observability import count

if TYPE_CHECKING:
    from twilio_messaging.aws_json import AwsJsonClient

SECRET_READ_TIMEOUT_SECONDS = 5.0
# After a rejection (Twilio's 401, a webhook signature that fails) the secret is read again at
# most this often: a rotated token applies within a minute, and a flood of failures cannot
# become a flood of Secrets Manager calls.
REREAD_INTERVAL_SECONDS = 60.0

ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}\Z")
API_KEY_SID = re.compile(r"^SK[0-9a-fA-F]{32}\Z")


@dataclass(frozen=True)
class Credentials:
    account_sid: str
    auth_token: str = field(default="", repr=False)
    api_key_sid: str = ""
    api_key_secret: str = field(default="", repr=False)
    secondary_auth_token: str = field(default="", repr=False)
    webhook_shared_keys: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def basic_auth(self) -> tuple[str, str]:
        """API key when both parts are present (Twilio's recommendation), else the auth token."""
        if self.api_key_sid and self.api_key_secret:
            return self.api_key_sid, self.api_key_secret
        return self.account_sid, self.auth_token

    @property
    def signing_tokens(self) -> list[str]:
        """Auth tokens that may have signed a webhook: primary, then secondary during rotation."""
        return [t for t in (self.auth_token, self.secondary_auth_token) if t]


def _string_field(data: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise ConfigurationError(f"the Twilio secret is missing the field {name}")
        return ""
    if not isinstance(value, str):
        raise ConfigurationError(f"the Twilio secret field {name} must be a string")
    return value.strip()


def parse_secret(secret_string: str | None) -> Credentials:
    """Credentials from the secret's JSON text; errors name the field, never a value."""
    try:
        data = json.loads(secret_string or "")
    except ValueError:
        raise ConfigurationError("the Twilio secret is not valid JSON") from None
    if not isinstance(data, dict):
        raise ConfigurationError("the Twilio secret must be a JSON object")

    account_sid = _string_field(data, "accountSid", required=True)
    if not ACCOUNT_SID.match(account_sid):
        raise ConfigurationError("the Twilio secret field accountSid is malformed (expected AC + 32 hex)")
    auth_token = _string_field(data, "authToken")
    api_key_sid = _string_field(data, "apiKeySid")
    api_key_secret = _string_field(data, "apiKeySecret")
    if api_key_sid and not API_KEY_SID.match(api_key_sid):
        raise ConfigurationError("the Twilio secret field apiKeySid is malformed (expected SK + 32 hex)")
    if api_key_sid and not api_key_secret:
        raise ConfigurationError("the Twilio secret is missing the field apiKeySecret")
    if api_key_secret and not api_key_sid:
        raise ConfigurationError("the Twilio secret is missing the field apiKeySid")
    if not auth_token and not api_key_sid:
        raise ConfigurationError("the Twilio secret is missing the field authToken (or apiKeySid and apiKeySecret)")

    shared_keys = data.get("webhookSharedKeys") or {}
    if not isinstance(shared_keys, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in shared_keys.items()
    ):
        raise ConfigurationError("the Twilio secret field webhookSharedKeys must map key ids to secret strings")

    return Credentials(
        account_sid=account_sid,
        auth_token=auth_token,
        api_key_sid=api_key_sid,
        api_key_secret=api_key_secret,
        secondary_auth_token=_string_field(data, "secondaryAuthToken"),
        webhook_shared_keys=dict(shared_keys),
    )


class CredentialStore:
    """Reads the secret at most once per `max_age_seconds`, or again after a rejection."""

    reread_interval = REREAD_INTERVAL_SECONDS

    def __init__(self, secret_id: str, max_age_seconds: int, client: Callable[[], AwsJsonClient] | None = None) -> None:
        """`client`: builds the Secrets Manager client on the first read (default: one of its own)."""
        self._secret_id = secret_id
        self._max_age = max_age_seconds
        self._client = client or _own_client
        self._lock = threading.Lock()
        self._cached: Credentials | None = None
        self._read_at = 0.0

    def get(self, deadline: Deadline | None = None) -> Credentials:
        with self._lock:
            if self._cached is None or time.monotonic() - self._read_at >= self._max_age:
                self._cached = self._read(deadline)
                self._read_at = time.monotonic()
            return self._cached

    def reread_after_rejection(self, stale: Credentials, deadline: Deadline | None = None) -> Credentials | None:
        """Credentials to try again with after `stale` was rejected: those another call read
        since, or the secret read again when `stale` is older than `reread_interval`; None when
        they are recent, so that repeated rejections cost no reads."""
        with self._lock:
            if self._cached is not stale:
                return self._cached
            if time.monotonic() - self._read_at < self.reread_interval:
                return None
            self._cached = self._read(deadline)
            self._read_at = time.monotonic()
            return self._cached

    def _read(self, deadline: Deadline | None) -> Credentials:
        """The secret read and parsed; a read that fails, or a secret that cannot be used, is
        counted as SecretReadFailures (not a read the invocation had no time left to make)."""
        try:
            return parse_secret(self._secret_string(deadline))
        except ConfigurationError:
            count("SecretReadFailures")
            raise

    def _secret_string(self, deadline: Deadline | None) -> str | None:
        from twilio_messaging.aws_json import AwsCallFailed  # with the first read

        client = self._client()
        request = {"SecretId": self._secret_id}
        try:
            if deadline is None:
                return client.call("GetSecretValue", request).get("SecretString")
            # Throttling, a 5xx or a network error is repeated, as the AWS SDKs do, while the
            # deadline leaves time: a passing throttle must not fail the call for good.
            answer = client.call_within(
                "GetSecretValue", request, deadline, attempts=3, read_timeout=SECRET_READ_TIMEOUT_SECONDS
            )
            return answer.get("SecretString")
        except AwsCallFailed as error:
            raise self._unreadable(error.error_code) from None

    def _unreadable(self, reason: str) -> TwilioMessagingError:
        if reason == DeadlineExpired.__name__:
            return AwsServiceUnavailable("no time was left to read the Twilio secret", retry_after=1, timed_out=True)
        if reason == "ResourceNotFoundException":
            return ConfigurationError(f"the Twilio secret {self._secret_id} does not exist")
        return ConfigurationError(f"the Twilio secret could not be read ({reason})")


def _own_client() -> AwsJsonClient:
    from twilio_messaging.aws_json import SECRETS_MANAGER, client_for

    return client_for(SECRETS_MANAGER, "SECRETS_MANAGER")
