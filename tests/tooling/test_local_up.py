"""`python -m devtools.local up` (`make local`) as a developer gets it, and what depends on it.

The stacks here are built from `up`'s own argument parser (`environment_from_args`), so they are
what `make local` starts except for the ports (any free one: other test runs share the machine) and
the log folder. Each stack has its own moto server process, so two stacks in this process hold the
same deterministic names without seeing each other's resources.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from devtools.local import __main__ as local_main_module
from devtools.local.__main__ import build_parser, environment_from_args, hints, summary
from devtools.local.__main__ import main as local_main
from devtools.local.env_vars import render as render_env_vars
from devtools.local.env_vars import to_json as env_vars_json
from devtools.local.poller import event_source_enabled
from devtools.local.provision import LOCAL_SECRET_VALUES, physical_name
from devtools.local.stack import (
    DEFAULT_STACK_FILE,
    DEFAULT_TEMPLATE,
    SAMPLE_CATALOG,
    LocalEnvironment,
    apply_env_vars,
)
from devtools.local.template import TemplateError
from offergrid_integration.signature import sign
from tests.fixtures.queues import receive_all

REPO = Path(__file__).resolve().parents[2]
COMMITTED_ENV_VARS = REPO / "events" / "env.json"
# The ports `make local` uses, as written in events/env.json and the docs.
DEFAULT_URLS = {"aws": "http://127.0.0.1:5000", "offergrid": "http://127.0.0.1:8900"}
PROCESSOR = "OrderProcessorFunction"


def _up(tmp: Path, *extra: str) -> LocalEnvironment:
    """The environment `python -m devtools.local up <extra>` starts, on free ports."""
    argv = ["up", "--port", "0", "--moto-port", "0", "--fake-port", "0"]
    args = build_parser().parse_args([*argv, "--stack-file", str(tmp / "stack.json"), *extra])
    env = environment_from_args(args)
    env.log_dir = tmp / "logs"
    return env


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    env = _up(tmp_path_factory.mktemp("up"))
    with env.start(warm=False):
        yield env


@pytest.fixture(scope="module")
def paused(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    env = _up(
        tmp_path_factory.mktemp("paused"),
        "--no-catalog",
        "--no-seed",
        "--parameter-overrides",
        "OrderProcessingEnabled=false",
    )
    with env.start(warm=False):
        yield env


def _stack_urls(env: LocalEnvironment) -> dict[str, str]:
    assert env.stack is not None
    return {name: env.stack.urls[name].rstrip("/") for name in DEFAULT_URLS}


def _committed_for(env: LocalEnvironment) -> str:
    """events/env.json as committed, its default ports replaced by this test stack's (nothing else)."""
    text = COMMITTED_ENV_VARS.read_text(encoding="utf-8")
    for name, url in _stack_urls(env).items():
        text = text.replace(DEFAULT_URLS[name], url)
    return text


def _queue_messages(env: LocalEnvironment, logical_id: str) -> list[dict[str, Any]]:
    assert env.stack is not None
    return receive_all(env.stack.client("sqs"), env.stack.ref(logical_id))


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = local_main(list(argv))
    return code, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------------------------------------------
# Deterministic physical names
# ---------------------------------------------------------------------------------------------------
def test_physical_names_are_the_stack_name_and_logical_id(up: LocalEnvironment):
    assert up.stack is not None
    queues = up.stack.of_type("AWS::SQS::Queue")
    tables = up.stack.of_type("AWS::DynamoDB::Table")
    buckets = up.stack.of_type("AWS::S3::Bucket")
    assert queues
    assert tables
    assert buckets
    for logical_id, queue in queues.items():
        assert queue.attributes["QueueName"] == f"offergrid-local-{logical_id}"
    for logical_id, table in tables.items():
        assert table.ref == f"offergrid-local-{logical_id}"
    assert up.stack.ref("CatalogBucket") == "offergrid-local-catalogbucket"


def test_physical_name_is_truncated_and_lowercased_like_cloudformation():
    assert physical_name("stack", "Queue") == "stack-Queue"
    assert physical_name("Stack", "Bucket", lower=True, max_length=63) == "stack-bucket"
    assert len(physical_name("s" * 70, "LogicalId", max_length=64)) == 64
    assert physical_name("stack", "Param", prefix="CFN-") == "CFN-stack-Param"


def test_two_stacks_in_one_process_share_names_but_not_resources(
    up: LocalEnvironment, paused: LocalEnvironment
):
    assert up.stack is not None
    assert paused.stack is not None
    # Given two local stacks running at once in this process, each with its own moto server
    assert up.stack.endpoint_url != paused.stack.endpoint_url
    names = {lid: res.attributes.get("QueueName") for lid, res in up.stack.of_type("AWS::SQS::Queue").items()}
    assert names == {
        lid: res.attributes.get("QueueName") for lid, res in paused.stack.of_type("AWS::SQS::Queue").items()
    }
    # When a message is sent to one stack's orders queue
    up.stack.client("sqs").send_message(QueueUrl=up.stack.ref("OrdersQueue"), MessageBody="{}")
    # Then only that stack sees it
    assert _queue_messages(paused, "OrdersQueue") == []
    assert len(_queue_messages(up, "OrdersQueue")) == 1


# ---------------------------------------------------------------------------------------------------
# events/env.json and `python -m devtools.local env-vars`
# ---------------------------------------------------------------------------------------------------
def test_env_vars_command_prints_the_committed_file_for_make_local(up: LocalEnvironment):
    assert up.stack is not None
    assert up.stack_file is not None
    # When the documented command runs against the stack
    code, out, err = _run("env-vars", "--stack-file", str(up.stack_file))
    # Then it prints events/env.json exactly, but for the ports this test stack uses
    assert code == 0, err
    assert out == _committed_for(up), (
        "events/env.json is stale: `make local`, then python -m devtools.local env-vars > events/env.json"
    )
    assert json.loads(out)["Parameters"]["AWS_ENDPOINT_URL"] == up.stack.endpoint_url.rstrip("/")


def test_env_vars_set_every_declared_variable_to_the_stacks_value_and_nothing_else(up: LocalEnvironment):
    assert up.stack is not None
    document = json.loads(_committed_for(up))
    assert set(document) == {"Parameters", *up.specs}
    secret_names = {
        res.ref: res.attributes["Name"] for res in up.stack.of_type("AWS::SecretsManager::Secret").values()
    }
    for function_id, spec in up.specs.items():
        applied = apply_env_vars(spec, document)
        # Then sam (and devtools.local) would apply all of it: every name is declared by the template
        assert applied.ignored == [], function_id
        # and each value is the one the stack gives the function (a secret by name instead of ARN)
        expected = {name: secret_names.get(value, value) for name, value in spec.environment.items()} | {
            "AWS_ENDPOINT_URL": up.stack.endpoint_url
        }
        assert applied.environment == expected, function_id


def test_invoke_with_the_committed_env_json_is_accepted_and_queued(up: LocalEnvironment, tmp_path: Path):
    assert up.stack_file is not None
    _queue_messages(up, "OrdersQueue")
    # Given events/env.json as committed (only the ports are this test stack's)
    env_file = tmp_path / "env.json"
    env_file.write_text(_committed_for(up), encoding="utf-8")
    # When the webhook function is invoked with it, as `sam local invoke --env-vars` does
    code, out, err = _run(
        "invoke",
        "WebhookIngressFunction",
        "-e",
        str(REPO / "events" / "webhook_order_created.json"),
        "--env-vars",
        str(env_file),
        "--stack-file",
        str(up.stack_file),
    )
    # Then the webhook is accepted, nothing of the file was ignored
    assert code == 0, err
    assert json.loads(out)["statusCode"] == 200, out
    assert "warning:" not in err
    # and the message is on the orders queue the file names
    messages = _queue_messages(up, "OrdersQueue")
    assert [m["MessageAttributes"]["dedupKey"]["StringValue"] for m in messages] == [
        "order.created:item-456-def"
    ]


def test_env_vars_without_a_running_stack_says_what_to_do(tmp_path: Path):
    missing = tmp_path / "missing.json"
    code, _, err = _run("env-vars", "--stack-file", str(missing))
    assert code == 2
    assert f"start it with `.venv/bin/python -m devtools.local up --stack-file {missing}`" in err


# ---------------------------------------------------------------------------------------------------
# The banner's hints and the shell exports: this stack's ports, not the usual ones (issue 22)
# ---------------------------------------------------------------------------------------------------
def test_the_banner_shows_this_stacks_ports_and_commands(up: LocalEnvironment):
    assert up.stack is not None
    assert up.stack_file is not None
    text = "\n".join(hints(up, DEFAULT_TEMPLATE))
    # the shell settings with the ports this stack took
    assert f"export AWS_ENDPOINT_URL={up.stack.urls['aws']}" in text
    assert f"export OFFERGRID_FAKE_URL={up.stack.urls['offergrid']}" in text
    assert "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing" in text
    # events/env.json is for 5000/8900: on other ports the banner does not claim it is this stack's
    assert "(= events/env.json)" not in text
    assert f"devtools.local env-vars --stack-file {up.stack_file} > .local/env.json" in text
    # and the replay hint reaches this stack, not .local/stack.json
    assert f"webhook events/webhook_order_created.json --stack-file {up.stack_file}" in text


def test_on_the_usual_ports_the_banner_says_events_env_json_and_make_replay(
    up: LocalEnvironment, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    assert up.stack is not None
    # Given a stack whose env-vars file is the committed one (as on 5000/8900), from .local/stack.json
    committed = tmp_path / "env.json"
    committed.write_text(env_vars_json(render_env_vars(up.stack, DEFAULT_TEMPLATE)))
    monkeypatch.setattr(local_main_module, "COMMITTED_ENV_VARS", committed)
    monkeypatch.setattr(up, "stack_file", DEFAULT_STACK_FILE)
    text = "\n".join(hints(up, DEFAULT_TEMPLATE))
    assert ".venv/bin/python -m devtools.local env-vars  # sam's --env-vars file (= events/env.json)" in text
    assert 'make replay ARGS="webhook events/webhook_order_created.json"' in text


def test_exports_prints_this_stacks_settings_for_a_shell(up: LocalEnvironment):
    assert up.stack is not None
    assert up.stack_file is not None
    code, out, _ = _run("exports", "--stack-file", str(up.stack_file))
    assert code == 0
    shell = subprocess.run(  # noqa: S603 - bash evaluates what the command printed
        [shutil.which("bash") or "/bin/bash", "-c", out + 'echo "$AWS_ENDPOINT_URL $OFFERGRID_FAKE_URL"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout.split() == [up.stack.urls["aws"], up.stack.urls["offergrid"]]


# ---------------------------------------------------------------------------------------------------
# The sample catalog
# ---------------------------------------------------------------------------------------------------
def test_up_uploads_the_sample_catalog_where_the_sync_reads_it(up: LocalEnvironment):
    assert up.stack is not None
    assert up.template is not None
    # The catalog bucket, at the key the template's CatalogObjectKey parameter names by default
    bucket = up.stack.ref("CatalogBucket")
    key = str(up.template.document["Parameters"]["CatalogObjectKey"]["Default"])
    body = up.stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == SAMPLE_CATALOG.read_bytes()
    assert up.uploaded_catalogs == [f"s3://{bucket}/{key}"]
    assert any(f"s3://{bucket}/{key}" in line for line in summary(up, {}))
    # and so the sync works out of the box
    result = up.invoke("OfferSyncFunction", {"dryRun": True, "sync": True, "sweep": False})
    assert result.ok, result.error
    sync = result.result["sync"]
    assert sync["status"] == "dry_run", sync.get("stopReason")
    assert sync["rowsValid"] == len(json.loads(SAMPLE_CATALOG.read_text(encoding="utf-8")))


def test_no_catalog_leaves_the_bucket_empty(paused: LocalEnvironment):
    assert paused.stack is not None
    listing = paused.stack.client("s3").list_objects_v2(Bucket=paused.stack.ref("CatalogBucket"))
    assert listing["KeyCount"] == 0
    assert paused.uploaded_catalogs == []
    assert any("not uploaded (--no-catalog)" in line for line in summary(paused, {}))


# ---------------------------------------------------------------------------------------------------
# The order items the sample events name (no hand seeding before a replay)
# ---------------------------------------------------------------------------------------------------
def test_up_seeds_the_fake_with_the_items_the_sample_events_name(up: LocalEnvironment):
    assert up.fake is not None
    item = up.fake.order_items["item-456-def"]
    assert (item["orderId"], item["offerId"], item["status"]) == ("order-123-abc", "offer-789-ghi", "pending")
    assert "item-457-xyz" in up.fake.order_items  # the base64 sample's item
    assert up.seeded_items == ["item-456-def", "item-457-xyz"]
    assert any("item-456-def, item-457-xyz (pending" in line for line in summary(up, {}))


def test_up_seeds_an_item_the_processor_decides(up: LocalEnvironment):
    # The seeded item is one a replayed order.created is decided for, not a 404
    assert up.fake is not None
    result = up.invoke(
        PROCESSOR,
        {
            "Records": [
                {
                    "messageId": "m-1",
                    "receiptHandle": "r-1",
                    "body": json.dumps(
                        {
                            "event": {
                                "event": "order.created",
                                "orderId": "order-123-abc",
                                "itemId": "item-456-def",
                            },
                            "dedupKey": "order.created:item-456-def",
                            "source": "webhook",
                            "receivedAt": "2026-11-27T14:30:01Z",
                        }
                    ),
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:offergrid-local-OrdersQueue",
                }
            ]
        },
    )
    assert result.ok, result.error
    assert result.result == {"batchItemFailures": []}
    assert up.fake.order_items["item-456-def"]["status"] == "accepted"


def test_no_seed_leaves_the_fake_empty(paused: LocalEnvironment):
    assert paused.fake is not None
    assert paused.fake.order_items == {}
    assert paused.seeded_items == []


# ---------------------------------------------------------------------------------------------------
# OrderProcessingEnabled: the SQS event source's Enabled, through the template's parameter
# ---------------------------------------------------------------------------------------------------
def test_order_processing_enabled_false_pauses_the_local_poller(paused: LocalEnvironment):
    assert paused.stack is not None
    (source,) = paused.sources_for(PROCESSOR)
    assert source.enabled is False
    assert any("PAUSED" in line and PROCESSOR in line for line in summary(paused, {}))
    # Given a message waiting on the orders queue
    paused.stack.client("sqs").send_message(
        QueueUrl=paused.stack.ref("OrdersQueue"),
        MessageBody=json.loads((REPO / "events" / "sqs_order_created.json").read_text())["Records"][0][
            "body"
        ],
    )
    # When the pollers start (as `up` does) and the queues are drained (as the demo does)
    paused.start_pollers()
    try:
        assert source._thread is None, "a paused event source started polling"
        reports = paused.drain(timeout=10)
    finally:
        for each in paused.sources:
            each.stop()
    # Then the processor was never invoked and the message is still there
    assert PROCESSOR not in reports
    assert source.totals.received == 0
    assert source.messages_left() == 1
    _queue_messages(paused, "OrdersQueue")


def test_order_processing_enabled_by_default(up: LocalEnvironment):
    (source,) = up.sources_for(PROCESSOR)
    assert source.enabled is True
    assert any("polling" in line and PROCESSOR in line for line in summary(up, {}))


@pytest.mark.parametrize(
    ("value", "enabled"),
    [(True, True), (False, False), ("true", True), ("false", False), ("False", False), (" TRUE ", True)],
)
def test_event_source_enabled_reads_a_boolean_or_its_string(value: Any, enabled: bool):
    assert event_source_enabled(value) is enabled


@pytest.mark.parametrize("value", [{"Ref": "OrderProcessingEnabled"}, "yes", "", None, 0])
def test_event_source_enabled_refuses_anything_else(value: Any):
    with pytest.raises(TemplateError, match="must be true or false"):
        event_source_enabled(value, where="Fn event Q: Enabled")


# ---------------------------------------------------------------------------------------------------
# The claim-check bucket (docs/decisions.md#17): provisioned from the template, used end to end
# ---------------------------------------------------------------------------------------------------
def test_a_webhook_too_large_for_sqs_goes_through_the_local_claim_check_bucket(up: LocalEnvironment):
    assert up.stack is not None
    assert up.fake is not None
    _queue_messages(up, "OrdersQueue")
    bucket = up.stack.ref("ClaimCheckBucket")
    up.fake.add_order_item(id="item-large-local", orderId="order-large-local")
    # Given a signed order.created of 400 KB of Cyrillic notes (800 KB as UTF-8, more than SQS holds)
    event = json.loads((REPO / "events" / "webhook_order_created.json").read_text(encoding="utf-8"))
    del event["multiValueHeaders"]
    event["body"] = json.dumps(
        {
            "event": "order.created",
            "orderId": "order-large-local",
            "itemId": "item-large-local",
            "note": "Ж" * 400_000,
        },
        ensure_ascii=False,
    )
    event["headers"]["X-Offergrid-Signature"] = sign(
        event["body"], LOCAL_SECRET_VALUES["OFFERGRID_WEBHOOK_SECRET"]
    )
    # When the local webhook function takes it
    answer = up.invoke("WebhookIngressFunction", event)
    # Then it is accepted, its body kept in the stack's claim-check bucket, its claim check queued
    assert answer.ok, answer.error
    assert answer.result["statusCode"] == 200, answer.result
    [message] = _queue_messages(up, "OrdersQueue")
    pointer = json.loads(message["Body"])["claimCheck"]
    assert pointer["bucket"] == bucket
    assert (
        up.stack.client("s3").head_object(Bucket=bucket, Key=pointer["key"])["ContentLength"]
        == pointer["bytes"]
    )
    # ... and the local processor follows it and decides the item
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": "r-large",
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {
            name: {"stringValue": value["StringValue"], "dataType": "String"}
            for name, value in message["MessageAttributes"].items()
        },
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:offergrid-local-OrdersQueue",
    }
    decided = up.invoke(PROCESSOR, {"Records": [record]})
    assert decided.ok, decided.error
    assert decided.result == {"batchItemFailures": []}
    assert up.fake.order_items["item-large-local"]["status"] == "accepted"
