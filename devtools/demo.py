"""`make demo`: the whole integration on this machine, through the real handlers, in well under 2 minutes.

Starts the local stack in this process (moto server, the Offergrid fake with compressed time, the
template's resources, one warm worker per function, the local API Gateway, the SQS event source)
and plays a provider's first day:

1. offer sync of samples/catalog.json (uploaded where the sync function's CATALOG_SOURCE_URI points),
   against an Offergrid that already holds one outdated and one retired offer; then a second run
   that must write nothing;
2. Offergrid delivers signed `order.created` webhooks over HTTP to the local endpoint: items inside
   and outside the coverage rules of the stack's serviceability parameter, one delivered twice
   (an Offergrid retry), and one Offergrid keeps answering 503 for (the poison message);
3. the orders queue drained by the poller: accepted, rejected, the duplicate decided once;
4. a cancellation webhook for an accepted item;
5. the provider's fulfilment system puts `workorder.status_changed` events on its event bus
   (scheduled, in_progress, completed), routed by the template's rule to the queue and pushed to
   Offergrid;
6. someone accepts an item by hand in the Offergrid dashboard (no webhook, no work order): the
   scheduled reconciliation finds the drift and its repair opens the one work order it needs;
7. the poison message ends in the dead-letter queue after `maxReceiveCount` receives, nothing else does;
8. Offergrid answers for the poison item again, and the demo's window is replayed from the archive of
   verified deliveries (`replay archive`): every delivery re-delivered once through the orders queue,
   the ones already decided answered as duplicates (no second decision), the poison item decided now;
9. one item's story (`replay trace`): its delivery, decision and why, work order, status pushes, log
   lines (the `itemId` key across the functions) and Offergrid's current view, in one timeline.

Prints a short report and exits 0 only if every expectation holds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from devtools import archive_replay, trace
from devtools.local.runtime import REPO_ROOT
from devtools.local.stack import DEFAULT_TEMPLATE, LOCAL_WEBHOOK_SECRET, SAMPLE_CATALOG, LocalEnvironment
from devtools.local.template import FunctionSpec
from devtools.stack_target import Target

STATUS_EVENT: Final = "workorder.status_changed"
PROVIDER_SOURCE: Final = "acme.fulfilment"
DEMO_TIME_SCALE: Final = 60.0
RETIRED_SKU: Final = "LEGACY-ADSL-8"
# The processor's and the sync's workers run their handler through this shim, which gives them a
# runtime on the fake's compressed clock (devtools/demo_clock/demo_scaled_handler.py).
CLOCK_SHIM_DIR: Final = Path(__file__).resolve().parent / "demo_clock"
CLOCK_SHIM_HANDLER: Final = "demo_scaled_handler.lambda_handler"
_ACCEPTED_OR_LATER: Final = frozenset({"accepted", "scheduled", "in_progress", "completed", "active"})

# Addresses the demo orders ship to. Which ones are serviceable is decided by the coverage rules
# read from the stack (the template's default); the demo only checks the processor agrees with them.
ADDRESSES: Final = (
    {"street": "1 Market St", "city": "San Francisco", "state": "CA", "zipCode": "94105", "country": "US"},
    {"street": "350 5th Ave", "city": "New York", "state": "NY", "zipCode": "10118", "country": "US"},
    {"street": "600 Congress Ave", "city": "Austin", "state": "TX", "zipCode": "78701", "country": "US"},
    {"street": "290 Bremner Blvd", "city": "Toronto", "state": "ON", "zipCode": "M5V 3L9", "country": "CA"},
    {"street": "10 Downing St", "city": "London", "state": "LND", "zipCode": "SW1A 2AA", "country": "GB"},
)


class DemoError(Exception):
    """A step cannot run (a function or resource the scenario needs is missing)."""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class DemoReport:
    checks: list[Check] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)


def _say(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------------------------------
# Finding the pieces in the template (by what they do, not by name)
# ---------------------------------------------------------------------------------------------------
def _function_with(
    env: LocalEnvironment, what: str, predicate: Callable[[FunctionSpec], bool]
) -> FunctionSpec:
    for spec in env.specs.values():
        if predicate(spec):
            if not env.has_code(spec.logical_id):
                raise DemoError(f"the {what} ({spec.logical_id}) has no code yet in {spec.code_uri}")
            return spec
    raise DemoError(f"template.yaml has no {what} yet: this step cannot run")


def _webhook_function(env: LocalEnvironment) -> FunctionSpec:
    return _function_with(env, "webhook function (an Api event)", lambda s: bool(s.events_of_type("Api")))


def _processor_function(env: LocalEnvironment) -> FunctionSpec:
    return _function_with(env, "order processor (an SQS event)", lambda s: bool(s.events_of_type("SQS")))


def _sync_function(env: LocalEnvironment) -> FunctionSpec:
    return _function_with(
        env, "offer sync (a schedule event)", lambda s: bool(s.events_of_type("ScheduleV2", "Schedule"))
    )


def _status_bus(env: LocalEnvironment) -> str | None:
    """The event bus whose rule routes workorder.status_changed (None: no such rule in the template)."""
    assert env.template is not None
    assert env.stack is not None
    for logical_id, resource in env.template.active_resources():
        if resource.get("Type") != "AWS::Events::Rule":
            continue
        properties = env.template.resolve(resource.get("Properties") or {}, env.stack.resolver(env.template))
        pattern = properties.get("EventPattern") or {}
        if isinstance(pattern, str):
            pattern = json.loads(pattern)
        if STATUS_EVENT in (pattern.get("detail-type") or []):
            return str(properties.get("EventBusName", "default")).rsplit("/", 1)[-1]
        del logical_id
    return None


def _dead_letter_queue(env: LocalEnvironment, queue_url: str) -> str:
    assert env.stack is not None
    attributes = env.stack.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]
    )
    policy = json.loads(attributes["Attributes"].get("RedrivePolicy") or "{}")
    if "deadLetterTargetArn" not in policy:
        raise DemoError("the orders queue has no RedrivePolicy (no DLQ)")
    return env.stack.queue_url_for_arn(policy["deadLetterTargetArn"])


# ---------------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------------
def step_offer_sync(env: LocalEnvironment, report: DemoReport) -> None:
    assert env.fake is not None
    assert env.stack is not None
    spec = _sync_function(env)
    source = spec.environment.get("CATALOG_SOURCE_URI", "")
    parts = urlsplit(source)
    if parts.scheme != "s3":
        raise DemoError(
            f"{spec.logical_id}: CATALOG_SOURCE_URI is {source!r}, the demo needs an s3:// catalog"
        )
    catalog = json.loads(SAMPLE_CATALOG.read_text(encoding="utf-8"))
    env.upload_catalog(SAMPLE_CATALOG, function_id=spec.logical_id)
    # Offergrid already lists two offers of this provider: one outdated, one retired from the catalog.
    first = catalog[0]
    env.fake.add_offer(
        name=first["productName"],
        category=first["type"],
        sku=first["sku"],
        status="active",
        monthlyPrice=round(float(first["price"]) - 5, 2),
        description="last year's price",
    )
    env.fake.add_offer(
        name="ADSL 8", category="internet", sku=RETIRED_SKU, status="active", monthlyPrice=19.99
    )
    _say(f"  catalog: {len(catalog)} products -> {source}")
    run = env.invoke(spec.logical_id, {"dryRun": False, "sync": True, "sweep": False})
    if not run.ok:
        raise DemoError(f"offer sync failed: {run.error}")
    sync = (run.result or {}).get("sync") or {}
    counts, valid = sync.get("counts") or {}, int(sync.get("rowsValid", 0))
    again = env.invoke(spec.logical_id, {"dryRun": False, "sync": True, "sweep": False})
    second = ((again.result or {}).get("sync") or {}) if again.ok else {}
    writes_again = sum(int(v) for v in (second.get("counts") or {}).values())
    retired = next((o for o in env.fake.offers.values() if o.get("sku") == RETIRED_SKU), {})
    report.lines.append(
        f"offers: {counts.get('create', 0)} created, {counts.get('update', 0)} updated, "
        f"{counts.get('deactivate', 0)} deactivated, {sync.get('failed', 0)} failed "
        f"({valid} valid rows of {sync.get('rowsRead', '?')}); second run: {writes_again} writes"
    )
    report.check("sync creates every new catalog offer", counts.get("create") == valid - 1, str(counts))
    report.check("sync updates the outdated offer only", counts.get("update") == 1, str(counts))
    report.check(
        "sync deactivates the retired offer", retired.get("status") == "inactive", str(retired.get("status"))
    )
    report.check("sync reports no failure", int(sync.get("failed", 1)) == 0, str(sync.get("failures")))
    report.check("a second sync writes nothing", again.ok and writes_again == 0, str(second.get("counts")))


@dataclass
class SeededOrder:
    item_id: str
    order_id: str
    address: dict[str, str]
    serviceable: bool
    poison: bool = False


def _coverage(env: LocalEnvironment, processor: FunctionSpec) -> Callable[[dict[str, str]], bool]:
    """What the stack's coverage rules say about an address (the layer's own rules evaluator)."""
    assert env.stack is not None
    parameter = processor.environment.get("SERVICEABILITY_RULES_PARAMETER")
    if not parameter:
        raise DemoError(f"{processor.logical_id} has no SERVICEABILITY_RULES_PARAMETER")
    document = env.stack.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
    layer = str(REPO_ROOT / "layers" / "shared")
    if layer not in sys.path:
        sys.path.append(layer)
    from offergrid_integration.offergrid.models import ServiceAddress
    from offergrid_integration.orders.serviceability import parse_coverage_rules

    rules = parse_coverage_rules(document)
    return lambda address: rules.evaluate(ServiceAddress.model_validate(address)).serviceable


def step_orders(env: LocalEnvironment, report: DemoReport) -> list[SeededOrder]:
    assert env.fake is not None
    assert env.stack is not None
    url = env.api_url(_webhook_function(env).logical_id)
    processor = _processor_function(env)
    serviceable = _coverage(env, processor)
    offer = next(iter(env.fake.offers.values()), None)
    orders: list[SeededOrder] = []
    for address in (*ADDRESSES, ADDRESSES[0]):
        item = env.fake.add_order_item(
            status="pending", serviceAddress=address, **({"offerId": offer["id"]} if offer else {})
        )
        orders.append(SeededOrder(item["id"], item["orderId"], address, serviceable(address)))
    poison = orders[-1]
    poison.poison = True
    # Offergrid keeps failing for this one item, asking to come back in an hour: every attempt fails.
    env.fake.inject_fault(
        "status", status=503, retry_after=3600, times=10_000, path=f"/provider/orders/{poison.item_id}"
    )
    report.check(
        "the scenario has orders on both sides of the coverage rules",
        any(o.serviceable for o in orders) and any(not o.serviceable for o in orders),
        "the coverage rules changed: adjust ADDRESSES",
    )
    statuses = []
    for order in orders:
        payload = env.fake.webhook_payload("order.created", order.item_id)
        statuses.append(env.fake.deliver_webhook(url, payload, LOCAL_WEBHOOK_SECRET)[0])
    # Offergrid did not get our answer in time and delivers the first one again.
    duplicate = env.fake.webhook_payload("order.created", orders[0].item_id)
    statuses.append(env.fake.deliver_webhook(url, duplicate, LOCAL_WEBHOOK_SECRET)[0])
    report.check("every webhook answered 2xx", all(200 <= s < 300 for s in statuses), str(statuses))
    _say(f"  {len(statuses)} signed webhooks delivered to {url} (one of them a redelivery)")
    env.drain(timeout=60)
    decided = [o for o in orders if not o.poison]
    for order in decided:
        expected = "accepted" if order.serviceable else "rejected"
        actual = env.fake.order_items[order.item_id]["status"]
        report.check(f"{order.address['city']} order {expected}", actual == expected, actual)
    patches = env.fake.calls_matching("PATCH", f"/provider/orders/{orders[0].item_id}/status")
    report.check("the redelivered webhook is decided once", len(patches) == 1, f"{len(patches)} PATCHes")
    return orders


def step_cancellation(
    env: LocalEnvironment, report: DemoReport, orders: list[SeededOrder]
) -> SeededOrder | None:
    assert env.fake is not None
    accepted = [o for o in orders if o.serviceable and not o.poison]
    if len(accepted) < 2:
        return None
    cancelled = accepted[1]
    url = env.api_url(_webhook_function(env).logical_id)
    payload = env.fake.webhook_payload("order.cancelled", cancelled.item_id, reason="Customer moved")
    status, _ = env.fake.deliver_webhook(url, payload, LOCAL_WEBHOOK_SECRET)
    env.drain(timeout=60)
    actual = env.fake.order_items[cancelled.item_id]["status"]
    report.check("cancellation webhook answered 2xx", 200 <= status < 300, str(status))
    report.check(f"{cancelled.address['city']} order cancelled", actual == "cancelled", actual)
    return cancelled


def step_status_updates(env: LocalEnvironment, report: DemoReport, orders: list[SeededOrder]) -> list[str]:
    assert env.fake is not None
    assert env.stack is not None
    target = next(o for o in orders if o.serviceable and not o.poison)
    work_order = (env.fake.order_items[target.item_id].get("metadata") or {}).get(
        "workOrderId", f"WO-{target.item_id}"
    )
    bus = _status_bus(env)
    processor = _processor_function(env)
    queue_url = env.sources_for(processor.logical_id)[0].queue_url
    appointment = (
        (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    )
    pushed: list[str] = []
    for status, notes in (
        ("scheduled", "Installation booked; the technician calls 30 minutes ahead."),
        ("in_progress", "Technician on site."),
        ("completed", "Installed and tested."),
    ):
        detail = {
            "id": work_order,
            "offergridItemId": target.item_id,
            "status": status,
            "notes": notes,
            "appointmentDate": appointment,
            "technicianId": "tech-042",
        }
        if bus is not None:
            env.stack.client("events").put_events(
                Entries=[
                    {
                        "EventBusName": bus,
                        "Source": PROVIDER_SOURCE,
                        "DetailType": STATUS_EVENT,
                        "Detail": json.dumps(detail),
                    }
                ]
            )
        else:  # no rule in the template yet: deliver the envelope the rule would
            envelope = {
                "version": "0",
                "id": f"evt-{status}-{target.item_id}",
                "detail-type": STATUS_EVENT,
                "source": PROVIDER_SOURCE,
                "time": appointment,
                "region": env.region,
                "resources": [],
                "detail": detail,
            }
            env.stack.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(envelope))
        env.drain(timeout=60)
        pushed.append(env.fake.order_items[target.item_id]["status"])
    history = [h.get("status") or h.get("to") for h in env.fake.history(target.item_id)]
    report.check(
        f"status updates reach Offergrid via {'the event bus' if bus else 'the queue (no bus rule yet)'}",
        pushed == ["scheduled", "in_progress", "completed"],
        f"{pushed}; history {history}",
    )
    return pushed


def step_reconcile(env: LocalEnvironment, report: DemoReport) -> None:
    """An item accepted by hand in the Offergrid dashboard: the reconciliation repairs the drift."""
    assert env.fake is not None
    assert env.stack is not None
    sync = _sync_function(env)
    table = _processor_function(env).environment.get("WORK_ORDERS_TABLE", "")
    item = env.fake.add_order_item(status="accepted", serviceAddress=ADDRESSES[0])
    _say(f"  {item['id']} accepted by hand in the Offergrid dashboard: no webhook, no work order")
    run = env.invoke(sync.logical_id, {"sweep": False, "sync": False, "reconcile": True})
    if not run.ok:
        raise DemoError(f"reconciliation failed: {run.error}")
    found = (run.result or {}).get("reconcile") or {}
    env.drain(timeout=60)
    stored = env.stack.client("dynamodb").scan(TableName=table).get("Items", []) if table else []
    opened = [wo for wo in stored if wo.get("itemId", {}).get("S") == item["id"]]
    again = env.invoke(sync.logical_id, {"sweep": False, "sync": False, "reconcile": True})
    left = ((again.result or {}).get("reconcile") or {}).get("differences") if again.ok else None
    drift = ", ".join(f"{n} {kind}" for kind, n in (found.get("drift") or {}).items() if n)
    report.lines.append(
        f"reconciliation: drift {drift or 'none'}, {found.get('repairsQueued', 0)} repair(s) queued, "
        f"{found.get('calls', '?')} Offergrid calls; next run: {len(left or [])} differences"
    )
    report.check(
        "the reconciliation finds the item accepted by hand",
        [d.get("itemId") for d in found.get("differences") or []] == [item["id"]],
        str(found.get("differences")),
    )
    report.check(
        "its repair opens exactly one work order",
        len(opened) == 1 and opened[0].get("status", {}).get("S") == "open",
        str(opened),
    )
    report.check("the next reconciliation finds no drift", left == [], str(left))


def step_dead_letters(env: LocalEnvironment, report: DemoReport, orders: list[SeededOrder]) -> list[str]:
    assert env.stack is not None
    processor = _processor_function(env)
    queue_url = env.sources_for(processor.logical_id)[0].queue_url
    dlq_url = _dead_letter_queue(env, queue_url)
    sqs = env.stack.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
    ).get("Messages", [])
    keys = [
        (m.get("MessageAttributes") or {}).get("dedupKey", {}).get("StringValue", m["Body"][:60])
        for m in messages
    ]
    poison = next(o for o in orders if o.poison)
    report.check(
        "only the poison message is in the DLQ",
        len(keys) == 1 and poison.item_id in keys[0],
        f"{keys}",
    )
    return keys


def _target(env: LocalEnvironment) -> Target:
    """The local stack as the replay tool sees it (its outputs, its moto server)."""
    assert env.stack is not None
    return Target(outputs=dict(env.stack.outputs), local=env.stack, region=env.stack.region)


def step_archive_replay(
    env: LocalEnvironment, report: DemoReport, orders: list[SeededOrder], since: datetime
) -> None:
    """The poison item's cause is fixed (Offergrid answers again); the window is replayed from the archive."""
    assert env.fake is not None
    env.fake.clear_faults()
    poison = next(o for o in orders if o.poison)
    decided_before = {
        item_id: len(env.fake.calls_matching("PATCH", f"/provider/orders/{item_id}/status"))
        for item_id in env.fake.order_items
        if item_id != poison.item_id
    }
    args = argparse.Namespace(
        to="now",
        event_type=None,
        item=None,
        dry_run=False,
        reprocess=False,
        no_verify=False,
        **{"from": _iso(since)},
    )
    replayed = archive_replay.run(args, _target(env))
    env.drain(timeout=60)
    report.lines.append(replayed.summary())
    distinct = {d.dedup_key for d in replayed.deliveries if d.dedup_key}
    report.check(
        "the window is replayed from the archive, each dedup key queued once",
        replayed.ok and replayed.count("queued") == len(distinct) and replayed.count("duplicate") >= 1,
        replayed.summary(),
    )
    decided_after = {
        item_id: len(env.fake.calls_matching("PATCH", f"/provider/orders/{item_id}/status"))
        for item_id in decided_before
    }
    report.check(
        "the replay decides nothing twice (dedup keys)", decided_after == decided_before, f"{decided_after}"
    )
    status = env.fake.order_items[poison.item_id]["status"]
    expected = "accepted" if poison.serviceable else "rejected"
    report.check("the poison order, replayed once Offergrid answers, is decided", status == expected, status)


def step_trace(env: LocalEnvironment, report: DemoReport, item_id: str, log_dir: Path | None) -> None:
    """One item's story, as on-call asks for it."""
    story = trace.trace_item(_target(env), item_id, log_dir=log_dir)
    _say("    (the processor and the sync run on the demo's compressed clock, 60x: their times are ahead)")
    for line in story.lines():
        _say(f"    {line}")
    report.lines.append(story.summary())
    sources = {entry.source for entry in story.timeline}
    pushes = [entry for entry in story.timeline if entry.what.startswith("status pushed")]
    report.check(
        "the item's story: its delivery, decision, work order and status pushes in one timeline",
        {"archive", "record", "work order"} <= sources
        and (story.decision or {}).get("decision") == "accepted"
        and len(pushes) == 3,
        f"sources {sorted(sources)}, decision {story.decision}, {len(pushes)} pushes",
    )
    report.check(
        "the story ends with Offergrid's current view",
        (story.offergrid or {}).get("status") == "completed",
        str(story.offergrid or story.offergrid_error),
    )
    if log_dir is not None:
        services = {str(line.get("service")) for line in story.log_lines}
        report.check(
            "the item's log lines carry its itemId in the webhook and the processor",
            {"webhook-ingress", "order-processor"} <= services,
            str(sorted(services)),
        )


def _traced(items: list[str]) -> str:
    if not items:
        raise DemoError("the status-update step did not run: no item to trace")
    return items[0]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------------
def run_demo(
    *,
    time_scale: float = DEMO_TIME_SCALE,
    log_dir: Path | None = None,
    template: Path = DEFAULT_TEMPLATE,
    code_root: Path | None = None,
) -> DemoReport:
    report = DemoReport()
    started = time.monotonic()
    _say("==> starting the local stack: moto server, Offergrid fake, template resources, function workers")
    env = LocalEnvironment(
        template_path=template, code_root=code_root, time_scale=time_scale, log_dir=log_dir, retry_delay=0.0
    )
    with env.start(warm=False):
        on_compressed_clock(env, time_scale)
        failures = env.warm_up()
        _say(f"    up in {time.monotonic() - started:.1f} s; function logs in {log_dir}")
        for function_id, error in failures.items():
            _say(f"    ! {function_id}: {error}")
        steps: list[tuple[str, Callable[[], Any]]] = []
        orders: list[SeededOrder] = []
        traced: list[str] = []
        since = datetime.now(UTC) - timedelta(seconds=1)

        def orders_step() -> None:
            orders.extend(step_orders(env, report))

        def status_step() -> None:
            step_status_updates(env, report, orders)
            traced.append(next(o.item_id for o in orders if o.serviceable and not o.poison))

        steps = [
            ("offer sync of samples/catalog.json", lambda: step_offer_sync(env, report)),
            ("order.created webhooks -> queue -> order processor", orders_step),
            ("a cancellation", lambda: step_cancellation(env, report, orders)),
            ("status updates from the provider's fulfilment system", status_step),
            ("drift repaired by the reconciliation", lambda: step_reconcile(env, report)),
            ("the dead-letter queue", lambda: step_dead_letters(env, report, orders)),
            (
                "a window replayed from the archive of verified deliveries",
                lambda: step_archive_replay(env, report, orders, since),
            ),
            ("one item's story (replay trace)", lambda: step_trace(env, report, _traced(traced), log_dir)),
        ]
        for title, step in steps:
            _say(f"==> {title}")
            step_started = time.monotonic()
            try:
                step()
                _say(f"    ({time.monotonic() - step_started:.1f} s)")
            except DemoError as error:
                report.check(title, False, f"cannot run: {error}")
                _say(f"    ! {error}")
            except (TimeoutError, StopIteration, KeyError) as error:
                report.check(title, False, f"{type(error).__name__}: {error}")
                _say(f"    ! {type(error).__name__}: {error}")
        _summarise(env, report, orders)
    report.seconds = time.monotonic() - started
    return report


def on_compressed_clock(env: LocalEnvironment, time_scale: float) -> list[str]:
    """Run the functions that wait (on the rate budget, on backoff) on the fake's compressed clock,
    injected as the tests inject it: the handler shim builds their runtime with `ScaledClock`.
    Returns the functions changed (before their workers start)."""
    changed: list[str] = []
    for worker in env.workers.values():
        if not (worker.spec.events_of_type("SQS") or worker.spec.events_of_type("ScheduleV2", "Schedule")):
            continue
        worker.environment["OFFERGRID_DEMO_HANDLER"] = worker.spec.handler
        worker.environment["OFFERGRID_DEMO_TIME_SCALE"] = str(time_scale)
        worker.spec = dataclasses.replace(worker.spec, handler=CLOCK_SHIM_HANDLER)
        worker.layer_dirs = (*worker.layer_dirs, CLOCK_SHIM_DIR)
        changed.append(worker.name)
    return changed


def _summarise(env: LocalEnvironment, report: DemoReport, orders: list[SeededOrder]) -> None:
    if env.fake is None:
        return
    statuses = [
        env.fake.order_items[o.item_id]["status"] for o in orders if o.item_id in env.fake.order_items
    ]
    report.lines.append(
        f"orders: {sum(s in _ACCEPTED_OR_LATER for s in statuses)} "
        f"accepted, {statuses.count('rejected')} rejected, {statuses.count('cancelled')} cancelled, "
        f"{statuses.count('pending')} undecided"
    )
    pushed = [
        str((call.body or {}).get("status"))
        for call in env.fake.calls_matching("PATCH", "/provider/orders/")
        if isinstance(call.body, dict) and call.status is not None and call.status < 300
    ]
    report.lines.append(f"statuses pushed to Offergrid: {len(pushed)} ({', '.join(pushed)})")
    for source in env.sources:
        totals = source.totals
        report.lines.append(
            f"queue consumer {source.function_id}: {totals.batches} batches, {totals.received} records, "
            f"{totals.failed} retried"
        )


def print_report(report: DemoReport) -> None:
    _say("\n== what happened")
    for line in report.lines:
        _say(f"  {line}")
    _say("\n== checks")
    for check in report.checks:
        mark = "ok  " if check.ok else "FAIL"
        _say(f"  [{mark}] {check.name}" + ("" if check.ok else f"  ({check.detail})"))
    verdict = "the scenario went as expected" if report.ok else "the scenario did NOT go as expected"
    _say(f"\n{verdict} ({report.seconds:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=DEMO_TIME_SCALE,
        help="the Offergrid fake's clock speed (default 60: a minute per second)",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=REPO_ROOT / ".local" / "demo-logs",
        help="where each function's log goes (default .local/demo-logs)",
    )
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="default: template.yaml")
    parser.add_argument(
        "--code-root",
        type=Path,
        default=None,
        help="folder the template's CodeUri paths are relative to (default: the template's)",
    )
    args = parser.parse_args(argv)
    report = run_demo(
        time_scale=args.time_scale, log_dir=args.log_dir, template=args.template, code_root=args.code_root
    )
    print_report(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
