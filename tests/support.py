"""Test helpers shared by every suite and the benchmarks: loading handlers and events, a Lambda
context, the Message fixture, the webhook signer, the test secret, moto's atomic DynamoDB."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from local.processes import stop_process, tail

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "authtoken-0f3c9b2e7d1a4c5b8e6f"
ROTATED_AUTH_TOKEN = "authtoken-rotated-9a8b7c6d5e4f"
API_KEY_SID = "SK0123456789abcdef0123456789abcdef"
API_KEY_SECRET = "apikeysecret-5b2d8e1f4a7c"
SECRET_ID = "twilio/test-credentials"
MESSAGE_SID = "SM0123456789abcdef0123456789abcdef"
SECRETS = (AUTH_TOKEN, ROTATED_AUTH_TOKEN, API_KEY_SECRET)


_loading = threading.Lock()


def load_handler(function: str) -> ModuleType:
    """functions/<function>/app.py as a module of its own (every handler file is named app.py).
    Safe from threads: a module is published only once it is fully loaded."""
    name = f"{function}_app"
    with _loading:
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
        return module


def load_event(relative: str) -> Any:
    return json.loads((EVENTS / relative).read_text())


def api_event(
    template: str,
    *,
    body: Any = None,
    raw_body: str | None = None,
    headers: dict[str, str] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """A copy of an events/ API Gateway file with another body, headers or top-level fields."""
    event = copy.deepcopy(load_event(template))
    if body is not None:
        event["body"] = json.dumps(body)
    if raw_body is not None:
        event["body"] = raw_body
    if headers:
        event["headers"].update(headers)
        event["multiValueHeaders"].update({k: [v] for k, v in headers.items()})
    event.update(changes)
    return event


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "0b6b1d2c-0000-4000-8000-000000000001"
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def twilio_message(
    sid: str = MESSAGE_SID,
    to: str = "+15558675310",
    status: str = "queued",
    *,
    account_sid: str = ACCOUNT_SID,
    **fields: Any,
) -> dict[str, Any]:
    """A Message resource as Twilio answers it (snake_case, RFC 2822 dates, counts as strings)."""
    resource = {
        "sid": sid,
        "account_sid": account_sid,
        "messaging_service_sid": None,
        "from": "+15005550006",
        "to": to,
        "body": "Hello",
        "status": status,
        "direction": "outbound-api",
        "num_segments": "1",
        "num_media": "0",
        "price": None,
        "price_unit": "USD",
        "error_code": None,
        "error_message": None,
        "date_created": "Thu, 30 Jul 2015 20:12:31 +0000",
        "date_sent": None,
        "date_updated": "Thu, 30 Jul 2015 20:12:33 +0000",
        "api_version": "2010-04-01",
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json"},
    }
    resource.update(fields)
    return resource


def is_api_event(event: Any) -> bool:
    return isinstance(event, dict) and "httpMethod" in event


def twilio_signature(url: str, pairs: list[tuple[str, str]], token: str = AUTH_TOKEN) -> str:
    """X-Twilio-Signature as Twilio computes it (docs/twilio.md, "Webhook signatures"), written
    out independently of the layer's own check: the URL, then each parameter name (sorted,
    de-duplicated) followed by each of its values (sorted, de-duplicated); HMAC-SHA1, base64."""
    import base64
    import hashlib
    import hmac

    values: dict[str, set[str]] = {}
    for name, value in pairs:
        values.setdefault(name, set()).add(value)
    payload = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def signed_webhook_event(
    relative: str = "webhook/status_callback.json",
    *,
    message_sid: str | None = None,
    status: str | None = None,
    error_code: str | None = None,
    changes: dict[str, str | None] | None = None,
    token: str = AUTH_TOKEN,
) -> dict[str, Any]:
    """An events/webhook/ file, about another message when `message_sid` is given (so that it is
    no duplicate of an earlier delivery: repeats are recognised by what Twilio signs), with
    another `status` (and `error_code`) for a status callback, other parameters (`changes`), signed
    again with `token` for the event's own URL."""
    from urllib.parse import parse_qsl, urlencode

    event: dict[str, Any] = load_event(relative)
    replaced = {name: message_sid for name in ("MessageSid", "SmsSid", "SmsMessageSid") if message_sid}
    replaced.update({name: status for name in ("MessageStatus", "SmsStatus") if status})
    pairs = [(name, replaced.get(name, value)) for name, value in parse_qsl(event["body"], keep_blank_values=True)]
    if error_code:
        pairs.append(("ErrorCode", error_code))
    for name, value in (changes or {}).items():  # other parameters: None removes one
        pairs = [(n, v) for n, v in pairs if n != name] + ([(name, value)] if value is not None else [])
    event["body"] = urlencode(pairs)
    context = event["requestContext"]
    signature = twilio_signature(f"https://{context['domainName']}{context['path']}", pairs, token)
    event["headers"]["X-Twilio-Signature"] = signature
    if event.get("multiValueHeaders"):
        event["multiValueHeaders"]["X-Twilio-Signature"] = [signature]
    return event


def credentials(**overrides: Any) -> dict[str, Any]:
    secret: dict[str, Any] = {"accountSid": ACCOUNT_SID, "authToken": AUTH_TOKEN}
    secret.update(overrides)
    return {k: v for k, v in secret.items() if v is not None}


# Message bodies of the sample events and tests: none may ever reach a log line.
BODIES = ("Your order #1234 has shipped.", "Maintenance tonight at 22:00 UTC.", "Your verification is complete.")


class Bus:
    """The default event bus in moto, with a rule that copies every twilio.messaging event to a
    queue of its own: what reached the bus, as a consumer's rule would see it."""

    def __init__(self) -> None:
        import uuid

        import boto3

        self.sqs = boto3.client("sqs", region_name="us-east-1")
        events = boto3.client("events", region_name="us-east-1")
        self.queue = self.sqs.create_queue(QueueName=f"events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rule = f"all-twilio-{uuid.uuid4().hex[:8]}"
        events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["twilio.messaging"]}))
        events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": arn}])

    def published(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while answer := self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages"):
            for message in answer:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
        return found


STATE_TABLE = "twilio-messaging-state"


def create_state_table(dynamodb: Any, name: str) -> None:
    """The state table as template.yaml declares it: its keys, indexes and TTL attribute."""
    from samtranslator.yaml_helper import yaml_parse

    declared = yaml_parse((ROOT / "template.yaml").read_text())["Resources"]["StateTable"]["Properties"]
    extra = (
        {"GlobalSecondaryIndexes": declared["GlobalSecondaryIndexes"]} if "GlobalSecondaryIndexes" in declared else {}
    )
    dynamodb.create_table(
        TableName=name,
        KeySchema=declared["KeySchema"],
        AttributeDefinitions=declared["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )
    ttl = declared["TimeToLiveSpecification"]
    dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=dict(ttl))


@contextmanager
def atomic_moto_dynamodb() -> Iterator[None]:
    """DynamoDB decides each conditional write atomically; moto's in-memory table checks and
    writes in two Python steps that threads can interleave (local.moto_hooks.atomic_dynamodb):
    concurrency tests test the functions, not moto."""
    from local.moto_hooks import atomic_dynamodb

    with atomic_dynamodb():
        yield


STACK_STARTUP_SECONDS = 60.0


class StackProcess:
    """`python -m local.stack` (what `make local` runs) in a child process, on a free port, with
    its Twilio simulator or the Twilio stand-in at `twilio_url` (Prism): `info` holds its URLs,
    `function_log` its functions' logs."""

    def __init__(self, twilio_url: str | None, workdir: Path) -> None:
        self.ready = workdir / "ready.json"
        self.function_log = workdir / "functions.log"
        self.output_path = workdir / "stack.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TWILIO_", "PUBLIC_BASE_URL"))}
        with self.output_path.open("w") as output:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "local.stack", "--port", "0", "--quiet"),
                    *(("--twilio-url", twilio_url) if twilio_url else ()),
                    *("--ready-file", str(self.ready), "--function-log", str(self.function_log)),
                ],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.info: dict[str, Any] = {}

    def wait_ready(self) -> dict[str, Any]:
        deadline = time.monotonic() + STACK_STARTUP_SECONDS
        while not self.ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(
                    f"the local stack did not start (status {self.process.poll()}):\n{tail(self.output_path, 30)}"
                )
            time.sleep(0.1)
        self.info = json.loads(self.ready.read_text())
        self.info["function_log"] = self.function_log
        return self.info

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Stop it as a user would (SIGTERM, or SIGINT for Ctrl-C); its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                stop_process(self.process)
        return self.process.returncode

    def children_alive(self) -> list[str]:
        alive = []
        for name, pid in self.info.get("pids", {}).items():
            try:
                os.kill(pid, 0)
                alive.append(f"{name} ({pid})")
            except ProcessLookupError:
                pass
        return alive
