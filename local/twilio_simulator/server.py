"""The simulator: a threaded HTTP server (standard library) in front of the simulated API, and the
Python calls tests and the local stack use instead of the admin endpoints.

    simulator = Simulator(SimulatorConfig(time_scale=0.01))
    base_url = simulator.start()          # http://127.0.0.1:<free port>
    ...                                   # point TWILIO_API_BASE_URL at base_url
    simulator.stop()
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast
from urllib.parse import urlsplit

from local.processes import LOOPBACK, LocalStackError
from local.twilio_simulator import errors
from local.twilio_simulator.admin import PREFIX, handle_admin
from local.twilio_simulator.api import ApiAnswer, TwilioApi
from local.twilio_simulator.callbacks import CallbackDispatcher, post_form
from local.twilio_simulator.config import CALLBACK_MODES, CallbackMode, SimulatorConfig
from local.twilio_simulator.inbound import Inbound, inbound_message, inbound_params
from local.twilio_simulator.lifecycle import Lifecycle, new_token
from local.twilio_simulator.scheduler import Scheduler
from local.twilio_simulator.spec_validation import spec_validator
from local.twilio_simulator.state import State

log = logging.getLogger(__name__)


class Simulator:
    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.state = State()
        self._auth_token = self.config.auth_token
        self._scheduler = Scheduler()
        self._dispatcher = CallbackDispatcher(self.state, self._scheduler, self.config, lambda: self._auth_token)
        self._lifecycle = Lifecycle(self.config, self.state, self._scheduler, self._dispatcher)
        self._api = TwilioApi(self.config, self.state, self._lifecycle, lambda: self._auth_token)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.base_url = ""

    def start(self, host: str = LOOPBACK, port: int = 0, *, preload: bool = False) -> str:
        """Serve on host:port (0: a free port) from a background thread; the base URL. The
        description is read on the first API request, or now with `preload`."""
        if self._server is not None or self._stopping.is_set():
            raise RuntimeError("a Simulator starts once: make a new one to start again")
        if not self.config.spec_path.exists():
            raise LocalStackError(
                f"Twilio's API description is not in {self.config.spec_path}: run `make contract-deps`."
            )
        if preload:
            spec_validator(self.config.spec_path)
        handler = type("SimulatorHandler", (_Handler,), {"simulator": self})
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as error:
            raise LocalStackError(f"The Twilio simulator cannot listen on {host}:{port}: {error.strerror}") from None
        self._server.daemon_threads = True
        bound_host, bound_port = self._server.server_address[:2]
        self.base_url = f"http://{bound_host!s}:{bound_port}"
        self._scheduler.start()
        # A short poll interval: stop() (shutdown) waits for the loop to notice, up to this long.
        serve = functools.partial(self._server.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, name="twilio-simulator", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        self._stopping.set()  # wakes answers held back (latency, the "times out" number)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._scheduler.stop()
        self._dispatcher.stop()

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # What the admin endpoints do, callable in-process.

    def counters(self) -> dict[str, Any]:
        with self.state.lock:
            data = self.state.counters.as_json()
        data["spec_load_seconds"] = spec_validator(self.config.spec_path).load_seconds
        return data

    def invalid_requests(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.counters.invalid_requests)

    def messages(self) -> list[dict[str, Any]]:
        """Every message, oldest first, with its status history and callback attempts."""
        with self.state.lock:
            return [message.admin_view() for message in self.state.messages.values()]

    def message(self, sid: str) -> dict[str, Any] | None:
        with self.state.lock:
            message = self.state.messages.get(sid)
            return message.admin_view() if message else None

    def reset(self) -> None:
        self._scheduler.clear()
        self._dispatcher.clear()
        self._lifecycle.clear()
        self.state.clear()
        self._auth_token = self.config.auth_token
        self._lifecycle.mode = self.config.callback_mode

    def set_auth_token(self, token: str) -> None:
        """The token requests must carry, and that webhooks are signed with, from now on."""
        self._auth_token = token

    @property
    def auth_token(self) -> str:
        return self._auth_token

    def set_callback_mode(self, mode: str) -> None:
        if mode not in CALLBACK_MODES:
            raise ValueError(f"mode must be one of {', '.join(CALLBACK_MODES)}")
        self._lifecycle.mode = cast(CallbackMode, mode)

    @property
    def callback_mode(self) -> CallbackMode:
        return self._lifecycle.mode

    def inject_inbound(self, inbound: Inbound) -> dict[str, Any]:
        """POST an inbound message, signed as Twilio signs it, to its webhook; what it answered."""
        url = inbound.url or self.config.inbound_webhook_url
        if not url:
            raise ValueError("no webhook: give 'url', or configure inbound_webhook_url")
        message = inbound_message(inbound, self.config.account_sid)
        params = inbound_params(inbound, message)
        self.state.add(message)
        answer = post_form(url, params, self._auth_token, new_token(), self.config.callback_timeout_seconds)
        return {
            "url": url,
            "message_sid": message.sid,
            "params": dict(params),
            "status": answer.status,
            "content_type": answer.content_type,
            "body": answer.body,
            "error": answer.error,
        }

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Until no status change is pending and every callback is done (or `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._scheduler.pending() == 0 and self._dispatcher.idle():
                return True
            time.sleep(0.01)
        return False

    # The HTTP side.

    def serve_api(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> tuple[ApiAnswer, int]:
        """An API answer and the requests in flight when it arrived (it included), after the
        account's concurrency limit: beyond it, a 429 and nothing done."""
        with self.state.lock:
            counters = self.state.counters
            limit = self.config.concurrency_limit
            if limit and counters.in_flight >= limit:
                counters.rate_limited += 1
                counters.requests[f"{method} (429)"] += 1
                return ApiAnswer(429, errors.too_many_requests().body()), counters.in_flight + 1
            counters.in_flight += 1
            counters.peak_concurrency = max(counters.peak_concurrency, counters.in_flight)
            concurrent = counters.in_flight
        try:
            answer = self._api.handle(method, path, query, headers, body)
            self._stopping.wait(self.config.api_latency_seconds + answer.hold_seconds)
            return answer, concurrent
        finally:
            with self.state.lock:
                self.state.counters.in_flight -= 1


class _Handler(BaseHTTPRequestHandler):
    simulator: Simulator
    protocol_version = "HTTP/1.1"  # keep-alive, as the functions' pooled client expects
    disable_nagle_algorithm = True  # else a kept-alive answer waits ~40 ms for a delayed ACK

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the counters and the admin endpoints tell what happened

    def _handle(self) -> None:
        try:
            self._answer()
        except Exception:  # a bug of the simulator: answered as Twilio answers its own
            log.exception("twilio simulator: %s %s failed", self.command, self.path)
            self.close_connection = True  # the request may not have been read to its end
            self._send(500, errors.internal_error().body(), {})

    def _answer(self) -> None:
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        if parts.path == PREFIX or parts.path.startswith(PREFIX + "/"):
            admin = handle_admin(self.simulator, self.command, parts.path, body)
            self._send(admin.status, admin.body, {})
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer, concurrent = self.simulator.serve_api(self.command, parts.path, parts.query, headers, body)
        self._send(
            answer.status,
            answer.body,
            {
                "Twilio-Concurrent-Requests": str(concurrent),
                "Twilio-Request-Duration": f"{time.perf_counter() - started:.3f}",
            },
        )

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if data:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the "times out" number): the message is created all the same
