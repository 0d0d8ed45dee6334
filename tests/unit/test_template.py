"""Invariants of template.yaml that matter in production, checked on the template itself.

These hold for every resource present now and every one added later: each check walks the template
instead of naming resources, so a new queue without a DLQ or a new function without tracing fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devtools.cfn_yaml import load_template

TEMPLATE = load_template()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
GLOBAL_FUNCTION: dict[str, Any] = TEMPLATE.get("Globals", {}).get("Function", {})


def resources_of(type_name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in RESOURCES.items():
        if resource["Type"] == type_name:
            yield logical_id, resource.get("Properties", {})


def function_property(props: dict[str, Any], name: str) -> Any:
    return props.get(name, GLOBAL_FUNCTION.get(name))


def ref_target(value: Any) -> str | None:
    """Logical id a Ref / GetAtt points at, if the value is one."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


FUNCTIONS = dict(resources_of("AWS::Serverless::Function"))
QUEUES = dict(resources_of("AWS::SQS::Queue"))
DLQ_IDS = {
    ref_target(props["RedrivePolicy"]["deadLetterTargetArn"])
    for props in QUEUES.values()
    if "RedrivePolicy" in props
}
# Queues that functions (failed async invocations) and schedules (undelivered events) use as their DLQ.
DLQ_IDS |= {
    ref_target(props["DeadLetterQueue"]["TargetArn"])
    for props in FUNCTIONS.values()
    if "DeadLetterQueue" in props
}
DLQ_IDS |= {
    ref_target(event["Properties"]["DeadLetterConfig"]["Arn"])
    for props in FUNCTIONS.values()
    for event in props.get("Events", {}).values()
    if "Arn" in event.get("Properties", {}).get("DeadLetterConfig", {})
}


def sqs_consumers(queue_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for function_id, props in FUNCTIONS.items():
        for event in props.get("Events", {}).values():
            if event["Type"] == "SQS" and ref_target(event["Properties"]["Queue"]) == queue_id:
                yield function_id, props


def test_runtime_is_python313_for_every_function() -> None:
    for function_id, props in FUNCTIONS.items():
        assert function_property(props, "Runtime") == "python3.13", function_id


@pytest.mark.parametrize("queue_id", sorted(QUEUES))
def test_every_queue_is_encrypted(queue_id: str) -> None:
    props = QUEUES[queue_id]
    assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props


@pytest.mark.parametrize("queue_id", sorted(QUEUES))
def test_every_queue_has_a_dead_letter_queue_or_is_one(queue_id: str) -> None:
    props = QUEUES[queue_id]
    if queue_id in DLQ_IDS:
        assert props.get("MessageRetentionPeriod") == 1209600, "DLQs keep messages the full 14 days"
    else:
        assert ref_target(props["RedrivePolicy"]["deadLetterTargetArn"]) in QUEUES


@pytest.mark.parametrize("queue_id", sorted(QUEUES))
def test_visibility_timeout_is_at_least_six_times_each_consumer_timeout(queue_id: str) -> None:
    visibility = QUEUES[queue_id].get("VisibilityTimeout", 30)
    for function_id, props in sqs_consumers(queue_id):
        timeout = function_property(props, "Timeout")
        assert visibility >= 6 * timeout, f"{queue_id} visibility {visibility}s vs {function_id} {timeout}s"


def test_every_function_has_the_shared_layer_tracing_and_a_retained_log_group() -> None:
    layers = {ref_target(v) for v in GLOBAL_FUNCTION.get("Layers", []) if ref_target(v)}
    layers |= {
        target
        for v in GLOBAL_FUNCTION.get("Layers", [])
        if isinstance(v, dict) and "Fn::If" in v
        for target in (ref_target(v["Fn::If"][1]), ref_target(v["Fn::If"][2]))
        if target
    }
    assert layers
    assert all(RESOURCES[layer]["Type"] == "AWS::Serverless::LayerVersion" for layer in layers)
    for function_id, props in FUNCTIONS.items():
        assert "Layers" not in props, f"{function_id} overrides the global layer list"
        assert function_property(props, "Tracing") == "Active", function_id
        log_group = ref_target(props.get("LoggingConfig", {}).get("LogGroup"))
        assert log_group, f"{function_id} has no explicit log group"
        assert RESOURCES[log_group]["Properties"].get("RetentionInDays"), f"{log_group} keeps logs forever"


def _statements(props: dict[str, Any]) -> Iterator[dict[str, Any]]:
    policies = props.get("Policies", [])
    for policy in policies if isinstance(policies, list) else [policies]:
        if isinstance(policy, dict) and "Statement" in policy:
            yield from policy["Statement"]


def test_no_inline_iam_wildcards_beyond_sam_policy_templates() -> None:
    for function_id, props in FUNCTIONS.items():
        for policy in props.get("Policies", []):
            assert not (isinstance(policy, str) and policy.endswith("FullAccess")), function_id
        for statement in _statements(props):
            actions = statement.get("Action", [])
            for action in actions if isinstance(actions, list) else [actions]:
                assert "*" not in str(action), f"{function_id}: wildcard action {action}"
            resources = statement.get("Resource", [])
            for resource in resources if isinstance(resources, list) else [resources]:
                assert resource != "*", f"{function_id}: wildcard resource"


def test_api_has_throttling() -> None:
    apis = dict(resources_of("AWS::Serverless::Api"))
    assert apis
    for api_id, props in apis.items():
        settings = props.get("MethodSettings", [])
        assert any("ThrottlingRateLimit" in s and "ThrottlingBurstLimit" in s for s in settings), api_id


def test_secrets_are_never_literal_in_the_template() -> None:
    for secret_id, props in resources_of("AWS::SecretsManager::Secret"):
        assert "SecretString" not in props, f"{secret_id} would put a secret value in the template"
