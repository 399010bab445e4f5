"""API Gateway, locally: SAM CLI's own local API Gateway (the Flask service behind
`sam local start-api`) with the functions run in this process instead of in Docker containers.

Reused from SAM CLI as it is: route discovery from the template (`local.template`), request
routing, the REST API (payload 1.0) proxy event, the parsing of the function's answer
(statusCode, headers, multiValueHeaders, body, isBase64Encoded) and API Gateway's own error
answers (403 "Missing Authentication Token" for an unknown route, 502 "Internal server error"
for a function that failed or timed out). Corrected here, where SAM CLI's event differs from
API Gateway's: `requestContext.requestId` and `requestTime` (SAM CLI computes them once per process),
`requestContext.path` (the request path with the stage, not the resource template), and
`requestContext.identity.userAgent`.

Not emulated: IAM (SigV4) and API key authorization, throttling, and the 29 s integration timeout
(a function that overruns its own timeout is answered 502, as Lambda would have stopped it).
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from local.processes import LocalStackError
from local.template import Function, LocalTemplate

os.environ.setdefault("SAM_CLI_TELEMETRY", "0")

from samcli.lib.telemetry.event import EventTracker
from samcli.local.apigw.local_apigw_service import LocalApigwService
from samcli.local.lambdafn.exceptions import FunctionNotFound

# SAM CLI records the use of features (authorizers) on every request and sends the records in a
# thread every 50 requests; this process has no SAM CLI session to report to.
EventTracker.track_event = staticmethod(lambda *args, **kwargs: None)

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


class _ThreadStdout:
    """sys.stdout that writes, for each thread, where that thread was told to: a function's
    printed output (Powertools' metrics) goes to the function log while other threads (the
    demo, a state machine's execution) keep printing where they did. contextlib.redirect_stdout
    would redirect every thread at once."""

    def __init__(self, default: TextIO) -> None:
        self.default = default
        self.local = threading.local()

    def _target(self) -> TextIO:
        target: TextIO = getattr(self.local, "target", None) or self.default
        return target

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)


def _threads_inherit_output(router: _ThreadStdout) -> None:
    """A thread started by a function (its sends in parallel) prints where the function does."""
    start = threading.Thread.start

    def start_inheriting(thread: threading.Thread) -> None:
        target = getattr(router.local, "target", None)
        if target is not None:
            run = thread.run

            def run_printing_to_target() -> None:
                router.local.target = target
                run()

            thread.run = run_printing_to_target  # type: ignore[method-assign]
        start(thread)

    threading.Thread.start = start_inheriting  # type: ignore[method-assign,assignment]


@contextlib.contextmanager
def functions_print_to(output: TextIO) -> Iterator[None]:
    """What this thread, and the threads it starts, print goes to `output` for the duration."""
    if not isinstance(sys.stdout, _ThreadStdout):
        sys.stdout = _ThreadStdout(sys.stdout)
        _threads_inherit_output(sys.stdout)
    router: _ThreadStdout = sys.stdout
    previous = getattr(router.local, "target", None)
    router.local.target = output
    try:
        yield
    finally:
        router.local.target = previous


class LambdaContext:
    """What Lambda hands a handler as `context`."""

    def __init__(self, function: Function, request_id: str) -> None:
        self.function_name = function.logical_id
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function.logical_id}"
        self.memory_limit_in_mb = function.memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function.logical_id}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self.identity = None
        self.client_context = None
        self.tenant_id: str | None = None
        self._deadline = time.monotonic() + function.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class InProcessFunctions:
    """The Lambda runner SAM CLI's local API Gateway invokes (the role LocalLambdaRunner plays
    for Docker): each handler is loaded once with importlib under a module name of its own
    (every function's module is app.py), the layer directories are put on sys.path, and the
    handler's printed output (Powertools logs and metrics) goes to `output`.

    API requests are served one at a time (the local API Gateway's requests are not the load
    under test). A state machine's tasks run as they come, concurrently: a Distributed Map's
    batches run side by side as in Lambda, where each has an execution environment of its own;
    here they share one copy of the layer, whose clients are safe across threads (a batch sends
    from threads of its own anyway)."""

    def __init__(self, functions: dict[str, Function], output: TextIO) -> None:
        self.functions = functions
        self.output = output
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._lock = threading.Lock()

    def load(self) -> None:
        """Import every handler now, so that a broken one fails the start, not a request."""
        for function in self.functions.values():
            for layer in function.layer_dirs:
                if str(layer) not in sys.path:
                    sys.path.insert(0, str(layer))
        with functions_print_to(self.output):
            for function in self.functions.values():
                self._handlers[function.logical_id] = _load_handler(function)

    def is_debugging(self) -> bool:
        return False

    def run(self, function_name_or_arn: str, event: Any) -> Any:
        """What a direct invoke (Step Functions' `lambda:invoke`) gets: the handler's answer, or
        its exception as it is (its class name is the error type Retry and Catch match)."""
        logical_id = function_name_or_arn.rsplit(":function:", 1)[-1].split(":", 1)[0]
        function, handler = self.functions.get(logical_id), self._handlers.get(logical_id)
        if function is None or handler is None:
            raise FunctionNotFound(f"Unable to find a function with name '{function_name_or_arn}'")
        with functions_print_to(self.output):
            try:
                return handler(event, LambdaContext(function, str(uuid.uuid4())))
            finally:
                self.output.flush()

    def invoke(
        self,
        function_identifier: str,
        event: str,
        tenant_id: str | None = None,
        stdout: Any = None,
        stderr: Any = None,
        **_: Any,
    ) -> None:
        """Run the function on `event` (JSON) and write its result (JSON) to `stdout`, as
        LocalLambdaRunner does; a raised exception becomes Lambda's error object."""
        function = self.functions.get(function_identifier)
        handler = self._handlers.get(function_identifier)
        if function is None or handler is None:
            raise FunctionNotFound(f"Unable to find a function with name '{function_identifier}'")
        result: Any
        with self._lock, functions_print_to(self.output):
            context = LambdaContext(function, str(uuid.uuid4()))
            context.tenant_id = tenant_id
            started = time.monotonic()
            try:
                result = handler(json.loads(event), context)
            except Exception as error:
                traceback.print_exc(file=self.output)
                result = _lambda_error(error, context.aws_request_id)
            elapsed = time.monotonic() - started
            if elapsed > function.timeout_seconds:
                print(f"{function.logical_id}: Task timed out after {elapsed:.2f} seconds", file=self.output)
                result = {"errorMessage": f"Task timed out after {elapsed:.2f} seconds"}
            self.output.flush()
        if stdout is not None:
            stdout.write_str(json.dumps(result))


def _lambda_error(error: Exception, request_id: str) -> dict[str, Any]:
    """What the Python runtime answers for an unhandled exception. SAM CLI reads it as a malformed
    proxy answer, and so answers 502 "Internal server error", as API Gateway does."""
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def _load_handler(function: Function) -> Callable[[Any, Any], Any]:
    path = function.module_file
    if not path.exists():
        raise LocalStackError(f"{function.logical_id}: its handler file {path} does not exist")
    name = f"local_{function.code_dir.name}_{path.stem}"
    module: ModuleType | None = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise LocalStackError(f"{function.logical_id}: cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            del sys.modules[name]
            raise LocalStackError(f"{function.logical_id}: importing {path} failed: {error!r}") from error
    handler = getattr(module, function.attribute, None)
    if not callable(handler):
        raise LocalStackError(f"{function.logical_id}: {path} has no function {function.attribute}")
    return handler


class LocalApiGateway(LocalApigwService):
    """SAM CLI's local API Gateway, with its REST API events made as API Gateway makes them."""

    def _generate_lambda_event(self, flask_request: Any, route: Any, method: str, endpoint: str) -> dict[str, Any]:
        event: dict[str, Any] = super()._generate_lambda_event(flask_request, route, method, endpoint)
        now = time.time()
        request_id = str(uuid.uuid4())
        context = event["requestContext"]
        context["requestId"] = request_id
        context["extendedRequestId"] = request_id.replace("-", "")[:16] + "="
        context["requestTimeEpoch"] = int(now * 1000)
        context["requestTime"] = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))
        # API Gateway's requestContext.path is the path as requested, stage included, where
        # event.path drops the stage: /prod/messages/SM… beside /messages/SM….
        context["path"] = f"/{self.api.stage_name}{event['path']}"
        if isinstance(context.get("identity"), dict):
            context["identity"]["userAgent"] = flask_request.headers.get("User-Agent")
        return event


class ApiServer:
    """The local API Gateway on host:port (0: a free port), served from a thread."""

    def __init__(
        self,
        template: LocalTemplate,
        output: TextIO,
        host: str = "127.0.0.1",
        port: int = 3000,
        log_requests: bool = True,
    ) -> None:
        self.template = template
        self.host = host
        self.requested_port = port
        self.functions = InProcessFunctions(template.functions, output)
        self.service = LocalApiGateway(api=template.api, lambda_runner=self.functions, port=port, host=host)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        logging.getLogger("werkzeug").setLevel(logging.INFO if log_requests else logging.WARNING)
        # SAM CLI warns "Lambda returned empty body!" for every 204 and logs each default it applies.
        logging.getLogger("samcli").setLevel(logging.ERROR)

    @property
    def port(self) -> int:
        return int(self._server.server_port) if self._server else self.requested_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def bind(self) -> str:
        """Listen (before the functions are loaded: their environment needs the URL)."""
        from werkzeug.serving import make_server

        self.service.create()
        try:
            self._server = make_server(self.host, self.requested_port, self.service._app, threaded=True)
        except OSError as error:
            if error.errno == errno.EADDRINUSE or "in use" in str(error):
                raise LocalStackError(
                    f"The local API cannot listen on {self.host}:{self.requested_port}: the port is in use. "
                    "Stop what uses it (another `make local`?), or choose another port: make local PORT=3001."
                ) from None
            raise LocalStackError(
                f"The local API cannot listen on {self.host}:{self.requested_port}: {error}"
            ) from None
        except SystemExit:  # werkzeug exits when the port is taken on some versions
            raise LocalStackError(
                f"The local API cannot listen on {self.host}:{self.requested_port}: the port is in use."
            ) from None
        self.service.port = self.port
        return self.url

    def serve(self) -> None:
        self.functions.load()
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name="local-api", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join(10)
            self._server.server_close()
            self._server = None


def function_log(path: Path | None) -> TextIO:
    """Where the functions' output goes: a file (line-buffered), or this process's stderr."""
    if path is None:
        return sys.stderr
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a", buffering=1)
