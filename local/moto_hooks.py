"""What moto needs to run this product's workflows locally, where no Docker runs Lambda:

- Step Functions executes state machines (`execute_state_machine`), with JSONata evaluated by
  jsonata-python (moto leaves its evaluator unplugged), `lambda:invoke` tasks served by the
  functions' own handlers in the process that runs the executor, and SendTaskFailure's `cause`
  kept (moto's response layer drops it).
- DynamoDB decides each conditional write atomically, as DynamoDB does: moto's in-memory table
  checks a condition and writes in two Python steps that threads can interleave, which would show
  moto's races as the product's (duplicate callbacks, idempotency, counters).
- The server dispatches without listing moto's package directories on every request, and
  without logging each request: both cost the local stack's one GIL more than most requests'
  own work (a campaign makes about five DynamoDB calls per recipient).

These are moto internals (moto 5.2.5): `tests/unit/test_moto_hooks.py` pins each one, so that a
moto upgrade that moves them fails there, not in a demo.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# A Lambda function's answer to a payload: the handler's return value, or an exception.
Invoke = Callable[[str, Any], Any]

_ATOMIC_OPERATIONS = ("put_item", "update_item", "delete_item", "get_item", "transact_write_items", "batch_write_item")
_lock = threading.RLock()
_invoke: Invoke | None = None


def evaluate_jsonata(expression: str) -> Any:
    """moto composes `( $states:={…}; <expression> )` and evaluates it without input."""
    import jsonata
    from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata

    try:
        result = jsonata.Jsonata(expression).evaluate(None)
    except Exception as error:  # moto maps JSONataException to States.QueryEvaluationError
        raise moto_jsonata.JSONataException("UNKNOWN", str(error)) from error
    return None if result is None else json.loads(json.dumps(result))


def _invoke_lambda(parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
    """In place of moto's `lambda_eval_utils._invoke_lambda_function`: boto3's Invoke answer,
    the payload already parsed; an exception is what Lambda answers for an unhandled error, so
    that Retry and Catch match its class name (the product's Step Functions error types)."""
    if _invoke is None:
        raise RuntimeError("no Lambda handlers are plugged into moto (local.moto_hooks.plug)")
    raw = parameters.get("Payload") or b"{}"
    event = json.loads(raw) if raw else {}
    try:
        result = _invoke(str(parameters["FunctionName"]), event)
    except Exception as error:
        payload = {
            "errorType": type(error).__name__,
            "errorMessage": str(error),
            "stackTrace": traceback.format_exception(error),
        }
        return {"StatusCode": 200, "FunctionError": "Unhandled", "ExecutedVersion": "$LATEST", "Payload": payload}
    return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": json.loads(json.dumps(result))}


def _encode_declarations(bindings: dict[str, Any]) -> str:
    """moto's own encoder wraps Assign'ed strings in quotes without escaping them: a variable
    holding `"` or `\\` breaks the expression."""
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    return "".join(
        f"{ref}:={json.dumps(value) if isinstance(value, str) else to_json_str(value, separators=(',', ':'))};"
        for ref, value in bindings.items()
    )


def _send_task_failure(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    self.stepfunction_backend.send_task_failure(
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
    )
    return EmptyResult()


def plug(invoke: Invoke) -> None:
    """Plug every Step Functions hook into moto in this process; `invoke(function_name_or_arn,
    event)` serves the state machines' Lambda tasks. Idempotent: the last `invoke` wins."""
    global _invoke
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.eval import states, variable_store
    from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
    from moto.stepfunctions.responses import StepFunctionResponse

    _invoke = invoke
    moto_jsonata._eval_jsonata = evaluate_jsonata
    lambda_eval_utils._invoke_lambda_function = _invoke_lambda
    states.encode_jsonata_variable_declarations = _encode_declarations
    variable_store.encode_jsonata_variable_declarations = _encode_declarations
    StepFunctionResponse.send_task_failure = _send_task_failure  # type: ignore[method-assign]


def enable_execution() -> None:
    """moto runs state machines only when asked (in process; moto_server: POST /moto-api/config)."""
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"]["execute_state_machine"] = True


@contextmanager
def atomic_dynamodb() -> Iterator[None]:
    """One lock around each of moto's DynamoDB backend calls, for the duration."""
    from moto.dynamodb.models import DynamoDBBackend

    originals = {name: getattr(DynamoDBBackend, name) for name in _ATOMIC_OPERATIONS}

    def locked(original: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            with _lock:
                return original(*args, **kwargs)

        return call

    for name, original in originals.items():
        setattr(DynamoDBBackend, name, locked(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)


def quick_dispatch() -> None:
    """moto's server asks `moto.backends.list_of_moto_modules()` (a directory listing with a
    stat per entry) for each request's host; the package does not change while it runs."""
    import logging

    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise


def wait_for_execution(client: Any, execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
    """moto runs an execution on a thread of its own: its description once it is no longer RUNNING
    (or when `timeout` passes)."""
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = client.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.02)
