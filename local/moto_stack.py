"""AWS, locally: moto_server on loopback, with what the template's functions use created at start:
the Twilio secret, the state table(s), the event bus(es), the public base URL parameter, and a
queue with a rule that captures every `twilio.messaging` event, so that one can see what
reached the bus. The functions reach it through AWS_ENDPOINT_URL."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.processes import (
    LOOPBACK,
    ensure_port_free,
    free_port,
    start_process,
    stop_process,
    wait_until_serving,
)
from local.template import LocalTemplate

REGION = "us-east-1"
# moto accepts any credentials; Lambda hands its code static ones in the environment, so do we.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
}
SECRET_NAME = "twilio/local"
EVENT_SOURCE = "twilio.messaging"
CAPTURE_QUEUE = "local-twilio-messaging-events"
CAPTURE_RULE = "local-capture-twilio-messaging"
STARTUP_TIMEOUT_SECONDS = 30.0


class MotoServer:
    """moto_server in a child process, on the given port or a free one."""

    def __init__(self, port: int | None = None, workdir: Path | None = None, host: str = LOOPBACK) -> None:
        self.host = host
        self.port = port
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="moto-"))
        self.log_path = self.workdir / "moto_server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def launch(self) -> None:
        if self.port:
            ensure_port_free(self.host, self.port, "moto_server", "--moto-port")
        else:
            self.port = free_port(self.host)
        with self.log_path.open("w") as log:
            self.process = start_process(
                [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)], log
            )

    def wait(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> str:
        assert self.process is not None, "launch() first"
        wait_until_serving(f"{self.url}/moto-api/", self.process, "moto_server", timeout, self.log_path)
        return self.url

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


class InProcessMoto:
    """moto_server in this process, on a thread: the state machines it executes call the
    functions' handlers in this process too (local.moto_hooks), the ones the local API serves.
    DynamoDB's conditional writes are atomic, as in AWS."""

    def __init__(self, port: int | None = None, host: str = LOOPBACK) -> None:
        self.host = host
        self.port = port
        self._server: Any = None
        self._atomic: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def process(self) -> None:
        return None  # no child process to stop

    def launch(self) -> None:
        import os

        if self.port:
            ensure_port_free(self.host, self.port, "moto_server", "--moto-port")
        else:
            self.port = free_port(self.host)
        # The executor's own clients call localhost:MOTO_PORT, whatever AWS_ENDPOINT_URL says.
        os.environ["MOTO_PORT"] = str(self.port)

    def wait(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> str:
        from moto.server import ThreadedMotoServer

        from local.moto_hooks import atomic_dynamodb, enable_execution, quick_dispatch

        enable_execution()
        quick_dispatch()
        # moto logs every state machine failure as an error, with its whole state: a failed
        # execution is an outcome here (the workflow's "Delivery failed"), shown by its history.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        self._atomic = atomic_dynamodb()
        self._atomic.__enter__()
        self._server = ThreadedMotoServer(ip_address=self.host, port=int(self.port or 0), verbose=False)
        self._server.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._atomic is not None:
            self._atomic.__exit__(None, None, None)
            self._atomic = None


def client(service: str, endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    factory: Any = boto3.client  # the service is a variable: no typed overload applies
    return factory(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=CREDENTIALS["AWS_SESSION_TOKEN"],
        config=Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2}),
    )


@dataclass
class LocalAws:
    """What was created in moto, and where."""

    endpoint: str
    secret_arn: str
    tables: list[str] = field(default_factory=list)
    event_buses: list[str] = field(default_factory=list)
    capture_queue_url: str = ""
    parameters: list[str] = field(default_factory=list)
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    buckets: dict[str, str] = field(default_factory=dict)  # logical id -> bucket name

    def resource_names(self) -> dict[str, str]:
        """What a function's environment names by logical id (SAM CLI resolves !Ref to it), as
        created here: a bucket's name, a state machine's ARN."""
        return {**self.buckets, **self.state_machines}

    def bus_events(self, wait_seconds: float = 0.0, max_events: int = 10) -> list[dict[str, Any]]:
        """Events that reached the bus(es) since the last call (each is read once), waiting up to
        `wait_seconds` for the first."""
        sqs = client("sqs", self.endpoint)
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + wait_seconds
        while True:
            answer = sqs.receive_message(QueueUrl=self.capture_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            for message in answer.get("Messages", []):
                events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.capture_queue_url, ReceiptHandle=message["ReceiptHandle"])
            if events or time.monotonic() >= deadline or len(events) >= max_events:
                return events
            time.sleep(0.1)


def seed(endpoint: str, template: LocalTemplate, secret: dict[str, Any], public_base_url: str) -> LocalAws:
    """Create the template's AWS resources in moto, as the functions' environment names them."""
    secrets = client("secretsmanager", endpoint)
    arn = secrets.create_secret(Name=SECRET_NAME, SecretString=json.dumps(secret))["ARN"]
    aws = LocalAws(endpoint=endpoint, secret_arn=arn)

    aws.tables.extend(create_tables(endpoint, template))

    sqs = client("sqs", endpoint)
    aws.capture_queue_url = sqs.create_queue(QueueName=CAPTURE_QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=aws.capture_queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = client("events", endpoint)
    for bus in template.event_buses:
        if bus != "default":
            events.create_event_bus(Name=bus)
        events.put_rule(
            Name=CAPTURE_RULE, EventBusName=bus, EventPattern=json.dumps({"source": [EVENT_SOURCE]}), State="ENABLED"
        )
        events.put_targets(Rule=CAPTURE_RULE, EventBusName=bus, Targets=[{"Id": "capture", "Arn": queue_arn}])
        aws.event_buses.append(bus)

    # The deployed stack writes its API's URL there for direct and EventBridge invocations.
    ssm = client("ssm", endpoint)
    for name in sorted(template.environment_values("PUBLIC_BASE_URL_PARAMETER")):
        ssm.put_parameter(Name=name, Value=public_base_url, Type="String", Overwrite=True)
        aws.parameters.append(name)

    s3 = client("s3", endpoint)
    for logical_id in template.buckets:
        aws.buckets[logical_id] = f"local-{logical_id.lower()}"  # S3 names are lower case
        s3.create_bucket(Bucket=aws.buckets[logical_id])

    stepfunctions = client("stepfunctions", endpoint)
    for machine in template.state_machines:
        role = "arn:aws:iam::123456789012:role/local-state-machine"
        created = stepfunctions.create_state_machine(name=machine.name, definition=machine.definition, roleArn=role)
        aws.state_machines[machine.logical_id] = created["stateMachineArn"]
    return aws


def create_tables(endpoint: str, template: LocalTemplate) -> list[str]:
    """The template's DynamoDB tables (keys, indexes, TTL) at `endpoint`; their names."""
    dynamodb = client("dynamodb", endpoint)
    for table in template.tables:
        indexes = {"GlobalSecondaryIndexes": table.indexes} if table.indexes else {}
        dynamodb.create_table(
            TableName=table.name,
            KeySchema=table.key_schema,
            AttributeDefinitions=table.attribute_definitions,
            BillingMode="PAY_PER_REQUEST",
            **indexes,
        )
        if table.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=table.name,
                TimeToLiveSpecification={"AttributeName": table.ttl_attribute, "Enabled": True},
            )
    return [table.name for table in template.tables]
