"""A minimal client for AWS JSON-protocol APIs (Secrets Manager, SSM, DynamoDB, EventBridge,
Step Functions, SQS) signed with SigV4.

Why not boto3: importing boto3 and building one client costs about 250 ms of every cold start,
more than the rest of a function together. Lambda hands its code static credentials in the
environment, which is all SigV4 needs. Where the environment has no such credentials (a laptop
with a profile or SSO), `AwsJsonClient.available` is false and callers use boto3 instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from twilio_messaging.deadline import Deadline, DeadlineExpired
from twilio_messaging.errors import AwsServiceUnavailable, ConfigurationError, TwilioMessagingError
from twilio_messaging.settings import AwsEnvironment

TIMEOUT_SECONDS = (3.05, 5.0)
DEADLINE_EXPIRED = DeadlineExpired.__name__  # the error code of a call not made for want of time
# Error codes that retrying cannot help: a missing resource (SQS names its own), no permission.
NOT_RETRYABLE = ("ResourceNotFoundException", "AccessDeniedException", "NoCredentials", "QueueDoesNotExist")


class AwsCallFailed(Exception):
    def __init__(self, error_code: str, status: int | None = None) -> None:
        super().__init__(error_code)
        self.error_code = error_code
        self.status = status

    def domain_error(self, what: str) -> TwilioMessagingError:
        """ConfigurationError when retrying cannot help (missing resource, no permission or
        credentials), else AwsServiceUnavailable: a 503 that tells Twilio, or the caller, to retry."""
        if self.error_code in NOT_RETRYABLE:
            return ConfigurationError(f"{what} cannot be used ({self.error_code})")
        if self.error_code == DEADLINE_EXPIRED:
            return AwsServiceUnavailable(f"no time was left to call {what}", retry_after=1, timed_out=True)
        return AwsServiceUnavailable(f"{what} did not answer ({self.error_code})", retry_after=1)

    @property
    def retryable(self) -> bool:
        """Throttling, a 5xx or no answer at all: the same call may succeed later."""
        return (
            self.status is None
            or self.status >= 500
            or "Throttl" in self.error_code
            or self.error_code
            in (
                "ProvisionedThroughputExceededException",
                "RequestLimitExceeded",
                "LimitExceededException",
            )
        )


@dataclass(frozen=True)
class AwsJsonService:
    signing_name: str  # e.g. secretsmanager
    target_prefix: str  # X-Amz-Target prefix, e.g. secretsmanager or AmazonSSM
    json_version: str = "1.1"


SECRETS_MANAGER = AwsJsonService("secretsmanager", "secretsmanager")
SSM = AwsJsonService("ssm", "AmazonSSM")
DYNAMODB = AwsJsonService("dynamodb", "DynamoDB_20120810", "1.0")
EVENTBRIDGE = AwsJsonService("events", "AWSEvents")
STEP_FUNCTIONS = AwsJsonService("states", "AWSStepFunctions", "1.0")
SQS = AwsJsonService("sqs", "AmazonSQS", "1.0")
# By the name each has in AWS_ENDPOINT_URL_<SERVICE>.
SERVICES = {
    "SECRETS_MANAGER": SECRETS_MANAGER,
    "SSM": SSM,
    "DYNAMODB": DYNAMODB,
    "EVENTBRIDGE": EVENTBRIDGE,
    "SFN": STEP_FUNCTIONS,
    "SQS": SQS,
}


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def sign(
    *,
    env: AwsEnvironment,
    service: str,
    host: str,
    headers: dict[str, str],
    body: bytes,
    now: datetime,
    method: str = "POST",
    path: str = "/",
) -> dict[str, str]:
    """`headers` plus X-Amz-Date, X-Amz-Security-Token and the SigV4 Authorization header."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {**headers, "Host": host, "X-Amz-Date": amz_date}
    if env.session_token:
        signed["X-Amz-Security-Token"] = env.session_token
    canonical_headers = {name.lower(): " ".join(value.split()) for name, value in signed.items()}
    names = sorted(canonical_headers)
    canonical_request = "\n".join(
        [
            method,
            path,
            "",
            "".join(f"{name}:{canonical_headers[name]}\n" for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{env.region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    key = _hmac(("AWS4" + env.secret_access_key).encode("utf-8"), day)
    for part in (env.region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    signed["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={env.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    del signed["Host"]  # requests sets it from the URL
    return signed


class AwsJsonClient:
    def __init__(self, service: AwsJsonService, env: AwsEnvironment, session: Any = None) -> None:
        import requests  # already loaded by the Twilio client in every function that gets here

        self.service = service
        self.env = env
        self._session = session or requests.Session()
        self.url = env.endpoint_url or f"https://{service.signing_name}.{env.region}.amazonaws.com"

    @property
    def available(self) -> bool:
        return bool(self.env.region and self.env.access_key_id and self.env.secret_access_key)

    def call(
        self, operation: str, payload: dict[str, Any], timeout: tuple[float, float] | None = None
    ) -> dict[str, Any]:
        import requests

        if not self.available:
            raise AwsCallFailed("NoCredentials")
        body = json.dumps(payload).encode("utf-8")
        headers = sign(
            env=self.env,
            service=self.service.signing_name,
            host=urlsplit(self.url).netloc,
            headers={
                "Content-Type": f"application/x-amz-json-{self.service.json_version}",
                "X-Amz-Target": f"{self.service.target_prefix}.{operation}",
            },
            body=body,
            now=datetime.now(UTC),
        )
        try:
            response = self._session.post(
                self.url + "/", data=body, headers=headers, timeout=timeout or TIMEOUT_SECONDS
            )
        except requests.RequestException as error:
            raise AwsCallFailed(type(error).__name__) from None
        data = _json_object(response.content)
        if response.status_code >= 400:
            error_type = str(data.get("__type") or response.headers.get("x-amzn-ErrorType") or "UnknownError")
            raise AwsCallFailed(error_type.split("#")[-1].split(":")[0], response.status_code)
        return data

    def call_within(
        self, operation: str, payload: dict[str, Any], deadline: Deadline, attempts: int = 3, read_timeout: float = 5.0
    ) -> dict[str, Any]:
        """`call`, repeated on throttling, 5xx and network errors with backoff and jitter, as long
        as the deadline leaves time. Only for calls that are safe to repeat (conditional writes,
        reads, idempotent updates)."""
        for attempt in range(1, attempts + 1):
            try:
                try:
                    timeouts = deadline.timeouts(read_timeout)
                except DeadlineExpired:
                    raise AwsCallFailed(DEADLINE_EXPIRED) from None
                return self.call(operation, payload, timeouts)
            except AwsCallFailed as error:
                pause = random.uniform(0, 0.1 * 2**attempt)
                if not error.retryable or attempt == attempts or deadline.remaining() < pause + 0.5:
                    raise
                time.sleep(pause)
        raise AssertionError("unreachable")


def _json_object(content: bytes) -> dict[str, Any]:
    try:
        data = json.loads(content) if content else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def client_for(service: AwsJsonService, service_env_name: str, session: Any = None) -> AwsJsonClient:
    """A client with Lambda's credentials from the environment; elsewhere (a laptop with a
    profile or SSO) with boto3's credential chain, still signed here. `session`: the
    requests.Session to call through (one connection pool for every AWS service)."""
    from dataclasses import replace

    from twilio_messaging.settings import aws_environment

    env = aws_environment(service_env_name)
    if env.access_key_id and env.secret_access_key:
        return AwsJsonClient(service, env, session)
    import boto3

    chain = boto3.Session()
    found = chain.get_credentials()
    if found is None:
        return AwsJsonClient(service, env, session)  # not available: calls fail with NoCredentials
    frozen = found.get_frozen_credentials()
    env = replace(
        env,
        region=env.region or chain.region_name or "",
        access_key_id=frozen.access_key or "",
        secret_access_key=frozen.secret_key or "",
        session_token=frozen.token or "",
    )
    return AwsJsonClient(service, env, session)
