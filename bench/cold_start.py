"""Cold start: a fresh process imports a handler and serves its first request (an API Gateway
event from events/) against a loopback fake of Twilio and moto_server (the secret read included),
beside a reference written as most people write it: the official `twilio` SDK and boto3 imported
at module level (bench/reference_handler). Ours and the reference run alternately; medians.
Both import as in Lambda's Python runtime: the functions see the layer and boto3 with its
dependencies (nothing else installed here); boto3 loads without the AWS Common Runtime or
pyOpenSSL.

Two bytecode settings:
  cached    every .pyc present and valid, as on a developer machine (a warm-up round writes
            them, and Python keeps writing any that are missing)
  deployed  as Lambda runs the deployed zips: its code folders are read-only, so Python compiles
            every module that comes without a .pyc on every cold start. The layer and functions
            keep only the .pyc their build ships (hash-based; none from the source tree or from
            SAM's own Python builder); the reference is a hand-written function's zip: the SDK
            and its dependencies without .pyc. The standard library and boto3 keep theirs, as
            the Lambda runtime ships them.

Then the top contributors of `python -X importtime` for one handler's cold start.

Usage: python bench/cold_start.py [--iterations 20] [--bytecode both|cached|deployed] [--source]
                                  [--importtime FUNCTION]
The built layer (.aws-sam/build, after `make build`) is measured when present, else the sources.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import harness
from harness import BENCH, REFERENCE, Code, median, ratio, table

WORKER = BENCH / "cold_worker.py"


@dataclass(frozen=True)
class Case:
    function: str
    event: str  # under events/
    reference: str  # handler in bench/reference_handler/<reference_module>.py
    reference_module: str = "app"
    label: str = ""  # the row's name, when not the function's
    keyed: bool = False  # an idempotency key of its own per run

    @property
    def name(self) -> str:
        return self.label or self.function

    def event_file(self, scratch: Path) -> Path:
        """The event. A webhook's is signed with the benchmark's token and made unique per run,
        and a keyed send gets a new idempotency key: else every run after the first would be a
        duplicate, answered from the state table."""
        if self.event.startswith("webhook/"):
            event = harness.webhook_event(self.event, "SM" + uuid.uuid4().hex)
        elif self.keyed:
            event = {**harness.load_event(self.event), "idempotencyKey": str(uuid.uuid4())}
        else:
            return harness.EVENTS / self.event
        path = scratch / f"event-{uuid.uuid4()}.json"
        path.write_text(json.dumps(event))
        return path


CASES = [
    Case("send_message", "send_message/api_gateway.json", "lambda_handler"),
    # A send with an idempotency key (Step Functions; every EventBridge event has one): MMS.
    Case("send_message", "send_message/step_functions.json", "lambda_handler", label="send_message+key", keyed=True),
    Case("get_message", "get_message/api_gateway.json", "get"),
    Case("list_messages", "list_messages/api_gateway.json", "list_messages"),
    Case("raw_request", "raw_request/api_gateway.json", "raw"),
    Case("webhook", "webhook/status_callback.json", "lambda_handler", "webhook_app"),
]


@dataclass(frozen=True)
class Setup:
    """Import paths for one bytecode setting."""

    name: str
    ours: list[str]  # PYTHONPATH after the function's folder
    reference: list[str]  # PYTHONPATH after the reference's folder
    functions: dict[str, Path]
    reference_dir: Path
    write_bytecode: bool


MODES = ("cached", "deployed")


def runtime_paths(scratch: Path) -> list[str]:
    """What Lambda's Python runtime adds to a function's path: boto3 and its dependencies."""
    return [str(harness.lambda_runtime_packages(scratch / "runtime"))]


def layer_path(code: Code, scratch: Path) -> Path:
    """The built layer; from the source tree, the package with its dependencies beside it (the
    processes see no site-packages, as in Lambda)."""
    if code.built:
        return code.layer
    assembled = scratch / "assembled"
    return assembled / "python" if assembled.is_dir() else harness.assemble_layer(assembled)


def setups(code: Code, modes: list[str], scratch: Path) -> list[Setup]:
    runtime = runtime_paths(scratch)
    # The cached SDK reference uses this environment's site-packages (the SDK and its
    # dependencies, compiled), without what Lambda's boto3 lacks.
    sites = [str(harness.lambda_runtime_shims(scratch / "shims")), *harness.site_packages()]
    functions = {case.function: code.function_dir(case.function) for case in CASES}
    present = {name: folder for name, folder in functions.items() if folder is not None}
    result = []
    if "cached" in modes:
        result.append(Setup("cached", [str(layer_path(code, scratch)), *runtime], sites, present, REFERENCE, True))
    if "deployed" in modes:
        # Copies with only the shipped .pyc; PYTHONDONTWRITEBYTECODE, as nothing is written in Lambda.
        if code.built:
            layer = harness.copy_as_deployed(code.layer, scratch / "layer")
        else:
            layer = harness.assemble_layer(scratch)
        sdk = scratch / "sdk"
        harness.copy_distributions(harness.distribution_closure(["twilio"]), sdk)
        copies = {
            name: harness.copy_as_deployed(folder, scratch / "functions" / name) for name, folder in present.items()
        }
        reference = harness.copy_tree(REFERENCE, scratch / "reference")
        result.append(Setup("deployed", [str(layer), *runtime], [str(sdk), *runtime], copies, reference, False))
    return result


def run_once(folder: Path, paths: list[str], module: str, handler: str, event: Path, env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    process_env = {**env, "PYTHONPATH": os.pathsep.join([str(folder), *paths])}
    process = subprocess.run(
        [sys.executable, "-S", str(WORKER), module, handler, str(event)],  # -S: no site-packages but PYTHONPATH
        cwd=folder,
        env=process_env,
        capture_output=True,
        text=True,
        check=False,
    )
    if process.returncode != 0:
        raise SystemExit(f"cold start of {module}.{handler} in {folder} failed:\n{process.stderr[-2000:]}")
    result: dict = json.loads(process.stdout.strip().splitlines()[-1])  # type: ignore[type-arg]
    return result


def measure(setup: Setup, iterations: int, env: dict[str, str], scratch: Path) -> list[list[str]]:
    if not setup.write_bytecode:
        env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    samples: dict[str, list[dict]] = defaultdict(list)  # type: ignore[type-arg]
    cases = [case for case in CASES if case.function in setup.functions]
    # A first, uncounted round warms the OS cache (and, cached, writes the .pyc files); a smoke
    # run of one iteration goes without.
    first = 0 if iterations > 1 else 1
    for iteration in range(first, iterations + 1):
        for case in cases:
            folder = setup.functions[case.function]
            ours = run_once(folder, setup.ours, "app", "lambda_handler", case.event_file(scratch), env)
            reference = run_once(
                setup.reference_dir,
                setup.reference,
                case.reference_module,
                case.reference,
                case.event_file(scratch),
                env,
            )
            if iteration:
                samples[case.name].append(ours)
                samples["ref:" + case.name].append(reference)
    rows = []
    for case in cases:
        ours, reference = samples[case.name], samples["ref:" + case.name]
        ours_import = median([s["importMs"] for s in ours])
        ours_first = median([s["firstCallMs"] for s in ours])
        ours_total = median([s["importMs"] + s["firstCallMs"] for s in ours])
        reference_import = median([s["importMs"] for s in reference])
        reference_total = median([s["importMs"] + s["firstCallMs"] for s in reference])
        rows.append(
            [
                case.name,
                f"{ours_import:.1f}",
                f"{ours_first:.1f}",
                f"{ours_total:.1f}",
                f"{reference_import:.1f}",
                f"{reference_total:.1f}",
                ratio(ours_import, reference_import),
                ratio(ours_total, reference_total),
            ]
        )
    return rows


def import_time_contributors(code: Code, env: dict[str, str], scratch: Path, function: str, top: int = 12) -> None:
    """`python -X importtime` of one function's cold start, own time summed per top-level package."""
    case = next(case for case in CASES if case.name == function)
    folder = code.function_dir(case.function)
    if folder is None:
        return
    event = case.event_file(scratch)
    process = subprocess.run(
        [sys.executable, "-S", "-X", "importtime", str(WORKER), "app", "lambda_handler", str(event)],
        cwd=folder,
        env={
            **env,
            "PYTHONPATH": os.pathsep.join([str(folder), str(layer_path(code, scratch)), *runtime_paths(scratch)]),
        },
        capture_output=True,
        text=True,
        check=True,
    )
    own: dict[str, float] = defaultdict(float)
    modules: list[tuple[float, float, str]] = []
    for line in process.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = (part.strip() for part in line[len("import time:") :].split("|"))
        own[name.split(".")[0]] += int(self_us) / 1000
        modules.append((int(cumulative_us) / 1000, int(self_us) / 1000, name))
    total = sum(own.values())
    print(f"\npython -X importtime, {case.name} cold start (cached .pyc): {total:.1f} ms of imports in all")
    rows = [[package, f"{ms:.1f}", f"{ms / total:.0%}"] for package, ms in sorted(own.items(), key=lambda i: -i[1])]
    print(table(["package (own time summed)", "ms", "share"], rows[:top]))
    print()
    seen: set[str] = set()
    heaviest = []
    for cumulative, self_ms, name in sorted(modules, reverse=True):
        if name.split(".")[0] != "app" and name not in seen:
            seen.add(name)
            heaviest.append((cumulative, self_ms, name))
    heaviest = heaviest[:top]
    rows = [[name, f"{cumulative:.1f}", f"{self_ms:.1f}"] for cumulative, self_ms, name in heaviest]
    print(table(["module (with what it imports)", "cumulative ms", "own ms"], rows))


def main() -> None:
    arguments = harness.parser(__doc__, iterations=20)
    arguments.add_argument("--bytecode", choices=["both", *MODES], default="both")
    arguments.add_argument("--source", action="store_true", help="measure the source tree even when built")
    arguments.add_argument("--importtime", choices=[case.name for case in CASES], default="send_message")
    args = arguments.parse_args()
    modes = list(MODES) if args.bytecode == "both" else [args.bytecode]
    code = harness.locate_code(args.source)

    with (
        harness.fake_twilio() as twilio,
        harness.moto_server() as aws,
        tempfile.TemporaryDirectory(prefix="bench-cold-") as scratch,
    ):
        env = harness.handler_environment(twilio.url, aws)
        print(
            f"Cold start: import + first request, fresh process, median of {args.iterations}; "
            f"Python {sys.version.split()[0]}; {code.label}"
        )
        print(
            "Reference: the same operation with the twilio SDK (webhook: its RequestValidator) and boto3 "
            "imported at module level"
        )
        for setup in setups(code, modes, Path(scratch)):
            rows = measure(setup, args.iterations, env, Path(scratch))
            print(f"\nbytecode: {setup.name}")
            headers = ["function", "import ms", "1st call ms", "total ms", "ref import", "ref total"]
            print(table([*headers, "import/ref", "total/ref"], rows))
        import_time_contributors(code, env, Path(scratch), args.importtime)


if __name__ == "__main__":
    main()
