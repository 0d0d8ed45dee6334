"""The Docker-free runtime, the local API Gateway and the SQS event source, on a tiny SAM project.

One local stack (moto server + fake + workers) for the module; each test empties the queues it uses.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.local.apigw import ApiRoute, build_proxy_event, is_binary, proxy_response
from devtools.local.runtime import InvokeResult
from devtools.local.stack import LocalEnvironment
from devtools.local.testing import write_project

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: test
Globals:
  Function:
    Runtime: python3.13
    Timeout: 5
    Environment:
      Variables:
        RECORD_FILE: ""
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 300
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt JobsDeadLetters.Arn
        maxReceiveCount: 2
  JobsDeadLetters:
    Type: AWS::SQS::Queue
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: !Ref Stage
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo/
      Handler: app.handler
      MemorySize: 192
      Events:
        Post:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /echo/{name}
            Method: post
  WorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker/
      Handler: app.handler
      Timeout: 1
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
  BrokenFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: broken/
      Handler: app.handler
"""

ECHO = """
import base64, importlib.util, json, os, sys

def handler(event, context):
    if event.get("path", "").endswith("/fail"):
        raise RuntimeError("echo failed on purpose")
    if event.get("path", "").endswith("/garbage"):
        return {"no": "statusCode"}
    print("echo invoked", file=sys.stderr)
    return {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json", "X-Echo": "yes"},
        "body": json.dumps({
            "event": event,
            "context": {
                "function_name": context.function_name,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "aws_request_id": context.aws_request_id,
                "invoked_function_arn": context.invoked_function_arn,
                "remaining_ms": context.get_remaining_time_in_millis(),
            },
            "env": {
                k: os.environ.get(k) for k in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_ENDPOINT_URL", "RECORD_FILE")
            },
            "repo_importable": importlib.util.find_spec("devtools") is not None,
            "layer_importable": importlib.util.find_spec("offergrid_integration") is not None,
        }),
    }
"""

WORKER = """
import json, os, time

def handler(event, context):
    with open(os.environ["RECORD_FILE"], "a") as out:
        out.write(json.dumps(event) + "\\n")
    bodies = [r["body"] for r in event["Records"]]
    if any(b == "sleep" for b in bodies):
        time.sleep(5)
    if any(b == "boom" for b in bodies):
        raise ValueError("the whole batch fails")
    if any(b == "malformed-report" for b in bodies):
        return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}
    failed = [r["messageId"] for r in event["Records"] if "fail" in r["body"]]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
"""

BROKEN = "import no_such_module_anywhere\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sam-project")
    return write_project(root, TEMPLATE, {"echo": ECHO, "worker": WORKER, "broken": BROKEN})


@pytest.fixture(scope="module")
def local(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    record_file = tmp_path_factory.mktemp("records") / "batches.jsonl"
    env = LocalEnvironment(
        template_path=project,
        log_dir=project.parent / "logs",
        env_vars={"Parameters": {"RECORD_FILE": str(record_file)}},
        retry_delay=0.05,
    )
    with env.start(warm=False):
        yield env


@pytest.fixture
def records(local: LocalEnvironment) -> Iterator[Path]:
    path = Path(local.workers["WorkerFunction"].environment["RECORD_FILE"])
    path.unlink(missing_ok=True)
    yield path
    assert local.stack is not None
    sqs = local.stack.client("sqs")
    for logical_id in ("Jobs", "JobsDeadLetters"):
        url = local.stack.ref(logical_id)
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _batches(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - 127.0.0.1
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


# ---------------------------------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------------------------------
def test_worker_runs_the_handler_with_a_lambda_context_and_the_template_environment(local: LocalEnvironment):
    outcome = local.invoke("EchoFunction", {"path": "/echo/x"})
    assert outcome.ok, outcome.error
    body = json.loads(outcome.result["body"])
    assert body["context"]["function_name"] == "EchoFunction"
    assert body["context"]["memory_limit_in_mb"] == 192
    assert body["context"]["aws_request_id"] == outcome.request_id
    assert body["context"]["invoked_function_arn"].endswith(":function:EchoFunction")
    assert 0 < body["context"]["remaining_ms"] <= 5000
    assert body["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "EchoFunction"
    assert local.moto is not None
    assert body["env"]["AWS_ENDPOINT_URL"] == local.moto.endpoint_url
    # the repository is not importable from the function: only its code and the layer are
    assert body["repo_importable"] is False
    assert body["layer_importable"] is True


def test_the_worker_stays_warm_and_its_logs_go_to_a_file(local: LocalEnvironment):
    worker = local.workers["EchoFunction"]
    local.invoke("EchoFunction", {"path": "/echo/a"})
    cold_starts = worker.cold_starts
    local.invoke("EchoFunction", {"path": "/echo/b"})
    assert worker.cold_starts == cold_starts
    assert worker.log_path is not None
    assert "echo invoked" in worker.log_path.read_text()


def test_a_handler_error_is_reported_like_lambda(local: LocalEnvironment):
    outcome = local.invoke("EchoFunction", {"path": "/echo/fail"})
    assert outcome.error is not None
    assert outcome.error["errorType"] == "RuntimeError"
    assert outcome.error["errorMessage"] == "echo failed on purpose"
    assert any("echo failed on purpose" in line for line in outcome.error["stackTrace"])


def test_an_import_error_is_runtime_import_module_error(local: LocalEnvironment):
    outcome = local.invoke("BrokenFunction", {})
    assert outcome.error is not None
    assert outcome.error["errorType"] == "Runtime.ImportModuleError"
    assert "no_such_module_anywhere" in outcome.error["errorMessage"]


def test_a_timeout_kills_the_worker_and_the_next_invocation_is_a_cold_start(
    local: LocalEnvironment, records: Path
):
    worker = local.workers["WorkerFunction"]
    outcome = local.invoke("WorkerFunction", {"Records": [{"messageId": "m", "body": "sleep"}]})
    assert outcome.error is not None
    assert outcome.error["errorType"] == "Sandbox.Timedout"
    assert "1.00 seconds" in outcome.error["errorMessage"]
    cold_starts = worker.cold_starts
    again = local.invoke("WorkerFunction", {"Records": [{"messageId": "m", "body": "ok"}]})
    assert again.ok
    assert worker.cold_starts == cold_starts + 1


# ---------------------------------------------------------------------------------------------------
# Local API Gateway
# ---------------------------------------------------------------------------------------------------
def _route(binary: tuple[str, ...] | None = None) -> ApiRoute:
    return ApiRoute("Fn", "/echo/{name}", "POST", "test", "Api", binary)


def test_proxy_event_has_api_gateway_shape():
    event = build_proxy_event(
        route=_route(),
        method="POST",
        raw_path="/test/echo/w%C3%BCrld?a=1&a=2&b=",
        headers=[
            ("Content-Type", "application/json"),
            ("X-Dup", "one"),
            ("X-Dup", "two"),
            ("User-Agent", "ua"),
        ],
        body=b'{"k": "v"}',
        source_ip="127.0.0.1",
        request_id="req-1",
    )
    assert event["resource"] == "/echo/{name}"
    assert event["path"] == "/echo/würld"
    assert event["httpMethod"] == "POST"
    assert event["headers"]["X-Dup"] == "two"
    assert event["multiValueHeaders"]["X-Dup"] == ["one", "two"]
    assert event["queryStringParameters"] == {"a": "2", "b": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert event["pathParameters"] == {"name": "würld"}
    assert event["body"] == '{"k": "v"}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["requestId"] == "req-1"
    assert context["stage"] == "test"
    assert context["path"] == "/test/echo/würld"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "ua"


@pytest.mark.parametrize(
    ("content_type", "binary_types", "expected"),
    [
        ("application/json", None, False),
        ("application/json; charset=utf-8", None, False),
        ("application/vnd.api+json", None, False),
        ("text/plain", None, False),
        ("image/png", None, True),
        ("application/octet-stream", None, True),
        ("application/json", ("*/*",), True),
        ("image/png", ("application/pdf",), False),
        (None, None, False),
    ],
)
def test_binary_media_types(content_type, binary_types, expected):
    assert is_binary(content_type, binary_types) is expected


def test_binary_and_non_utf8_bodies_are_base64():
    raw = bytes(range(256))
    event = build_proxy_event(
        route=_route(),
        method="POST",
        raw_path="/echo/x",
        headers=[("Content-Type", "image/png")],
        body=raw,
        source_ip="127.0.0.1",
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw
    event = build_proxy_event(
        route=_route(),
        method="POST",
        raw_path="/echo/x",
        headers=[("Content-Type", "application/json")],
        body=b"\xff\xfe",
        source_ip="127.0.0.1",
    )
    assert event["isBase64Encoded"] is True
    empty = build_proxy_event(
        route=_route(), method="POST", raw_path="/echo/x", headers=[], body=b"", source_ip="1"
    )
    assert empty["body"] is None
    assert empty["isBase64Encoded"] is False


def test_proxy_response_mapping():
    ok = InvokeResult(
        "r", 0.0, result={"statusCode": 204, "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}}
    )
    status, headers, body = proxy_response(ok)
    assert status == 204
    assert ("Set-Cookie", "a=1") in headers
    assert ("Set-Cookie", "b=2") in headers
    assert body == b""
    encoded = InvokeResult("r", 0.0, result={"statusCode": 200, "body": "aGk=", "isBase64Encoded": True})
    assert proxy_response(encoded)[2] == b"hi"
    assert proxy_response(InvokeResult("r", 0.0, result={"body": "x"}))[0] == 502
    assert proxy_response(InvokeResult("r", 0.0, error={"errorType": "Sandbox.Timedout"}))[0] == 504


def test_http_request_reaches_the_function_as_api_gateway_would_send_it(local: LocalEnvironment):
    url = local.api_url("EchoFunction").replace("{name}", "alice")
    assert "/test/echo/" in url  # the deployed URL's shape: /<stage>/<path>
    status, headers, body = _post(url + "?x=1", b'{"hello": "world"}', {"Content-Type": "application/json"})
    assert status == 201
    assert headers["X-Echo"] == "yes"
    assert headers["x-amzn-RequestId"]
    event = json.loads(body)["event"]
    assert event["body"] == '{"hello": "world"}'
    assert event["isBase64Encoded"] is False
    assert event["pathParameters"] == {"name": "alice"}
    assert event["queryStringParameters"] == {"x": "1"}
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["requestId"] == headers["x-amzn-RequestId"]


def test_http_binary_body_arrives_base64(local: LocalEnvironment):
    url = local.api_url("EchoFunction").replace("{name}", "img")
    status, _, body = _post(url, b"\x89PNG\r\n\x1a\n\x00", {"Content-Type": "image/png"})
    assert status == 201
    event = json.loads(body)["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x89PNG\r\n\x1a\n\x00"


def test_http_errors_are_api_gateway_errors(local: LocalEnvironment):
    assert local.api is not None
    base = local.api.base_url
    # a function error and a malformed proxy response are 502s
    status, _, body = _post(f"{base}/test/echo/fail", b"{}", {"Content-Type": "application/json"})
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
    status, _, _ = _post(f"{base}/test/echo/garbage", b"{}", {"Content-Type": "application/json"})
    assert status == 502
    # an unknown route or method: API Gateway's 403 Missing Authentication Token
    status, headers, body = _post(f"{base}/test/nowhere", b"{}", {})
    assert (status, json.loads(body)) == (403, {"message": "Missing Authentication Token"})
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    request = urllib.request.Request(f"{base}/test/echo/x", method="GET")  # noqa: S310 - 127.0.0.1
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=30)
    assert raised.value.code == 403


# ---------------------------------------------------------------------------------------------------
# SQS event source
# ---------------------------------------------------------------------------------------------------
def _send(local: LocalEnvironment, *bodies: str) -> list[str]:
    assert local.stack is not None
    sqs = local.stack.client("sqs")
    return [
        sqs.send_message(
            QueueUrl=local.stack.ref("Jobs"),
            MessageBody=body,
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}},
        )["MessageId"]
        for body in bodies
    ]


def _dead_letters(local: LocalEnvironment) -> list[str]:
    assert local.stack is not None
    sqs = local.stack.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=local.stack.ref("JobsDeadLetters"), MaxNumberOfMessages=10, VisibilityTimeout=0
    )
    return sorted(m["Body"] for m in messages.get("Messages", []))


def test_source_is_configured_from_the_template(local: LocalEnvironment):
    (source,) = local.sources_for("WorkerFunction")
    assert local.stack is not None
    assert source.batch_size == 5
    assert source.report_batch_item_failures is True
    assert source.queue_url == local.stack.ref("Jobs")


def test_sqs_event_has_the_aws_shape(local: LocalEnvironment, records: Path):
    (message_id,) = _send(local, "hello")
    local.drain(timeout=30)
    ((record,),) = [batch["Records"] for batch in _batches(records)]
    assert local.stack is not None
    assert record["messageId"] == message_id
    assert record["body"] == "hello"
    assert record["receiptHandle"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert "SentTimestamp" in record["attributes"]
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "test",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["md5OfBody"] == "5d41402abc4b2a76b9719d911017c592"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == local.stack.resource("Jobs").attributes["Arn"]
    assert record["awsRegion"] == local.region


def test_partial_batch_failure_retries_only_the_failed_record_until_the_dlq(
    local: LocalEnvironment, records: Path
):
    # Given a batch where one record keeps failing
    _send(local, "ok-1", "fail-1", "ok-2")
    # When the event source drains the queue
    report = local.drain(timeout=30)["WorkerFunction"]
    # Then the good records were processed once, the failing one maxReceiveCount (2) times, then dead-lettered
    seen = [record["body"] for batch in _batches(records) for record in batch["Records"]]
    assert sorted(seen) == ["fail-1", "fail-1", "ok-1", "ok-2"]
    receive_counts = [
        record["attributes"]["ApproximateReceiveCount"]
        for batch in _batches(records)
        for record in batch["Records"]
        if record["body"] == "fail-1"
    ]
    assert receive_counts == ["1", "2"]
    assert _dead_letters(local) == ["fail-1"]
    assert report.deleted == 2
    assert report.failed == 2


def test_a_raised_error_fails_the_whole_batch(local: LocalEnvironment, records: Path):
    _send(local, "boom")
    report = local.drain(timeout=30)["WorkerFunction"]
    assert report.deleted == 0
    assert report.errors
    assert report.errors[0]["errorType"] == "ValueError"
    assert _dead_letters(local) == ["boom"]


def test_a_malformed_failure_report_fails_the_whole_batch(local: LocalEnvironment, records: Path):
    _send(local, "malformed-report")
    local.drain(timeout=30)
    assert _dead_letters(local) == ["malformed-report"]


def test_success_without_failures_deletes_everything(local: LocalEnvironment, records: Path):
    _send(local, *[f"ok-{n}" for n in range(7)])
    report = local.drain(timeout=30)["WorkerFunction"]
    assert report.deleted == 7
    assert report.failed == 0
    # batches of at most BatchSize (5)
    assert all(len(batch["Records"]) <= 5 for batch in _batches(records))
    assert _dead_letters(local) == []
