"""The replay CLI against the local stack (its endpoints in a stack file, AWS calls to its moto server)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools import replay
from devtools.local.stack import SAMPLE_CATALOG, LocalEnvironment
from tests.fixtures.local_stack import empty_queues

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    stack_file = tmp_path_factory.mktemp("local") / "stack.json"
    env = LocalEnvironment(log_dir=None, stack_file=stack_file, catalog=SAMPLE_CATALOG)
    with env.start(warm=False):
        yield env


@pytest.fixture
def stack(local: LocalEnvironment) -> Iterator[LocalEnvironment]:
    yield local
    empty_queues(local)


def _replay(local: LocalEnvironment, *argv: str) -> int:
    assert local.stack_file is not None
    command, *rest = argv
    if command == "dlq":
        sub, *rest = rest
        return replay.main([command, sub, "--stack-file", str(local.stack_file), *rest])
    return replay.main([command, "--stack-file", str(local.stack_file), *rest])


def _messages(local: LocalEnvironment, output: str) -> list[Any]:
    assert local.stack is not None
    url = local.stack.outputs[output]
    response = local.stack.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
    )
    messages: list[Any] = response.get("Messages", [])
    return messages


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["webhook"],
        ["send"],
        ["dlq"],
        ["dlq", "list"],
        ["dlq", "show"],
        ["dlq", "redrive"],
        ["sync"],
        ["reconcile"],
        ["archive"],
        ["trace"],
    ],
)
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exited:
        replay.main([*argv, "--help"])
    assert exited.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_local_outputs_point_at_the_local_stack(local: LocalEnvironment):
    assert local.stack is not None
    assert local.api is not None
    outputs = local.stack.outputs
    assert outputs["WebhookUrl"] == f"{local.api.base_url}/dev/webhooks/offergrid"
    assert outputs["OrdersQueueUrl"] == local.stack.ref("OrdersQueue")
    assert outputs["WebhookSecretArn"] == local.stack.ref("OffergridWebhookSecret")


def test_webhook_replay_signs_fresh_and_the_message_is_queued(stack: LocalEnvironment, capsys, tmp_path):
    # Given a stored webhook signed with another secret (say, captured from another stage)
    stored = tmp_path / "captured_order_created.json"
    stored.write_text((EVENTS / "webhook_bad_signature.json").read_text())
    # When it is replayed (signed fresh with the stack's secret from Secrets Manager)
    code = _replay(stack, "webhook", str(stored), "--wait", "0")
    # Then it is accepted and lands on the orders queue
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"\[1/1\] captured_order_created.json -> 2\d\d ", out)
    (message,) = _messages(stack, "OrdersQueueUrl")
    assert message["MessageAttributes"]["dedupKey"]["StringValue"].startswith("order.created:")


def test_the_bad_signature_sample_is_never_re_signed(stack: LocalEnvironment, capsys):
    # The sample exists to be refused: replaying it must not make it valid
    code = _replay(stack, "webhook", str(EVENTS / "webhook_bad_signature.json"))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "webhook_bad_signature.json -> 401" in out
    assert "refused as this sample should be: 401" in out
    assert _messages(stack, "OrdersQueueUrl") == []


def test_webhook_replay_can_keep_the_stored_signature(stack: LocalEnvironment, capsys, tmp_path):
    # Given a captured webhook whose signature was made with another secret
    stored = tmp_path / "captured_order_created.json"
    stored.write_text((EVENTS / "webhook_bad_signature.json").read_text())
    # When it is replayed with its own signature, it is refused, and the replay says so
    code = _replay(stack, "webhook", str(stored), "--keep-signature")
    assert code == 1
    assert "-> 401" in capsys.readouterr().out
    assert _messages(stack, "OrdersQueueUrl") == []


def test_webhook_replay_of_all_events_reports_progress_and_succeeds_as_written(
    stack: LocalEnvironment, capsys
):
    files = sorted(EVENTS.glob("webhook_*.json"))
    code = _replay(stack, "webhook", "--wait", "0")
    out = capsys.readouterr().out
    # every file is posted, with progress; the refusal samples are refused, as expected: exit 0
    assert all(f"/{len(files)}] {path.name} -> " in out for path in files)
    assert "webhook_malformed_body.json -> 400" in out
    assert "webhook_bad_signature.json -> 401" in out
    assert f"{len(files)} as expected, 0 not" in out
    assert code == 0
    # every accepted one is on the queue, nothing else
    assert len(_messages(stack, "OrdersQueueUrl")) == len(re.findall(r" -> 2\d\d ", out))


def test_webhook_replay_fails_when_a_webhook_is_not_accepted(stack: LocalEnvironment, capsys, monkeypatch):
    monkeypatch.setenv("REPLAY_WRONG_SECRET", "not-the-stack-secret")
    code = _replay(
        stack, "webhook", str(EVENTS / "webhook_order_created.json"), "--secret-env", "REPLAY_WRONG_SECRET"
    )
    assert code == 1
    assert "0 as expected, 1 not" in capsys.readouterr().out


def test_webhook_replay_of_an_http_api_event_sends_its_body(stack: LocalEnvironment, capsys):
    code = _replay(stack, "webhook", str(EVENTS / "http_api_webhook_order_created.json"), "--wait", "0")
    assert code == 0, capsys.readouterr().out
    (message,) = _messages(stack, "OrdersQueueUrl")
    assert message["MessageAttributes"]["dedupKey"]["StringValue"] == "order.created:item-456-def"


def test_webhook_replay_with_a_secret_from_the_environment(stack, capsys, monkeypatch):
    monkeypatch.setenv("REPLAY_TEST_SECRET", "not-the-stack-secret")
    code = _replay(
        stack, "webhook", str(EVENTS / "webhook_order_created.json"), "--secret-env", "REPLAY_TEST_SECRET"
    )
    assert code == 1
    assert "-> 401" in capsys.readouterr().out


def test_send_puts_the_records_of_an_sqs_event_on_the_queue(stack: LocalEnvironment, capsys):
    sample = next(iter(sorted(EVENTS.glob("sqs_*.json"))), None)
    if sample is None:
        pytest.skip("no sqs_*.json sample event yet")
    records = json.loads(sample.read_text())["Records"]
    assert _replay(stack, "send", "--from-event", str(sample)) == 0
    sent = _messages(stack, "OrdersQueueUrl")
    assert sorted(m["Body"] for m in sent) == sorted(r["body"] for r in records)
    assert "sent" in capsys.readouterr().out


def test_send_refuses_a_body_that_is_not_json(stack: LocalEnvironment, capsys):
    assert _replay(stack, "send", "--body", "{not json") == 2
    assert _messages(stack, "OrdersQueueUrl") == []


def test_dlq_list_show_and_redrive(stack: LocalEnvironment, capsys):
    # Given two dead-lettered messages
    assert stack.stack is not None
    sqs = stack.stack.client("sqs")
    dlq = stack.stack.outputs["OrdersDeadLetterQueueUrl"]
    ids = [
        sqs.send_message(
            QueueUrl=dlq,
            MessageBody=json.dumps({"dedupKey": f"order.created:item-{n}"}),
            MessageAttributes={"dedupKey": {"DataType": "String", "StringValue": f"order.created:item-{n}"}},
        )["MessageId"]
        for n in (1, 2)
    ]
    # list shows both and leaves them in place
    assert _replay(stack, "dlq", "list") == 0
    out = capsys.readouterr().out
    assert all(message_id in out for message_id in ids)
    assert "2 message(s)" in out
    # and says why `receives` grows (SQS has no peek), with the count a message arrives after
    assert "SQS has no peek" in out
    assert "reached 5 (the orders queue's maxReceiveCount)" in out
    # show prints one, body parsed
    assert _replay(stack, "dlq", "show", ids[0]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["body"] == {"dedupKey": "order.created:item-1"}
    assert _replay(stack, "dlq", "show", "no-such-id") == 1
    capsys.readouterr()
    # redrive of one moves it (with its attributes) back to the orders queue
    assert _replay(stack, "dlq", "redrive", "--message-id", ids[0]) == 0
    assert "[1/1]" in capsys.readouterr().out
    (moved,) = _messages(stack, "OrdersQueueUrl")
    assert moved["MessageAttributes"]["dedupKey"]["StringValue"] == "order.created:item-1"
    remaining = _messages(stack, "OrdersDeadLetterQueueUrl")
    assert [m["MessageId"] for m in remaining] == [ids[1]]


def test_sync_dry_run_says_the_plan_in_a_summary_line_and_logs_nothing_on_the_terminal(
    stack: LocalEnvironment, capfd: pytest.CaptureFixture[str]
):
    """Issue 22: it printed the whole report as JSON, and the function's log line repeated the plan
    (plus metric blobs) on stderr, with no line saying what the plan was."""
    if "OfferSyncFunction" not in stack.specs or not stack.has_code("OfferSyncFunction"):
        pytest.skip("template.yaml has no OfferSyncFunction yet")
    code = _replay(stack, "sync", "--dry-run", "--sku", "NET-FIBER-300")
    captured = capfd.readouterr()  # the function's worker writes to the file descriptors
    assert code == 0, captured.err
    first, *plan = captured.out.splitlines()
    assert first.startswith("Plan (dry run): would create 1;"), first
    assert "catalog rows read, 1 selected by --sku (1 SKU asked)" in first
    assert plan == ["    create     NET-FIBER-300"]
    assert captured.err == ""  # its log is in the stack's log folder


def test_sync_exits_non_zero_when_the_run_failed(stack: LocalEnvironment, capsys):
    # Given a stack whose catalog object is gone (the sync cannot read its catalog)
    assert stack.stack is not None
    (location,) = stack.catalog_locations("OfferSyncFunction")
    bucket, _, key = location.removeprefix("s3://").partition("/")
    stack.stack.client("s3").delete_object(Bucket=bucket, Key=key)
    try:
        # When the sync is re-run (a dry run: no failed write, only the status says it failed)
        code = _replay(stack, "sync", "--dry-run", "--json")
        captured = capsys.readouterr()
        summary_code = _replay(stack, "sync", "--dry-run")
        summary = capsys.readouterr()
    finally:
        stack.upload_catalog(SAMPLE_CATALOG)
    # Then the report says failed and the command exits non-zero, saying why on stderr
    report = json.loads(captured.out)
    assert report["sync"]["status"] == "failed"
    assert report["sync"]["failures"] == []
    assert code == 1
    assert "offer sync status is 'failed': catalog unreadable" in captured.err
    assert "(its log: " in captured.err
    assert summary_code == 1
    assert summary.out.startswith("Plan (dry run) failed: nothing to write;"), summary.out
    # and with the catalog back, the same command succeeds
    assert _replay(stack, "sync", "--dry-run") == 0


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ({"sync": {"status": "complete", "failures": []}}, None),
        ({"sync": {"status": "dry_run", "failures": [], "failed": 0}}, None),
        ({"sync": {"status": "incomplete", "stopReason": "rate budget"}}, "'incomplete': rate budget"),
        ({"sync": {"status": "locked"}}, "'locked'"),
        ({"sync": {"status": "failed", "stopReason": "catalog unreadable: x"}}, "'failed': catalog"),
        ({"sync": {"status": "complete", "failed": 2, "failures": [{}, {}]}}, "2 failed write(s)"),
        ({"sweep": {}}, "no sync report"),
        (None, "no sync report"),
    ],
)
def test_sync_succeeds_only_for_a_complete_or_dry_run_report(result: Any, problem: str | None):
    found = replay.sync_problem(result)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_without_a_local_stack_the_error_says_how_to_start_one(tmp_path: Path, capsys):
    missing = tmp_path / "missing.json"
    assert replay.main(["dlq", "list", "--stack-file", str(missing)]) == 2
    err = capsys.readouterr().err
    # the command that starts a stack writing that file (`make local` writes .local/stack.json only)
    assert f"start it with `.venv/bin/python -m devtools.local up --stack-file {missing}`" in err
    assert "--ephemeral" not in err  # replay has no such flag


def test_sync_json_prints_only_json_on_stdout(stack: LocalEnvironment, capsys):
    code = _replay(stack, "sync", "--dry-run", "--json", "--sku", "NET-FIBER-300")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["sync"]["status"] == "dry_run"
    assert captured.err == ""


def test_sync_of_skus_that_match_nothing_warns_and_exits_non_zero(stack: LocalEnvironment, capsys):
    code = _replay(stack, "sync", "--dry-run", "--sku", "NO-SUCH-SKU")
    captured = capsys.readouterr()
    assert code == 1
    assert "--sku NO-SUCH-SKU matched nothing" in captured.err


def test_reconcile_dry_run_prints_the_differences_and_repairs_nothing(stack: LocalEnvironment, capsys):
    # Given an item accepted by hand in the Offergrid dashboard: no work order on our side
    assert stack.fake is not None
    stack.fake.add_order_item(id="item-by-hand-replay", status="accepted")

    # When on-call asks for the differences
    code = _replay(stack, "reconcile", "--dry-run")
    captured = capsys.readouterr()

    # Then it prints the drift and what would be repaired, and queues nothing
    assert code == 0, captured.err
    assert "missing_work_order: item item-by-hand-replay is accepted at Offergrid" in captured.out
    assert "would queue reconcile.open_work_order" in captured.out
    assert "(dry run: nothing queued)" in captured.out
    assert _messages(stack, "OrdersQueueUrl") == []


@pytest.mark.parametrize(
    ("report", "problem"),
    [
        ({"error": None, "incomplete": None, "failed": 0}, None),
        ({"error": "listing order items failed: 503"}, "reconciliation failed: listing"),
        ({"incomplete": "budget used"}, "stopped early: budget used"),
        ({"failed": 2}, "2 repair(s)"),
        (None, "no reconciliation report"),
    ],
)
def test_reconcile_succeeds_only_for_a_complete_run(report: Any, problem: str | None):
    found = replay.reconcile_problem(report)
    assert found == problem if problem is None else problem in (found or "")


# --- output: files named in errors, one JSON document with --json (issue 22) ---------------------
def _fill(text: str, paths: dict[str, str]) -> str:
    for name, path in paths.items():
        text = text.replace(f"{{{name}}}", path)
    return text


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["webhook", "{bad}"], "{bad}: not JSON (Expecting value at line 2 column 1)"),
        (["send", "--from-event", "{bad}"], "--from-event {bad}: not JSON (Expecting value at line 2"),
        (["send", "--body", "@{bad}"], "--body @{bad}: not JSON"),
        (["send", "--body", '{"event": '], "--body: not JSON"),
        (["webhook", "{missing}"], "{missing}: no such file"),
    ],
)
def test_a_file_that_cannot_be_read_is_named_with_its_flag(
    local: LocalEnvironment, tmp_path: Path, capsys, argv: list[str], named: str
):
    bad = tmp_path / "bad.json"
    bad.write_text('{"event":\n')
    paths = {"bad": str(bad), "missing": str(tmp_path / "missing.json")}
    code = _replay(local, *[_fill(word, paths) for word in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {_fill(named, paths)}"), err


def test_json_output_is_one_document_per_command(stack: LocalEnvironment, capsys):
    assert _replay(stack, "send", "--from-event", str(EVENTS / "sqs_order_created.json"), "--json") == 0
    sent = json.loads(capsys.readouterr().out)
    assert len(sent["sent"]) == 1
    assert _replay(stack, "dlq", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["messages"] == []
    code = _replay(stack, "webhook", str(EVENTS / "webhook_bad_signature.json"), "--json", "--wait", "0")
    answered = json.loads(capsys.readouterr().out)
    assert code == 0
    assert answered["webhooks"][0]["status"] == 401
    assert answered["asExpected"] == 1
