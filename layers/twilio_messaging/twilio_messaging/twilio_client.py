"""The one Twilio HTTP client: authentication, timeouts, retries and error parsing.

Retry rules (docs/api.md, "Idempotency and retries"):
- 429 is always safe to repeat (Twilio never processed it): wait `Retry-After`, else back off.
- A call marked `idempotent` (GET, DELETE) is repeated on 5xx and network errors, with
  exponential backoff and full jitter.
- Any other call (a send) is never repeated once it may have reached Twilio: a 5xx or a timeout
  is `SendOutcomeUnknown`. A connection that was never made is safe to repeat.
- 401: the call is repeated once with the secret read again (a rotated token needs no redeploy),
  when the secret was read over a minute ago or another call has read it since.
Every wait and every timeout fits in the invocation's `Deadline`, and so does each answer as a
whole: requests' read timeout bounds each read of the socket, not the answer, so an answer that
Twilio (or a proxy) dribbles in is cut off when the deadline comes (`_exchange`).
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from twilio_messaging.credential_guard import api_product
from twilio_messaging.credentials import Credentials, CredentialStore
from twilio_messaging.deadline import Deadline, DeadlineExpired
from twilio_messaging.errors import (
    ConfigurationError,
    NotFound,
    SendOutcomeUnknown,
    TwilioMessagingError,
    TwilioRateLimited,
    TwilioRequestRejected,
    TwilioUnavailable,
    ValidationError,
)
from twilio_messaging.observability import count, logger, record_latency, record_level, traced
from twilio_messaging.settings import http_uses_environment
from twilio_messaging.twilio_errors import parse_error_body, parse_retry_after

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    import requests


API_VERSION_PATH = "/2010-04-01"
IDEMPOTENT_METHODS = ("GET", "HEAD", "DELETE", "OPTIONS")
CONNECT_TIMEOUT_SECONDS = 3.05
READ_TIMEOUT_SECONDS = 10.0
NO_TIME_LEFT = "no time left to call Twilio within the function's timeout"
USER_AGENT = "twilio-messaging-functions/1.0 (AWS Lambda)"
# Twilio's count of the account's REST requests in flight, on each answer (docs/twilio.md,
# "Concurrency, throughput and queueing"): published as TwilioConcurrentRequests.
CONCURRENT_REQUESTS_HEADER = "Twilio-Concurrent-Requests"

FormData = list[tuple[str, str]] | Mapping[str, Any] | str | bytes


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3  # repeats of 5xx / network errors, for idempotent calls
    base_delay: float = 0.25  # seconds
    exponential: bool = True
    retry_on_all_errors: bool = False  # also repeat 4xx answers (raw requests that ask for it)
    max_rate_limit_retries: int = 3  # repeats of 429, for every call
    max_delay: float = 20.0

    def delay(self, attempt: int) -> float:
        """Wait before repeat number `attempt` (1-based): full jitter over the backoff ceiling."""
        ceiling = self.base_delay * (2 ** (attempt - 1) if self.exponential else 1)
        return random.uniform(0, min(ceiling, self.max_delay)) if self.exponential else ceiling


DEFAULT_RETRY = RetryPolicy()


@dataclass
class _Attempts:
    """What one logical call has used of its retry policy so far."""

    policy: RetryPolicy
    read_timeout: float
    failures: int = 0  # repeats after 5xx, network errors, or 4xx when the policy asks
    rate_limited: int = 0  # repeats after 429
    reread: bool = False  # the secret was read again after a 401
    retry_after: float | None = None  # of the last 429


class Pacer(Protocol):
    """Whatever paces a batch's calls (send_pacer.SendPacer): holds each attempt until it may
    be in flight, and hears of its 429s and successes. The client knows no more of it."""

    def slot(self, deadline: Deadline) -> AbstractContextManager[None]: ...

    def rate_limited(self) -> None: ...

    def succeeded(self) -> None: ...


class TwilioClient:
    """Keeps one `requests.Session` (connection reuse across invocations) per execution environment."""

    def __init__(
        self,
        base_url: str,
        credentials: CredentialStore,
        session: requests.Session | None = None,
        pool_size: int = 10,
    ) -> None:
        # Deferred: ~100 ms (with http.cookiejar, ssl) that a validation error never needs.
        from http.cookiejar import DefaultCookiePolicy

        import requests

        self._requests = requests
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.session = session or requests.Session()
        self.session.trust_env = http_uses_environment()
        if session is None and pool_size > 10:  # requests keeps 10 connections per host by default
            adapter = requests.adapters.HTTPAdapter(pool_connections=10, pool_maxsize=pool_size)
            self.session.mount("https://", adapter)
            self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        # The session serves every caller of this environment: no cookie of one reaches another.
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self._base_origin = _origin(self.base_url)
        self._pool_size = max(10, pool_size)
        self._threads: ThreadPoolExecutor | None = None
        self._threads_lock = threading.Lock()

    def account_sid(self, deadline: Deadline | None = None) -> str:
        """The account in the secret (read within `deadline` when it is not cached)."""
        return self.credentials.get(deadline).account_sid

    def api_url(self, path: str) -> str:
        """Absolute URL of a 2010-04-01 API path such as `/Accounts/AC…/Messages.json`."""
        return f"{self.base_url}{API_VERSION_PATH}{path}"

    def account_url(self, path: str, deadline: Deadline | None = None) -> str:
        return self.api_url(f"/Accounts/{self.account_sid(deadline)}{path}")

    def may_receive_credentials(self, url: str) -> bool:
        """Only Twilio's REST API hosts over https, or the configured base URL, ever see the credentials."""
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            return False
        if _origin(url) == self._base_origin:
            return True
        return parts.scheme == "https" and api_product(parts.hostname or "") is not None and _origin(url)[2] == 443

    def request_json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """A call whose answer must be a 2xx JSON object; other answers raise domain errors.

        A 2xx answer whose body is not a JSON object is TwilioUnavailable for a call that is safe
        to repeat, and SendOutcomeUnknown for any other: Twilio said it succeeded, so a send most
        likely went out, and repeating it blindly could deliver the message twice.
        """
        response = self.request(method, url, **kwargs)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            data = response.json()
        except ValueError:
            data = None
            problem = f"Twilio answered HTTP {response.status_code} with a body that is not JSON"
        else:
            problem = f"Twilio answered HTTP {response.status_code} with JSON that is not an object"
        if isinstance(data, dict):
            return data
        idempotent = kwargs.get("idempotent")
        if idempotent is None:
            idempotent = method.upper() in IDEMPOTENT_METHODS
        if idempotent:
            raise TwilioUnavailable(problem, twilio_status=response.status_code)
        raise SendOutcomeUnknown(f"{problem}; it may have accepted the message", twilio_status=response.status_code)

    def request(
        self,
        method: str,
        url: str,
        *,
        deadline: Deadline,
        idempotent: bool | None = None,
        params: Sequence[tuple[str, str]] | Mapping[str, Any] | None = None,
        data: FormData | None = None,
        json: Any = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        raise_for_status: bool = True,
        not_found: type[TwilioMessagingError] = NotFound,
        pacer: Pacer | None = None,
    ) -> requests.Response:
        """Send one logical call, with the retries of the module docstring.

        With `raise_for_status` false, any answer Twilio gave is returned (raw requests); errors
        are raised only when no answer could be had. A `pacer` (a batch's) holds each attempt
        until it may be in flight, and learns from its 429s and successes.
        """
        if not self.may_receive_credentials(url):
            raise ValidationError.from_problems([{"field": "url", "problem": "is not a Twilio REST API https URL"}])
        method = method.upper()
        idempotent = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        options = {"params": params, "data": data, "json": json, "files": files, "headers": dict(headers or {})}
        attempts = _Attempts(retry, timeout or READ_TIMEOUT_SECONDS)
        credentials = self.credentials.get(deadline)
        while True:
            try:
                response = self._send_once(method, url, options, credentials, attempts, deadline, pacer)
            except self._requests.RequestException as error:
                if (idempotent or _never_sent(error)) and self._repeat(attempts, "failure", deadline):
                    logger.warning("Twilio call failed, repeating", extra={"reason": type(error).__name__})
                    continue
                raise _transport_error(error, idempotent) from None
            status = response.status_code
            if status == 401 and not attempts.reread:
                attempts.reread = True
                # A rotated secret: read again, at most once a minute (a host that always answers
                # 401 must not turn every call into a Secrets Manager read), or one read since.
                fresher = self.credentials.reread_after_rejection(credentials, deadline)
                if fresher is not None:
                    logger.info("Twilio answered 401: repeating with the secret read again")
                    credentials = fresher
                    continue
            if pacer is not None:
                pacer.rate_limited() if status == 429 else pacer.succeeded()
            if self._repeat_answer(response, idempotent, attempts, deadline):
                continue
            if raise_for_status and status >= 400:
                raise _answer_error(response, idempotent=idempotent, not_found=not_found)
            return response

    def _send_once(
        self,
        method: str,
        url: str,
        options: dict[str, Any],
        credentials: Credentials,
        attempts: _Attempts,
        deadline: Deadline,
        pacer: Pacer | None,
    ) -> requests.Response:
        """One attempt, its timeouts taken once it may be in flight (a pacer may hold it)."""
        with traced(f"twilio {method}"), pacer.slot(deadline) if pacer else nullcontext():
            try:
                timeouts = deadline.timeouts(attempts.read_timeout, CONNECT_TIMEOUT_SECONDS)
            except DeadlineExpired:
                # Nothing was sent: safe to repeat for any call, a send included.
                raise TwilioUnavailable(NO_TIME_LEFT, timed_out=True) from None
            started = time.monotonic()
            try:
                response = self._exchange(
                    deadline,
                    method,
                    url,
                    **options,
                    auth=credentials.basic_auth,
                    timeout=timeouts,
                    allow_redirects=False,  # a redirect must never carry credentials elsewhere
                )
            finally:
                record_latency("TwilioLatency", (time.monotonic() - started) * 1000)
            _record_concurrency(response)
            return response

    def _repeat_answer(
        self, response: requests.Response, idempotent: bool, attempts: _Attempts, deadline: Deadline
    ) -> bool:
        """Whether this answer is repeated (after a wait that fits in the deadline): a 429 for
        any call, Twilio's `Retry-After` honoured; a 5xx for a call that is safe to repeat; any
        4xx when the policy asks for it."""
        status = response.status_code
        if status == 429:
            attempts.retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if self._repeat(attempts, "rate_limited", deadline, attempts.retry_after):
                logger.warning("Twilio rate limit, waiting", extra={"retryAfter": attempts.retry_after})
                return True
            return False
        policy = attempts.policy
        retryable = status >= 500 or (policy.retry_on_all_errors and status >= 400 and status != 401)
        if retryable and (idempotent or status < 500) and self._repeat(attempts, "failure", deadline):
            logger.warning("Twilio answered an error, repeating", extra={"status": status})
            return True
        return False

    def _repeat(self, attempts: _Attempts, kind: str, deadline: Deadline, wait: float | None = None) -> bool:
        """Take one more repeat of `kind` ("failure" or "rate_limited") if the policy has one
        left and its wait fits in the deadline; False otherwise."""
        policy = attempts.policy
        used = attempts.failures if kind == "failure" else attempts.rate_limited
        allowed = policy.max_retries if kind == "failure" else policy.max_rate_limit_retries
        if used >= allowed or not self._wait(policy.delay(used + 1) if wait is None else wait, deadline):
            return False
        if kind == "failure":
            attempts.failures += 1
        else:
            attempts.rate_limited += 1
            count("TwilioRateLimitRetries")  # the 429s alone; TwilioRetries counts every repeat
        count("TwilioRetries")
        return True

    def _exchange(self, deadline: Deadline, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request and its whole answer, body included, within the deadline.

        The exchange runs in a thread of its own so that this one can stop waiting when the
        deadline comes, however the answer arrives; the connection is then shut down (once the
        headers are in, the body's socket is known), which ends the exchange's thread too.
        """
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def exchange() -> None:
            try:
                response = self.session.request(method, url, stream=True, **kwargs)
                outcome["response"] = response
                response.content  # noqa: B018 - reads the body, here, under the deadline's watch
            except BaseException as error:  # handed to the caller's thread as it is
                outcome["error"] = error
            finally:
                done.set()

        self._call_threads().submit(exchange)
        if not done.wait(deadline.remaining()):
            _shut_down(outcome.get("response"))
            raise self._requests.exceptions.ReadTimeout(
                "Twilio's answer did not arrive in full within the function's remaining time"
            )
        if "error" in outcome:
            raise outcome["error"]
        response: requests.Response = outcome["response"]
        return response

    def _call_threads(self) -> ThreadPoolExecutor:
        """Threads kept for the exchanges: starting one per call cost about 0.3 ms of each call
        (docs/performance.md). Twice the connection pool, so a batch never waits for a thread."""
        with self._threads_lock:
            if self._threads is None:
                from concurrent.futures import ThreadPoolExecutor

                self._threads = ThreadPoolExecutor(max_workers=2 * self._pool_size, thread_name_prefix="twilio-call")
            return self._threads

    @staticmethod
    def _wait(seconds: float, deadline: Deadline) -> bool:
        """Sleep unless the wait (plus time for one more call) would outlive the deadline."""
        if seconds + 0.25 >= deadline.remaining():
            return False
        time.sleep(seconds)
        return True


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port or default


def _record_concurrency(response: requests.Response) -> None:
    """Twilio's `Twilio-Concurrent-Requests` of this answer, when it sent one: how close the
    account is to its concurrency limit (a dictionary look-up and one metric value per answer)."""
    value = response.headers.get(CONCURRENT_REQUESTS_HEADER)
    if value is not None and value.strip().isdigit():
        record_level("TwilioConcurrentRequests", int(value))


def _shut_down(response: requests.Response | None) -> None:
    """Shut the socket of an answer still arriving: its blocked read returns at once."""
    connection = getattr(getattr(response, "raw", None), "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _timed_out(error: Exception) -> bool:
    """A timeout, also when it struck while the body was read (requests then raises a
    ConnectionError around urllib3's ReadTimeoutError)."""
    import requests
    from urllib3.exceptions import ReadTimeoutError

    if isinstance(error, requests.Timeout):
        return True
    return (
        isinstance(error, requests.ConnectionError) and bool(error.args) and isinstance(error.args[0], ReadTimeoutError)
    )


def _never_sent(error: Exception) -> bool:
    """True when the connection was never made, so Twilio cannot have seen the request."""
    import requests

    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(error, requests.exceptions.ConnectionError):
        from urllib3.exceptions import NewConnectionError

        reason = getattr(error.args[0], "reason", None) if error.args else None
        return isinstance(reason, NewConnectionError) or isinstance(
            error.args[0] if error.args else None, NewConnectionError
        )
    return False


def _transport_error(error: Exception, idempotent: bool) -> TwilioMessagingError:
    """The one mapping of a call that got no answer to a domain error: safe to repeat
    (TwilioUnavailable) when the call was idempotent or never reached Twilio, else Twilio may
    have accepted the send (SendOutcomeUnknown)."""
    timed_out = _timed_out(error)
    reason = "timed out" if timed_out else f"failed ({type(error).__name__})"
    if idempotent or _never_sent(error):
        return TwilioUnavailable(f"the call to Twilio {reason}", timed_out=timed_out)
    return SendOutcomeUnknown(f"the call to Twilio {reason}; Twilio may have accepted the message", timed_out=timed_out)


def _answer_error(
    response: requests.Response, *, idempotent: bool, not_found: type[TwilioMessagingError]
) -> TwilioMessagingError:
    """The one mapping of Twilio's error answers to domain errors."""
    status = response.status_code
    body = parse_error_body(status, response.content)
    fields: dict[str, Any] = {"twilio_code": body.code, "more_info": body.more_info, "twilio_status": status}
    if status == 429:
        wait = parse_retry_after(response.headers.get("Retry-After"))
        return TwilioRateLimited(body.message, retry_after=wait if wait is not None else 1.0, **fields)
    if status == 401:
        return ConfigurationError(
            "Twilio rejected the credentials in the secret (it is read again at most once a minute)", **fields
        )
    if status == 404:
        return not_found(body.message, **fields)
    if status >= 500:
        if idempotent:
            return TwilioUnavailable(f"Twilio is unavailable (HTTP {status}): {body.message}", **fields)
        return SendOutcomeUnknown(
            f"Twilio answered HTTP {status}; it may have accepted the message: {body.message}", **fields
        )
    return TwilioRequestRejected(body.message, **fields)
