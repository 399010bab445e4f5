"""This deployment's public webhook URL, the default `statusCallback` of every send.

In order: PUBLIC_BASE_URL (custom domains); the base URL of the API request being served; the
SSM parameter the template writes with the API's URL. The parameter exists because a function's
environment cannot name the API that invokes it (CloudFormation sees a circular dependency), so
direct and EventBridge invocations read it at run time, once per execution environment.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from twilio_messaging.deadline import Deadline
from twilio_messaging.observability import logger
from twilio_messaging.settings import Settings

if TYPE_CHECKING:
    from twilio_messaging.aws_json import AwsJsonClient

WEBHOOK_PATH = "/webhooks/twilio"
FAILED_READ_RETRY_SECONDS = 60.0
PARAMETER_READ_SECONDS = 2.0  # at most, of the invocation's time: a send without a callback beats no send


class PublicUrl:
    def __init__(self, settings: Settings, ssm: Callable[[], AwsJsonClient]) -> None:
        self._settings = settings
        self._ssm = ssm
        self._lock = threading.Lock()
        self._parameter: str | None = None  # the value read, once read
        self._read_again_at = 0.0  # after a failed read: not before this (monotonic)

    def base_url(self, request_base_url: str | None, deadline: Deadline) -> str:
        if self._settings.public_base_url:
            return self._settings.public_base_url
        if request_base_url:
            return request_base_url
        if self._settings.public_base_url_parameter:
            return self._read_parameter(deadline)
        return ""

    def webhook_url(self, request_base_url: str | None, deadline: Deadline) -> str | None:
        """None when no public URL can be known: sends then go without a status callback."""
        base = self.base_url(request_base_url, deadline)
        return f"{base}{WEBHOOK_PATH}" if base else None

    def _read_parameter(self, deadline: Deadline) -> str:
        with self._lock:
            if self._parameter is not None or time.monotonic() < self._read_again_at:
                return self._parameter or ""
            try:
                answer = self._ssm().call_within(
                    "GetParameter",
                    {"Name": self._settings.public_base_url_parameter},
                    Deadline(min(deadline.expires_at, time.monotonic() + PARAMETER_READ_SECONDS)),
                    attempts=2,
                )
                self._parameter = str(answer["Parameter"]["Value"]).strip().rstrip("/")
            except Exception as error:  # a missing URL must not fail the send: it goes without a callback
                logger.warning("Could not read the public base URL parameter", extra={"reason": str(error)})
                # Not read again on every send: each failed read may cost seconds.
                self._read_again_at = time.monotonic() + FAILED_READ_RETRY_SECONDS
            return self._parameter or ""
