"""What the benchmarks share: a loopback fake of Twilio, moto_server, the environment a handler
runs in, where the handlers and the layer are (built by `sam build`, else the source tree), and
number formatting.

The fake Twilio runs in a process of its own (`python bench/harness.py fake-twilio`), so that its
work never competes for the benchmark's GIL; it answers the calls the functions make (send, get,
delete, list, incoming numbers), optionally after a delay and with a concurrency limit beyond
which it answers 429 as Twilio does, and reports what it saw on `GET /__stats`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the tests' shared helpers: the Message fixture, the context, the signer
    sys.path.insert(0, str(ROOT))

from tests.support import LambdaContext, signed_webhook_event  # noqa: E402
from tests.support import twilio_message as shared_twilio_message  # noqa: E402

__all__ = ["LambdaContext"]
BENCH = ROOT / "bench"
BUILD = ROOT / ".aws-sam" / "build"
SOURCE_LAYER = ROOT / "layers" / "twilio_messaging"
BUILT_LAYER = BUILD / "TwilioMessagingLayer" / "python"
REFERENCE = BENCH / "reference_handler"
EVENTS = ROOT / "events"
HANDLERS = ("send_message", "get_message", "list_messages", "raw_request", "webhook")

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "benchtoken-0123456789abcdef"
SECRET_ID = "twilio/bench-credentials"
MESSAGE_SID = "SM0123456789abcdef0123456789abcdef"
FROM_NUMBER = "+15005550006"
STATE_TABLE = "twilio-messaging-bench-state"


# --- numbers -------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}" if reference else "n/a"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A fixed-width table: the first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join([first, *rest]).rstrip())
    return "\n".join(lines)


def parser(description: str | None, iterations: int) -> argparse.ArgumentParser:
    """Every benchmark takes --iterations (a smoke run uses 1). A SIGTERM ends a benchmark as
    Ctrl-C would, so that its fake Twilio and moto_server are stopped too."""
    import signal

    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    result = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    result.add_argument(
        "--iterations", type=int, default=iterations, help=f"samples per measurement (default {iterations})"
    )
    return result


# --- where the code is ---------------------------------------------------------------------


def function_logical_ids() -> dict[str, str]:
    """functions/<name> -> logical id of its AWS::Serverless::Function in template.yaml."""
    ids: dict[str, str] = {}
    resource = ""
    for line in (ROOT / "template.yaml").read_text().splitlines():
        top = re.match(r"^  ([A-Za-z0-9]+):\s*$", line)
        if top:
            resource = top.group(1)
        code = re.match(r"^\s+CodeUri:\s*functions/(\w+)/?\s*$", line)
        if code and resource:
            ids[code.group(1)] = resource
    return ids


@dataclass(frozen=True)
class Code:
    """The layer's import path and each function's folder: built (.aws-sam/build) or source."""

    layer: Path
    built: bool

    @property
    def label(self) -> str:
        if self.built:
            return "built layer and functions (.aws-sam/build)"
        return "source tree (layers/, functions/): run `make build` to measure the built layer"

    def function_dir(self, name: str) -> Path | None:
        """The function's folder; None when it does not exist (or, built, is not in the build:
        a function newer than the build would run against a layer without its modules)."""
        folder = BUILD / function_logical_ids().get(name, "?") if self.built else ROOT / "functions" / name
        return folder if (folder / "app.py").is_file() else None

    def handlers(self) -> list[str]:
        return [name for name in HANDLERS if self.function_dir(name) is not None]


def locate_code(source: bool = False) -> Code:
    """The build when `sam build` has built the layer and every function (and `source` is
    false), else the source tree."""
    built = Code(BUILT_LAYER, built=True)
    in_source = [name for name in HANDLERS if (ROOT / "functions" / name / "app.py").is_file()]
    complete = (BUILT_LAYER / "twilio_messaging").is_dir() and all(built.function_dir(name) for name in in_source)
    return built if complete and not source else Code(SOURCE_LAYER, built=False)


def site_packages() -> list[str]:
    return [p for p in sys.path if p.endswith("site-packages")]


def lambda_runtime_shims(folder: Path) -> Path:
    """A folder to put first on PYTHONPATH so that this environment imports like Lambda's Python
    runtime, whose boto3 comes without the AWS Common Runtime (aws/aws-lambda-base-images#147)
    and without pyOpenSSL. This environment has both (for SAM CLI and moto), and botocore loads
    them when present: about 50-100 ms for awscrt, and pyOpenSSL pulls in cryptography."""
    for package, reason in (("awscrt", "the AWS Common Runtime"), ("OpenSSL", "pyOpenSSL")):
        (folder / package).mkdir(parents=True, exist_ok=True)
        (folder / package / "__init__.py").write_text(f'raise ImportError("{reason} is not in the Lambda runtime")\n')
    return folder


def lambda_runtime_packages(folder: Path) -> Path:
    """boto3 and its dependencies, which Lambda's Python runtime provides (compiled), linked from
    this environment into `folder`: put on a function's path instead of this environment's
    site-packages, so that nothing else installed here (charset_normalizer, awscrt, …) is
    imported as if Lambda had it."""
    folder.mkdir(parents=True, exist_ok=True)
    for dist in distribution_closure(["boto3"]):
        root = Path(dist.locate_file(""))
        tops = {file.parts[0] for file in dist.files or () if ".." not in file.parts}
        for top in tops - {"__pycache__", "bin"}:
            if top.endswith((".dist-info", ".data")) or (folder / top).exists():
                continue
            (folder / top).symlink_to(root / top)
    return folder


def requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def distribution_closure(requirements: Sequence[str]) -> list[Any]:
    """The installed distributions that `requirements` name, with their own dependencies."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, Any] = {}
    pending = list(requirements)
    while pending:
        requirement = Requirement(pending.pop())
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        key = canonicalize_name(requirement.name)
        if key in found:
            continue
        found[key] = metadata.distribution(requirement.name)
        pending.extend(found[key].requires or [])
    return sorted(found.values(), key=lambda dist: canonicalize_name(dist.metadata["Name"]))


def copy_distributions(distributions: Sequence[Any], target: Path) -> None:
    """What pip --target would have put in `target` for these distributions (from this
    environment's installed files, without compiled bytecode or console scripts)."""
    import shutil

    for dist in distributions:
        root = Path(dist.locate_file(""))
        for file in dist.files or ():
            if ".." in file.parts or "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            source = root / file
            if source.is_file():
                (target / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / file)


def copy_tree(source: Path, target: Path) -> Path:
    """`source` copied to `target` without __pycache__ folders."""
    import shutil

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
    return target


def is_shipped_pyc(path: Path) -> bool:
    """A .pyc the build ships: hash-based (PEP 552), unlike the timestamp-based ones Python writes
    at run time (which running the benchmarks against the build adds)."""
    with path.open("rb") as source:
        header = source.read(8)
    return len(header) == 8 and int.from_bytes(header[4:8], "little") & 1 == 1


def copy_as_deployed(source: Path, target: Path) -> Path:
    """`source` copied to `target` with the .pyc files the build ships and no others."""
    import shutil

    def written_at_run_time(folder: str, names: list[str]) -> list[str]:
        return [name for name in names if name.endswith(".pyc") and not is_shipped_pyc(Path(folder) / name)]

    shutil.copytree(source, target, ignore=written_at_run_time, dirs_exist_ok=True)
    return target


def assemble_layer(target: Path) -> Path:
    """The layer as `sam build` lays it out (python/ with the package and its pinned
    dependencies), from the source package and this environment's installed distributions.
    Returns the python/ folder."""
    python = target / "python"
    copy_tree(SOURCE_LAYER / "twilio_messaging", python / "twilio_messaging")
    copy_distributions(distribution_closure(requirement_lines(SOURCE_LAYER / "requirements.txt")), python)
    return python


def load_event(relative: str) -> Any:
    return json.loads((EVENTS / relative).read_text())


def webhook_event(relative: str, message_sid: str | None = None) -> dict[str, Any]:
    """An events/webhook/ file signed again with the benchmark's auth token and, when given,
    about another message (`message_sid`): the webhook recognises repeats by what Twilio signs."""
    return signed_webhook_event(relative, message_sid=message_sid, token=AUTH_TOKEN)


# --- the environment a handler runs in -----------------------------------------------------


def load_module(name: str, path: Path) -> Any:
    """A handler file as a module of its own name (every handler file is called app.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def handler_environment(twilio_url: str, aws_url: str, **extra: str) -> dict[str, str]:
    """The template's environment, with Twilio and AWS on loopback."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "TWILIO_", "POWERTOOLS_", "PYTHON"))
    }
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_ENDPOINT_URL": aws_url,
            "TWILIO_SECRET_ID": SECRET_ID,
            "TWILIO_API_BASE_URL": twilio_url,
            "DEFAULT_FROM": FROM_NUMBER,
            "STATE_TABLE_NAME": STATE_TABLE,
            "EVENT_BUS_NAME": "default",
            "SECRET_MAX_AGE_SECONDS": "300",
            "POWERTOOLS_SERVICE_NAME": "twilio-messaging-bench",
            "POWERTOOLS_METRICS_NAMESPACE": "TwilioMessagingBench",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    env.update(extra)
    return env


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ replaced by `values` (in-process benchmarks), restored afterwards."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def quiet_stdout() -> Iterator[Any]:
    """File descriptor 1 sent to /dev/null (the functions' JSON logs and EMF metrics still get
    written, as in Lambda, but not shown); yields a stream to the real stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    real = os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        yield real
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        real.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s")


@contextmanager
def moto_server() -> Iterator[str]:
    """moto_server on loopback with the Twilio secret created; yields its URL (AWS_ENDPOINT_URL)."""
    port = free_port()
    executable = Path(sys.executable).with_name("moto_server")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "moto.server"]
    process = subprocess.Popen(
        [*command, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_port(port, process, "moto_server")
        _create_secret(url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _aws_call(url: str, service: str, target: str, version: str, body: dict[str, Any]) -> None:
    """One call of an AWS JSON-protocol API on moto (which does not check the signature)."""
    import requests

    headers = {
        "Content-Type": f"application/x-amz-json-{version}",
        "X-Amz-Target": target,
        "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, "
        "SignedHeaders=host, Signature=0",
    }
    response = requests.post(url + "/", data=json.dumps(body), headers=headers, timeout=10)
    response.raise_for_status()


def _create_secret(url: str) -> None:
    """The Twilio secret, and the state table (partition key id) the webhook writes to."""
    secret = {"Name": SECRET_ID, "SecretString": json.dumps({"accountSid": ACCOUNT_SID, "authToken": AUTH_TOKEN})}
    _aws_call(url, "secretsmanager", "secretsmanager.CreateSecret", "1.1", secret)
    table = {
        "TableName": STATE_TABLE,
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    _aws_call(url, "dynamodb", "DynamoDB_20120810.CreateTable", "1.0", table)


@dataclass
class FakeTwilio:
    url: str

    def stats(self, reset: bool = False) -> dict[str, int]:
        import requests

        answer: dict[str, int] = requests.get(
            f"{self.url}/__stats", params={"reset": "1"} if reset else None, timeout=5
        ).json()
        return answer


@contextmanager
def fake_twilio(latency: float = 0.0, concurrency: int = 0) -> Iterator[FakeTwilio]:
    """The fake Twilio in a process of its own: `latency` seconds per answer, and 429 for any
    request beyond `concurrency` in flight (0: no limit)."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__)),
            "fake-twilio",
            "--port",
            str(port),
            "--latency",
            str(latency),
            "--concurrency",
            str(concurrency),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process, "the fake Twilio")
        yield FakeTwilio(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- the fake Twilio itself ------------------------------------------------------------------


def twilio_message(sid: str, to: str = "+15558675310", status: str = "queued") -> dict[str, Any]:
    """A Message resource as Twilio answers it, from the benchmark's account and number."""
    return shared_twilio_message(sid, to, status, account_sid=ACCOUNT_SID, body="Hello from the benchmark")


class _State:
    def __init__(self, latency: float, concurrency: int) -> None:
        self.latency = latency
        self.concurrency = concurrency
        self.lock = threading.Lock()
        self.in_flight = 0
        self.counts = {"requests": 0, "accepted": 0, "rejected429": 0, "maxInFlight": 0}
        self.sequence = 0

    def enter(self) -> bool:
        with self.lock:
            self.counts["requests"] += 1
            if self.concurrency and self.in_flight >= self.concurrency:
                self.counts["rejected429"] += 1
                return False
            self.in_flight += 1
            self.counts["accepted"] += 1
            self.counts["maxInFlight"] = max(self.counts["maxInFlight"], self.in_flight)
            return True

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def next_sid(self) -> str:
        with self.lock:
            self.sequence += 1
            return f"SM{self.sequence:032x}"


_MESSAGES = re.compile(r"^/2010-04-01/Accounts/AC[0-9a-f]{32}/Messages\.json$")
_MESSAGE = re.compile(r"^/2010-04-01/Accounts/AC[0-9a-f]{32}/Messages/((SM|MM)[0-9a-f]{32})\.json$")
_NUMBERS = re.compile(r"^/2010-04-01/Accounts/AC[0-9a-f]{32}/IncomingPhoneNumbers\.json$")


class _TwilioHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as api.twilio.com
    disable_nagle_algorithm = True
    server_version = "fake-twilio"
    state: _State

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}", f"Content-Length: {len(payload)}"]
        if body is not None:
            head.append("Content-Type: application/json; charset=utf-8")
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)  # one write: no Nagle stall

    def _route(self) -> tuple[int, Any]:
        path = self.path.split("?", 1)[0]
        if self.command == "POST" and _MESSAGES.match(path):
            return 201, twilio_message(self.state.next_sid())
        match = _MESSAGE.match(path)
        if match and self.command == "GET":
            return 200, twilio_message(match.group(1), status="delivered")
        if match and self.command == "DELETE":
            return 204, None
        if self.command == "GET" and _MESSAGES.match(path):
            page = {"page": 0, "page_size": 20, "next_page_uri": None, "uri": path}
            return 200, {**page, "messages": [twilio_message(MESSAGE_SID, status="delivered")] * 3}
        if self.command == "GET" and _NUMBERS.match(path):
            return 200, {"page": 0, "page_size": 20, "next_page_uri": None, "incoming_phone_numbers": []}
        return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}

    def _aws(self, target: str) -> None:
        """A minimal AWS JSON-protocol stand-in (warm_overhead.py --aws fake): every call succeeds
        at once, so that the webhook's own cost is not lost in moto's."""
        operation = target.rsplit(".", 1)[-1]
        answers: dict[str, Any] = {
            "GetSecretValue": {
                "Name": SECRET_ID,
                "SecretString": json.dumps({"accountSid": ACCOUNT_SID, "authToken": AUTH_TOKEN}),
            },
            "PutEvents": {"FailedEntryCount": 0, "Entries": [{"EventId": f"{self.state.next_sid()}"}]},
            "UpdateItem": {"Attributes": {}},
        }
        self._answer(200, answers.get(operation, {}), {"x-amzn-RequestId": "bench"})

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        target = self.headers.get("X-Amz-Target")
        if target:
            self._aws(target)
            return
        if self.path.startswith("/__stats"):
            with self.state.lock:
                counts = dict(self.state.counts)
                if "reset=1" in self.path:
                    self.state.counts = dict.fromkeys(counts, 0)
            self._answer(200, counts)
            return
        if not self.state.enter():
            # Twilio's REST 429 (error 20429) carries no Retry-After: clients back off on their own.
            self._answer(429, {"code": 20429, "message": "Too Many Requests", "status": 429})
            return
        try:
            if self.state.latency:
                time.sleep(self.state.latency)
            status, body = self._route()
        finally:
            self.state.leave()  # before answering: the client may send its next request at once
        self._answer(status, body)

    do_GET = do_POST = do_DELETE = do_PUT = _serve


def serve_fake_twilio(port: int, latency: float, concurrency: int) -> None:
    handler = type("Handler", (_TwilioHandler,), {"state": _State(latency, concurrency)})
    ThreadingHTTPServer.request_queue_size = 256  # a burst of new connections is never refused
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    server.serve_forever()


def main() -> None:
    command = argparse.ArgumentParser(description="bench helpers")
    sub = command.add_subparsers(dest="command", required=True)
    fake = sub.add_parser("fake-twilio", help="serve the fake Twilio on loopback")
    fake.add_argument("--port", type=int, required=True)
    fake.add_argument("--latency", type=float, default=0.0)
    fake.add_argument("--concurrency", type=int, default=0)
    args = command.parse_args()
    serve_fake_twilio(args.port, args.latency, args.concurrency)


if __name__ == "__main__":
    main()
