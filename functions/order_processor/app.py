"""Lambda entry of the order processor: orders queue (SQS) -> one use case per message -> partial batch.

Each record: parse (`orders.messages`), then, idempotently on the message's dedup key (never the SQS
message id), run its use case (`orders.processing`) and count the outcome. A record fails (and SQS
retries it) only for transient problems: Offergrid unreachable / 408 / 429 / 5xx, the rate budget,
an idempotency record still in progress, serviceability unavailable, AWS errors. Permanent problems
(404 item, other 4xx, invalid transition, malformed message) are recorded, logged and counted by
`Reason`, and the record succeeds so it does not loop. Logs carry ids, codes and dedup keys only.

Only successful outcomes are stored as COMPLETED idempotency records. A permanent failure leaves
the idempotent function as `_PermanentFailure` (so Powertools deletes its in-progress record) and
is reported here: a later message with the same dedup key (the pending-order sweep finding an item
that was not readable yet when its webhook came) is then processed instead of replayed.

The runtime (settings, secret store, client, ports, idempotency) is built once per container: at
import inside Lambda, on first use elsewhere. `configure()` / `reset()` are for tests and tools.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.config import load_settings
from offergrid_integration.observability import log_metrics, logger, metrics, tracer
from offergrid_integration.offergrid.client import ApiKeyProvider
from offergrid_integration.offergrid.wiring import client_from_settings
from offergrid_integration.orders.messages import (
    MalformedMessage,
    OrdersMessage,
    dispatch,
    parse_queue_message,
    record_malformed,
)
from offergrid_integration.orders.processing import Outcome, OutcomeKind, Ports
from offergrid_integration.orders.records import DynamoDBOrderStore
from offergrid_integration.orders.serviceability import build_serviceability_checker
from offergrid_integration.orders.settings import ProcessorSettings
from offergrid_integration.orders.workorders import DynamoDBEventBridgeWorkOrders

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_ssm import SSMClient

IDEMPOTENCY_KEY_PREFIX = "order-processor"
OUTCOME_METRICS = {
    OutcomeKind.ACCEPTED: "OrderAccepted",
    OutcomeKind.REJECTED: "OrderRejected",
    OutcomeKind.CANCELLED: "OrderCancelled",
    OutcomeKind.STATUS_PUSHED: "StatusPushed",
}


class _PermanentFailure(Exception):
    """A permanent-failure outcome leaving the idempotent function, so it is not stored as done."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


class Runtime:
    """Everything a container reuses between invocations."""

    def __init__(
        self,
        settings: ProcessorSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        api_key: ApiKeyProvider | None = None,
        session: boto3.session.Session | None = None,
    ) -> None:
        self.settings = settings
        self._context: LambdaContext | None = None
        # Every AWS client of the container, built here (Lambda's init phase) from one session: one
        # DynamoDB client for the rate budget and the idempotency records, the DynamoDB resource for
        # the order and work-order tables (its own client converts Python values, so it cannot be
        # shared with low-level callers), EventBridge, Secrets Manager, and SSM or S3 for the rules.
        session = session or boto3.session.Session()
        self.dynamodb = session.client("dynamodb")
        self.tables = session.resource("dynamodb")
        self.events = session.client("events")
        secrets = None if api_key is not None else session.client("secretsmanager")
        ssm: SSMClient | None = None
        s3 = None
        if settings.serviceability_hook_url:
            pass  # no rules to read
        elif settings.serviceability_rules_s3_uri:
            s3 = session.client("s3")
        elif settings.serviceability_rules_parameter:
            ssm = session.client("ssm")
        self.client = client_from_settings(
            settings,
            remaining_time=self.remaining_time,
            clock=clock,
            api_key=api_key,
            secrets_client=secrets,
            dynamodb_client=self.dynamodb,
        )
        self.ports = Ports(
            orders=DynamoDBOrderStore(settings.orders_table, table=self.tables.Table(settings.orders_table)),
            work_orders=DynamoDBEventBridgeWorkOrders(
                settings.work_orders_table,
                settings.event_bus_name,
                table=self.tables.Table(settings.work_orders_table),
                events=self.events,
            ),
            serviceability=build_serviceability_checker(
                rules_parameter=settings.serviceability_rules_parameter,
                rules_s3_uri=settings.serviceability_rules_s3_uri,
                hook_url=settings.serviceability_hook_url,
                max_age_seconds=settings.serviceability_cache_seconds,
                ssm_client=ssm,
                s3_client=s3,
            ),
            clock=clock,
            contact_within_hours=settings.customer_contact_hours,
            remaining_time=self.remaining_time,
        )
        self.idempotency_config = IdempotencyConfig(
            event_key_jmespath="dedupKey",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=settings.idempotency_expiry_seconds,
            response_hook=_mark_duplicate,
        )
        # Powertools would otherwise build its own session and DynamoDB client on the first record.
        persistence = DynamoDBPersistenceLayer(
            table_name=settings.idempotency_table, boto3_client=self.dynamodb
        )
        self.process_once: Callable[..., dict[str, Any]] = idempotent_function(
            data_keyword_argument="message",
            persistence_store=persistence,
            config=self.idempotency_config,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )(self._process)
        # A batch whose records all failed is answered like any other (every id in batchItemFailures)
        # rather than raised: SQS retries the same records either way, and the response stays uniform.
        self.batch = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def bind(self, context: LambdaContext) -> None:
        self._context = context
        # In-progress idempotency records then expire with this invocation, so a crash is retried.
        self.idempotency_config.register_lambda_context(context)

    def remaining_time(self) -> float:
        """Seconds left in the current invocation (the client never sleeps or waits past it)."""
        if self._context is None:
            return math.inf
        return self._context.get_remaining_time_in_millis() / 1000

    # -- one SQS record ------------------------------------------------------------------------
    def handle_record(self, record: SQSRecord) -> dict[str, Any]:
        attributes = {
            name: value.string_value
            for name, value in (record.message_attributes or {}).items()
            if value.string_value is not None
        }
        try:
            message = parse_queue_message(record.body, attributes)
        except MalformedMessage as exc:
            outcome = record_malformed(exc, ports=self.ports)
            _report(outcome, message_id=record.message_id)
            return outcome.to_dict()
        fields = {"dedupKey": message.dedup_key, "kind": message.kind, "source": message.source}
        logger.append_keys(correlation_id=message.correlation_id, dedup_key=message.dedup_key)
        try:
            # The idempotency key comes from `message` only; `parsed` is handed through as it is.
            return self.process_once(message=fields, parsed=message)
        except _PermanentFailure as failed:
            _report(failed.outcome, dedup_key=message.dedup_key, kind=message.kind)
            return failed.outcome.to_dict()
        except Exception as exc:
            # Transient by construction (permanent failures are outcomes): fail the record, SQS retries.
            retryable = getattr(exc, "retryable", None)
            logger.warning(
                "order message failed; it will be retried",
                extra={
                    **fields,
                    "error": type(exc).__name__,
                    "retryable": retryable,
                    "messageId": record.message_id,
                },
            )
            with single_metric(
                name="TransientFailure", unit=MetricUnit.Count, value=1, namespace=metrics.namespace
            ) as metric:
                metric.add_dimension("Reason", type(exc).__name__)
            raise
        finally:
            logger.remove_keys(["correlation_id", "dedup_key"])

    def _process(self, message: dict[str, Any], parsed: OrdersMessage) -> dict[str, Any]:
        """`message`: the plain data the idempotency key is taken from; `parsed`: the message."""
        outcome = dispatch(parsed, ports=self.ports, client=self.client)
        if outcome.failure is not None:
            raise _PermanentFailure(outcome)
        _report(outcome, dedup_key=parsed.dedup_key, kind=parsed.kind)
        return outcome.to_dict()


def _mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    """Idempotency replay: the message was already processed; say so in the log and the result."""
    logger.info(
        "duplicate order message: already processed",
        extra={"idempotencyKey": idempotent_data.idempotency_key},
    )
    if isinstance(response, dict):
        return {**response, "duplicate": True}
    return response


def _report(outcome: Outcome, **fields: Any) -> None:
    log_fields = {**fields, **outcome.to_dict()}
    if outcome.failure is not None:
        logger.warning("order message failed permanently; recorded, not retried", extra=log_fields)
        with single_metric(
            name="PermanentFailure", unit=MetricUnit.Count, value=1, namespace=metrics.namespace
        ) as metric:
            metric.add_dimension("Reason", outcome.failure.value)
        return
    logger.info("order message processed", extra=log_fields)
    name = OUTCOME_METRICS.get(outcome.decision)
    if name is not None:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=max(1, len(outcome.item_ids)))


# ---------------------------------------------------------------------------------------------------
# Container state
# ---------------------------------------------------------------------------------------------------
_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime(load_settings(ProcessorSettings))
    return _runtime


def configure(runtime: Runtime) -> None:
    """Use `runtime` (built with a test clock or API key) instead of one built from the environment."""
    global _runtime
    _runtime = runtime


def reset() -> None:
    global _runtime
    if _runtime is not None:
        _runtime.client.close()
    _runtime = None


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    get_runtime()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    runtime = get_runtime()
    runtime.bind(context)
    return process_partial_response(
        event=event, record_handler=runtime.handle_record, processor=runtime.batch, context=context
    )
