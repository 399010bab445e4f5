"""What the local stack reads from template.yaml, through SAM CLI's own template providers (the
ones `sam local start-api` uses): the API's routes and stage, each function's code, handler,
layers, timeout and environment (Globals merged, parameters and intrinsics resolved), and the
DynamoDB tables, event buses, state machines and S3 buckets to create in moto. Nothing here is a
second list of routes."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway resource path, e.g. /messages/{sid}
    function: str  # logical id


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_dir: Path
    handler: str  # module.attribute, e.g. app.lambda_handler
    environment: dict[str, str]
    layer_dirs: tuple[Path, ...]
    timeout_seconds: int
    memory_mb: int

    @property
    def module_file(self) -> Path:
        return self.code_dir / (self.handler.rsplit(".", 1)[0].replace(".", "/") + ".py")

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass(frozen=True)
class Table:
    name: str
    key_schema: list[dict[str, str]]
    attribute_definitions: list[dict[str, str]]
    ttl_attribute: str | None
    indexes: list[dict[str, Any]] = field(default_factory=list)  # GlobalSecondaryIndexes as declared


@dataclass(frozen=True)
class StateMachine:
    logical_id: str
    name: str
    definition: str  # the Amazon States Language document, substitutions applied


@dataclass
class LocalTemplate:
    path: Path
    stage: str
    api: Any  # samcli.lib.providers.provider.Api: what SAM CLI's local API Gateway serves
    routes: list[Route]
    functions: dict[str, Function]
    tables: list[Table] = field(default_factory=list)
    event_buses: list[str] = field(default_factory=list)  # names the functions publish to, "default" included
    state_machines: list[StateMachine] = field(default_factory=list)
    buckets: list[str] = field(default_factory=list)  # logical ids of the S3 buckets

    def route(self, method: str, path: str) -> Route | None:
        return next((r for r in self.routes if r.method == method and r.path == path), None)

    def environment_values(self, name: str) -> set[str]:
        return {f.environment[name] for f in self.functions.values() if f.environment.get(name)}


def _table(logical_id: str, resource: dict[str, Any]) -> Table | None:
    properties = resource.get("Properties") or {}
    name = properties.get("TableName")
    name = name if isinstance(name, str) and name else logical_id  # SAM CLI resolves !Ref to the logical id
    if resource.get("Type") != "AWS::DynamoDB::Table":
        return None
    ttl = properties.get("TimeToLiveSpecification") or {}
    return Table(
        name,
        [dict(k) for k in properties.get("KeySchema") or []],
        [dict(a) for a in properties.get("AttributeDefinitions") or []],
        ttl.get("AttributeName") if ttl.get("Enabled") in (True, "true", "True") else None,
        [dict(index) for index in properties.get("GlobalSecondaryIndexes") or []],
    )


def load_template(
    path: Path = TEMPLATE, parameters: dict[str, str] | None = None, stack_name: str = "local"
) -> LocalTemplate:
    os.environ.setdefault("SAM_CLI_TELEMETRY", "0")
    from samcli.lib.providers.api_provider import ApiProvider
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    with warnings.catch_warnings():  # SAM CLI's translator uses deprecated jsonschema APIs
        warnings.simplefilter("ignore", DeprecationWarning)
        stacks, _ = SamLocalStackProvider.get_stacks(
            str(path),
            parameter_overrides=parameters or {},
            global_parameter_overrides={"AWS::StackName": stack_name, "AWS::Region": "us-east-1"},
        )
        # IAM (SigV4) and API key authorization are not emulated locally: no authorizers are read.
        api = ApiProvider(stacks, cwd=str(path.parent), disable_authorizer=True).api
    routes = sorted(
        (Route(method, r.path, r.function_name) for r in api.routes for method in r.methods),
        key=lambda r: (r.path, r.method),
    )
    functions: dict[str, Function] = {}
    for function in SamFunctionProvider(stacks).get_all():
        if function.packagetype != "Zip" or not function.codeuri or not function.handler:
            continue
        variables = (function.environment or {}).get("Variables") or {}
        functions[function.name] = Function(
            logical_id=function.name,
            code_dir=Path(function.codeuri),
            handler=function.handler,
            environment={k: "" if v is None else str(v) for k, v in variables.items()},
            layer_dirs=tuple(Path(layer.codeuri) for layer in function.layers if layer.codeuri),
            timeout_seconds=int(function.timeout or 3),
            memory_mb=int(function.memory or 128),
        )
    resources: dict[str, Any] = {}
    for stack in stacks:
        resources.update(stack.resources)
    tables = [t for logical_id, r in resources.items() if (t := _table(logical_id, r))]
    template = LocalTemplate(
        path=path, stage=api.stage_name or "prod", api=api, routes=routes, functions=functions, tables=tables
    )
    buses = {
        str((r.get("Properties") or {}).get("Name") or logical_id)
        for logical_id, r in resources.items()
        if r.get("Type") == "AWS::Events::EventBus"
    }
    template.event_buses = sorted(buses | (template.environment_values("EVENT_BUS_NAME") or {"default"}))
    template.state_machines = [
        machine for logical_id, r in resources.items() if (machine := _state_machine(path.parent, logical_id, r))
    ]
    template.buckets = sorted(logical_id for logical_id, r in resources.items() if r.get("Type") == "AWS::S3::Bucket")
    return template


def _state_machine(root: Path, logical_id: str, resource: dict[str, Any]) -> StateMachine | None:
    """A state machine of the template, its definition as the deployed one reads: SAM CLI has
    resolved the substitutions' intrinsics (a function's ARN names its logical id)."""
    if resource.get("Type") != "AWS::Serverless::StateMachine":
        return None
    properties = resource.get("Properties") or {}
    definition = (root / str(properties["DefinitionUri"])).read_text()
    for key, value in (properties.get("DefinitionSubstitutions") or {}).items():
        definition = definition.replace("${" + key + "}", str(value))
    name = properties.get("Name")
    return StateMachine(logical_id, name if isinstance(name, str) and name else logical_id, definition)
