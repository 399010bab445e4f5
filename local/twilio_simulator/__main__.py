"""The Twilio simulator from the command line (docs/local-twilio.md).

    python -m local.twilio_simulator serve [--port 4010] [--config simulator.json]
    python -m local.twilio_simulator inbound --from +15558675310 --to +15005550006 --body STOP \\
        [--simulator http://127.0.0.1:4010] [--url WEBHOOK]
    python -m local.twilio_simulator outcomes
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

import requests

from local.processes import LOOPBACK, LocalStackError, exit_on_sigterm
from local.twilio_simulator.admin import PREFIX
from local.twilio_simulator.config import CALLBACK_MODES, SimulatorConfig
from local.twilio_simulator.outcomes import outcomes_table
from local.twilio_simulator.server import Simulator

DEFAULT_PORT = 4010
INBOUND_TIMEOUT_SECONDS = 30  # the simulator waits up to 15 s for the webhook


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local.twilio_simulator", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the simulator until Ctrl-C")
    serve.add_argument("--host", default=LOOPBACK)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0: a free one")
    serve.add_argument("--config", type=Path, help="a JSON object of configuration fields")
    serve.add_argument("--time-scale", type=float, help="multiplies every Twilio-side delay")
    serve.add_argument("--callback-mode", choices=CALLBACK_MODES)
    serve.add_argument("--inbound-url", help="the webhook injected inbound messages are posted to")
    inbound = commands.add_parser("inbound", help="have a running simulator post an inbound message")
    inbound.add_argument("--from", dest="sender", required=True)
    inbound.add_argument("--to", required=True)
    inbound.add_argument("--body", default="")
    inbound.add_argument("--media-url", action="append", default=[], help="repeat for several")
    inbound.add_argument("--messaging-service-sid")
    inbound.add_argument("--url", help="the webhook (default: the simulator's inbound_webhook_url)")
    inbound.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="an extra parameter")
    inbound.add_argument("--simulator", default=f"http://{LOOPBACK}:{DEFAULT_PORT}")
    commands.add_parser("outcomes", help="print the table of outcomes by number")
    return parser


def serve(args: argparse.Namespace) -> int:
    config = SimulatorConfig.load(args.config) if args.config else SimulatorConfig()
    changes = {
        "time_scale": args.time_scale,
        "callback_mode": args.callback_mode,
        "inbound_webhook_url": args.inbound_url,
    }
    config = config.with_changes(**{k: v for k, v in changes.items() if v is not None})
    exit_on_sigterm()
    simulator = Simulator(config)
    try:
        url = simulator.start(args.host, args.port, preload=True)
        print(
            f"Twilio simulator on {url} (account {config.account_sid}, time scale {config.time_scale}, "
            f"callbacks {config.callback_mode}); admin endpoints under {url}{PREFIX}. Ctrl-C stops it.",
            flush=True,
        )
        threading.Event().wait()
    finally:
        simulator.stop()
    return 0


def inbound(args: argparse.Namespace) -> int:
    params = dict(item.split("=", 1) for item in args.param if "=" in item)
    payload = {
        "from": args.sender,
        "to": args.to,
        "body": args.body,
        "media_urls": args.media_url,
        "messaging_service_sid": args.messaging_service_sid,
        "url": args.url,
        "params": params,
    }
    try:
        answer = requests.post(
            f"{args.simulator.rstrip('/')}{PREFIX}/inbound", json=payload, timeout=INBOUND_TIMEOUT_SECONDS
        )
    except requests.RequestException as error:
        raise LocalStackError(f"no simulator answered on {args.simulator} ({type(error).__name__})") from None
    result = answer.json() if answer.headers.get("Content-Type", "").startswith("application/json") else {}
    if "url" not in result:
        raise LocalStackError(f"the simulator refused the inbound message: {answer.status_code} {answer.text}")
    print(f"POST {result['url']}  (MessageSid {result['message_sid']})")
    if result.get("status") is None:
        print(f"← no answer: {result.get('error')}")
        return 1
    print(f"← {result['status']} ({result.get('content_type') or 'no content type'})")
    if result.get("body"):
        print(result["body"])
    return 0 if 200 <= result["status"] < 300 else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "inbound":
            return inbound(args)
        print(outcomes_table())
        return 0
    except (LocalStackError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
