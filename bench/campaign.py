"""One campaign end to end, locally (docs/performance.md, "Campaigns"):

    python bench/campaign.py --recipients N [--limit C] [--latency-ms T] [--rate R] [--faults]

The local stack runs (local/stack.py: moto in this process executing the campaign state machine,
each step served by its real handler) against the Twilio simulator in a process of its own,
which allows C requests in flight (a 429 beyond) and answers each after T ms. The campaign is
started through the local API (POST /campaigns: inline recipients up to 10,000, else a CSV file
put in the campaign bucket) and followed with GET /campaigns/{id} until it ends. Its messages ask
for no status callbacks, so that the machine's 2 cores go to the sends.

`--faults`: the first invocation of batch 0 dies after half its sends (they went out, its
results were never written) and the first of batch 1 is throttled by Lambda
(`Lambda.TooManyRequestsException`); the state machine retries both.

Printed: what Twilio saw (messages, duplicates, peak concurrency, 429s), the end-to-end time
(start to SUCCEEDED), and last, exactly:

    campaign recipients=N sent=S duplicates=D lost=L throughput=P% of limit=C

`--prepare-only`: the recipients always go in a file; the campaign is stopped once its prepare
step has counted them (`total` in GET), and the last line is
`campaign prepare recipients=N seconds=S` (S: from POST /campaigns to the count).

duplicates: recipients Twilio received more than once; lost: recipients neither sent nor in the
report; P: messages created per second, from the first POST Twilio received to the last one's
answer, against C / T.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "twilio_messaging")]
POLL_SECONDS = 0.5


def start_simulator(limit: int, latency_ms: float, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    config = workdir / "simulator.json"
    config.write_text(
        json.dumps({"concurrency_limit": limit, "api_latency_seconds": latency_ms / 1000, "throughput": 1000.0})
    )
    log = workdir / "simulator.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "local.twilio_simulator", "serve", "--port", "0", "--config", str(config)],
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # stopped as a group (local.processes.stop_processes)
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text()
        if "Twilio simulator on " in text:
            return process, text.split("Twilio simulator on ", 1)[1].split(" ", 1)[0]
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the simulator did not start:\n{log.read_text()[-2000:]}")


# moto's DynamoDB, each backend call under one lock as in the local stack (local/moto_hooks.py).
DYNAMODB_SERVER = """
import sys, threading
from moto.server import ThreadedMotoServer
from local.moto_hooks import atomic_dynamodb, quick_dispatch
quick_dispatch()
with atomic_dynamodb():
    ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False).start()
    threading.Event().wait()
"""


def start_dynamodb(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """moto's DynamoDB in a process of its own: each recipient costs about five DynamoDB calls,
    which moto serves in Python; in the stack's process they would share one GIL with the
    handlers and the state machine's executor, and the machine, not the campaign, would be
    measured (docs/performance.md, "Campaigns")."""
    from local.processes import free_port, wait_until_serving

    port = free_port()
    log_path = workdir / "dynamodb.log"
    process = subprocess.Popen(
        [sys.executable, "-c", DYNAMODB_SERVER, str(port)],
        cwd=ROOT,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(f"{url}/moto-api/", process, "moto (DynamoDB)", 60, log_path)
    return process, url


def plug_faults(stack: Any) -> dict[str, int]:
    """Batch 0's first invocation dies after half its sends; batch 1's first is throttled."""
    import local.moto_hooks as hooks
    import twilio_messaging.campaign_steps as steps

    seen = {"died": 0, "throttled": 0}
    lock = threading.Lock()
    real_send = steps._Batch.send

    def dies_halfway(batch: Any, entries: list[dict[str, Any]], settled: dict[str, Any]) -> Any:
        with lock:
            die = batch.order.index == 0 and not seen["died"]
            seen["died"] += die
        if not die:
            return real_send(batch, entries, settled)
        real_send(batch, entries[: len(entries) // 2], settled)
        raise RuntimeError("the batch's Lambda died halfway")

    throttled = type("Lambda.TooManyRequestsException", (Exception,), {})

    def invoke(name: str, event: Any) -> Any:
        if name.endswith("CampaignSendBatchFunction") and (event.get("batch") or {}).get("index") == 1:
            with lock:
                first = not seen["throttled"]
                seen["throttled"] += first
            if first:
                raise throttled("Rate exceeded")
        return stack.api.functions.run(name, event)

    steps._Batch.send = dies_halfway  # type: ignore[method-assign]
    hooks.plug(invoke)
    return seen


def start_campaign(stack: Any, recipients: list[str], rate: float | None, in_file: bool = False) -> str:
    message = {"body": "Our stores open at 9 on Sunday, {{name}}.", "statusCallback": None}
    body: dict[str, Any] = {"message": message, "name": f"bench {len(recipients)}"}
    if rate:
        body["maxSendsPerSecond"] = rate
    rows = [{"to": to, "name": f"customer {i}"} for i, to in enumerate(recipients)]
    if len(rows) <= 10_000 and not in_file:
        body["recipients"] = rows
    else:  # a file in the campaign bucket, as a large list would come
        from local.moto_stack import client

        bucket = os.environ["CAMPAIGN_BUCKET"]
        csv = "to,name\n" + "".join(f"{row['to']},{row['name']}\n" for row in rows)
        client("s3", stack.info.aws_endpoint).put_object(Bucket=bucket, Key="uploads/bench.csv", Body=csv.encode())
        body["recipientsUri"] = f"s3://{bucket}/uploads/bench.csv"
    answer = requests.post(f"{stack.info.api_url}/campaigns", json=body, timeout=60)
    if answer.status_code != 202:
        raise SystemExit(f"POST /campaigns answered {answer.status_code}: {answer.text[:2000]}")
    return str(answer.json()["campaignId"])


def follow(stack: Any, campaign_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        campaign: dict[str, Any] = requests.get(f"{stack.info.api_url}/campaigns/{campaign_id}", timeout=30).json()
        if campaign.get("status") != "RUNNING" or time.monotonic() > deadline:
            return campaign
        time.sleep(POLL_SECONDS)


def time_prepare(stack: Any, campaign_id: str, started: float, timeout: float) -> int:
    url = f"{stack.info.api_url}/campaigns/{campaign_id}"
    while (campaign := requests.get(url, timeout=30).json()).get("total") is None:
        if campaign.get("status") != "RUNNING" or time.monotonic() - started > timeout:
            raise SystemExit(f"the campaign ended before it was counted: {campaign}")
        time.sleep(POLL_SECONDS)
    elapsed = time.monotonic() - started
    requests.delete(url, timeout=60)
    while requests.get(url, timeout=30).json().get("status") == "RUNNING":
        time.sleep(POLL_SECONDS)
    time.sleep(10)  # the batches already running see the stop within 5 s; let them end before the stack does
    print(f"Prepared a file of {campaign['total']} recipients; the campaign was then stopped")
    print(f"campaign prepare recipients={campaign['total']} seconds={elapsed:.1f}")
    return 0


def reported(stack: Any, campaign: dict[str, Any]) -> set[str]:
    from local.moto_stack import client

    if not campaign.get("reportUri"):
        return set()
    bucket, key = campaign["reportUri"][len("s3://") :].split("/", 1)
    body = client("s3", stack.info.aws_endpoint).get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return {json.loads(line)["to"] for line in body.splitlines() if line.strip()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=10, help="Twilio's concurrent requests (TwilioConcurrencyLimit)")
    parser.add_argument("--latency-ms", type=float, default=500.0, help="each request's time at Twilio")
    parser.add_argument("--rate", type=float, help="the campaign's maxSendsPerSecond")
    parser.add_argument("--faults", action="store_true", help="a batch dies halfway, another is throttled")
    parser.add_argument("--prepare-only", action="store_true", help="time the prepare step of a file, then stop")
    parser.add_argument(
        "--dynamodb-in-process", action="store_true", help="DynamoDB in the stack's moto, sharing its GIL"
    )
    parser.add_argument("--timeout", type=float, default=7200.0)
    args = parser.parse_args()

    from local.stack import LocalStack

    workdir = Path(tempfile.mkdtemp(prefix="bench-campaign-"))
    simulator, twilio_url = start_simulator(args.limit, args.latency_ms, workdir)
    dynamodb, dynamodb_url = (None, "") if args.dynamodb_in_process else start_dynamodb(workdir)
    recipients = [f"+1555{i:07d}" for i in range(args.recipients)]
    try:
        with LocalStack(
            port=0, twilio_url=twilio_url, function_log=workdir / "functions.log", log_requests=False
        ) as stack:
            os.environ["TWILIO_CONCURRENCY_LIMIT"] = str(args.limit)
            os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
            if dynamodb_url:
                from local.moto_stack import create_tables

                assert stack.template is not None
                create_tables(dynamodb_url, stack.template)
                os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_url
            from twilio_messaging.execution_environment import environment

            environment.reset()
            faults = plug_faults(stack) if args.faults else None
            started = time.monotonic()
            campaign_id = start_campaign(stack, recipients, args.rate, in_file=args.prepare_only)
            if args.prepare_only:
                return time_prepare(stack, campaign_id, started, args.timeout)
            campaign = follow(stack, campaign_id, args.timeout)
            elapsed = time.monotonic() - started
            in_report = reported(stack, campaign)
        counters = requests.get(f"{twilio_url}/__simulator/counters", timeout=30).json()
    finally:
        from local.processes import stop_processes

        stop_processes([simulator, dynamodb])
    per_recipient: dict[str, int] = counters["messages_per_recipient"]
    sent = sum(1 for to in recipients if per_recipient.get(to))
    duplicates = sum(1 for to in recipients if per_recipient.get(to, 0) > 1)
    lost = sum(1 for to in recipients if not per_recipient.get(to) and to not in in_report)
    created = sum(per_recipient.values())
    span = (counters["last_message_at"] or 0) - (counters["first_message_at"] or 0) + args.latency_ms / 1000
    achieved = created / span if created else 0.0
    ideal = args.limit / (args.latency_ms / 1000)
    if args.rate:
        ideal = min(ideal, args.rate)
    print(
        f"Campaign of {args.recipients} recipients: Twilio simulated with {args.limit} requests in flight at most, "
        f"{args.latency_ms:.0f} ms each{f', maxSendsPerSecond {args.rate}' if args.rate else ''}"
        f"{'; faults: ' + json.dumps(faults) if faults is not None else ''}"
    )
    print(
        f"status {campaign.get('status')}: sent {campaign.get('sent')}, failed {campaign.get('failed')}, "
        f"skipped {campaign.get('skipped')}; Twilio created {created} messages, peak {counters['peak_concurrency']} "
        f"in flight, {counters['rate_limited']} answered 429; {achieved:.1f} msg/s against {ideal:.1f}"
    )
    print(f"end to end (POST /campaigns to {campaign.get('status')}): {elapsed:.1f} s")
    print(
        f"campaign recipients={args.recipients} sent={sent} duplicates={duplicates} lost={lost} "
        f"throughput={100 * achieved / ideal:.1f}% of limit={args.limit}"
    )
    return 0 if campaign.get("status") == "SUCCEEDED" and not duplicates and not lost else 1


if __name__ == "__main__":
    sys.exit(main())
