"""The shared Logger redacts secrets everywhere in a line; metrics and service come from the env."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from offergrid_integration import observability
from offergrid_integration.observability import (
    METRICS_NAMESPACE,
    REDACTED,
    RedactingFilter,
    logger,
    redact,
    register_secret,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SIGNATURE = "sha256=" + "ab12" * 16
REGISTERED = "registered-secret-4c1d"  # registered below; appears nowhere else by chance


def _lines(output: str) -> list[dict[str, object]]:
    # Every line must still be valid JSON after redaction (CloudWatch Logs Insights parses it).
    return [json.loads(line) for line in output.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------------
# The Powertools logger
# ---------------------------------------------------------------------------------------------------
def test_registered_secret_never_appears_but_normal_text_does(log_output):
    register_secret(REGISTERED)

    logger.info(f"calling Offergrid with key {REGISTERED} for offer of_123")
    logger.warning("retrying", extra={"attempt": 2, "note": f"key={REGISTERED}", "list": [REGISTERED]})

    output = log_output()
    assert REGISTERED not in output
    assert "for offer of_123" in output
    assert "retrying" in output
    lines = _lines(output)
    assert lines[0]["message"] == f"calling Offergrid with key {REDACTED} for offer of_123"
    assert lines[1]["attempt"] == 2


def test_api_key_in_extra_is_redacted(log_output):
    # Given an API key that was never registered (pattern-based redaction alone)
    logger.info(
        "request sent",
        extra={
            "apiKey": "unregistered-key-1",
            "api_key": "unregistered-key-2",
            "request": {"method": "GET", "headers": {"x-api-key": "unregistered-key-3", "accept": "json"}},
            "apiKeySecretId": "offergrid/prod/api-key",
        },
    )

    output = log_output()
    assert "unregistered-key" not in output
    [line] = _lines(output)
    assert line["apiKey"] == REDACTED
    assert line["request"] == {"method": "GET", "headers": {"x-api-key": REDACTED, "accept": "json"}}
    # A secret's id is not its value and stays readable
    assert line["apiKeySecretId"] == "offergrid/prod/api-key"


def test_signature_header_and_sha256_strings_are_redacted(log_output):
    headers = {"X-Offergrid-Signature": SIGNATURE, "Content-Type": "application/json"}

    logger.info("webhook received", extra={"headers": headers})
    logger.warning(f"signature mismatch: got {SIGNATURE}, body of 42 bytes")
    logger.info(f"raw headers {headers}")

    output = log_output()
    assert "ab12ab12" not in output
    assert "sha256=" + REDACTED in output
    lines = _lines(output)
    assert lines[0]["headers"] == {"X-Offergrid-Signature": REDACTED, "Content-Type": "application/json"}
    assert lines[1]["message"] == f"signature mismatch: got sha256={REDACTED}, body of 42 bytes"
    assert "application/json" in str(lines[2]["message"])


def test_exception_with_secret_is_redacted_in_traceback(log_output):
    register_secret(REGISTERED)

    def call_offergrid() -> None:
        raise RuntimeError(f"401 for key {REGISTERED} and signature {SIGNATURE}")

    try:
        call_offergrid()
    except RuntimeError:
        logger.exception("Offergrid call failed")

    output = log_output()
    assert REGISTERED not in output
    assert "ab12ab12" not in output
    [line] = _lines(output)
    assert line["exception_name"] == "RuntimeError"
    assert "call_offergrid" in str(line["exception"])  # the traceback itself is kept
    assert f"401 for key {REDACTED}" in str(line["exception"])
    assert REDACTED in json.dumps(line["stack_trace"])


def test_secret_needing_json_escapes_is_redacted(log_output):
    tricky = 'quote"and\\backslash-secret'
    register_secret(tricky)

    logger.info("value", extra={"detail": f"got {tricky}"})

    output = log_output()
    assert "backslash-secret" not in output
    assert _lines(output)[0]["detail"] == f"got {REDACTED}"


def test_short_and_empty_values_are_not_registered():
    register_secret("")
    register_secret("order")  # would otherwise blank out ordinary words

    assert redact("order placed") == "order placed"


def test_registration_is_thread_safe():
    values = [f"thread-secret-{thread}-{n:03d}" for thread in range(8) for n in range(10)]

    def register(chunk: list[str]) -> None:
        for value in chunk:
            register_secret(value)

    threads = [threading.Thread(target=register, args=(values[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(redact(value) == REDACTED for value in values)


# ---------------------------------------------------------------------------------------------------
# Pattern-based redaction
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"x-api-key": "k1"}', f'{{"x-api-key": "{REDACTED}"}}'),
        ("{'Authorization': 'Bearer abc.def'}", f"{{'Authorization': '{REDACTED}'}}"),
        ("GET /offers?api_key=k1&page=2", f"GET /offers?api_key={REDACTED}&page=2"),
        ("password=hunter2 user=bob", f"password={REDACTED} user=bob"),
        ('token="a b c" next', f'token="{REDACTED}" next'),
        ("webhook_secret=whsec_1", f"webhook_secret={REDACTED}"),
        ("Secret: s1", "Secret: s1"),  # a word in a sentence, not a header
        ("x-api-key: k1\naccept: json", f"x-api-key: {REDACTED}\naccept: json"),
        ("authorization: Bearer abc.def", f"authorization: {REDACTED}"),
        (f"x-offergrid-signature: {SIGNATURE}", f"x-offergrid-signature: {REDACTED}"),
        (
            '{"message": "body {\\"token\\": \\"t1\\"}"}',
            f'{{"message": "body {{\\"token\\": \\"{REDACTED}\\"}}"}}',
        ),
        ('{"webhook_secrets": ["a", "b"], "n": 1}', f'{{"webhook_secrets": "{REDACTED}", "n": 1}}'),
        ('{"signature": 123}', f'{{"signature": "{REDACTED}"}}'),
        (f"SHA256={'F0' * 8}", f"sha256={REDACTED}"),
        # Left alone: ids of secrets, flags, words in prose
        ('{"apiKeySecretId": "og/api-key", "signature_valid": false}', None),
        ("bad signature: header missing", None),
        ("the token bucket has 5 tokens left", None),
    ],
)
def test_redact_patterns(text: str, expected: str | None):
    assert redact(text) == (text if expected is None else expected)


# ---------------------------------------------------------------------------------------------------
# Stdlib loggers (httpx, botocore, ...)
# ---------------------------------------------------------------------------------------------------
def test_redacting_filter_on_a_stdlib_logger():
    register_secret(REGISTERED)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    stdlib_logger = logging.getLogger("tests.observability.stdlib")
    stdlib_logger.addHandler(handler)
    stdlib_logger.propagate = False
    try:
        stdlib_logger.warning("HTTP Request: %s %s", "GET", f"https://x/offers?api_key={REGISTERED}")
        try:
            raise ValueError(f"bad {REGISTERED}")
        except ValueError:
            stdlib_logger.exception("failed with %s", {"x-api-key": "unregistered-key"}, stack_info=True)
    finally:
        stdlib_logger.removeHandler(handler)

    output = stream.getvalue()
    assert REGISTERED not in output
    assert "unregistered-key" not in output
    assert "HTTP Request: GET https://x/offers?api_key=" in output
    assert "ValueError: bad " + REDACTED in output
    assert "Stack (most recent call last)" in output


@pytest.mark.parametrize("name", ["httpx", "botocore"])
def test_filter_attached_to_dependency_loggers(name: str):
    assert any(isinstance(f, RedactingFilter) for f in logging.getLogger(name).filters)


# ---------------------------------------------------------------------------------------------------
# One Logger / Tracer / Metrics, configured from the environment
# ---------------------------------------------------------------------------------------------------
def test_objects_are_module_singletons():
    from offergrid_integration.observability import metrics, tracer

    assert observability.logger is logger
    assert observability.metrics is metrics
    assert observability.tracer is tracer


def test_namespace_default_and_service_from_environment():
    # Given a fresh interpreter (the objects are created at import), first without the variables
    script = (
        "import importlib, os\n"
        "from offergrid_integration import observability as o\n"
        "print(o.metrics.namespace, o.logger.service)\n"
        "os.environ['POWERTOOLS_METRICS_NAMESPACE'] = 'CustomNamespace'\n"
        "os.environ['POWERTOOLS_SERVICE_NAME'] = 'webhook-ingress'\n"
        "o = importlib.reload(o)\n"
        "print(o.metrics.namespace, o.logger.service, o.metrics.service)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_")}
    env["PYTHONPATH"] = str(REPO_ROOT / "layers" / "shared")
    env["POWERTOOLS_TRACE_DISABLED"] = "true"

    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=60
    )

    without_env, with_env = result.stdout.splitlines()
    assert without_env == f"{METRICS_NAMESPACE} service_undefined"
    assert with_env == "CustomNamespace webhook-ingress webhook-ingress"


# ---------------------------------------------------------------------------------------------------
# The SDKs at DEBUG (issue 10, case 10)
# ---------------------------------------------------------------------------------------------------
DEBUG_SCRIPT = """
import logging, sys
# What Lambda does with ApplicationLogLevel=DEBUG: the runtime's handler on a DEBUG root logger
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, force=True)
from moto import mock_aws
import boto3
from offergrid_integration.secrets import Secret, parse_api_key, parse_webhook_secrets
with mock_aws():
    sm = boto3.client("secretsmanager", region_name="eu-west-1")
    sm.create_secret(Name="key", SecretString='{"apiKey": "og-live-key-DEBUG-0123456789"}')
    sm.create_secret(Name="hook", SecretString='{"current": "whsec-DEBUG-abcdefghij"}')
    print(Secret("key", parse_api_key)(), Secret("hook", parse_webhook_secrets)()[0])
"""


@pytest.mark.parametrize("sdk_level", [None, "DEBUG"])
def test_secrets_never_reach_the_log_with_the_root_logger_at_debug(sdk_level):
    # Given a fresh function process whose root logger is at DEBUG (SDK debug asked for, or not)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "SDK_LOG"))}
    env |= {
        "PYTHONPATH": str(REPO_ROOT / "layers" / "shared"),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    if sdk_level:
        env["SDK_LOG_LEVEL"] = sdk_level

    # When it reads both secrets from Secrets Manager
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", DEBUG_SCRIPT], env=env, capture_output=True, text=True, check=True, timeout=120
    )

    # Then it got them, and neither value (nor the secret JSON around them) is anywhere in the log
    assert result.stdout.split() == ["og-live-key-DEBUG-0123456789", "whsec-DEBUG-abcdefghij"]
    for value in ("og-live-key-DEBUG-0123456789", "whsec-DEBUG-abcdefghij"):
        assert value not in result.stderr
    botocore_debug = "Response body" in result.stderr
    # ... and the SDK's debug lines are there only when asked for
    assert botocore_debug is (sdk_level == "DEBUG")


def test_secret_string_in_an_sdk_record_is_redacted_before_it_is_registered():
    # botocore's DEBUG line: a bytes repr of the JSON body, the secret JSON escaped inside it
    line = (
        "Response body:\n"
        """b'{"ARN":"arn:x","Name":"key","SecretString":"{\\\\"apiKey\\\\":\\\\"k-123456789\\\\"}"}'"""
    )
    record = logging.LogRecord("botocore.parsers", logging.DEBUG, __file__, 1, line, None, None)
    RedactingFilter().filter(record)
    assert "k-123456789" not in record.getMessage()
    assert "SecretString [REDACTED]" in record.getMessage()
    assert record.getMessage().startswith("Response body:")


def test_log_metrics_flushes_a_metric_set_and_stays_quiet_without_one(capsys, recwarn):
    from aws_lambda_powertools.metrics import MetricUnit

    @observability.log_metrics
    def counting(event: dict[str, bool], context: object) -> str:
        if event["count"]:
            observability.metrics.add_metric(name="Counted", unit=MetricUnit.Count, value=1)
        observability.metrics.add_metadata(key="note", value="x")
        return "done"

    # An invocation that counted nothing: no EMF line, no Powertools warning, nothing left behind
    assert counting({"count": False}, None) == "done"
    assert capsys.readouterr().out == ""
    assert [str(w.message) for w in recwarn] == []
    assert observability.metrics.metadata_set == {}
    # One that counted: its EMF line, as @metrics.log_metrics would print it
    assert counting({"count": True}, None) == "done"
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["Counted"] == [1.0]


# ---------------------------------------------------------------------------------------------------
# The Tracer: the X-Ray SDK only when tracing is on (the processor's cold start)
# ---------------------------------------------------------------------------------------------------
def _function_env(**extra: str) -> dict[str, str]:
    """A Lambda-like environment for a fresh interpreter running the order processor's code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "_X_AMZN", "AWS_XRAY"))}
    env.pop("AWS_LAMBDA_FUNCTION_NAME", None)  # its runtime is not built: imports only
    env |= {
        "PYTHONPATH": os.pathsep.join(
            [str(REPO_ROOT / "functions" / "order_processor"), str(REPO_ROOT / "layers" / "shared")]
        ),
        "LAMBDA_TASK_ROOT": str(REPO_ROOT / "functions" / "order_processor"),
        "POWERTOOLS_SERVICE_NAME": "order-processor",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        **extra,
    }
    return env


TRACED_SCRIPT = """
import json, sys
import app  # the order processor: its handler is decorated with the tracer at import
from offergrid_integration.observability import tracer

@tracer.capture_lambda_handler(capture_response=False)
def handler(event, context):
    return {"answer": event["n"] + 1}

@tracer.capture_lambda_handler
def failing(event, context):
    raise RuntimeError("it broke")

@tracer.capture_method
def helper(n):
    return n * 2

print(json.dumps({"answer": handler({"n": 1}, None), "helper": helper(21), "tracer": type(tracer).__name__}))
try:
    failing({}, None)
except RuntimeError as exc:
    print(json.dumps({"raised": str(exc)}))
xray = "aws_xray_sdk" in sys.modules
patched = sorted(sys.modules["aws_xray_sdk.core.patcher"]._PATCHED_MODULES) if xray else []
print(json.dumps({
    "xray": xray,
    "patched": patched,
    "powertools_batch": "aws_lambda_powertools.utilities.batch" in sys.modules,
    "event_data_classes": "aws_lambda_powertools.utilities.data_classes" in sys.modules,
    "asyncio": "asyncio" in sys.modules,
}))
"""


def _run_traced(env: dict[str, str]) -> tuple[list[dict[str, object]], str]:
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", TRACED_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")], done.stdout


def test_with_tracing_disabled_the_processor_never_imports_the_xray_sdk():
    # Given the processor's code in a fresh interpreter with tracing disabled (as `make local`, the
    # benchmarks and the tests run it)
    # (POWERTOOLS_DEBUG: Powertools' own logger, silent otherwise, prints what its tracer logs)
    lines, output = _run_traced(_function_env(POWERTOOLS_TRACE_DISABLED="true", POWERTOOLS_DEBUG="true"))

    # Then the decorated handler and method run as before, an escaping error is logged and raised ...
    assert lines[0] == {"answer": {"answer": 2}, "helper": 42, "tracer": "DisabledTracer"}
    assert lines[1] == {"raised": "it broke"}
    assert "Exception received from failing" in output
    # ... and neither the X-Ray SDK nor Powertools' batch utility (asyncio, its event classes) is loaded
    assert lines[2] == {
        "xray": False,
        "patched": [],
        "powertools_batch": False,
        "event_data_classes": False,
        "asyncio": False,
    }


def test_outside_lambda_tracing_is_disabled_as_powertools_decides():
    env = _function_env()
    env.pop("LAMBDA_TASK_ROOT")

    lines, _ = _run_traced(env)

    assert lines[0]["tracer"] == "DisabledTracer"
    assert lines[2]["xray"] is False


@pytest.fixture
def xray_daemon() -> Iterator[tuple[str, Callable[[], list[dict[str, object]]]]]:
    """A UDP socket on 127.0.0.1 standing in for the X-Ray daemon: its address and what it received."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)

    def received() -> list[dict[str, object]]:
        documents = []
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                return documents
            header, _, body = data.decode().partition("\n")
            assert json.loads(header) == {"format": "json", "version": 1}
            documents.append(json.loads(body))

    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}", received
    finally:
        sock.close()


def test_with_tracing_enabled_the_handler_is_traced_and_the_sdks_patched(xray_daemon):
    # Given the processor's code in Lambda with active tracing (a trace header, the daemon's address)
    address, received = xray_daemon
    env = _function_env(
        _X_AMZN_TRACE_ID="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        AWS_XRAY_DAEMON_ADDRESS=address,
        AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR",
    )

    lines, _ = _run_traced(env)

    # Then it is Powertools' Tracer, the SDKs are patched as before, the handler still answers ...
    assert lines[0] == {"answer": {"answer": 2}, "helper": 42, "tracer": "Tracer"}
    assert lines[1] == {"raised": "it broke"}
    assert lines[2]["xray"] is True
    assert {"botocore", "httpx"} <= set(lines[2]["patched"])  # type: ignore[arg-type]
    # ... and each invocation was sent to the daemon as a subsegment, annotated as before
    subsegments = {str(document["name"]): document for document in received()}
    assert {"## handler", "## failing", "## __main__.helper"} <= set(subsegments)
    handler = subsegments["## handler"]
    assert handler["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert handler["annotations"] == {"ColdStart": True, "Service": "order-processor"}
    assert "metadata" not in handler  # capture_response=False
    failing = subsegments["## failing"]
    assert failing["annotations"] == {"ColdStart": False, "Service": "order-processor"}
    assert failing.get("fault") or failing.get("error")
