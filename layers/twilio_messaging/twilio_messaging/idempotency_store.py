"""At most one send per idempotency key and recipient (docs/architecture.md, "Idempotency"):
Powertools idempotency on the state table, one record per key and recipient, so that a retried
batch sends only to the recipients that did not get the message.

A repeat within 24 hours returns the first answer; a repeat while the first is in progress is
IdempotencyInProgress; the same key with another request is IdempotencyKeyReused. A failed send
leaves no record, so a corrected request goes through.

Powertools' idempotency package imports boto3, about a quarter of a second: it is imported on
the first send that carries a key, never by the others.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import IdempotencyInProgress, IdempotencyKeyReused
from twilio_messaging.observability import logger

KEY_PREFIX = "send_message"  # record ids: send_message#<hash of key and recipient>
EXPIRES_AFTER_SECONDS = 24 * 3600
# Fields that may differ between attempts of one request: the key itself, and the task token
# that Step Functions issues anew for each attempt of a task.
NOT_FINGERPRINTED = frozenset({"idempotencyKey", "taskToken"})

Attempt = Callable[[], dict[str, Any]]


def request_fingerprint(payload: dict[str, Any]) -> str:
    """What must be the same for a repeat to count as the same request."""
    kept = {k: v for k, v in payload.items() if k not in NOT_FINGERPRINTED}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def marker_for(key: str, recipient: str) -> str:
    return hashlib.sha256(f"{key}\n{recipient}".encode()).hexdigest()


@dataclass(frozen=True)
class _RemainingTime:
    """The Lambda context Powertools reads: how long a record may stay in progress."""

    deadline: Deadline

    def get_remaining_time_in_millis(self) -> int:
        return int(self.deadline.remaining() * 1000) + 1000


def _attempt_once(*, record: dict[str, str], attempt: Attempt, sent: list[dict[str, Any]]) -> dict[str, Any]:
    """What Powertools runs when no record stands in the way; `record` is what it hashes."""
    sent.append(attempt())
    return sent[-1]


class IdempotencyStore:
    def __init__(
        self, table_name: str, expires_after_seconds: int = EXPIRES_AFTER_SECONDS, connections: int = 10
    ) -> None:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )
        from botocore.config import Config

        self._config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="request",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=expires_after_seconds,
            hash_function="sha256",
        )
        self.persistence = DynamoDBPersistenceLayer(
            table_name=table_name,
            boto_config=Config(
                connect_timeout=2,
                read_timeout=3,
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=connections,
            ),
        )
        self._attempt_once = idempotent_function(
            _attempt_once,
            data_keyword_argument="record",
            persistence_store=self.persistence,
            config=self._config,
            key_prefix=KEY_PREFIX,
        )

    def at_most_once(self, key: str, recipient: str, fingerprint: str, attempt: Attempt, deadline: Deadline) -> Any:
        """`attempt()` at most once for this key and recipient; a repeat gets its first answer."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        # One invocation at a time per execution environment: its threads share one deadline.
        self._config.register_lambda_context(_RemainingTime(deadline))  # type: ignore[arg-type]
        sent: list[dict[str, Any]] = []
        try:
            result = self._attempt_once(
                record={"key": f"{key}\n{recipient}", "request": fingerprint}, attempt=attempt, sent=sent
            )
        except IdempotencyAlreadyInProgressError:
            raise IdempotencyInProgress(
                "a send with this idempotency key is in progress; retry later", retry_after=5
            ) from None
        except IdempotencyValidationError:
            raise IdempotencyKeyReused(
                "this idempotency key was used within the last 24 hours with a different request"
            ) from None
        except IdempotencyPersistenceLayerError as error:
            if sent:  # the message went out; only recording the answer failed
                logger.warning("Message sent but its idempotency record was not saved", extra={"reason": str(error)})
                return sent[-1]
            raise _store_error(error) from None
        if not sent:
            logger.info("Idempotent repeat: first answer returned, nothing sent", extra={"to": recipient})
        return result


def _store_error(error: BaseException) -> Exception:
    """The domain error for a store that failed before anything was sent, by the AWS error code
    behind Powertools' wrapper (botocore's), mapped as every AWS failure is (aws_json)."""
    from twilio_messaging.aws_json import AwsCallFailed

    code = "UnknownError"
    for cause in (*error.args, error.__cause__):
        response = getattr(cause, "response", None)
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", "")) or code
        elif type(cause).__name__ == "NoCredentialsError":
            code = "NoCredentials"
    return AwsCallFailed(code).domain_error("the idempotency store (nothing was sent)")
