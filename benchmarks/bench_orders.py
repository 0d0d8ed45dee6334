"""Peak order throughput (issue 16): a burst of orders through the real path, idle and during a sync.

    .venv/bin/python benchmarks/bench_orders.py [--orders 200] [--offers 2000] [--scale 10]

Prints figures, asserts nothing. Everything runs in this process on one compressed clock
(`ScaledClock(--scale)`: the Offergrid fake, the functions' runtimes and the event source all read
it, as `make demo` and the tests do), against the fake at the real limits (100/min, 10,000/h) and
AWS in moto (`mock_aws`). The path is the deployed one:

    signed webhook (API Gateway event) -> webhook ingress handler -> orders queue (SQS)
      -> event source (BatchSize, MaximumBatchingWindowInSeconds, 2 concurrent instances: the
         template's defaults) -> order processor (its Runtime: idempotency, records, work orders,
         EventBridge, the shared DynamoDB rate budget) -> Offergrid fake

and, for the "during a sync" runs, the offer sync's runtime creating `--offers` offers from a catalog
in S3 on the same DynamoDB budget. Each figure is in fake-clock minutes:

- decided/min: decided items / (last decision - first webhook);
- calls/item: the order path's Offergrid requests (`/provider/orders...`) per decided item;
- p50 / p95: webhook delivered -> decision PATCH received by the fake, per item;
- 429s: answers 429 from the fake (all callers);
- sync writes: offers the sync wrote while the burst was being decided.

"before" is main's pattern: one first-come first-served budget for every caller. "lanes" is the
budget with priority lanes (ratelimit.py): the sync only above the orders' reserve (40 %).
Both run the processor with batched reads (orders/steps.py BatchItemReads: a batch's new orders read with one
pending listing, then a PATCH each). The issue's goals: >= 80 decided/min (the GET + PATCH pattern
caps it at ~46), <= 1.2 calls/item, zero 429s, p95 during a sync <= 2x idle.
"""

# ruff: noqa: E402 - the repo root and the layer are put on sys.path, and Powertools configured, first
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (str(ROOT), str(ROOT / "layers" / "shared")):
    if path not in sys.path:
        sys.path.insert(0, path)
os.environ.update(
    {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_METRICS_NAMESPACE": "OffergridIntegrationBench",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
)
for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(name, None)

import boto3
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from devtools.local.poller import build_sqs_event
from devtools.offergrid_fake import OffergridFake
from functions.offer_sync.app import ScheduleInput, SyncRuntime
from functions.order_processor import app as processor_app
from functions.webhook_ingress import app as ingress_app
from offergrid_integration.catalog.settings import SyncSettings
from offergrid_integration.catalog.state import InMemorySyncState
from offergrid_integration.clock import ScaledClock
from offergrid_integration.config import load_settings
from offergrid_integration.observability import logger
from offergrid_integration.offergrid.wiring import client_from_settings
from offergrid_integration.orders.processor import ProcessorSettings
from offergrid_integration.ratelimit import Lane
from offergrid_integration.sqs_queue import SqsQueue
from offergrid_integration.webhooks.ingress import WebhookIngress

API_KEY = "test-api-key"
WEBHOOK_SECRET = "local-dev-webhook-secret"
REGION = "eu-west-1"
RULES = {"version": 1, "defaultCountry": "US", "allow": [{"countries": ["US"]}]}
INSTANCES = 2  # OrderProcessorMaxConcurrency's default
FUNCTION_TIMEOUT = 60.0  # the processor's Timeout, in clock seconds
SYNC_HEAD_START = 30.0  # clock seconds the sync runs before the burst


def template_default(name: str) -> float:
    from devtools.cfn_yaml import load_template

    return float(load_template()["Parameters"][name]["Default"])


@dataclass
class Figures:
    decided: int
    per_minute: float
    calls_per_item: float
    p50: float
    p95: float
    rate_limited: int
    sync_writes: int
    batches: int


class WithoutMetricLines:
    """stdout without the EMF lines Powertools prints when 100 metrics pile up between flushes (the
    benchmark calls the record handler, not the decorated Lambda handler that flushes them)."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self._line = ""

    def write(self, text: str) -> int:
        self._line += text
        while "\n" in self._line:
            line, self._line = self._line.split("\n", 1)
            if not line.startswith('{"_aws"'):
                self.out.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.out.flush()


class ClockContext:
    """A Lambda context whose remaining time runs on the benchmark's clock."""

    function_name = "order-processor-bench"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:order-processor-bench"
    aws_request_id = "bench"

    def __init__(self, clock: ScaledClock, timeout: float) -> None:
        self._clock = clock
        self._deadline = clock.now() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock.now()) * 1000))


def atomic_conditional_writes() -> None:
    """DynamoDB applies a conditional write atomically; moto does not lock: make it (as the hammer test)."""
    lock = threading.Lock()
    put_item = DynamoDBBackend.put_item

    def atomic(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return put_item(self, *args, **kwargs)

    DynamoDBBackend.put_item = atomic  # type: ignore[method-assign]


def create_stack(fake_url: str, offers: int, reserve_percent: int) -> tuple[dict[str, str], str, str]:
    """The processor's and the sync's environment, the orders queue URL and ARN."""
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName="orders",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "itemId", "AttributeType": "S"},
            {"AttributeName": "orderId", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "itemId", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byOrderId",
                "KeySchema": [{"AttributeName": "orderId", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    for table, key in (("work-orders", "workOrderId"), ("idempotency", "id"), ("rate-limit", "pk")):
        dynamodb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        )
    secret = boto3.client("secretsmanager").create_secret(Name="offergrid/api-key", SecretString=API_KEY)
    boto3.client("ssm").put_parameter(
        Name="/offergrid/coverage-rules", Type="String", Value=json.dumps(RULES)
    )
    boto3.client("events").create_event_bus(Name="provider-bus")
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "360"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="catalog", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    catalog = [
        {
            "sku": f"BENCH-{n:05d}",
            "productName": f"Bench fiber {n}",
            "type": "internet",
            "price": 40 + n % 50,
            "isActive": True,
            "description": "Benchmark product",
            "minBandwidth": 100,
            "maxBandwidth": 100,
            "connectionType": "fiber",
            "dataCap": None,
        }
        for n in range(offers)
    ]
    s3.put_object(Bucket="catalog", Key="catalog.json", Body=json.dumps(catalog).encode())
    env = {
        "OFFERGRID_API_URL": fake_url,
        "OFFERGRID_API_KEY_SECRET": secret["ARN"],
        "RATE_LIMIT_TABLE": "rate-limit",
        "ORDER_RESERVE_PERCENT": str(reserve_percent),
        "ORDERS_TABLE": "orders",
        "WORK_ORDERS_TABLE": "work-orders",
        "IDEMPOTENCY_TABLE": "idempotency",
        "EVENT_BUS_NAME": "provider-bus",
        "SERVICEABILITY_RULES_PARAMETER": "/offergrid/coverage-rules",
        "CATALOG_SOURCE_URI": "s3://catalog/catalog.json",
        "SYNC_STATE_TABLE": "unused-in-memory",
        "ORDERS_QUEUE_URL": queue_url,
    }
    return env, queue_url, queue_arn


def webhook_event(template: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """An API Gateway (REST) event carrying `payload`, signed as Offergrid signs it."""
    body = json.dumps(payload, separators=(",", ":"))
    signature = hmac.new(WEBHOOK_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    event: dict[str, Any] = json.loads(json.dumps(template))
    event["body"] = body
    event["isBase64Encoded"] = False
    event["headers"]["X-Offergrid-Signature"] = signature
    event["multiValueHeaders"]["X-Offergrid-Signature"] = [signature]
    return event


class EventSource:
    """The SQS event source mapping on the benchmark clock: BatchSize, the batching window, and one
    poller per concurrent instance; failed records go back to the queue."""

    def __init__(
        self, clock: ScaledClock, queue_url: str, queue_arn: str, batch_size: int, window: float
    ) -> None:
        self.clock, self.queue_url, self.queue_arn = clock, queue_url, queue_arn
        self.batch_size, self.window = batch_size, window
        self.sqs = boto3.client("sqs")
        self.stop = threading.Event()
        self.batches = 0
        self._lock = threading.Lock()

    def gather(self) -> list[Any]:
        messages: list[Any] = []
        first_seen: float | None = None
        while not self.stop.is_set() and len(messages) < self.batch_size:
            received = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages.extend(received)
            if messages and first_seen is None:
                first_seen = self.clock.now()
            if first_seen is not None and self.clock.now() - first_seen >= self.window:
                break
            if not received:
                self.clock.sleep(0.2 if messages else 0.5)
        return messages

    def run_instance(self, runtime: processor_app.Runtime) -> None:
        while not self.stop.is_set():
            messages = self.gather()
            if not messages:
                continue
            with self._lock:
                self.batches += 1
            event = build_sqs_event(messages, self.queue_arn, REGION)
            context = ClockContext(self.clock, FUNCTION_TIMEOUT)
            runtime.bind(context)  # type: ignore[arg-type]
            response = runtime.batch.process(event)
            failed = {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] in failed:  # visible again at once (a compressed visibility timeout)
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def scenario(args: argparse.Namespace, *, lanes: bool, with_sync: bool) -> Figures:
    clock = ScaledClock(args.scale)
    with mock_aws(), OffergridFake(api_keys=(API_KEY,), clock=clock, per_minute=100, per_hour=10_000) as fake:
        env, queue_url, queue_arn = create_stack(fake.base_url, args.offers, 40 if lanes else 0)
        items = [fake.add_order_item(status="pending") for _ in range(args.orders)]
        ingress_app.reset(
            WebhookIngress(
                secrets=lambda *, force_refresh=False: [WEBHOOK_SECRET],
                queue=SqsQueue(queue_url),
                clock=clock,
            )
        )
        settings = load_settings(ProcessorSettings, env)
        instances = [processor_app.Runtime(settings, clock=clock) for _ in range(INSTANCES)]
        source = EventSource(clock, queue_url, queue_arn, args.batch_size, args.batching_window)
        pollers = [threading.Thread(target=source.run_instance, args=(r,), daemon=True) for r in instances]

        sync_stop = threading.Event()
        sync_thread: threading.Thread | None = None
        if with_sync:
            sync = SyncRuntime(load_settings(SyncSettings, env), clock=clock, state=InMemorySyncState(clock))
            if not lanes:  # main's pattern: the sync in the one first-come first-served lane
                sync.client = client_from_settings(
                    sync.settings, remaining_time=sync.remaining_time, clock=clock, lane=Lane.ORDERS
                )
            request = ScheduleInput(sweep=False, sync=True)
            sync_thread = threading.Thread(
                target=sync.run,
                args=(request,),
                kwargs={"remaining_time": lambda: 0.0 if sync_stop.is_set() else 3600.0},
                daemon=True,
            )
            sync_thread.start()
            clock.sleep(SYNC_HEAD_START)

        for poller in pollers:
            poller.start()
        template = json.loads((ROOT / "events" / "webhook_order_created.json").read_text())
        sent: dict[str, float] = {}
        for item in items:
            payload = {
                "event": "order.created",
                "orderId": item["orderId"],
                "itemId": item["id"],
                "offerId": item["offerId"],
                "timestamp": "2026-11-30T04:00:00.000Z",
            }
            sent[item["id"]] = clock.now()
            response = ingress_app.lambda_handler(webhook_event(template, payload), ClockContext(clock, 30))
            if response["statusCode"] != 202 and response["statusCode"] != 200:
                raise SystemExit(f"the ingress answered {response['statusCode']}: {response['body']}")
        start = min(sent.values())
        deadline = start + args.max_minutes * 60
        while clock.now() < deadline and any(
            item["status"] == "pending" for item in fake.order_items.values()
        ):
            time.sleep(0.05)
        end = clock.now()
        source.stop.set()
        sync_stop.set()
        for poller in pollers:
            poller.join(timeout=30)
        if sync_thread is not None:
            sync_thread.join(timeout=30)
        for runtime in instances:
            runtime.client.close()

        decisions = {
            call.path.split("/")[3]: call.at
            for call in fake.calls
            if call.method == "PATCH" and call.path.startswith("/provider/orders/") and call.status == 200
        }
        latencies = sorted(decisions[item_id] - sent[item_id] for item_id in sent if item_id in decisions)
        order_calls = sum(1 for call in fake.calls if call.path.startswith("/provider/orders"))
        last = max(decisions.values(), default=end)
        sync_writes = sum(
            1
            for call in fake.calls
            if call.path.startswith("/provider/offers") and call.method != "GET" and start <= call.at <= last
        )
        decided = len(latencies)
        return Figures(
            decided=decided,
            per_minute=decided / max((last - start) / 60, 1e-9),
            calls_per_item=order_calls / max(decided, 1),
            p50=statistics.median(latencies) if latencies else float("nan"),
            p95=latencies[max(0, round(0.95 * len(latencies)) - 1)] if latencies else float("nan"),
            rate_limited=sum(1 for call in fake.calls if call.status == 429),
            sync_writes=sync_writes,
            batches=source.batches,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--offers", type=int, default=2_000, help="catalog size of the concurrent sync")
    parser.add_argument("--scale", type=float, default=10.0, help="clock speed-up (fake and functions)")
    parser.add_argument("--batch-size", type=int, default=int(template_default("OrderProcessorBatchSize")))
    parser.add_argument(
        "--batching-window", type=float, default=template_default("OrderProcessorBatchingWindowSeconds")
    )
    parser.add_argument("--max-minutes", type=float, default=15.0, help="give up after (clock minutes)")
    parser.add_argument("--only", choices=["before", "lanes"], help="run one budget pattern only")
    args = parser.parse_args()
    logger.setLevel("ERROR")
    sys.stdout = WithoutMetricLines(sys.stdout)
    atomic_conditional_writes()
    print(
        f"burst of {args.orders} orders (signed webhook -> ingress -> SQS -> {INSTANCES} processor "
        f"instances, batch {args.batch_size}, window {args.batching_window:g} s) against the fake at "
        f"100/min, 10,000/h; clock x{args.scale:g}; figures in clock minutes/seconds"
    )
    header = (
        f"  {'budget':8} {'load':22} {'decided':>7} {'per min':>8} {'calls/item':>10} "
        f"{'p50 s':>7} {'p95 s':>7} {'429s':>5} {'sync writes':>11} {'batches':>7}"
    )
    print(header)
    results: dict[tuple[str, bool], Figures] = {}
    for label, lanes in (("before", False), ("lanes", True)):
        if args.only and args.only != label:
            continue
        for with_sync in (False, True):
            started = time.monotonic()
            figures = scenario(args, lanes=lanes, with_sync=with_sync)
            results[(label, with_sync)] = figures
            load = f"+ {args.offers:,}-offer sync" if with_sync else "idle"
            print(
                f"  {label:8} {load:22} {figures.decided:>7} {figures.per_minute:>8.1f} "
                f"{figures.calls_per_item:>10.2f} {figures.p50:>7.1f} {figures.p95:>7.1f} "
                f"{figures.rate_limited:>5} {figures.sync_writes:>11} {figures.batches:>7}"
                f"   ({time.monotonic() - started:.0f} s real)",
                flush=True,
            )
    for label in ("before", "lanes"):
        idle, busy = results.get((label, False)), results.get((label, True))
        if idle and busy:
            print(f"  {label}: p95 during the sync = {busy.p95 / idle.p95:.2f} x idle (goal <= 2)")


if __name__ == "__main__":
    main()
