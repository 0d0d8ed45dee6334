"""The local stack's Lambda Invoke API and CodeDeploy hook status (devtools/local/lambda_api.py), and SAM's
`<Function>.Version` / `.Alias` references in the local template (issue 24), through boto3 as a function
or a tool calls them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devtools.local.lambda_api import LocalLambdaApi, function_id_of
from devtools.local.runtime import InvokeResult
from devtools.local.template import Template, TemplateError

ARN = "arn:aws:lambda:eu-west-1:123456789012:function"


@pytest.mark.parametrize(
    "name",
    ["Fn", "Fn:live", "Fn:$LATEST", "123456789012:function:Fn", f"{ARN}:Fn", f"{ARN}:Fn:7", f"{ARN}:Fn:live"],
)
def test_every_form_of_a_function_name_names_the_function(name: str) -> None:
    assert function_id_of(name) == "Fn"


@pytest.fixture
def api() -> Iterator[tuple[LocalLambdaApi, list[tuple[str, Any]]]]:
    invoked: list[tuple[str, Any]] = []

    def invoke(function_id: str, event: Any) -> InvokeResult:
        invoked.append((function_id, event))
        if event.get("fail"):
            return InvokeResult("r-1", 0.0, error={"errorType": "ValueError", "errorMessage": "no"})
        return InvokeResult("r-1", 0.0, result={"echo": event})

    server = LocalLambdaApi(invoke=invoke, known=lambda: ["Fn"]).start()
    try:
        yield server, invoked
    finally:
        server.stop()


def _client(service: str, server: LocalLambdaApi) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=server.base_url,
        region_name="eu-west-1",
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )


def test_invoke_answers_as_lambda_does(api: tuple[LocalLambdaApi, list[tuple[str, Any]]]) -> None:
    server, invoked = api
    client = _client("lambda", server)
    answer = client.invoke(FunctionName=f"{ARN}:Fn:3", Payload=json.dumps({"a": 1}).encode())
    assert json.loads(answer["Payload"].read()) == {"echo": {"a": 1}}
    assert "FunctionError" not in answer
    failed = client.invoke(FunctionName="Fn", Qualifier="live", Payload=b'{"fail": true}')
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == "ValueError"
    assert invoked == [("Fn", {"a": 1}), ("Fn", {"fail": True})]


def test_an_unknown_function_is_resource_not_found(api: tuple[LocalLambdaApi, list[tuple[str, Any]]]) -> None:
    server, invoked = api
    with pytest.raises(ClientError) as raised:
        _client("lambda", server).invoke(FunctionName="Nope", Payload=b"{}")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert invoked == []


def test_hook_statuses_are_recorded_per_deployment(api: tuple[LocalLambdaApi, list[tuple[str, Any]]]) -> None:
    server, _ = api
    codedeploy = _client("codedeploy", server)
    answer = codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId="d-1", lifecycleEventHookExecutionId="h-1", status="Succeeded"
    )
    assert answer["lifecycleEventHookExecutionId"] == "h-1"
    assert server.hook_status("d-1") == "Succeeded"
    assert server.hook_status("d-2") is None
    with pytest.raises(ClientError):
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId="d-1", lifecycleEventHookExecutionId="h-2", status="Pending"
        )
    assert server.hook_statuses == {"d-1": [("h-1", "Succeeded")]}


class _Functions:
    def ref(self, logical_id: str) -> Any:
        return logical_id

    def get_att(self, logical_id: str, attribute: str) -> Any:
        raise KeyError(logical_id)


def test_version_and_alias_of_an_auto_published_function_resolve_locally() -> None:
    template = Template(
        {
            "Resources": {
                "Fn": {"Type": "AWS::Serverless::Function", "Properties": {"AutoPublishAlias": "live"}},
                "Plain": {"Type": "AWS::Serverless::Function", "Properties": {}},
            }
        }
    )
    assert template.resolve({"Ref": "Fn.Alias"}, _Functions()) == f"{ARN}:Fn:live"
    assert template.resolve({"Ref": "Fn.Version"}, _Functions()) == f"{ARN}:Fn:$LATEST"
    with pytest.raises(TemplateError, match=r"unknown name Plain\.Version"):
        template.resolve({"Ref": "Plain.Version"}, _Functions())
