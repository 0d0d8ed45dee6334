"""Create the stack's data resources in moto (server mode), read from `template.yaml` itself.

moto's CloudFormation cannot deploy this template (no `AWS::SQS::QueuePolicy` nor
`AWS::SecretsManager::Secret`, and an `AWS::Events::Rule` on a `!Ref`'d bus crashes it), so the
provisioner does what CloudFormation does: it walks the template's active resources in dependency
order, resolves their properties against the physical ids created so far and calls the service API
for each one it knows. Code and wiring resources (functions, layers, APIs, IAM, logs) are run by
the local runtime instead and are listed in `LocalStack.skipped`. No resource list is kept here:
a table or queue added to the template appears locally on the next start. Generated names are
deterministic (`physical_name`: `<stack>-<LogicalId>`), the same on every start.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import select
import socket
import string
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import boto3

from devtools.local.ports import LOCAL_PORTS, PortInUse, start_command
from devtools.local.template import ACCOUNT_ID, Template, TemplateError, references

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_secretsmanager.client import SecretsManagerClient
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_ssm.client import SSMClient

__all__ = [
    "LOCAL_CREDENTIALS",
    "LOCAL_SECRET_VALUES",
    "LocalStack",
    "MotoServer",
    "PhysicalResource",
    "StackResolver",
    "aws_client",
    "physical_name",
    "provision",
]

DEFAULT_REGION: Final = "eu-west-1"
LOCAL_CREDENTIALS: Final = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# Local development values, loaded into the secrets that these variables point at. Not secret.
LOCAL_SECRET_VALUES: Final = {
    "OFFERGRID_API_KEY_SECRET": "local-dev-api-key",
    "OFFERGRID_WEBHOOK_SECRET": "local-dev-webhook-secret",
}


def aws_client(service: str, endpoint_url: str, region: str = DEFAULT_REGION) -> Any:
    """A boto3 client for the local moto server (fake credentials, never a real account)."""
    return boto3.client(  # type: ignore[call-overload]
        service, endpoint_url=endpoint_url, region_name=region, **LOCAL_CREDENTIALS
    )


class MotoServer:
    """moto in server mode on 127.0.0.1 in a child process (`_moto.py`); port 0 = any free port.

    A child process, not a thread: moto keeps its state in module globals, which an in-process
    `mock_aws` (the unit tests) would share and reset, and its CPU work stays off our GIL.
    """

    def __init__(self, *, port: int = 0, startup_timeout: float = 60.0) -> None:
        self.port = port
        self.startup_timeout = startup_timeout
        self.endpoint_url = ""
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> MotoServer:
        self._process = subprocess.Popen(  # noqa: S603 - our interpreter, our module
            [sys.executable, "-m", "devtools.local._moto", str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
            # Ctrl-C goes to us only: we stop the children in order (they also exit when their pipe closes).
            start_new_session=True,
        )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], self.startup_timeout)
        line = self._process.stdout.readline().strip() if ready else ""
        if not line.startswith("http://"):
            self.stop()
            if line.startswith("in-use"):
                raise PortInUse(self.port, LOCAL_PORTS["aws"])
            raise RuntimeError(
                f"moto server did not start within {self.startup_timeout:g} s"
                + (" (it exited)" if ready else "")
            )
        self.endpoint_url = line
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


@dataclass
class PhysicalResource:
    type: str
    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class LocalStack:
    """Physical ids of the local stack, also written to `.local/stack.json` (never secret values)."""

    endpoint_url: str
    region: str
    stack_name: str
    parameters: dict[str, str]
    resources: dict[str, PhysicalResource] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    # How this stack was started (`make local`, `make local MOTO_PORT=5001`, or the `up` command line),
    # so a tool that finds it stopped says what to type; and where its functions log.
    start_command: str = "make local"
    log_dir: str | None = None

    def ref(self, logical_id: str) -> str:
        return self.resource(logical_id).ref

    def resource(self, logical_id: str) -> PhysicalResource:
        try:
            return self.resources[logical_id]
        except KeyError:
            raise KeyError(f"{logical_id} is not a provisioned resource of the local stack") from None

    def of_type(self, resource_type: str) -> dict[str, PhysicalResource]:
        return {lid: res for lid, res in self.resources.items() if res.type == resource_type}

    def queue_url_for_arn(self, arn: str) -> str:
        for res in self.of_type("AWS::SQS::Queue").values():
            if res.attributes.get("Arn") == arn:
                return res.ref
        raise KeyError(f"no local queue with ARN {arn}")

    def client(self, service: str) -> Any:
        return aws_client(service, self.endpoint_url, self.region)

    def resolver(self, template: Template) -> StackResolver:
        return StackResolver(self, template)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LocalStack:
        data = json.loads(text)
        resources = {lid: PhysicalResource(**res) for lid, res in data.pop("resources").items()}
        known = {f.name for f in fields(cls)}
        return cls(resources=resources, **{name: value for name, value in data.items() if name in known})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", encoding="utf-8")

    def not_answering(self, timeout: float = 1.0) -> list[str]:
        """The stack's local servers (moto, the Offergrid fake, the API) that accept no connection."""
        silent = []
        for name in ("aws", "offergrid", "api"):
            url = self.urls.get(name) or (self.endpoint_url if name == "aws" else None)
            if url is None:
                continue
            parts = urlsplit(url)
            try:
                socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout).close()
            except OSError:
                silent.append(f"{name} at {url}")
        return silent

    @classmethod
    def load(cls, path: Path, *, require_running: bool = True) -> LocalStack:
        """The stack `make local` wrote to `path`; refused when nothing answers at its endpoints any
        more (a stack stopped with Ctrl-C, or killed, leaves its file behind)."""
        if not path.exists():
            command = start_command({}, stack_file=path)
            raise LocalStackNotRunning(f"no local stack: {path} not found; start it with `{command}`")
        stack = cls.from_json(path.read_text(encoding="utf-8"))
        if require_running and (silent := stack.not_answering()):
            raise LocalStackNotRunning(
                f"the local stack in {path} is not running (nothing answers: {', '.join(silent)}); "
                f"start it with `{stack.start_command}`"
            )
        return stack


class LocalStackNotRunning(RuntimeError):
    """No running local stack behind the stack file; the message says the command that starts it."""


class StackResolver:
    """`Ref` / `Fn::GetAtt` against the local stack; code resources get stable placeholder values."""

    def __init__(self, stack: LocalStack, template: Template) -> None:
        self.stack = stack
        self.template = template

    def ref(self, logical_id: str) -> Any:
        if logical_id in self.stack.resources:
            return self.stack.resources[logical_id].ref
        self._check_known(logical_id)
        return logical_id  # like `sam local`: a function's name is its logical id

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self.stack.resources.get(logical_id)
        if resource is not None:
            if attribute not in resource.attributes:
                raise TemplateError(f"!GetAtt {logical_id}.{attribute} is not known locally")
            return resource.attributes[attribute]
        self._check_known(logical_id)
        return f"arn:aws:local:{self.stack.region}:{ACCOUNT_ID}:{logical_id}/{attribute}"

    def _check_known(self, logical_id: str) -> None:
        if logical_id not in self.template.resources:
            raise TemplateError(f"unknown resource {logical_id}")
        if logical_id not in self.stack.skipped and self.template.is_active(logical_id):
            raise TemplateError(f"{logical_id} is referenced before it was created")


# ---------------------------------------------------------------------------------------------------
# Provisioning
# ---------------------------------------------------------------------------------------------------
def provision(
    template: Template,
    endpoint_url: str,
    *,
    secret_values: Mapping[str, str] = LOCAL_SECRET_VALUES,
) -> LocalStack:
    """Create every data resource of `template` (already carrying its parameters) in moto."""
    stack = LocalStack(
        endpoint_url=endpoint_url,
        region=template.region,
        stack_name=template.stack_name,
        parameters=dict(template.parameters),
    )
    resolver = stack.resolver(template)
    active = dict(template.active_resources())
    for logical_id, resource in template.resources.items():
        if logical_id not in active:
            stack.skipped[logical_id] = "condition is false"
        elif resource.get("Type") not in _CREATORS:
            stack.skipped[logical_id] = f"{resource.get('Type')} runs locally or is not needed"
    # Only what is created here is ordered: a function (run locally) may name an alarm that names it
    # back (DeploymentPreference.Alarms), which SAM turns into a deployment group, not a cycle.
    created = {lid: res for lid, res in active.items() if str(res.get("Type")) in _CREATORS}
    for logical_id in _creation_order(created):
        resource = active[logical_id]
        creator = _CREATORS[str(resource.get("Type"))]
        properties = template.resolve(resource.get("Properties") or {}, resolver)
        stack.resources[logical_id] = creator(stack, logical_id, properties)
    load_secret_values(template, stack, secret_values)
    return stack


def load_secret_values(template: Template, stack: LocalStack, secret_values: Mapping[str, str]) -> list[str]:
    """Put the local development values into the secrets the functions' variables point at."""
    arns = {res.ref for res in stack.of_type("AWS::SecretsManager::Secret").values()}
    client: SecretsManagerClient = stack.client("secretsmanager")
    loaded: list[str] = []
    resolver = stack.resolver(template)
    for function_id in template.function_ids():
        environment = template.function(function_id, resolver).environment
        for variable, value in secret_values.items():
            secret_id = environment.get(variable)
            if secret_id in arns and secret_id not in loaded:
                client.put_secret_value(SecretId=secret_id, SecretString=value)
                loaded.append(secret_id)
    return loaded


def _creation_order(resources: Mapping[str, dict[str, Any]]) -> list[str]:
    order: list[str] = []
    visiting: set[str] = set()

    def visit(logical_id: str) -> None:
        if logical_id in order:
            return
        if logical_id in visiting:
            raise TemplateError(f"circular dependency through {logical_id}")
        visiting.add(logical_id)
        resource = resources[logical_id]
        depends = resource.get("DependsOn") or []
        needed = references(resource.get("Properties")) | set(
            [depends] if isinstance(depends, str) else depends
        )
        for dependency in sorted(needed & set(resources)):
            visit(dependency)
        visiting.discard(logical_id)
        order.append(logical_id)

    for logical_id in resources:
        visit(logical_id)
    return order


def physical_name(
    stack_name: str, logical_id: str, *, max_length: int = 80, lower: bool = False, prefix: str = ""
) -> str:
    """`<prefix><stack>-<LogicalId>`: CloudFormation's generated name without its random suffix.

    CloudFormation appends 12 random characters so that two stacks in one account never collide;
    locally every stack starts in a fresh moto server of its own, so the name can be deterministic:
    the same on every start, which lets `events/env.json` hold the exact names `make local` uses.
    """
    name = f"{prefix}{stack_name}-{logical_id}"[:max_length]
    return name.lower() if lower else name


def _physical_name(stack: LocalStack, logical_id: str, *, max_length: int = 80, lower: bool = False) -> str:
    return physical_name(stack.stack_name, logical_id, max_length=max_length, lower=lower)


def _arn(stack: LocalStack, service: str, resource: str) -> str:
    return f"arn:aws:{service}:{stack.region}:{ACCOUNT_ID}:{resource}"


_SQS_ATTRIBUTES: Final = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)


def _create_queue(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
    client: SQSClient = stack.client("sqs")
    fifo = str(props.get("FifoQueue", "false")).lower() == "true"
    name = props.get("QueueName") or _physical_name(stack, logical_id, max_length=75) + (
        ".fifo" if fifo else ""
    )
    attributes: dict[str, str] = {key: _attr_string(props[key]) for key in _SQS_ATTRIBUTES if key in props}
    for key in ("RedrivePolicy", "RedriveAllowPolicy"):
        if key in props:
            policy = dict(props[key])
            if "maxReceiveCount" in policy:
                policy["maxReceiveCount"] = int(policy["maxReceiveCount"])
            attributes[key] = json.dumps(policy)
    url = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return PhysicalResource("AWS::SQS::Queue", url, {"Arn": arn, "QueueName": name, "QueueUrl": url})


def _create_queue_policy(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
    client: SQSClient = stack.client("sqs")
    for url in props["Queues"]:
        client.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
    return PhysicalResource("AWS::SQS::QueuePolicy", f"{stack.stack_name}-{logical_id}")


def _create_secret(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
    client: SecretsManagerClient = stack.client("secretsmanager")
    name = props.get("Name") or _physical_name(stack, logical_id)
    # GenerateSecretString: a placeholder until `load_secret_values` puts the local value in.
    value = props.get("SecretString") or "".join(secrets.choice(string.ascii_letters) for _ in range(32))
    created = client.create_secret(
        Name=name, Description=str(props.get("Description", "")), SecretString=value
    )
    return PhysicalResource(
        "AWS::SecretsManager::Secret", created["ARN"], {"Id": created["ARN"], "Name": name}
    )


def _create_table(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
    client: DynamoDBClient = stack.client("dynamodb")
    name = props.get("TableName") or _physical_name(stack, logical_id, max_length=255)
    kwargs: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput"):
        if key in props:
            kwargs[key] = _numbers(props[key])
    if "StreamSpecification" in props:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    table = client.create_table(**kwargs)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and str(ttl.get("Enabled", "false")).lower() == "true":
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )
    attributes = {"Arn": table.get("TableArn", _arn(stack, "dynamodb", f"table/{name}"))}
    if "LatestStreamArn" in table:
        attributes["StreamArn"] = table["LatestStreamArn"]
    return PhysicalResource("AWS::DynamoDB::Table", name, attributes)


def _create_bucket(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
    client: S3Client = stack.client("s3")
    name = props.get("BucketName") or _physical_name(stack, logical_id, max_length=63, lower=True)
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": stack.region})  # type: ignore[typeddict-item]
    return PhysicalResource(
        "AWS::S3::Bucket",
        name,
        {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"},
    )


def _create_parameter(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
    client: SSMClient = stack.client("ssm")
    name = props.get("Name") or physical_name(stack.stack_name, logical_id, prefix="CFN-")
    client.put_parameter(
        Name=name,
        Value=str(props["Value"]),
        Type=props.get("Type", "String"),
        Description=str(props.get("Description", "")),
        Overwrite=True,
    )
    return PhysicalResource("AWS::SSM::Parameter", name, {"Type": props.get("Type", "String"), "Value": ""})


def _create_event_bus(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
    client: EventBridgeClient = stack.client("events")
    arn = client.create_event_bus(Name=props["Name"])["EventBusArn"]
    return PhysicalResource("AWS::Events::EventBus", props["Name"], {"Arn": arn, "Name": props["Name"]})


def _create_rule(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
    client: EventBridgeClient = stack.client("events")
    name = props.get("Name") or _physical_name(stack, logical_id, max_length=64)
    bus = str(props.get("EventBusName", "default")).rsplit("/", 1)[-1]
    kwargs: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
    if "EventPattern" in props:
        pattern = props["EventPattern"]
        kwargs["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
    if "ScheduleExpression" in props:
        kwargs["ScheduleExpression"] = props["ScheduleExpression"]
    arn = client.put_rule(**kwargs)["RuleArn"]
    targets = [
        {key: value for key, value in target.items() if key in _TARGET_KEYS}
        for target in props.get("Targets", [])
    ]
    if targets:
        client.put_targets(Rule=name, EventBusName=bus, Targets=_numbers(targets))
    ref = name if bus == "default" else f"{bus}|{name}"
    return PhysicalResource("AWS::Events::Rule", ref, {"Arn": arn})


def _create_archive(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
    """An EventBridge archive (moto keeps the events put on its bus; nothing locally replays them)."""
    client: EventBridgeClient = stack.client("events")
    name = props.get("ArchiveName") or _physical_name(stack, logical_id, max_length=48)
    kwargs: dict[str, Any] = {"ArchiveName": name, "EventSourceArn": props["SourceArn"]}
    if "Description" in props:
        kwargs["Description"] = str(props["Description"])
    if "RetentionDays" in props:
        kwargs["RetentionDays"] = int(props["RetentionDays"])
    if "EventPattern" in props:
        pattern = props["EventPattern"]
        kwargs["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
    arn = client.create_archive(**kwargs)["ArchiveArn"]
    return PhysicalResource("AWS::Events::Archive", name, {"Arn": arn, "ArchiveName": name})


_ALARM_KEYS: Final = (
    "AlarmDescription",
    "ActionsEnabled",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
)


def _metric_query(query: dict[str, Any]) -> dict[str, Any]:
    """One `Metrics` entry of an alarm with CloudFormation's strings as the types boto3 wants."""
    converted = dict(query)
    if "ReturnData" in converted:
        converted["ReturnData"] = str(converted["ReturnData"]).lower() == "true"
    if "Period" in converted:
        converted["Period"] = int(converted["Period"])
    if "MetricStat" in converted:
        converted["MetricStat"] = {
            **converted["MetricStat"],
            "Period": int(converted["MetricStat"]["Period"]),
        }
    return converted


def _create_alarm(stack: LocalStack, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
    """The alarm in moto's CloudWatch, so a tool asks for the stack's alarms the way it does in AWS.
    It never fires locally (moto evaluates nothing), and its actions name resources that run locally."""
    client = stack.client("cloudwatch")
    name = props.get("AlarmName") or _physical_name(stack, logical_id, max_length=255)
    kwargs: dict[str, Any] = {key: props[key] for key in _ALARM_KEYS if key in props}
    # CloudFormation passes numbers as strings; dimension values stay strings (a Status of "429").
    for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if key in kwargs:
            kwargs[key] = int(kwargs[key])
    if "Threshold" in kwargs:
        kwargs["Threshold"] = float(kwargs["Threshold"])
    if "ActionsEnabled" in kwargs:
        kwargs["ActionsEnabled"] = str(kwargs["ActionsEnabled"]).lower() == "true"
    if "Metrics" in kwargs:
        kwargs["Metrics"] = [_metric_query(query) for query in kwargs["Metrics"]]
    client.put_metric_alarm(AlarmName=name, **kwargs)
    arn = _arn(stack, "cloudwatch", f"alarm:{name}")
    return PhysicalResource("AWS::CloudWatch::Alarm", name, {"Arn": arn})


_TARGET_KEYS: Final = frozenset(
    {
        "Id",
        "Arn",
        "Input",
        "InputPath",
        "InputTransformer",
        "SqsParameters",
        "RetryPolicy",
        "DeadLetterConfig",
    }
)

_CREATORS: Final[dict[str, Callable[[LocalStack, str, dict[str, Any]], PhysicalResource]]] = {
    "AWS::SQS::Queue": _create_queue,
    "AWS::SQS::QueuePolicy": _create_queue_policy,
    "AWS::SecretsManager::Secret": _create_secret,
    "AWS::DynamoDB::Table": _create_table,
    "AWS::S3::Bucket": _create_bucket,
    "AWS::SSM::Parameter": _create_parameter,
    "AWS::Events::EventBus": _create_event_bus,
    "AWS::Events::Rule": _create_rule,
    "AWS::Events::Archive": _create_archive,
    "AWS::CloudWatch::Alarm": _create_alarm,
}


def _attr_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _numbers(node: Any) -> Any:
    """CloudFormation passes numbers as strings; boto3 wants ints where its model says integer."""
    if isinstance(node, list):
        return [_numbers(item) for item in node]
    if isinstance(node, dict):
        return {
            key: int(value) if isinstance(value, str) and value.isdigit() and key != "Id" else _numbers(value)
            for key, value in node.items()
        }
    return node


def supported_types() -> list[str]:
    return sorted(_CREATORS)
