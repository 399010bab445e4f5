"""Fixtures: a clean environment per test, moto's Secrets Manager, and a loopback fake of Twilio."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

# Read by Powertools when the layer's observability module is first imported, as in Lambda.
os.environ.update(
    {
        "POWERTOOLS_SERVICE_NAME": "twilio-messaging-test",
        "POWERTOOLS_METRICS_NAMESPACE": "TwilioMessagingTest",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    }
)

from tests.support import (
    API_KEY_SECRET,
    API_KEY_SID,
    BODIES,
    SECRET_ID,
    STATE_TABLE,
    LambdaContext,
    atomic_moto_dynamodb,
    create_state_table,
    credentials,
)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts from the template's environment and with nothing cached."""
    from twilio_messaging.execution_environment import environment

    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "PUBLIC_BASE_URL", "DEFAULT_MESSAGING_SERVICE_SID"):
        monkeypatch.delenv(name, raising=False)
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TWILIO_SECRET_ID": SECRET_ID,
        "TWILIO_API_BASE_URL": "http://127.0.0.1:9",  # closed port: a test that forgets the fake fails fast
        "DEFAULT_FROM": "+15005550006",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    environment.reset()
    yield
    environment.reset()


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's AWS, with the Twilio secret in it (auth token credentials) and the state table as
    template.yaml declares it (STATE_TABLE_NAME), its conditional writes atomic as DynamoDB's are:
    every send reads opt-outs and writes a delivery record there."""
    import boto3
    from moto import mock_aws

    with mock_aws(), atomic_moto_dynamodb():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name=SECRET_ID, SecretString=json.dumps(credentials()))
        create_state_table(boto3.client("dynamodb", region_name="us-east-1"), STATE_TABLE)
        monkeypatch.setenv("STATE_TABLE_NAME", STATE_TABLE)
        yield client


@pytest.fixture
def state_table(aws: Any) -> str:
    """The state table's name (the `aws` fixture creates it)."""
    return STATE_TABLE


@pytest.fixture
def aws_with_api_key(aws: Any) -> Any:
    aws.put_secret_value(
        SecretId=SECRET_ID, SecretString=json.dumps(credentials(apiKeySid=API_KEY_SID, apiKeySecret=API_KEY_SECRET))
    )
    return aws


@pytest.fixture
def twilio(httpserver: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """pytest-httpserver standing in for api.twilio.com; the functions are pointed at it."""
    monkeypatch.setenv("TWILIO_API_BASE_URL", httpserver.url_for("/").rstrip("/"))
    return httpserver


@pytest.fixture(autouse=True)
def logs() -> Iterator[Any]:
    """What the functions print to CloudWatch during the test (the Powertools handler's stream),
    checked after every test: no secret and no message body, whatever the test did."""
    import io

    from tests.support import SECRETS
    from twilio_messaging.observability import logger

    handler = logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    yield buffer
    handler.setStream(previous)  # type: ignore[attr-defined]
    output = buffer.getvalue()
    leaked = [value for value in (*SECRETS, *BODIES) if value in output]
    assert not leaked, f"logs hold a secret or a message body: {leaked}"
