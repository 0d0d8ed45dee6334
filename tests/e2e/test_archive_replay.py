"""`replay archive` and `replay trace` against the local stack: real handlers, moto, the Offergrid fake.

Webhooks are delivered over HTTP to the local API, archived by the webhook function, replayed from the
archive through the orders queue, and handled by the order processor (`drain`). Issue 25.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

from devtools import replay
from devtools.archive_replay import _why_not_revisited
from devtools.local.stack import LOCAL_WEBHOOK_SECRET, SAMPLE_CATALOG, LocalEnvironment
from devtools.stack_reads import DedupRecords
from devtools.stack_target import Target
from offergrid_integration.archive import ArchivedDelivery
from offergrid_integration.contract import normalise_payload
from offergrid_integration.orders.ports import Decision
from offergrid_integration.orders.processor import IDEMPOTENCY_KEY_PREFIX
from offergrid_integration.signature import compact_json, sign
from tests.fixtures.local_stack import empty_queues
from tests.fixtures.queues import receive_all

SERVICEABLE = {
    "street": "1 Market St",
    "city": "San Francisco",
    "state": "CA",
    "zipCode": "94105",
    "country": "US",
}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    folder = tmp_path_factory.mktemp("archive")
    env = LocalEnvironment(
        log_dir=folder / "logs", stack_file=folder / "stack.json", retry_delay=0.0, catalog=SAMPLE_CATALOG
    )
    with env.start(warm=False):
        yield env


@pytest.fixture
def stack(local: LocalEnvironment) -> Iterator[LocalEnvironment]:
    yield local
    empty_queues(local)


def target(local: LocalEnvironment) -> Target:
    assert local.stack is not None
    return Target(outputs=dict(local.stack.outputs), local=local.stack, region=local.stack.region)


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pending_item(local: LocalEnvironment) -> str:
    assert local.fake is not None
    item_id: str = local.fake.add_order_item(status="pending", serviceAddress=SERVICEABLE)["id"]
    return item_id


def deliver(local: LocalEnvironment, kind: str, item_id: str, **options: Any) -> int:
    assert local.fake is not None
    payload = local.fake.webhook_payload(kind, item_id, **options)  # type: ignore[arg-type]
    status, _ = local.fake.deliver_webhook(
        local.api_url("WebhookIngressFunction"), payload, LOCAL_WEBHOOK_SECRET
    )
    return status


def run(local: LocalEnvironment, *argv: str) -> int:
    assert local.stack_file is not None
    command, *rest = argv
    return replay.main([command, "--stack-file", str(local.stack_file), *rest])


def queued(local: LocalEnvironment) -> list[dict[str, Any]]:
    """The orders queue's messages, received (hidden 30 s) and released again."""
    assert local.stack is not None
    return receive_all(local.stack.client("sqs"), local.stack.outputs["OrdersQueueUrl"], keep=True)


def patches(local: LocalEnvironment, item_id: str) -> int:
    assert local.fake is not None
    return len(local.fake.calls_matching("PATCH", f"/provider/orders/{item_id}/status"))


# ---------------------------------------------------------------------------------------------------
def test_the_replay_finds_the_processors_own_record_of_a_message(stack: LocalEnvironment):
    # Given an order the processor decided
    item = pending_item(stack)
    assert deliver(stack, "order.created", item) == 200
    stack.drain(timeout=60)
    records = DedupRecords.of(target(stack))
    key = f"order.created:{item}"
    # Then the replay's reader finds the very record the processor keeps (the same key, hashed alike)
    found = records.status(key)
    assert found is not None
    assert found["status"] == "COMPLETED"
    assert found["expiresAt"] > now().timestamp()
    # and forgetting it works once
    assert records.forget(key) is True
    assert records.status(key) is None
    assert records.forget(key) is False


def test_a_window_with_duplicates_is_replayed_once_per_dedup_key_and_decides_nothing_twice(
    stack: LocalEnvironment, capsys: pytest.CaptureFixture[str]
):
    # Given a window holding two orders, one of them delivered twice (an Offergrid retry), all decided
    start = now()  # the window holds this test's deliveries only (the previous test's are older)
    first, second = pending_item(stack), pending_item(stack)
    for item in (first, first, second):
        assert deliver(stack, "order.created", item) == 200
    stack.drain(timeout=60)
    end = now()
    later = pending_item(stack)  # and one after the window
    assert deliver(stack, "order.created", later) == 200
    stack.drain(timeout=60)
    decided = {item: patches(stack, item) for item in (first, second)}
    capsys.readouterr()
    # When the window is replayed from the archive
    code = run(stack, "archive", "--from", iso(start), "--to", iso(end))
    out = capsys.readouterr().out
    # Then each dedup key of the window was queued once, the webhook's key, marked as a replay
    assert code == 0, out
    messages = queued(stack)
    bodies = sorted((json.loads(m["Body"]) for m in messages), key=lambda b: b["dedupKey"])
    assert [b["dedupKey"] for b in bodies] == sorted([f"order.created:{first}", f"order.created:{second}"])
    assert {b["source"] for b in bodies} == {"replay"}
    assert all(b["correlationId"].startswith("replay:") for b in bodies)
    # And the person reads one line per delivery and the summary
    lines = out.strip().splitlines()
    assert len(lines) == 4
    assert sum("-> duplicate (of " in line for line in lines) == 1
    assert "3 delivery(ies) archived, 3 matching: 2 queued, 1 duplicate(s) in the window" in lines[-1]
    assert "2 processed before" in lines[-1]
    assert later not in out
    # And once the processor has them, nothing is decided twice: they were handled already
    stack.drain(timeout=60)
    assert {item: patches(stack, item) for item in decided} == decided


def test_a_dry_run_queues_nothing_and_the_filters_narrow_the_window(
    stack: LocalEnvironment, capsys: pytest.CaptureFixture[str]
):
    start = now()  # the window holds this test's deliveries only (the previous test's are older)
    one, other = pending_item(stack), pending_item(stack)
    deliver(stack, "order.created", one)
    deliver(stack, "order.created", other)
    empty_queues(stack)  # not processed: what the webhook queued is gone (say, a bad release ate it)
    end = now()
    capsys.readouterr()
    # A dry run says what it would queue and queues nothing
    assert run(stack, "archive", "--from", iso(start), "--to", iso(end), "--dry-run", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["would_queue"] == 2
    assert report["dryRun"] is True
    assert queued(stack) == []
    # --item narrows to one item's deliveries
    assert run(stack, "archive", "--from", iso(start), "--to", iso(end), "--item", one, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert [d["itemId"] for d in report["deliveries"]] == [one]
    assert [json.loads(m["Body"])["dedupKey"] for m in queued(stack)] == [f"order.created:{one}"]
    # a filter that matches nothing: exit 1, and why on stderr
    assert (
        run(stack, "archive", "--from", iso(start), "--to", iso(end), "--event-type", "order.cancelled") == 1
    )
    assert "no archived delivery of the window matches" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "yesterday"], "--from 'yesterday': not an ISO 8601 time"),
        (["--from", "2026-11-27T16:00Z", "--to", "2026-11-27T14:00Z"], "is not before --to"),
    ],
)
def test_a_window_that_is_not_one_is_refused_before_anything_is_done(
    stack: LocalEnvironment, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
):
    assert run(stack, "archive", *argv) == 2
    assert message in capsys.readouterr().err


def test_reprocess_revisits_what_offergrid_has_not_moved_on_and_nothing_else(
    stack: LocalEnvironment, capsys: pytest.CaptureFixture[str]
):
    assert stack.stack is not None
    # Given a bad release: it finished the message of a pending order without deciding it (its record
    # says done), while another order of the window was decided normally
    start = now()  # the window holds this test's deliveries only (the previous test's are older)
    stuck, decided = pending_item(stack), pending_item(stack)
    deliver(stack, "order.created", stuck)
    empty_queues(stack)
    bad_release = DynamoDBPersistenceLayer(
        table_name=stack.stack.outputs["IdempotencyTableName"], boto3_client=stack.stack.client("dynamodb")
    )
    bad_release.configure(IdempotencyConfig(event_key_jmespath="dedupKey"), key_prefix=IDEMPOTENCY_KEY_PREFIX)
    bad_release.save_success({"dedupKey": f"order.created:{stuck}"}, result={"outcome": "nothing done"})
    deliver(stack, "order.created", decided)
    stack.drain(timeout=60)
    end = now()
    assert stack.fake is not None
    assert stack.fake.order_items[stuck]["status"] == "pending"
    decided_patches = patches(stack, decided)
    window = ["--from", iso(start), "--to", iso(end)]
    # When the window is replayed plainly, the stuck order is answered as a duplicate: still pending
    assert run(stack, "archive", *window) == 0
    stack.drain(timeout=60)
    assert stack.fake.order_items[stuck]["status"] == "pending"
    capsys.readouterr()
    # When it is replayed with --reprocess
    assert run(stack, "archive", *window, "--reprocess", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    stack.drain(timeout=60)
    # Then the stuck order was revisited and is decided now, once
    actions = {d["itemId"]: (d["action"], d["detail"]) for d in report["deliveries"]}
    assert actions[stuck][0] == "queued"
    assert "revisited" in actions[stuck][1]
    assert stack.fake.order_items[stuck]["status"] == "accepted"
    assert patches(stack, stuck) == 1
    # And the order Offergrid moved on was left alone, said so, and not touched
    assert actions[decided] == (
        "left_alone",
        "Offergrid moved it on (last seen accepted): never decided again",
    )
    assert patches(stack, decided) == decided_patches


@pytest.mark.parametrize(
    ("event", "status", "decision", "revisited"),
    [
        ("order.created", "pending", None, True),
        ("order.created", "submitted_to_provider", Decision.DECIDED_ELSEWHERE, True),
        ("order.created", None, None, True),  # never recorded
        ("order.created", "pending", Decision.CANCELLED, False),  # docs/decisions.md#4
        ("order.created", "rejected", Decision.REJECTED, False),
        ("order.created", "cancelled", Decision.ACCEPTED, False),
        ("order.cancelled", "accepted", Decision.ACCEPTED, False),
        ("offer.ordered", None, None, False),
    ],
)
def test_what_reprocess_may_revisit(
    event: str, status: str | None, decision: Decision | None, revisited: bool
):
    webhook = normalise_payload({"event": event, "itemId": "i-1", "orderId": "o-1"})
    reason = _why_not_revisited(webhook, lambda _: (status, decision))
    assert (reason is None) is revisited, reason


def test_a_delivery_that_no_longer_verifies_is_refused_unless_the_archive_is_trusted(
    stack: LocalEnvironment, capsys: pytest.CaptureFixture[str]
):
    assert stack.stack is not None
    # Given a delivery archived while another webhook secret was in use (rotated out since)
    item = pending_item(stack)
    body = compact_json({"event": "order.created", "itemId": item})
    received = now()
    old = ArchivedDelivery(
        received, "req-old-secret", body.decode(), False, sign(body, "a-secret-rotated-out")
    )
    bucket = stack.stack.outputs["DeliveryArchiveUri"].split("/")[2]
    stack.stack.client("s3").put_object(Bucket=bucket, Key=old.key, Body=old.to_json())
    window = [
        "--from",
        iso(received - timedelta(milliseconds=1)),
        "--to",
        iso(received + timedelta(milliseconds=1)),
    ]
    # Then it is refused, and the exit status says so
    assert run(stack, "archive", *window) == 1
    assert "no longer verifies with the stack's secrets" in capsys.readouterr().out
    assert queued(stack) == []
    # unless the operator trusts the archive
    assert run(stack, "archive", *window, "--no-verify") == 0
    assert [json.loads(m["Body"])["dedupKey"] for m in queued(stack)] == [f"order.created:{item}"]


def test_a_verified_delivery_that_is_no_webhook_is_left_alone_and_fails_nothing(
    stack: LocalEnvironment, capsys: pytest.CaptureFixture[str]
):
    assert stack.stack is not None
    # Given a signed body the webhook answered 400 (no `event`) and archived all the same
    body = compact_json({"orderId": "o-no-event"})
    received = now()
    odd = ArchivedDelivery(received, "req-no-event", body.decode(), False, sign(body, LOCAL_WEBHOOK_SECRET))
    bucket = stack.stack.outputs["DeliveryArchiveUri"].split("/")[2]
    stack.stack.client("s3").put_object(Bucket=bucket, Key=odd.key, Body=odd.to_json())
    window = ["--from", iso(received), "--to", iso(received + timedelta(milliseconds=1))]
    # When its window is replayed, it is left alone, said why, and the run does not fail for it
    assert run(stack, "archive", *window, "--json") == 0
    [delivery] = json.loads(capsys.readouterr().out)["deliveries"]
    assert delivery["action"] == "left_alone"
    assert delivery["detail"].startswith("not a webhook the ingress takes (400 ")
    assert queued(stack) == []


# ---------------------------------------------------------------------------------------------------
def test_the_trace_tells_one_items_story(stack: LocalEnvironment, capsys: pytest.CaptureFixture[str]):
    assert stack.stack is not None
    # Given an order delivered twice, accepted, then scheduled by the provider's fulfilment system
    item = pending_item(stack)
    deliver(stack, "order.created", item)
    deliver(stack, "order.created", item)
    stack.drain(timeout=60)
    detail = {
        "id": "WO-ext-1",
        "offergridItemId": item,
        "status": "scheduled",
        "appointmentDate": "2030-01-02T10:00:00Z",
    }
    stack.stack.client("events").put_events(
        Entries=[
            {
                "EventBusName": stack.stack.outputs["ProviderEventBusName"],
                "Source": "acme.fulfilment",
                "DetailType": "workorder.status_changed",
                "Detail": json.dumps(detail),
            }
        ]
    )
    stack.drain(timeout=60)
    capsys.readouterr()
    # When on-call asks what happened to it
    assert run(stack, "trace", item, "--json") == 0
    story = json.loads(capsys.readouterr().out)
    # Then one timeline holds its deliveries, the decision steps, the work order and the status push
    sources = [entry["source"] for entry in story["timeline"]]
    assert sources.count("archive") == 2
    actions = [entry.get("action") for entry in story["timeline"] if entry["source"] == "record"]
    assert {"accepting", "accepted", "status_pushed"} <= set(actions)
    assert any(e["source"] == "work order" and "opened" in e["what"] for e in story["timeline"])
    # the decision and why (the coverage rules' answer), and what the processor remembers
    assert story["decision"]["decision"] == "accepted"
    assert story["decision"]["why"].startswith("serviceable")
    assert {m["dedupKey"]: m["status"] for m in story["messages"]}[f"order.created:{item}"] == "COMPLETED"
    assert story["workOrder"]["status"] == "open"
    # Offergrid's current view
    assert story["offergrid"]["status"] == "scheduled"
    # the query of its log lines, and locally the lines themselves: itemId in the webhook and the processor
    assert f'filter itemId = "{item}"' in story["logsInsights"]["query"]
    assert {line["service"] for line in story["logLines"]} >= {"webhook-ingress", "order-processor"}
    assert all(line["itemId"] == item for line in story["logLines"])
    # And for a person: the timeline, then the one-line summary
    assert run(stack, "trace", item) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"== the story of item {item} (the local stack)"
    assert lines[-1].startswith(f"item {item}: accepted; work order open; 2 delivery(ies) archived")
    assert "Offergrid says scheduled" in lines[-1]


def test_the_trace_of_an_item_finds_its_orders_cancellation(
    stack: LocalEnvironment, capsys: pytest.CaptureFixture[str]
):
    item = pending_item(stack)
    deliver(stack, "order.created", item)
    stack.drain(timeout=60)
    # an order.cancelled without itemId: it cancels every item of the order (docs/decisions.md#4)
    deliver(stack, "order.cancelled", item, include_item_id=False)
    stack.drain(timeout=60)
    capsys.readouterr()
    assert run(stack, "trace", item, "--json") == 0
    story = json.loads(capsys.readouterr().out)
    delivered = [e["what"] for e in story["timeline"] if e["source"] == "archive"]
    assert [what.split(" ")[0] for what in delivered] == ["order.created", "order.cancelled"]
    assert story["workOrder"]["status"] == "cancelled"
    assert story["offergrid"]["status"] == "cancelled"


def test_an_item_nobody_knows_exits_1(stack: LocalEnvironment, capsys: pytest.CaptureFixture[str]):
    assert run(stack, "trace", "item-nobody-knows") == 1
    assert "nothing in the local stack knows item item-nobody-knows" in capsys.readouterr().err


def test_the_local_stack_has_the_provider_bus_archive(local: LocalEnvironment):
    assert local.stack is not None
    archive = local.stack.resource("ProviderEventBusArchive")
    described = local.stack.client("events").describe_archive(ArchiveName=archive.ref)
    assert described["EventSourceArn"] == local.stack.resource("ProviderEventBus").attributes["Arn"]
    assert described["RetentionDays"] == 90
