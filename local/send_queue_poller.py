"""An EMULATION of Lambda's SQS event source mapping for the send queue, to watch the bound at
work on this machine (docs/api.md, "EventBridge: the `Send Message` rule"):

    python -m local.send_queue_poller [--events 300] [--limit 6] [--latency-ms 200]

It is not Lambda's poller: moto's mappings honour neither ScalingConfig's MaximumConcurrency nor
ReportBatchItemFailures, so this module plays them. Everything runs in this process: moto (the
secret, the state table, the send queue and its dead-letter queue), the Twilio simulator
(docs/local-twilio.md) that allows `--limit` requests in flight and answers 429 beyond, and
send_message's handler. N `Send Message` events are put on the queue as the rule would put them;
then `MaximumConcurrency` (2) pollers each receive batches of up to `BatchSize` (10), hand them
to the handler as Lambda would (an SQS event), and delete what the answer does not list in
batchItemFailures. What Lambda does and this does not: long polling and scaling of pollers,
visibility timeouts measured by SQS itself, the function's timeout, separate processes.

Printed last, exactly:

    send-queue events=N sent=S duplicates=D peak=P limit=C rate_limited=R requeued=Q dead_lettered=X
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
SECRET_NAME = "twilio/send-queue-emulation"
TABLE = "send-queue-emulation-state"
# The mapping, as template.yaml declares it (SendMessageQueueEventSource).
MAXIMUM_CONCURRENCY = 2
BATCH_SIZE = 10
_counting = threading.Lock()


class LambdaContext:
    function_name = "send-message-emulation"
    aws_request_id = "emulation"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:send-message-emulation"
    memory_limit_in_mb = 256

    def __init__(self, timeout_seconds: float) -> None:
        self._ends = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends - time.monotonic()) * 1000))


def load_handler() -> ModuleType:
    sys.path.insert(0, str(ROOT / "layers" / "twilio_messaging"))
    spec = importlib.util.spec_from_file_location("send_message_app", ROOT / "functions" / "send_message" / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Received messages as the mapping hands them to the function."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {
                    name: {"stringValue": value.get("StringValue"), "dataType": value["DataType"]}
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for message in messages
        ]
    }


def create_aws(simulator_secret: dict[str, str]) -> dict[str, str]:
    """The secret, the state table as template.yaml declares it, and the two queues."""
    import boto3
    from samtranslator.yaml_helper import yaml_parse

    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=SECRET_NAME, SecretString=json.dumps(simulator_secret)
    )
    declared = yaml_parse((ROOT / "template.yaml").read_text())["Resources"]["StateTable"]["Properties"]
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=TABLE,
        KeySchema=declared["KeySchema"],
        AttributeDefinitions=declared["AttributeDefinitions"],
        GlobalSecondaryIndexes=declared.get("GlobalSecondaryIndexes", []),
        BillingMode="PAY_PER_REQUEST",
    )
    sqs = boto3.client("sqs", region_name=REGION)
    urls = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("send-queue", "send-dead-letters")}
    arn = sqs.get_queue_attributes(QueueUrl=urls["send-queue"], AttributeNames=["QueueArn"])["Attributes"]
    urls["send-queue-arn"] = arn["QueueArn"]
    return urls


def put_events(queue_url: str, count: int) -> list[str]:
    """`count` Send Message events on the queue, as the rule puts them (the whole event); one in
    five is a batch send to 3 recipients. The recipients, in order."""
    import boto3

    sqs = boto3.client("sqs", region_name=REGION)
    recipients: list[str] = []
    for index in range(count):
        to: str | list[str] = f"+1555{index:07d}"
        if index % 5 == 4:
            to = [f"+1556{index:05d}{part:02d}" for part in range(3)]
        recipients.extend(to if isinstance(to, list) else [to])
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Send Message",
            "source": "com.example.emulation",
            "account": "123456789012",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": REGION,
            "resources": [],
            "detail": {"to": to, "body": f"Emulated event {index}", "statusCallback": None},
        }
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))
    return recipients


def poll(handler: ModuleType, urls: dict[str, str], stop: threading.Event, outcome: dict[str, int]) -> None:
    """One of the mapping's pollers: receive, invoke, delete what succeeded."""
    import boto3

    sqs: Any = boto3.client("sqs", region_name=REGION)  # its replies as plain dicts
    while not stop.is_set():
        answer = sqs.receive_message(
            QueueUrl=urls["send-queue"],
            MaxNumberOfMessages=BATCH_SIZE,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=180,
        )
        messages = answer.get("Messages", [])
        if not messages:
            time.sleep(0.1)
            continue
        result = handler.lambda_handler(sqs_event(messages, urls["send-queue-arn"]), LambdaContext(30))
        failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=urls["send-queue"], ReceiptHandle=message["ReceiptHandle"])
        with _counting:
            outcome["invocations"] += 1
            outcome["item_failures"] += len(failed)


def queue_count(queue_url: str, *names: str) -> int:
    import boto3

    sqs: Any = boto3.client("sqs", region_name=REGION)
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(names))
    return sum(int(attributes["Attributes"].get(name, 0)) for name in names)


def run(events: int, limit: int, latency_ms: float, timeout: float) -> dict[str, Any]:
    from moto import mock_aws

    from local.twilio_simulator import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, Simulator, SimulatorConfig

    config = SimulatorConfig(concurrency_limit=limit, api_latency_seconds=latency_ms / 1000, throughput=1000.0)
    simulator = Simulator(config)
    set_environment(simulator.start(preload=True), limit)
    try:
        with mock_aws():
            urls = create_aws({"accountSid": DEFAULT_ACCOUNT_SID, "authToken": DEFAULT_AUTH_TOKEN})
            os.environ.update(SEND_QUEUE_URL=urls["send-queue"], SEND_DEAD_LETTER_QUEUE_URL=urls["send-dead-letters"])
            handler = load_handler()
            recipients = put_events(urls["send-queue"], events)
            outcome = drain(handler, urls, timeout)
            requeued = queue_count(urls["send-queue"], "ApproximateNumberOfMessagesDelayed")
            dead_lettered = queue_count(urls["send-dead-letters"], "ApproximateNumberOfMessages")
        counters = simulator.state.counters
        per_recipient = counters.messages_per_recipient
        return {
            "events": events,
            "recipients": len(recipients),
            "sent": sum(1 for to in recipients if per_recipient.get(to)),
            "duplicates": sum(1 for to in recipients if per_recipient.get(to, 0) > 1),
            "peak": counters.peak_concurrency,
            "limit": limit,
            "rate_limited": counters.rate_limited,
            "requeued": requeued,
            "dead_lettered": dead_lettered,
            **outcome,
        }
    finally:
        simulator.stop()


def set_environment(twilio_url: str, limit: int) -> None:
    """The send function's environment, as the template gives it, against the simulator."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="emulation",
        AWS_SECRET_ACCESS_KEY="emulation",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        TWILIO_SECRET_ID=SECRET_NAME,
        TWILIO_API_BASE_URL=twilio_url,
        TWILIO_CONCURRENCY_LIMIT=str(limit),
        STATE_TABLE_NAME=TABLE,
        DEFAULT_FROM="+15005550006",
        POWERTOOLS_SERVICE_NAME="twilio-messaging-emulation",
        POWERTOOLS_LOG_LEVEL="ERROR",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_TRACE_DISABLED="true",
    )
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "PUBLIC_BASE_URL", "PUBLIC_BASE_URL_PARAMETER"):
        os.environ.pop(name, None)


def drain(handler: ModuleType, urls: dict[str, str], timeout: float) -> dict[str, Any]:
    """MAXIMUM_CONCURRENCY pollers until the queue holds nothing visible or in flight (delayed
    copies stay): invocations, item failures and the seconds it took."""
    outcome = {"invocations": 0, "item_failures": 0}
    stop = threading.Event()
    pollers = [
        threading.Thread(target=poll, args=(handler, urls, stop, outcome), name=f"poller-{i}", daemon=True)
        for i in range(MAXIMUM_CONCURRENCY)
    ]
    started = time.monotonic()
    for poller in pollers:
        poller.start()
    waiting = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    while time.monotonic() - started < timeout and queue_count(urls["send-queue"], *waiting):
        time.sleep(0.2)
    stop.set()
    for poller in pollers:
        poller.join(60)
    return {**outcome, "seconds": round(time.monotonic() - started, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300, help="Send Message events put on the queue")
    parser.add_argument("--limit", type=int, default=6, help="TwilioConcurrencyLimit, and the simulator's")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="each request's time at Twilio")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    if args.limit < MAXIMUM_CONCURRENCY:
        parser.error(f"--limit must be at least {MAXIMUM_CONCURRENCY} (TwilioConcurrencyLimit's MinValue)")
    result = run(args.events, args.limit, args.latency_ms, args.timeout)
    print(
        f"EMULATION of the event source mapping: {MAXIMUM_CONCURRENCY} pollers, batches of {BATCH_SIZE}; "
        f"{result['invocations']} invocations, {result['recipients']} recipients in {result['seconds']} s"
    )
    print(
        f"send-queue events={result['events']} sent={result['sent']} duplicates={result['duplicates']} "
        f"peak={result['peak']} limit={result['limit']} rate_limited={result['rate_limited']} "
        f"requeued={result['requeued']} dead_lettered={result['dead_lettered']}"
    )
    complete = result["sent"] == result["recipients"] and not result["duplicates"]
    return 0 if complete and result["peak"] <= result["limit"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
