"""Checks the built application as Lambda will load it (run by `make build`, so by CI):

- each handler imports with nothing on sys.path but the standard library, its function folder,
  the built layer and what the Lambda runtime provides (boto3 and its dependencies): so the
  Powertools parts the layer build leaves out are truly unused, idempotency and the batch
  utility (the send queue's) included;
- every module comes from a shipped .pyc (a read-only layer cannot cache compiled modules);
- importing requests without charset_normalizer prints no warning.

    python scripts/check_layer_build.py [--build-dir .aws-sam/build]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = tuple(sorted(path.parent.name for path in (ROOT / "functions").glob("*/app.py")))
# What Lambda's Python runtime ships besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "dateutil", "six.py")

PROBE = """
import json, os, sys, warnings
warnings.simplefilter("default")
sys.dont_write_bytecode = True
sys.path[:] = json.loads(os.environ["PROBE_PATH"])
os.environ.update(POWERTOOLS_SERVICE_NAME="probe", POWERTOOLS_TRACE_DISABLED="true", AWS_REGION="us-east-1")
import app  # the handler, as Lambda imports it
import requests
import importlib, pkgutil, twilio_messaging
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent_function  # a keyed send's
from aws_lambda_powertools.utilities.batch import BatchProcessor, process_partial_response  # the send queue's
for module in pkgutil.iter_modules(twilio_messaging.__path__):  # every module of the layer
    importlib.import_module(f"twilio_messaging.{module.name}")
layer = os.environ["PROBE_LAYER"]
from_source = sorted(
    name for name, module in list(sys.modules.items())
    if (getattr(module, "__file__", None) or "").startswith(layer)
    and not (getattr(module, "__cached__", None) and os.path.exists(module.__cached__))
)
print(json.dumps({"compiled_missing": from_source}))
"""


def check(build_dir: Path) -> list[str]:
    layer = build_dir / "TwilioMessagingLayer" / "python"
    if not layer.is_dir():
        return [f"no built layer in {build_dir}: run sam build first"]
    site = Path(sysconfig.get_paths()["purelib"])
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as runtime:
        for name in RUNTIME_PACKAGES:
            if (site / name).exists():
                (Path(runtime) / name).symlink_to(site / name)
        stdlib = [p for p in sys.path if p and "site-packages" not in p and Path(p).exists()]
        for function in FUNCTIONS:
            folder = build_dir / f"{''.join(w.title() for w in function.split('_'))}Function"
            path = [str(folder), str(layer), *stdlib, runtime]
            result = subprocess.run(
                [sys.executable, "-S", "-c", PROBE],
                env={"PROBE_PATH": json.dumps(path), "PROBE_LAYER": str(layer), "PATH": "/usr/bin:/bin"},
                capture_output=True,
                text=True,
                timeout=60,
            )
            if result.returncode != 0:
                problems.append(f"{function}: does not import from the built layer:\n{result.stderr[-2000:]}")
                continue
            if "Warning" in result.stderr:
                problems.append(f"{function}: warnings at import:\n{result.stderr[-2000:]}")
            missing = json.loads(result.stdout.strip().splitlines()[-1])["compiled_missing"]
            if missing:
                problems.append(f"{function}: modules without a shipped .pyc: {', '.join(missing[:10])}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=ROOT / ".aws-sam" / "build")
    problems = check(parser.parse_args().build_dir)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"built layer ok: {len(FUNCTIONS)} handlers import from it alone, every module from a shipped .pyc")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
