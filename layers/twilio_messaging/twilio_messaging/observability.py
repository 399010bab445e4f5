"""Logger, Metrics and (when enabled) Tracer, created once per execution environment.

Log records pass through a formatter that masks phone numbers to their last four digits, so a
number that slips into a log line (an exception text, an extra key) is masked too.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import Metrics, MetricUnit

from twilio_messaging.settings import tracing_enabled

# A "+" (or its URL encoding %2B) and 8-15 digits (E.164), possibly behind a channel prefix;
# also a channel address without the "+" (whatsapp:15558675310).
_PHONE = re.compile(r"(\+|%2[bB]|(?<=[a-z]:))\d{4,11}(\d{4})(?!\d)")


def mask_phone_numbers(value: Any) -> Any:
    """The value with every E.164 number reduced to its last four digits, recursively."""
    if isinstance(value, str):
        return _PHONE.sub(r"\1***\2", value)
    if isinstance(value, dict):
        return {k: mask_phone_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_phone_numbers(v) for v in value]
    return value


class MaskingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: Any) -> str:
        return super().serialize(mask_phone_numbers(log))


logger = Logger(logger_formatter=MaskingFormatter())
metrics = Metrics()
# A read of the state table (opt-outs, a delivery record) records no metric, by design: Powertools'
# warning for an empty flush would be noise on every such call.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

# The Lambda runtime sets the root logger to the function's log level. At DEBUG, botocore logs
# whole requests (DynamoDB items: message bodies, full numbers) and urllib3 logs every URL with
# its query string (`To=`). Libraries log at WARNING at most, whatever the function's level.
QUIET_LIBRARIES = ("botocore", "boto3", "s3transfer", "urllib3", "requests", "aws_lambda_powertools")


class MaskingFilter(logging.Filter):
    """Masks phone numbers in every record a handler of the root logger writes (what libraries
    log), as MaskingFormatter does for this layer's own lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phone_numbers(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def quiet_libraries() -> None:
    """Hold the libraries' loggers at WARNING, and mask numbers in whatever the root logger's
    handlers (the runtime's) write. Idempotent: handlers added later get the filter on the next call."""
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, MaskingFilter) for existing in handler.filters):
            handler.addFilter(MaskingFilter())


quiet_libraries()


def _build_tracer() -> Any:
    """Powertools Tracer when tracing is on and the X-Ray SDK is present, else None.

    The SDK costs about 300 ms of cold start and, through its botocore dependency, about 30 MB
    of layer, so the layer does not ship it: with EnableTracing, Lambda and API Gateway still
    record their segments, and a layer that adds aws-xray-sdk turns on per-call subsegments.
    """
    if not tracing_enabled():
        return None
    try:
        from aws_lambda_powertools.tracing import Tracer

        return Tracer()
    except ImportError:
        logger.info("Tracing is on without the X-Ray SDK: Lambda and API Gateway segments only")
        return None


tracer: Any = _build_tracer()


@contextmanager
def traced(name: str) -> Iterator[None]:
    """An X-Ray subsegment when tracing is on, nothing otherwise."""
    if tracer is None:
        yield
        return
    with tracer.provider.in_subsegment(name):
        yield


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def record_latency(name: str, milliseconds: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=milliseconds)


def record_level(name: str, value: float) -> None:
    """A level seen at one moment (unit Count), such as requests in flight: read it with
    Maximum or Average, never Sum."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def count_by(name: str, dimension: str, value: str) -> None:
    """One occurrence of `name`, with a dimension of its own (the error code, the source…)."""
    from aws_lambda_powertools.metrics import single_metric

    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        metric.add_dimension(name=dimension, value=value)


def count_failure(code: str) -> None:
    """One failure, in the total and in a metric with the error code as its dimension."""
    count("SendFailures")
    count_by("SendFailuresByCode", "ErrorCode", code)


def count_unexpected_failure(function_name: str) -> None:
    """One invocation that failed for a reason of the deployment's, not the caller's (a bug, the
    configuration, an AWS service), with the function's name as its dimension so that an alarm
    per function can select it. Written at once, whatever happens to the invocation next."""
    from aws_lambda_powertools.metrics import single_metric

    with single_metric(
        name="UnexpectedFailures", unit=MetricUnit.Count, value=1, namespace=metrics.namespace
    ) as metric:
        metric.add_dimension(name="FunctionName", value=function_name)
