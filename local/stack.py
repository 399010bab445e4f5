"""The local stack: the Twilio simulator, moto_server (AWS, executing the state machines) and the
local API Gateway, up together and stopped together. `python -m local.stack` (`make local`) keeps
it up until Ctrl-C and prints what to try. `--twilio-url` names another Twilio stand-in instead
(the contract tests run Prism there).

    python -m local.stack [--port 3000] [--host 127.0.0.1] [--twilio-url URL] [--function-log FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from local.moto_stack import CREDENTIALS, REGION, InProcessMoto, LocalAws, seed
from local.prism import EXAMPLE_ACCOUNT_SID
from local.processes import LOOPBACK, LocalStackError, ensure_port_free, exit_on_sigterm
from local.template import TEMPLATE, LocalTemplate, load_template

# The local Twilio credentials. The account is the one of the spec's examples (Prism's answers
# and next-page links name it). The auth token is not a secret: it is what local webhooks are
# signed with (`python -m local.sign_webhook`).
LOCAL_AUTH_TOKEN = "00000000000000000000000000000000"
LOCAL_SECRET = {"accountSid": EXAMPLE_ACCOUNT_SID, "authToken": LOCAL_AUTH_TOKEN}
WEBHOOK_PATH = "/webhooks/twilio"
# Template parameters for the local stack: a sender for sends that name none (Twilio's test
# number), and the secret (its ARN in moto replaces this in the functions' environment).
LOCAL_PARAMETERS = {
    "TwilioSecretArn": f"arn:aws:secretsmanager:{REGION}:123456789012:secret:twilio/local",
    "DefaultFrom": "+15005550006",
}


@dataclass
class StackInfo:
    api_url: str
    twilio_url: str
    aws_endpoint: str
    stage: str
    webhook_url: str
    capture_queue_url: str
    function_log: str
    pids: dict[str, int]  # child processes (none: everything runs in this process)
    state_machines: dict[str, str]  # logical id -> ARN in moto
    simulator: bool  # Twilio is the simulator (admin endpoints under /__simulator)

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


class LocalStack:
    """Start with `start()` or `with LocalStack(...) as stack:`; everything started is stopped by
    `stop()`, also when a start fails half-way."""

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        port: int = 3000,
        twilio_url: str | None = None,
        twilio_port: int = 0,
        moto_port: int | None = None,
        function_log: Path | None = None,
        log_requests: bool = True,
        template_path: Path = TEMPLATE,
    ) -> None:
        self.host = host
        self.port = port
        self.twilio_url = twilio_url
        self.template_path = template_path
        self.log_requests = log_requests
        self.workdir = Path(tempfile.mkdtemp(prefix="twilio-local-"))
        self.function_log_path = function_log
        self.twilio_port = twilio_port
        self.simulator: Any = None  # the Twilio simulator, unless twilio_url names another stand-in
        self.moto = InProcessMoto(moto_port, host)
        self.template: LocalTemplate | None = None
        self.aws: LocalAws | None = None
        self.api: Any = None
        self.info: StackInfo | None = None
        self._output: TextIO | None = None

    def start(self, timeout: float = 120.0) -> StackInfo:
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> StackInfo:
        deadline = time.monotonic() + timeout
        # Every check that needs no process first, so that a missing piece fails in a second.
        if self.port:
            ensure_port_free(self.host, self.port, "The local API", "PORT=… (make) or --port")
        self.moto.launch()
        from local.api_server import ApiServer, function_log  # SAM CLI: a second to import, while they start

        self.template = load_template(self.template_path, LOCAL_PARAMETERS)
        self._output = function_log(self.function_log_path)
        self.api = ApiServer(self.template, self._output, self.host, self.port, self.log_requests)
        api_url = self.api.bind()
        aws_endpoint = self.moto.wait(max(1.0, deadline - time.monotonic()))
        self.aws = seed(aws_endpoint, self.template, LOCAL_SECRET, api_url)
        twilio_url = str(self.twilio_url) if self.twilio_url else self._start_simulator(api_url)
        self._configure_functions(api_url, twilio_url, self.aws)
        self.api.serve()
        from local.moto_hooks import plug

        plug(self.api.functions.run)  # the state machines' Lambda tasks: the handlers the API serves
        self.info = StackInfo(
            api_url=api_url,
            twilio_url=twilio_url,
            aws_endpoint=aws_endpoint,
            stage=self.template.stage,
            webhook_url=api_url + WEBHOOK_PATH,
            capture_queue_url=self.aws.capture_queue_url,
            function_log=str(self.function_log_path or "stderr"),
            pids={},
            state_machines=dict(self.aws.state_machines),
            simulator=self.simulator is not None,
        )
        return self.info

    def _start_simulator(self, api_url: str) -> str:
        """Twilio, simulated: the local credentials, inbound messages to the local webhook."""
        from local.twilio_simulator import Simulator, SimulatorConfig

        config = SimulatorConfig(
            account_sid=EXAMPLE_ACCOUNT_SID, auth_token=LOCAL_AUTH_TOKEN, inbound_webhook_url=api_url + WEBHOOK_PATH
        )
        self.simulator = Simulator(config)
        return str(self.simulator.start(self.host, self.twilio_port, preload=True))

    def _configure_functions(self, api_url: str, twilio_url: str, aws: LocalAws) -> None:
        """The functions' environment: what the template gives each (one process serves them all,
        so the union), with the local endpoints and credentials in place of AWS's and Twilio's."""
        import os

        assert self.template is not None
        environment: dict[str, str] = {}
        for function in self.template.functions.values():
            for name, value in function.environment.items():
                if name in environment and environment[name] != value and value:
                    print(
                        f"warning: {name} differs between functions ({environment[name]!r}, {value!r}); "
                        f"the local stack uses {value!r} for all",
                        file=sys.stderr,
                    )
                if value or name not in environment:
                    environment[name] = value
        created = aws.resource_names()
        environment = {name: created.get(value, value) for name, value in environment.items()}
        environment.update(CREDENTIALS)
        environment.update(
            {
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ENDPOINT_URL": aws.endpoint,
                "TWILIO_SECRET_ID": aws.secret_arn,
                "TWILIO_API_BASE_URL": twilio_url,
                # What Twilio would see: status callbacks point here and webhooks are signed over it.
                "PUBLIC_BASE_URL": api_url,
            }
        )
        for name in list(os.environ):
            if name.startswith("AWS_ENDPOINT_URL_") or name in ("AWS_PROFILE", "AWS_CONFIG_FILE"):
                del os.environ[name]
        os.environ.update(environment)

    def bus_events(self, wait_seconds: float = 0.0) -> list[dict[str, Any]]:
        assert self.aws is not None, "start() first"
        return self.aws.bus_events(wait_seconds)

    def stop(self) -> None:
        if self.api is not None:
            self.api.stop()
            self.api = None
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
        self.moto.stop()
        if self._output is not None and self._output is not sys.stderr:
            self._output.close()
        self._output = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def describe(info: StackInfo, template: LocalTemplate) -> str:
    """What runs where, and a curl command for every route the template declares."""
    from local.examples import curl_examples

    lines = [
        "",
        f"Local API Gateway  {info.api_url}   (stage {info.stage}; IAM auth is not emulated locally)",
        f"Twilio             {info.twilio_url}   "
        + ("the simulator: Twilio's OpenAPI description, state, signed callbacks" if info.simulator else "(given)"),
        f"AWS (moto_server)  {info.aws_endpoint}   secret, state table, event bus, state machines (executed)",
        f"Function logs      {info.function_log}",
        "",
        "Routes (from template.yaml):",
    ]
    lines += [f"  {r.method:<6} {r.path:<22} {r.function}" for r in template.routes]
    lines += ["", "Try:", ""]
    lines += curl_examples(info, template)
    lines += [
        "Events that reached the bus (a rule copies every twilio.messaging event to a queue):",
        "",
        f"  .venv/bin/python -m local.bus_events --endpoint-url {info.aws_endpoint}",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=3000, help="local API port (0: a free one); default 3000")
    parser.add_argument("--twilio-url", help="use this Twilio stand-in (e.g. a running Prism) instead of the simulator")
    parser.add_argument("--twilio-port", type=int, default=0, help="the simulator's port (default: a free one)")
    parser.add_argument("--moto-port", type=int, help="moto_server's port (default: a free one)")
    parser.add_argument("--function-log", type=Path, help="append the functions' logs to this file (default: stderr)")
    parser.add_argument("--ready-file", type=Path, help="write the stack's URLs there (JSON) once it serves")
    parser.add_argument("--quiet", action="store_true", help="print no banner and no request log")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    stack = LocalStack(
        host=args.host,
        port=args.port,
        twilio_url=args.twilio_url,
        twilio_port=args.twilio_port,
        moto_port=args.moto_port,
        function_log=args.function_log,
        log_requests=not args.quiet,
    )
    try:
        if not args.quiet:
            print("Starting the local stack: the Twilio simulator, moto_server and the local API Gateway…", flush=True)
        info = stack.start()
        if args.ready_file:
            partial = args.ready_file.with_suffix(".partial")
            partial.write_text(info.to_json())
            partial.replace(args.ready_file)
        if not args.quiet:
            assert stack.template is not None
            print(describe(info, stack.template), flush=True)
        threading.Event().wait()  # until Ctrl-C or SIGTERM
        return 0
    except LocalStackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if not args.quiet:
            print("\nStopping the local stack…", file=sys.stderr)
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
