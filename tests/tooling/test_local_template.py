"""Reading template.yaml like CloudFormation/SAM: tags, conditions, globals, resolution, env-vars files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devtools.local.stack import DEFAULT_TEMPLATE, apply_env_vars
from devtools.local.template import NO_VALUE, TemplateError, load_template

REPO = Path(__file__).resolve().parents[2]


class FakeResolver:
    """Physical ids as a stack would give them: `ref:<id>` and `<id>.<attribute>`."""

    def ref(self, logical_id: str) -> Any:
        return f"ref:{logical_id}"

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return f"{logical_id}.{attribute}"


def test_short_tags_become_long_form_intrinsics():
    template = load_template(DEFAULT_TEMPLATE)
    queue = template.resources["OrdersQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["OrdersDeadLetterQueue", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "OrdersMaxReceiveCount"}


def test_webhook_function_environment_is_globals_plus_own_resolved():
    # Given the project's template with its defaults
    template = load_template(DEFAULT_TEMPLATE)
    # When the webhook function is resolved against a stack
    spec = template.function("WebhookIngressFunction", FakeResolver())
    # Then Globals and the function's own variables are merged, intrinsics resolved
    assert spec.environment["OFFERGRID_API_URL"] == "https://api.offergrid.io"
    assert spec.environment["POWERTOOLS_SERVICE_NAME"] == "webhook-ingress"
    assert spec.environment["ORDERS_QUEUE_URL"] == "ref:OrdersQueue"
    assert spec.environment["OFFERGRID_WEBHOOK_SECRET"] == "ref:OffergridWebhookSecret"
    assert spec.environment["SECRETS_CACHE_SECONDS"] == "300"
    assert spec.handler == "app.lambda_handler"
    assert spec.code_uri == REPO / "functions" / "webhook_ingress"
    assert spec.timeout == 10
    assert spec.memory_size == 256
    (api,) = spec.events_of_type("Api")
    assert api.properties["Path"] == "/webhooks/offergrid"
    assert api.properties["Method"] == "post"


def test_conditions_follow_parameters():
    # Given an existing webhook secret passed as a parameter
    template = load_template(DEFAULT_TEMPLATE).with_parameters(
        {"ExistingWebhookSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:given"}
    )
    # Then the stack does not create its own, and the function points at the given one
    assert not template.is_active("OffergridWebhookSecret")
    assert template.is_active("OffergridApiKeySecret")
    spec = template.function("WebhookIngressFunction", FakeResolver())
    assert spec.environment["OFFERGRID_WEBHOOK_SECRET"].endswith(":secret:given")


def test_no_value_removes_the_property():
    template = load_template(DEFAULT_TEMPLATE)
    properties = template.resolve(template.resources["WebhookIngressFunction"]["Properties"], FakeResolver())
    assert "ReservedConcurrentExecutions" not in properties
    assert "ProvisionedConcurrencyConfig" not in properties
    assert NO_VALUE not in properties.values()


def test_sub_with_pseudo_parameters_and_attributes():
    template = load_template(DEFAULT_TEMPLATE).with_parameters({"Environment": "prod"}, region="us-east-2")
    value = template.resolve(
        {"Fn::Sub": "${AWS::Region}/${Environment}/${OrdersQueue.Arn}/${!Literal}"}, FakeResolver()
    )
    assert value == "us-east-2/prod/OrdersQueue.Arn/${Literal}"


def test_unknown_parameter_and_bad_allowed_value_are_refused():
    template = load_template(DEFAULT_TEMPLATE)
    with pytest.raises(TemplateError, match="unknown template parameter"):
        template.with_parameters({"NoSuchParameter": "x"})
    with pytest.raises(TemplateError, match="Environment"):
        template.with_parameters({"Environment": "qa"})


def test_unknown_function_names_the_known_ones():
    template = load_template(DEFAULT_TEMPLATE)
    with pytest.raises(TemplateError, match="WebhookIngressFunction"):
        template.function("NoSuchFunction", FakeResolver())


# ---------------------------------------------------------------------------------------------------
# sam's env-vars file, and its trap
# ---------------------------------------------------------------------------------------------------
def test_env_vars_override_only_declared_variables():
    spec = load_template(DEFAULT_TEMPLATE).function("WebhookIngressFunction", FakeResolver())
    # Given a function-level override and global "Parameters"
    env_vars = {
        "Parameters": {"POWERTOOLS_LOG_LEVEL": "WARNING", "GLOBAL_ONLY": "x"},
        "WebhookIngressFunction": {"POWERTOOLS_LOG_LEVEL": "DEBUG", "NOT_IN_TEMPLATE": "y"},
        "OtherFunction": {"ORDERS_QUEUE_URL": "elsewhere"},
    }
    applied = apply_env_vars(spec, env_vars)
    # Then the function's own entry wins, other functions' entries do not apply,
    assert applied.environment["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert applied.environment["ORDERS_QUEUE_URL"] == "ref:OrdersQueue"
    # and undeclared variables are dropped (and reported), exactly as sam local invoke does
    assert "NOT_IN_TEMPLATE" not in applied.environment
    assert applied.ignored == ["GLOBAL_ONLY", "NOT_IN_TEMPLATE"]


def test_the_committed_env_json_falls_into_the_trap():
    # events/env.json sets variables the template does not declare: sam local invoke drops them.
    spec = load_template(DEFAULT_TEMPLATE).function("WebhookIngressFunction", FakeResolver())
    env_vars = json.loads((REPO / "events" / "env.json").read_text())
    applied = apply_env_vars(spec, env_vars)
    declared = set(spec.environment)
    assert set(applied.ignored) == set(env_vars.get("WebhookIngressFunction", {})) - declared
