"""Read `template.yaml` the way CloudFormation and SAM do, for the local stack.

- `load_template(path)` parses YAML with the CloudFormation short tags (`!Ref`, `!GetAtt`, `!Sub`,
  `!If`, ...) turned into their long JSON forms (`{"Ref": ...}`, `{"Fn::GetAtt": [...]}`).
- `Template` evaluates `Conditions` against parameter values and resolves intrinsic functions
  against the physical ids of a stack (a `Resolver`), so a function's environment holds the local
  stack's queue URLs and secret ARNs, exactly as CloudFormation would fill them in.
- `Template.function(logical_id, resolver)` merges `Globals.Function` into an
  `AWS::Serverless::Function` the way SAM does and returns a `FunctionSpec`.

Nothing here knows which resources this project has: everything is read from the template.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import yaml

from devtools.cfn_yaml import CfnLoader

__all__ = [
    "ACCOUNT_ID",
    "NO_VALUE",
    "EventSource",
    "FunctionSpec",
    "Resolver",
    "Template",
    "TemplateError",
    "load_template",
]

ACCOUNT_ID: Final = "123456789012"
SERVERLESS_FUNCTION: Final = "AWS::Serverless::Function"


class TemplateError(Exception):
    """The template uses something the local stack cannot evaluate, or names an unknown resource."""


class _NoValue:
    """`!Ref AWS::NoValue`: the property is removed, as CloudFormation does."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Final = _NoValue()


def load_template(path: str | Path, *, root: Path | None = None) -> Template:
    """Parse `path`; `CodeUri`s are relative to `root` (default: the template's folder, as in SAM)."""
    text = Path(path).read_text(encoding="utf-8")
    document = yaml.load(text, Loader=CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources)")
    return Template(document, path=Path(path), root=root)


# ---------------------------------------------------------------------------------------------------
# Resolution of intrinsic functions
# ---------------------------------------------------------------------------------------------------
class Resolver(Protocol):
    """Physical values of the stack's resources (what `Ref` and `Fn::GetAtt` return)."""

    def ref(self, logical_id: str) -> Any: ...

    def get_att(self, logical_id: str, attribute: str) -> Any: ...


@dataclass(frozen=True)
class EventSource:
    """One entry of a function's `Events` (properties resolved)."""

    name: str
    type: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class FunctionSpec:
    """An `AWS::Serverless::Function` with `Globals.Function` merged in, resolved for one stack."""

    logical_id: str
    handler: str
    code_uri: Path
    runtime: str
    timeout: float
    memory_size: int
    environment: dict[str, str]
    events: list[EventSource] = field(default_factory=list)
    architectures: list[str] = field(default_factory=list)

    @property
    def declared_variables(self) -> frozenset[str]:
        return frozenset(self.environment)

    def events_of_type(self, *types: str) -> list[EventSource]:
        return [event for event in self.events if event.type in types]


_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


class Template:
    def __init__(
        self,
        document: dict[str, Any],
        *,
        path: Path | None = None,
        root: Path | None = None,
        parameters: Mapping[str, str] | None = None,
        region: str = "eu-west-1",
        stack_name: str = "local",
    ) -> None:
        self.document = document
        self.path = path
        self.root = root or (path.parent if path is not None else Path.cwd())
        self.region = region
        self.stack_name = stack_name
        self.parameters = self._parameter_values(parameters or {})
        self._conditions: dict[str, bool] = {}

    def with_parameters(
        self, parameters: Mapping[str, str], *, region: str | None = None, stack_name: str | None = None
    ) -> Template:
        return Template(
            self.document,
            path=self.path,
            root=self.root,
            parameters=parameters,
            region=region or self.region,
            stack_name=stack_name or self.stack_name,
        )

    # -- sections ---------------------------------------------------------------------------------
    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.document["Resources"]
        return resources

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        outputs: dict[str, dict[str, Any]] = self.document.get("Outputs") or {}
        return outputs

    def _parameter_values(self, overrides: Mapping[str, str]) -> dict[str, str]:
        declared: dict[str, dict[str, Any]] = self.document.get("Parameters") or {}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(f"unknown template parameter(s): {', '.join(unknown)}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            if name in overrides:
                values[name] = str(overrides[name])
            elif "Default" in spec:
                default = spec["Default"]
                values[name] = ",".join(map(str, default)) if isinstance(default, list) else str(default)
            else:
                raise TemplateError(f"template parameter {name} has no default: give a value")
            allowed = spec.get("AllowedValues")
            if allowed is not None and values[name] not in {str(a) for a in allowed}:
                raise TemplateError(f"parameter {name}={values[name]!r} is not one of {allowed}")
        return values

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions: dict[str, Any] = self.document.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self._evaluate_condition(conditions[name]))
        return self._conditions[name]

    def _evaluate_condition(self, node: Any) -> Any:
        return self.resolve(node, _ParametersOnly())

    def is_active(self, logical_id: str) -> bool:
        """False when the resource's `Condition` is false (CloudFormation does not create it)."""
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(str(condition))

    def active_resources(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if self.is_active(logical_id):
                yield logical_id, resource

    def function_ids(self) -> list[str]:
        return [lid for lid, res in self.active_resources() if res.get("Type") == SERVERLESS_FUNCTION]

    # -- intrinsic functions ----------------------------------------------------------------------
    def pseudo_parameter(self, name: str) -> Any:
        match name:
            case "AWS::Region":
                return self.region
            case "AWS::AccountId":
                return ACCOUNT_ID
            case "AWS::StackName":
                return self.stack_name
            case "AWS::StackId":
                return f"arn:aws:cloudformation:{self.region}:{ACCOUNT_ID}:stack/{self.stack_name}/local"
            case "AWS::Partition":
                return "aws"
            case "AWS::URLSuffix":
                return "amazonaws.com"
            case "AWS::NoValue":
                return NO_VALUE
            case "AWS::NotificationARNs":
                return []
        raise TemplateError(f"unknown pseudo parameter {name}")

    def _ref(self, name: str, resolver: Resolver) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo_parameter(name)
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            return resolver.ref(name)
        generated = self._generated_ref(name, resolver)
        if generated is not None:
            return generated
        raise TemplateError(f"!Ref to unknown name {name}")

    def _generated_ref(self, name: str, resolver: Resolver) -> str | None:
        """SAM's `!Ref <Function>.Version` / `.Alias` of a function with `AutoPublishAlias`: the ARN
        of the version a deploy published / of the alias. Locally a function has one version, the code
        on disk (`$LATEST`), which its alias names too."""
        function_id, _, member = name.partition(".")
        resource = self.resources.get(function_id) or {}
        if member not in ("Version", "Alias") or resource.get("Type") != SERVERLESS_FUNCTION:
            return None
        globals_: dict[str, Any] = (self.document.get("Globals") or {}).get("Function") or {}
        alias = (resource.get("Properties") or {}).get("AutoPublishAlias", globals_.get("AutoPublishAlias"))
        if alias is None:
            return None
        arn = f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{resolver.ref(function_id)}"
        return f"{arn}:{self.resolve(alias, resolver)}" if member == "Alias" else f"{arn}:$LATEST"

    def resolve(self, node: Any, resolver: Resolver) -> Any:
        """`node` with every intrinsic function evaluated and `AWS::NoValue` properties removed."""
        if isinstance(node, list):
            items = [self.resolve(item, resolver) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            handler = _INTRINSICS.get(key)
            if handler is not None:
                return handler(self, arg, resolver)
        resolved = {key: self.resolve(value, resolver) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def _sub(self, arg: Any, resolver: Resolver) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        else:
            text, raw_vars = arg
            variables = {name: self.resolve(value, resolver) for name, value in raw_vars.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                resource, _, attribute = name.partition(".")
                return str(resolver.get_att(resource, attribute))
            return str(self._ref(name, resolver))

        return _SUB_VAR.sub(substitute, text).replace("${!", "${")

    # -- functions --------------------------------------------------------------------------------
    def function(self, logical_id: str, resolver: Resolver) -> FunctionSpec:
        resource = self.resources.get(logical_id)
        if resource is None or resource.get("Type") != SERVERLESS_FUNCTION:
            known = ", ".join(self.function_ids()) or "none"
            raise TemplateError(f"{logical_id} is not a function of the template (functions: {known})")
        globals_: dict[str, Any] = (self.document.get("Globals") or {}).get("Function") or {}
        own: dict[str, Any] = resource.get("Properties") or {}
        merged: dict[str, Any] = {**globals_, **own}
        variables: dict[str, Any] = {
            **((globals_.get("Environment") or {}).get("Variables") or {}),
            **((own.get("Environment") or {}).get("Variables") or {}),
        }
        resolved_vars = self.resolve(variables, resolver)
        environment = {name: _env_string(value) for name, value in resolved_vars.items()}
        events = [
            EventSource(
                name=name,
                type=str(event.get("Type")),
                properties=self.resolve(event.get("Properties") or {}, resolver),
            )
            for name, event in (own.get("Events") or {}).items()
        ]
        code_uri = self.resolve(merged.get("CodeUri", "."), resolver)
        if not isinstance(code_uri, str):
            raise TemplateError(f"{logical_id}: only a local CodeUri folder can run locally")
        return FunctionSpec(
            logical_id=logical_id,
            handler=str(self.resolve(merged.get("Handler"), resolver)),
            code_uri=(self.root / code_uri).resolve(),
            runtime=str(self.resolve(merged.get("Runtime", ""), resolver)),
            timeout=float(self.resolve(merged.get("Timeout", 3), resolver)),
            memory_size=int(self.resolve(merged.get("MemorySize", 128), resolver)),
            environment=environment,
            events=events,
            architectures=[str(a) for a in self.resolve(merged.get("Architectures", ["x86_64"]), resolver)],
        )


def _env_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


class _ParametersOnly:
    """Conditions may only use parameters and other conditions."""

    def ref(self, logical_id: str) -> Any:
        raise TemplateError(f"a condition refers to resource {logical_id}")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        raise TemplateError(f"a condition refers to resource {logical_id}")


def _fn_if(template: Template, arg: Any, resolver: Resolver) -> Any:
    name, when_true, when_false = arg
    return template.resolve(when_true if template.condition(name) else when_false, resolver)


def _fn_equals(template: Template, arg: Any, resolver: Resolver) -> bool:
    left, right = (template.resolve(value, resolver) for value in arg)
    return str(left) == str(right)


def _fn_get_att(template: Template, arg: Any, resolver: Resolver) -> Any:
    if isinstance(arg, str):
        arg = arg.split(".", 1)
    resource, attribute = (str(template.resolve(part, resolver)) for part in arg)
    if resource not in template.resources:
        raise TemplateError(f"!GetAtt on unknown resource {resource}")
    return resolver.get_att(resource, attribute)


def _fn_select(template: Template, arg: Any, resolver: Resolver) -> Any:
    index, values = (template.resolve(value, resolver) for value in arg)
    return values[int(index)]


def _fn_find_in_map(template: Template, arg: Any, resolver: Resolver) -> Any:
    name, top, second = (template.resolve(value, resolver) for value in arg)
    return template.document["Mappings"][name][top][second]


_INTRINSICS: Final[dict[str, Callable[[Template, Any, Resolver], Any]]] = {
    "Ref": lambda t, arg, r: t._ref(str(arg), r),
    "Condition": lambda t, arg, r: t.condition(str(arg)),
    "Fn::GetAtt": _fn_get_att,
    "Fn::Sub": lambda t, arg, r: t._sub(arg, r),
    "Fn::If": _fn_if,
    "Fn::Equals": _fn_equals,
    "Fn::Not": lambda t, arg, r: not t.resolve(arg[0], r),
    "Fn::And": lambda t, arg, r: all(t.resolve(value, r) for value in arg),
    "Fn::Or": lambda t, arg, r: any(t.resolve(value, r) for value in arg),
    "Fn::Join": lambda t, arg, r: str(arg[0]).join(str(v) for v in t.resolve(arg[1], r)),
    "Fn::Split": lambda t, arg, r: str(t.resolve(arg[1], r)).split(str(arg[0])),
    "Fn::Select": _fn_select,
    "Fn::FindInMap": _fn_find_in_map,
    "Fn::Base64": lambda t, arg, r: base64.b64encode(str(t.resolve(arg, r)).encode()).decode(),
    "Fn::GetAZs": lambda t, arg, r: [f"{t.region}a", f"{t.region}b", f"{t.region}c"],
    "Fn::ToJsonString": lambda t, arg, r: json.dumps(t.resolve(arg, r)),
}


def references(node: Any) -> set[str]:
    """Logical ids / parameter names a (raw) template fragment refers to, for dependency ordering."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                parts = value.split(".", 1) if isinstance(value, str) else value
                if isinstance(parts[0], str):
                    found.add(parts[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                for match in _SUB_VAR.finditer(str(text)):
                    found.add(match.group(1).split(".", 1)[0].strip())
                if not isinstance(value, str):
                    found |= references(value[1])
            else:
                found |= references(value)
    return found
