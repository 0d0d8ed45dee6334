"""The order processor: an SQS batch -> each record parsed (`orders.messages`) -> its use case run
once per dedup key -> the outcome reported -> SQS's partial-batch response (`ReportBatchItemFailures`).

What escapes a use case (a `TransientError`, or anything unclassified: AWS errors, 401/403, a wrong
key kept rather than dropped) fails its record alone, never the batch (docs/decisions.md#17); SQS
retries it, finally the DLQ. Permanent problems are outcomes: recorded, counted by `Reason`, the
record succeeds, and they are not stored as done, so a later message with their dedup key (the
sweep's) is processed, not replayed. No Powertools `BatchProcessor`: its import was 5-10 % of the cold start.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self, TypedDict

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from pydantic import Field, model_validator

from offergrid_integration import aws
from offergrid_integration.checks import ConfigurationError
from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.config import CacheSeconds, CommonSettings, HttpsUrl, NonBlankStr, S3Uri
from offergrid_integration.contract import EventType
from offergrid_integration.errors import PermanentError, classify
from offergrid_integration.observability import ITEM_LOG_KEYS, logger, metrics
from offergrid_integration.offergrid.client import ApiKeyProvider
from offergrid_integration.offergrid.wiring import client_from_settings
from offergrid_integration.orders.adapters.dynamodb import DynamoDBEventBridgeWorkOrders, DynamoDBOrderStore
from offergrid_integration.orders.adapters.serviceability import build_serviceability_checker
from offergrid_integration.orders.messages import (
    EventMessage,
    MalformedMessage,
    OrdersMessage,
    StatusChangeMessage,
    dispatch,
    parse_queue_message,
)
from offergrid_integration.orders.ports import (
    OUTCOME_METRICS,
    FailureReason,
    OrderItemsApi,
    OrderOutcome,
    OutcomeKind,
    Ports,
)
from offergrid_integration.orders.steps import BatchItemReads, Prefetch, record_permanent_failure
from offergrid_integration.queueing import ClaimCheck, ClaimCheckMissing, ClaimCheckStore
from offergrid_integration.secrets import SecretUnavailableError
from offergrid_integration.sqs_queue import S3ClaimChecks

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext


_log = logging.getLogger(__name__)

IDEMPOTENCY_KEY_PREFIX: Final = "order-processor"
# What the idempotency record is keyed on (`dedupKey`) and keeps: the same for every delivery.
IDEMPOTENCY_FIELDS: Final = ("dedupKey", "kind", "source")
SQS_EVENT_SOURCE: Final = "aws:sqs"


class ProcessorSettings(CommonSettings):
    """The processor's environment, checked at cold start (docs/configuration.md)."""

    orders_table: NonBlankStr = Field(alias="ORDERS_TABLE")
    work_orders_table: NonBlankStr = Field(alias="WORK_ORDERS_TABLE")
    idempotency_table: NonBlankStr = Field(alias="IDEMPOTENCY_TABLE")
    event_bus_name: NonBlankStr = Field(alias="EVENT_BUS_NAME")
    serviceability_rules_parameter: NonBlankStr | None = Field(
        default=None, alias="SERVICEABILITY_RULES_PARAMETER"
    )
    serviceability_rules_s3_uri: S3Uri | None = Field(default=None, alias="SERVICEABILITY_RULES_S3_URI")
    serviceability_hook_url: HttpsUrl | None = Field(default=None, alias="SERVICEABILITY_HOOK_URL")
    serviceability_cache_seconds: CacheSeconds = Field(default=300, alias="SERVICEABILITY_CACHE_SECONDS")
    customer_contact_hours: int = Field(default=24, ge=1, le=24 * 14, alias="CUSTOMER_CONTACT_HOURS")
    idempotency_expiry_seconds: int = Field(
        default=86_400, ge=60, le=30 * 86_400, alias="IDEMPOTENCY_EXPIRY_SECONDS"
    )

    @model_validator(mode="after")
    def _one_serviceability_source(self) -> Self:
        if not (
            self.serviceability_rules_parameter
            or self.serviceability_rules_s3_uri
            or self.serviceability_hook_url
        ):
            raise ValueError(
                "set SERVICEABILITY_RULES_PARAMETER, SERVICEABILITY_RULES_S3_URI or SERVICEABILITY_HOOK_URL"
            )
        return self


class BatchItemFailure(TypedDict):
    itemIdentifier: str


class PartialBatchResponse(TypedDict):
    batchItemFailures: list[BatchItemFailure]


class NotAnSqsEvent(ValueError):
    """The event is not what an SQS trigger sends; nothing in it was handled."""

    def __init__(self, problem: str) -> None:
        expected = '{"Records": [{"messageId": "...", "body": "...", "eventSource": "aws:sqs", ...}]}'
        super().__init__(f"{problem}; the order processor expects an SQS event: {expected}")
        self.problem = problem


@dataclass(frozen=True, slots=True)
class SqsRecord:
    message_id: str
    body: str
    attributes: Mapping[str, str]  # the string-valued message attributes (binary ones are not ours)


def sqs_records(event: object) -> list[SqsRecord]:
    """The event's records, or `NotAnSqsEvent` naming the first problem (a console test `{}`, another
    service's records): then no record is handled. An empty `Records` is an empty batch."""
    if not isinstance(event, Mapping):
        raise NotAnSqsEvent(f"the event is a {type(event).__name__}, not an object")
    records = event.get("Records")
    if records is None:
        keys = ", ".join(sorted(str(key) for key in event)[:5]) or "none"
        raise NotAnSqsEvent(f"the event has no Records (its keys: {keys})")
    if not isinstance(records, list):
        raise NotAnSqsEvent(f"Records is a {type(records).__name__}, not a list")
    parsed = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise NotAnSqsEvent(f"record {index} is a {type(record).__name__}, not an object")
        source = record.get("eventSource", SQS_EVENT_SOURCE)
        if source != SQS_EVENT_SOURCE:
            raise NotAnSqsEvent(f"record {index} comes from {str(source)[:40]!r}, not {SQS_EVENT_SOURCE!r}")
        for name in ("messageId", "body"):
            if not isinstance(record.get(name), str):
                raise NotAnSqsEvent(f"record {index} has no {name} string")
        message_attributes = record.get("messageAttributes")
        attributes = {
            str(name): value["stringValue"]
            for name, value in (message_attributes if isinstance(message_attributes, Mapping) else {}).items()
            if isinstance(value, Mapping) and isinstance(value.get("stringValue"), str)
        }
        parsed.append(SqsRecord(record["messageId"], record["body"], attributes))
    return parsed


class SqsBatch:
    """Runs an SQS event's records through `handler` (the `RecordPipeline`): `begin_batch` before the
    first, `end_batch` after the last whatever happened, and answers the partial-batch response."""

    def __init__(self, handler: RecordPipeline) -> None:
        self.handler = handler  # its methods looked up per batch, so tests may wrap them

    def process(self, event: object) -> PartialBatchResponse:
        records = sqs_records(event)
        failed: list[BatchItemFailure] = []
        if not records:
            return {"batchItemFailures": failed}
        try:
            self.handler.begin_batch(records)
        except Exception as exc:  # preparing the batch is an optimisation: each record still runs alone
            _log.warning(
                "preparing the batch failed; its records are handled one by one",
                extra={"error": type(exc).__name__, "records": len(records)},
            )
        try:
            for record in records:
                try:
                    self.handler.handle_record(record)
                except Exception:  # the handler reported it; SQS retries it
                    failed.append({"itemIdentifier": record.message_id})
        finally:
            self.handler.end_batch()
        return {"batchItemFailures": failed}


class PermanentFailure(PermanentError):
    """A permanent-failure outcome leaving the idempotent function, so it is not stored as done."""

    def __init__(self, outcome: OrderOutcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


class RecordPipeline:
    """One SQS record: parse, then idempotently on its dedup key (never the SQS message id) run its
    use case, then report. A batch's `order.created` items are read with one listing (issue 16)."""

    def __init__(
        self,
        *,
        ports: Ports,
        client: OrderItemsApi,
        persistence: DynamoDBPersistenceLayer,
        idempotency_config: IdempotencyConfig,
        claim_checks: ClaimCheckStore | None = None,
    ) -> None:
        self.ports = ports
        self.client = client
        self.claim_checks = claim_checks
        self._reads: BatchItemReads | None = None
        # The batch's records as begin_batch parsed them (or what parsing raised), by message id.
        self._parsed: dict[str, OrdersMessage | Exception] = {}
        self.process_once = idempotent_function(
            data_keyword_argument="message",
            persistence_store=persistence,
            config=idempotency_config,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )(self._process)

    def begin_batch(self, records: Sequence[SqsRecord]) -> Prefetch:
        """Parse each record once, and list the items its `order.created` messages want."""
        self._parsed = {}
        for record in records:
            try:
                self._parsed[record.message_id] = self.parse(record)
            except Exception as exc:
                self._parsed[record.message_id] = exc
        self._reads = BatchItemReads(self.client)
        messages = [parsed for parsed in self._parsed.values() if not isinstance(parsed, Exception)]
        return self._reads.prefetch(wanted_item_ids(messages))

    def end_batch(self) -> None:
        """Nothing read is kept across invocations."""
        self._reads = None
        self._parsed = {}

    def parse(self, record: SqsRecord) -> OrdersMessage:
        """The record's message: its body, or the body its claim check points at (docs/decisions.md#17)."""
        body = record.body
        check = ClaimCheck.from_body(body)
        if check is not None:
            if self.claim_checks is None:
                raise ConfigurationError("a claim-checked message, and no claim-check store to read it")
            try:
                body = self.claim_checks.get(check)
            except ClaimCheckMissing:
                raise MalformedMessage(
                    FailureReason.MALFORMED_MESSAGE, "the claim-checked body is gone from S3"
                ) from None
        return parse_queue_message(body, record.attributes)

    def handle_record(self, record: SqsRecord) -> dict[str, Any]:
        """One record; whatever it raises is its failure alone, a permanent problem is an outcome."""
        fields: dict[str, Any] = {"messageId": record.message_id}
        try:
            parsed = self._parsed.pop(record.message_id, None)
            if parsed is None:
                parsed = self.parse(record)
            if isinstance(parsed, Exception):
                raise parsed
            message = parsed
            fields = {"dedupKey": message.dedup_key, "kind": message.kind, "source": message.source, **fields}
            logger.append_keys(
                correlation_id=message.correlation_id, dedup_key=message.dedup_key, **item_log_keys(message)
            )
            # The idempotency key comes from `message` only; `parsed` is handed through as it is.
            result: dict[str, Any] = self.process_once(
                message={name: fields[name] for name in IDEMPOTENCY_FIELDS}, parsed=message
            )
            return result
        except MalformedMessage as exc:
            outcome = OrderOutcome(OutcomeKind.PERMANENT_FAILURE, exc.detail, (), exc.failure)
            if exc.item_id:  # recorded on the item when we know it
                logger.append_keys(itemId=exc.item_id)
                outcome = record_permanent_failure(
                    self.ports,
                    item_id=exc.item_id,
                    order_id=None,
                    failure=exc.failure,
                    detail=exc.detail,
                    dedup_key=None,
                )
            report(outcome, message_id=record.message_id)
            return outcome.to_dict()
        except PermanentFailure as failed:
            report(failed.outcome, dedup_key=fields.get("dedupKey"), kind=fields.get("kind"))
            return failed.outcome.to_dict()
        except Exception as exc:
            logger.warning(
                "order message failed; it will be retried",
                extra={
                    **fields,
                    "error": type(exc).__name__,
                    # A secret that cannot be read: which one, and the AWS error (never its value).
                    **(exc.log_fields() if isinstance(exc, SecretUnavailableError) else {}),
                    "retryable": classify(exc),
                },
            )
            with single_metric(
                name="TransientFailure", unit=MetricUnit.Count, value=1, namespace=metrics.namespace
            ) as metric:
                metric.add_dimension("Reason", type(exc).__name__)
            raise
        finally:
            logger.remove_keys(["correlation_id", "dedup_key", *ITEM_LOG_KEYS])

    def _process(self, message: dict[str, Any], parsed: OrdersMessage) -> dict[str, Any]:
        """`message`: the plain data the idempotency key is taken from; `parsed`: the message."""
        client = self.client if self._reads is None else self._reads
        outcome = dispatch(parsed, ports=self.ports, client=client)
        if outcome.failure is not None:
            raise PermanentFailure(outcome)
        report(outcome, dedup_key=parsed.dedup_key, kind=parsed.kind)
        return outcome.to_dict()


def item_log_keys(message: OrdersMessage) -> dict[str, str]:
    """The `itemId` / `orderId` of every log line about `message`: the keys the webhook's and the
    sweep's lines carry, so one Logs Insights query follows an item everywhere."""
    if isinstance(message, StatusChangeMessage):
        return {"itemId": message.change.item_id}
    event = getattr(message, "event", None)
    if event is None:
        return {}
    keys = {"itemId": event.item_id, "orderId": event.order_id}
    return {name: value for name, value in keys.items() if value}


def wanted_item_ids(messages: Iterable[OrdersMessage]) -> list[str]:
    """The items of a batch's `order.created` messages: pending, so the pending listing holds them.
    Other kinds are about items already decided, which it does not hold: they use GETs."""
    wanted = (
        message.event.item_id
        for message in messages
        if isinstance(message, EventMessage) and message.kind == EventType.ORDER_CREATED
    )
    return list(dict.fromkeys(item_id for item_id in wanted if item_id))


def mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    """Idempotency replay: the message was already processed; say so in the log and the result."""
    logger.info(
        "duplicate order message: already processed",
        extra={"idempotencyKey": idempotent_data.idempotency_key},
    )
    if isinstance(response, dict):
        return {**response, "duplicate": True}
    return response


def report(outcome: OrderOutcome, **fields: Any) -> None:
    """Log the outcome and count it: `PermanentFailure` by `Reason`, or its `OUTCOME_METRICS` metric."""
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


class ProcessorRuntime:
    """What a container reuses between invocations; every AWS client from `aws.clients()`, made in
    Lambda's init phase (one DynamoDB client for the rate budget and the idempotency records)."""

    def __init__(
        self,
        settings: ProcessorSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        api_key: ApiKeyProvider | None = None,
        clients: aws.AwsClients | None = None,
    ) -> None:
        self._context: LambdaContext | None = None
        clients = clients or aws.clients()
        self.dynamodb = clients.dynamodb
        hook = settings.serviceability_hook_url
        self.client = client_from_settings(
            settings,
            remaining_time=self.remaining_time,
            clock=clock,
            api_key=api_key,
            secrets_client=None if api_key is not None else clients.secretsmanager,
            dynamodb_client=self.dynamodb,
        )
        ports = Ports(
            orders=DynamoDBOrderStore(
                settings.orders_table, table=clients.tables.Table(settings.orders_table)
            ),
            work_orders=DynamoDBEventBridgeWorkOrders(
                settings.work_orders_table,
                settings.event_bus_name,
                table=clients.tables.Table(settings.work_orders_table),
                events=clients.events,
            ),
            serviceability=build_serviceability_checker(
                rules_parameter=settings.serviceability_rules_parameter,
                rules_s3_uri=settings.serviceability_rules_s3_uri,
                hook_url=hook,
                max_age_seconds=settings.serviceability_cache_seconds,
                ssm_client=clients.ssm if not hook and not settings.serviceability_rules_s3_uri else None,
                s3_client=clients.s3 if not hook and settings.serviceability_rules_s3_uri else None,
            ),
            clock=clock,
            contact_within_hours=settings.customer_contact_hours,
            remaining_time=self.remaining_time,
        )
        self.idempotency_config = IdempotencyConfig(
            event_key_jmespath="dedupKey",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=settings.idempotency_expiry_seconds,
            response_hook=mark_duplicate,
        )
        self.pipeline = RecordPipeline(
            ports=ports,
            client=self.client,  # an `OrderItemsApi`: mypy checks `OffergridClient` satisfies it here
            persistence=DynamoDBPersistenceLayer(
                table_name=settings.idempotency_table, boto3_client=self.dynamodb
            ),
            idempotency_config=self.idempotency_config,
            # Claim-checked bodies (docs/decisions.md#17): the S3 client made on the first one.
            claim_checks=S3ClaimChecks(client_factory=lambda: clients.s3),
        )
        self.batch = SqsBatch(self.pipeline)

    def bind(self, context: LambdaContext) -> None:
        self._context = context
        # In-progress idempotency records then expire with this invocation, so a crash is retried.
        self.idempotency_config.register_lambda_context(context)

    def remaining_time(self) -> float:
        """Seconds left in the current invocation (the client never sleeps or waits past it)."""
        if self._context is None:
            return math.inf
        return self._context.get_remaining_time_in_millis() / 1000

    def close(self) -> None:
        self.client.close()
