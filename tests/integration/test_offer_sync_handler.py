"""The Lambda entry (schedule inputs from events/) and the CLI, against moto and the Offergrid fake."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from devtools import offer_sync_cli
from devtools.offergrid_fake import OffergridFake
from functions.offer_sync import app
from functions.offer_sync.app import ScheduleInput, SyncRuntime
from offergrid_integration import aws as aws_clients
from offergrid_integration.catalog.settings import SyncSettings
from offergrid_integration.clock import ScaledClock
from offergrid_integration.config import ConfigurationError, load_settings
from offergrid_integration.observability import logger
from offergrid_integration.orders.reconcile import CappedRateBudget
from offergrid_integration.ratelimit import Lane
from offergrid_integration.sqs_queue import SqsQueue
from tests.fixtures.aws import create_table, record_boto_clients
from tests.fixtures.offergrid_fake import TEST_API_KEY, OffergridFakeFactory

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
SAMPLES = ROOT / "samples"
BUCKET = "provider-catalog"


@pytest.fixture
def fake(offergrid_fake_factory: OffergridFakeFactory) -> OffergridFake:
    return offergrid_fake_factory(time_scale=60.0)


@pytest.fixture
def stack(aws: None, fake: OffergridFake, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The function's AWS resources in moto and its environment."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.upload_file(str(SAMPLES / "catalog.csv"), BUCKET, "exports/catalog.csv")
    create_table("offer-sync-state", "pk", "sk")
    create_table("orders", "itemId")
    boto3.client("secretsmanager").create_secret(Name="offergrid/test/api-key", SecretString=TEST_API_KEY)
    queue_url = boto3.client("sqs").create_queue(QueueName="orders")["QueueUrl"]
    environment = {
        "OFFERGRID_API_URL": fake.base_url,
        "OFFERGRID_API_KEY_SECRET": "offergrid/test/api-key",
        "CATALOG_SOURCE_URI": f"s3://{BUCKET}/exports/catalog.csv",
        "SYNC_STATE_TABLE": "offer-sync-state",
        "ORDERS_QUEUE_URL": queue_url,
        "ORDERS_TABLE": "orders",
        "SWEEP_MIN_AGE_SECONDS": "0",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment


@pytest.fixture
def handler(stack: dict[str, str]) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    from tests.fixtures.aws import FakeLambdaContext

    # The function's own wiring, on a clock 60x faster (the fake runs at the same speed).
    app.configure(SyncRuntime(load_settings(SyncSettings), clock=ScaledClock(60.0)))

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = app.lambda_handler(event, FakeLambdaContext(timeout_seconds=900))
        return result

    yield invoke
    app.reset()


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def queued_dedup_keys(queue_url: str) -> list[str]:
    messages = boto3.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return sorted(m["MessageAttributes"]["dedupKey"]["StringValue"] for m in messages.get("Messages", []))


def test_scheduled_event_sweeps_then_syncs(
    handler: Callable[[dict[str, Any]], dict[str, Any]], fake: OffergridFake, stack: dict[str, str]
) -> None:
    # Given a pending order whose webhook never arrived
    item = fake.add_order_item(status="pending")

    # When the schedule fires with its default input
    result = handler(load_event("scheduled_offer_sync.json"))

    # Then the order was queued with the webhook dedup key, and the catalog was synced
    assert result["sweep"]["enqueued"] == [item["id"]]
    assert queued_dedup_keys(stack["ORDERS_QUEUE_URL"]) == [f"order.created:{item['id']}"]
    assert result["sync"]["status"] == "complete"
    assert result["sync"]["counts"] == {"create": 12}
    assert len(fake.offers) == 12
    json.dumps(result)  # a Lambda response must be JSON


def test_dry_run_schedule_writes_nothing(
    handler: Callable[[dict[str, Any]], dict[str, Any]], fake: OffergridFake, stack: dict[str, str]
) -> None:
    item = fake.add_order_item(status="pending")

    result = handler(load_event("scheduled_offer_sync_dry_run.json"))

    assert result["dryRun"] is True
    assert result["sync"]["status"] == "dry_run"
    assert len(result["sync"]["plan"]) == 12
    assert result["sweep"]["enqueued"] == [item["id"]]
    assert queued_dedup_keys(stack["ORDERS_QUEUE_URL"]) == []
    assert {call.method for call in fake.calls} == {"GET"}
    assert fake.offers == {}


def test_sync_only_for_some_skus(
    handler: Callable[[dict[str, Any]], dict[str, Any]], fake: OffergridFake
) -> None:
    result = handler({"sweep": False, "skus": ["TV-ESSENTIALS"]})

    assert "sweep" not in result
    assert result["sync"]["counts"] == {"create": 1}
    assert fake.calls_matching("GET", "/provider/orders") == []


# --- every shape the trigger can deliver (docs/decisions.md#14) -----------------------------------------
def test_a_classic_scheduled_event_runs_with_the_defaults(
    handler: Callable[[dict[str, Any]], dict[str, Any]], fake: OffergridFake, stack: dict[str, str]
) -> None:
    # Given what `sam local generate-event cloudwatch scheduled-event` makes (also the Lambda console's
    # EventBridge test event, and what a plain EventBridge rule delivers): an envelope, `detail: {}`
    item = fake.add_order_item(status="pending")
    result = handler(load_event("sam_cloudwatch_scheduled_event.json"))
    # Then the run is the default one: sweep, then sync
    assert result["dryRun"] is False
    assert result["sweep"]["enqueued"] == [item["id"]]
    assert result["sync"]["counts"] == {"create": 12}


def test_a_classic_scheduled_event_takes_its_options_from_detail(
    handler: Callable[[dict[str, Any]], dict[str, Any]], fake: OffergridFake
) -> None:
    event = load_event("scheduled_event_dry_run.json")
    assert event["detail-type"] == "Scheduled Event"
    result = handler(event)
    assert (result["dryRun"], result["sync"]["status"], "sweep" in result) == (True, "dry_run", False)
    assert fake.offers == {}
    assert fake.calls_matching("GET", "/provider/orders") == []


@pytest.mark.parametrize("event", [{}, None])
def test_an_empty_console_test_event_runs_with_the_defaults(
    handler: Callable[[dict[str, Any] | None], dict[str, Any]], fake: OffergridFake, event: Any
) -> None:
    result = handler(event)
    assert (result["dryRun"], result["sync"]["status"]) == (False, "complete")
    assert "sweep" in result


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"dryrun": True}, "dryrun: Extra inputs are not permitted"),
        ({"skus": []}, "skus:"),
        ({"skus": [" "]}, "skus"),
        ({"sync": "perhaps"}, "sync:"),
        ({"key1": "value1", "key2": "value2", "key3": "value3"}, "key1"),  # the console's hello-world event
        ({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {"dryRun": "?"}}, "dryRun"),
        (
            {"detail-type": "Object Created", "source": "aws.s3", "detail": {}},
            "'Object Created' is not a schedule",
        ),
        ([{"dryRun": True}], "is a JSON list"),
    ],
)
def test_a_bad_schedule_input_fails_the_invocation_and_says_what_is_expected(
    handler: Callable[[Any], dict[str, Any]], fake: OffergridFake, event: Any, message: str
) -> None:
    with pytest.raises(app.InvalidScheduleEvent) as raised:
        handler(event)
    assert message in str(raised.value)
    assert "'Scheduled Event'" in str(raised.value)
    assert fake.calls == []


def test_a_bad_environment_fails_loudly(stack: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISSING_OFFER_POLICY", "purge")
    app.reset()
    with pytest.raises(ConfigurationError, match="MISSING_OFFER_POLICY"):
        app.get_runtime()
    app.reset()


# --- one S3 client per runtime, one default mapping per process ---------------------------------------
def test_two_runs_of_a_runtime_use_one_s3_client_and_report_the_same(
    stack: dict[str, str], fake: OffergridFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the catalog and the mapping document both in S3, and every boto3 S3 client counted
    mapping = ROOT / "layers/shared/offergrid_integration/catalog/default_mapping.json"
    boto3.client("s3").upload_file(str(mapping), BUCKET, "config/mapping.json")
    monkeypatch.setenv("CATALOG_MAPPING", f"s3://{BUCKET}/config/mapping.json")
    created: list[str] = []
    real_client = boto3.session.Session.client

    def counting_client(self: boto3.session.Session, service_name: str, *args: Any, **kwargs: Any) -> Any:
        if service_name == "s3":
            created.append(service_name)
        return real_client(self, service_name, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(boto3.session.Session, "client", counting_client)
    runtime = SyncRuntime(load_settings(SyncSettings), clock=ScaledClock(60.0))
    request = ScheduleInput(sweep=False, dry_run=True)

    # When the runtime runs twice (two invocations of one container)
    first = runtime.run(request)["sync"]
    second = runtime.run(request)["sync"]

    # Then both runs read catalog and mapping through one S3 client, and agree
    assert len(created) == 1
    assert len(first["plan"]) == 12

    def without_run_identity(report: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in report.items() if k not in ("runId", "startedAt", "finishedAt")}

    assert without_run_identity(first) == without_run_identity(second)


def test_the_sync_the_sweep_and_the_reconciliation_draw_from_the_background_lane(
    stack: dict[str, str],
) -> None:
    # Given the offer sync's runtime (its sweep uses the same client)
    runtime = SyncRuntime(load_settings(SyncSettings), clock=ScaledClock(60.0))
    # Then its clients take tokens only above the orders' reserve (the processor's lane is the default)
    budgets = [runtime.client._rate_budget, runtime.reconcile_client._rate_budget]
    assert isinstance(budgets[1], CappedRateBudget)
    lanes = [getattr(budgets[0], "lane", None), getattr(budgets[1].inner, "lane", None)]
    assert lanes == [Lane.BACKGROUND, Lane.BACKGROUND]


# --- the CLI -------------------------------------------------------------------------------------
def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    level = logger.log_level
    code = offer_sync_cli.main(list(argv), out=out)
    assert logger.log_level == level  # the CLI quiets the process-wide logger only while it runs
    return code, out.getvalue()


def test_cli_plan_then_apply_then_plan_again(
    fake: OffergridFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OFFERGRID_API_KEY", TEST_API_KEY)
    fake.add_offer(
        sku="NET-CABLE-500", name="Cable 500", category="internet", status="active", monthlyPrice=1
    )
    common = ["--catalog", str(SAMPLES / "catalog.json"), "--api-url", fake.base_url, "--time-scale", "60"]

    # plan: prints the writes, makes none
    code, text = run_cli("plan", *common)
    assert code == 0
    assert text.startswith("Plan (dry run): would update 1, create 11;"), text
    assert "update     NET-CABLE-500" in text
    assert "create     TV-ULTIMATE" in text
    assert {call.method for call in fake.calls} == {"GET"}

    # apply: makes them
    code, text = run_cli("apply", *common, "--json")
    assert code == 0
    report = json.loads(text)
    assert report["counts"] == {"create": 11, "update": 1}

    # plan again: nothing left to do
    fake.clear_calls()
    code, text = run_cli("plan", *common)
    assert code == 0
    assert text.startswith("Plan (dry run): nothing to write, 12 unchanged;"), text
    assert {call.method for call in fake.calls} == {"GET"}


def test_cli_reports_bad_rows_with_a_non_zero_exit(
    fake: OffergridFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OFFERGRID_API_KEY", TEST_API_KEY)
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("sku,productName,type,price\nA-1,One,tv,10\nB-1,Two,phone,10\n")

    code, text = run_cli("apply", "--catalog", str(catalog), "--api-url", fake.base_url, "--time-scale", "60")

    assert code == 1
    assert "INVALID row 3 (sku B-1): category (type): unknown value 'phone'" in text
    assert [offer["sku"] for offer in fake.offers.values()] == ["A-1"]


def test_cli_without_an_api_key_is_a_usage_error(
    fake: OffergridFake, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OFFERGRID_API_KEY", raising=False)

    code, _ = run_cli("plan", "--catalog", str(SAMPLES / "catalog.json"), "--api-url", fake.base_url)

    assert code == 2
    assert "set OFFERGRID_API_KEY" in capsys.readouterr().err
    assert fake.calls == []


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err  # one line, no traceback
    assert lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["reports", "--state-table", "no-such-table"],
            "AWS call failed: ResourceNotFoundException on Query",
        ),
        (
            ["apply", "--catalog", str(SAMPLES / "catalog.json"), "--state-table", "no-such-table"],
            "AWS call failed: ResourceNotFoundException on PutItem",
        ),
        (
            ["apply", "--catalog", str(SAMPLES / "catalog.json"), "--rate-limit-table", "no-such-table"],
            "AWS call failed: ResourceNotFoundException",
        ),
        (
            ["plan", "--catalog", str(SAMPLES / "catalog.json"), "--api-key-secret", "no/such/secret"],
            "secret 'no/such/secret' is unavailable",
        ),
    ],
)
def test_cli_aws_errors_are_one_line_and_exit_2(
    aws: None,
    fake: OffergridFake,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    expected: str,
) -> None:
    # Given AWS (moto) without the table / secret the command names
    monkeypatch.setenv("OFFERGRID_API_KEY", TEST_API_KEY)
    api = ["--api-url", fake.base_url] if argv[0] != "reports" else []

    # When the CLI runs
    code, out = run_cli(*argv, *api)

    # Then it says what failed in one line and exits 2, having written nothing to Offergrid
    assert code == 2
    assert expected in _one_error_line(capsys)
    assert out == ""
    assert [call for call in fake.calls if call.method != "GET"] == []


@pytest.mark.parametrize(
    ("unset", "expected"),
    [
        (("AWS_REGION", "AWS_DEFAULT_REGION"), "AWS call failed: NoRegionError: You must specify a region."),
        (
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"),
            "AWS call failed: NoCredentialsError: Unable to locate credentials",
        ),
    ],
)
def test_cli_without_aws_configuration_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    unset: tuple[str, ...],
    expected: str,
) -> None:
    # Given no region (or no credentials) anywhere boto3 looks: environment, files, instance metadata
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # were a request ever sent: nowhere
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # no session that resolved them earlier

    code, out = run_cli("reports", "--state-table", "offer-sync-state")

    assert code == 2
    assert _one_error_line(capsys) == f"error: {expected}"
    assert out == ""


# ---------------------------------------------------------------------------------------------------
# The AWS clients of a cold start (issue 12): all from one session, each made once, none that the
# first event may not need (a dry run, or a sweep with nothing to queue, makes no SQS client and no
# DynamoDB resource for the order and work-order tables).
# ---------------------------------------------------------------------------------------------------
@pytest.fixture
def cold_start(
    stack: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[list[int], list[str], Callable[[dict[str, Any]], dict[str, Any]]]]:
    """A new container (no clients yet) building the sync's runtime as Lambda does at init, with
    sessions and clients recorded from then on; and its handler."""
    from tests.fixtures.aws import FakeLambdaContext

    aws_clients.reset()  # the stack's setup made clients of its own
    sessions, clients = record_boto_clients(monkeypatch)
    app.configure(SyncRuntime(load_settings(SyncSettings), clock=ScaledClock(60.0)))

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = app.lambda_handler(event, FakeLambdaContext(timeout_seconds=900))
        return result

    yield sessions, clients, invoke
    app.reset()
    aws_clients.reset()


def test_a_dry_run_makes_no_sqs_client_and_reads_no_table_it_does_not_need(
    cold_start: tuple[list[int], list[str], Callable[[dict[str, Any]], dict[str, Any]]], fake: OffergridFake
) -> None:
    sessions, clients, invoke = cold_start

    # When the first event is a dry run and no order is pending (the cold-start benchmark's event)
    result = invoke({"dryRun": True})

    # Then it planned the catalog from one session with the DynamoDB client (sync state), Secrets
    # Manager (the key) and S3 (the catalog) only: no SQS client, no DynamoDB resource (its client
    # would be a second "dynamodb")
    assert result["sweep"]["listed"] == 0
    assert result["sync"]["status"] == "dry_run"
    assert len(result["sync"]["plan"]) == 12
    assert len(sessions) == 1
    assert sorted(clients) == ["dynamodb", "s3", "secretsmanager"]

    # When a later dry run finds a pending item
    item = fake.add_order_item(status="pending")
    result = invoke({"dryRun": True})

    # Then it read the item's decision (the resource, made now) and still queued nothing (no SQS client)
    assert result["sweep"]["enqueued"] == [item["id"]]  # what it would queue
    assert sorted(clients) == ["dynamodb", "dynamodb", "s3", "secretsmanager"]


def test_the_first_message_and_decision_read_make_their_clients_once(
    cold_start: tuple[list[int], list[str], Callable[[dict[str, Any]], dict[str, Any]]],
    fake: OffergridFake,
    stack: dict[str, str],
) -> None:
    sessions, clients, invoke = cold_start
    # Given a pending item whose webhook never arrived
    first = fake.add_order_item(status="pending")

    # When the schedule fires twice, with a new item before the second run
    invoke({})
    second = fake.add_order_item(status="pending")
    result = invoke({})

    made = sorted(clients)  # before this test reads the queue with a client of its own

    # Then both items were queued (the second run also read the first's decision: none yet)
    assert result["sweep"]["enqueued"] == [first["id"], second["id"]]
    assert f"order.created:{second['id']}" in queued_dedup_keys(stack["ORDERS_QUEUE_URL"])
    # And each client was made once, from the one session: the SQS client on the first message and
    # the DynamoDB resource (the second "dynamodb") on the first decision read
    assert len(sessions) == 1
    assert made == ["dynamodb", "dynamodb", "s3", "secretsmanager", "sqs"]


def test_a_queue_left_to_its_first_send_makes_its_client_once(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a queue whose client is left to its first send, in a new container
    queue_url = boto3.client("sqs").create_queue(QueueName="lazy-orders")["QueueUrl"]
    aws_clients.reset()
    _, clients = record_boto_clients(monkeypatch)
    queue = SqsQueue(queue_url, client_on_first_send=True)
    assert clients == []

    # When it sends two messages
    first = queue.send("{}", {"kind": "test"})
    second = queue.send("{}", {"kind": "test"})

    # Then both were stored, through one client made on the first
    assert first is not None
    assert second not in (None, first)
    assert clients == ["sqs"]
    aws_clients.reset()


def test_a_queue_with_its_client_at_construction_makes_it_there(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a new container, when the webhook's queue is built (its client at init, for its first request)
    aws_clients.reset()
    _, clients = record_boto_clients(monkeypatch)
    SqsQueue("https://sqs.eu-west-1.amazonaws.com/123456789012/orders")
    # Then its client is already made
    assert clients == ["sqs"]
    aws_clients.reset()
