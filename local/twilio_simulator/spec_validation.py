"""Requests checked against Twilio's own OpenAPI description of its 2010 API
(`local/spec/twilio_api_v2010.json`), with `openapi-schema-validator`'s `OAS30Validator` and its
format checker doing every schema check.

What is ours is only the thin layer OpenAPI leaves to a server: routing (each path template a
regular expression), decoding (the query string and the form body parsed with repeated keys kept,
each value cast to its declared type, a repeated key such as `MediaUrl` an array) and reporting
what the description does not declare (an unknown form field or query parameter). The description
is read once per process, on first use; after that a request costs a fraction of a millisecond
(docs/local-twilio.md gives the measurements).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, unquote

from local.prism import SPEC

if TYPE_CHECKING:
    from openapi_schema_validator import OAS30Validator

FORM = "application/x-www-form-urlencoded"
METHODS = ("get", "post", "put", "delete", "patch")
ProblemKind = Literal["required", "unknown", "type", "invalid", "content_type"]
Location = Literal["path", "query", "body"]


@dataclass(frozen=True)
class Problem:
    location: Location
    name: str  # the parameter or form field; "" for the body as a whole
    kind: ProblemKind
    message: str

    def __str__(self) -> str:
        where = f"{self.location} parameter {self.name!r}" if self.name else self.location
        return f"{where}: {self.message}"

    def as_json(self) -> dict[str, str]:
        return {"location": self.location, "name": self.name, "kind": self.kind, "message": self.message}


@dataclass(frozen=True)
class Parameter:
    location: str
    name: str
    required: bool
    schema: dict[str, Any]


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    template: str
    operation_id: str
    regex: re.Pattern[str]
    parameters: dict[tuple[str, str], Parameter]
    form_schema: Mapping[str, Any] | None  # the form body's schema, $ref resolved
    body_required: bool

    @property
    def form_fields(self) -> Mapping[str, Any]:
        return (self.form_schema or {}).get("properties", {})


@dataclass
class Checked:
    """A request routed and decoded: typed values, and what the description says is wrong."""

    operation: Operation
    path_params: dict[str, str]
    query: dict[str, Any] = field(default_factory=dict)
    form: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


class SpecValidator:
    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.components: Mapping[str, Any] = spec.get("components", {})
        self._validators: dict[int, OAS30Validator] = {}
        self._by_length: dict[int, list[Operation]] = {}
        for template, item in spec["paths"].items():
            for operation in self._operations(template, item):
                self._by_length.setdefault(template.count("/"), []).append(operation)
        # Longest literal text first, so that a literal segment wins over a {Sid} one.
        for operations in self._by_length.values():
            operations.sort(key=lambda o: -len(re.sub(r"\{\w+\}", "", o.template)))
        self.load_seconds = 0.0

    @classmethod
    def load(cls, path: Path = SPEC) -> SpecValidator:
        started = time.perf_counter()
        _openapi_schema_validator()
        validator = cls(json.loads(path.read_bytes()))
        validator.load_seconds = time.perf_counter() - started
        return validator

    def operation_count(self) -> int:
        return sum(len(operations) for operations in self._by_length.values())

    def _operations(self, template: str, item: Mapping[str, Any]) -> Iterable[Operation]:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        regex = re.compile(f"^{pattern}$")
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            declared = [*item.get("parameters", []), *op.get("parameters", [])]
            parameters = {
                (p["in"], p["name"]): Parameter(p["in"], p["name"], bool(p.get("required")), p.get("schema", {}))
                for p in declared
            }
            body = op.get("requestBody") or {}
            form = (body.get("content") or {}).get(FORM)
            form_schema = self.resolve(form.get("schema", {})) if form else None
            yield Operation(
                method.upper(),
                template,
                op.get("operationId", f"{method} {template}"),
                regex,
                parameters,
                form_schema,
                bool(body.get("required")),
            )

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        """The schema a `$ref` names: the description's own object, never a copy (validators
        are cached by the object's identity)."""
        while "$ref" in schema:
            schema = self.components["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def route(self, method: str, path: str) -> tuple[Operation | None, dict[str, str], list[str]]:
        """The operation for `method` on `path` and its path parameters; without one, the
        methods the path allows (none: an unknown path)."""
        allowed: list[str] = []
        for operation in self._by_length.get(path.count("/"), ()):
            match = operation.regex.match(path)
            if not match:
                continue
            if operation.method == method.upper():
                return operation, {k: unquote(v) for k, v in match.groupdict().items()}, []
            allowed.append(operation.method)
        return None, {}, allowed

    def check(self, operation: Operation, path_params: dict[str, str], query: str, body: bytes, ctype: str) -> Checked:
        checked = Checked(operation, path_params)
        pairs = parse_qsl(query, keep_blank_values=True)
        checked.query = self._parameters(operation, path_params, _multidict(pairs), checked.problems)
        if operation.form_schema is not None:
            checked.form = self._form(operation, body, ctype, checked.problems)
        elif body.strip():
            checked.problems.append(Problem("body", "", "content_type", "this operation takes no request body"))
        return checked

    def _parameters(
        self, operation: Operation, path_params: dict[str, str], query: dict[str, list[str]], problems: list[Problem]
    ) -> dict[str, Any]:
        typed: dict[str, Any] = {}
        for name in query:
            if ("query", name) not in operation.parameters:
                problems.append(Problem("query", name, "unknown", "is not a parameter of this operation"))
        for (location, name), parameter in operation.parameters.items():
            where: Location
            if location == "path":
                where, values = "path", [path_params[name]] if name in path_params else []
            elif location == "query":
                where, values = "query", query.get(name, [])
            else:
                continue  # header and cookie parameters: none that the messaging resources declare
            if not values:
                if parameter.required:
                    problems.append(Problem(where, name, "required", "is required"))
                continue
            value = self._cast(parameter.schema, values, where, name, problems)
            self._validate(parameter.schema, value, where, name, problems)
            if where == "query":
                typed[name] = value
        return typed

    def _form(self, operation: Operation, body: bytes, ctype: str, problems: list[Problem]) -> dict[str, Any]:
        media_type = ctype.split(";", 1)[0].strip().lower()
        if body.strip() and media_type != FORM:
            problems.append(Problem("body", "", "content_type", f"must be {FORM}, not {media_type or 'untyped'}"))
            body = b""
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            problems.append(Problem("body", "", "invalid", "is not UTF-8"))
            pairs = []
        properties = operation.form_fields
        typed: dict[str, Any] = {}
        for name, values in _multidict(pairs).items():
            if name not in properties:
                problems.append(Problem("body", name, "unknown", "is not a parameter of this operation"))
                continue
            typed[name] = self._cast(properties[name], values, "body", name, problems)
        # Checked even when empty: a Create Message without a form (or with JSON) lacks its `To`.
        self._validate_body(operation.form_schema or {}, typed, problems)
        return typed

    def _cast(
        self, schema: Mapping[str, Any], values: list[str], location: Location, name: str, problems: list[Problem]
    ) -> Any:
        """A form or query value as its declared type; a value that is not one is kept as it is
        and reported (the schema check then reports nothing more for it)."""
        schema = self.resolve(schema)
        kind = schema.get("type")
        if kind == "array":
            return [self._cast(schema.get("items", {}), [value], location, name, problems) for value in values]
        if len(values) > 1:
            problems.append(Problem(location, name, "invalid", "is repeated, and is not an array"))
        value = values[-1]
        try:
            if kind == "integer":
                return int(value)
            if kind == "number":
                return float(value)
        except ValueError:
            problems.append(Problem(location, name, "type", f"{value!r} is not of type {kind}"))
            return None
        if kind == "boolean":
            if value.lower() in ("true", "false"):
                return value.lower() == "true"
            problems.append(Problem(location, name, "type", f"{value!r} is not of type boolean"))
            return None
        return value

    def _validate(
        self, schema: Mapping[str, Any], value: Any, location: Location, name: str, problems: list[Problem]
    ) -> None:
        if value is None or (isinstance(value, list) and None in value):
            return  # already reported as a type problem
        for error in self._validator(schema).iter_errors(value):
            problems.append(Problem(location, name, "invalid", error.message))

    def _validate_body(self, schema: Mapping[str, Any], form: dict[str, Any], problems: list[Problem]) -> None:
        valid = {k: v for k, v in form.items() if v is not None and not (isinstance(v, list) and None in v)}
        missing: set[str] = set()
        for error in self._validator(schema).iter_errors(valid):
            if error.validator == "required":
                # One error per missing name, each holding the whole list: report each name once.
                for name in error.validator_value:
                    if name not in form and name not in missing:
                        missing.add(name)
                        problems.append(Problem("body", name, "required", "is required"))
                continue
            path = list(error.absolute_path)
            name = str(path[0]) if path else ""
            problems.append(Problem("body", name, "invalid", error.message))

    def _validator(self, schema: Mapping[str, Any]) -> OAS30Validator:
        validator = self._validators.get(id(schema))
        if validator is None:
            validator_class, format_checker = _openapi_schema_validator()
            # The wrapper is the root document, so that "#/components/schemas/…" resolves in it.
            root = {"allOf": [schema], "components": self.components}
            validator = validator_class(root, format_checker=format_checker)
            self._validators[id(schema)] = validator
        return validator


def _openapi_schema_validator() -> tuple[type[OAS30Validator], Any]:
    """Imported with the description, not with this module: half a second that the command
    line's other commands do without."""
    from openapi_schema_validator import OAS30Validator, oas30_format_checker

    return OAS30Validator, oas30_format_checker


def _multidict(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    return values


_loading = threading.Lock()
_loaded: dict[Path, SpecValidator] = {}


def spec_validator(path: Path = SPEC) -> SpecValidator:
    """The validator for `path`, read once per process (every simulator of a test run shares it)."""
    with _loading:
        validator = _loaded.get(path)
        if validator is None:
            validator = _loaded[path] = SpecValidator.load(path)
        return validator
