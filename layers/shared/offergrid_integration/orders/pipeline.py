"""The order processor's record pipeline: one SQS record -> parse -> idempotently run its use case ->
report. `orders.runtime` wires it; `functions/order_processor/app.py` only hands it the batch.

Each record: parse (`orders.messages`), then, idempotently on the message's dedup key (never the SQS
message id), run its use case (`orders.registry`) and count the outcome. A record fails (and SQS
retries it) when an error escapes the use case: a `TransientError` (Offergrid unreachable / 408 /
429 / 5xx, the rate budget, an idempotency record still in progress, serviceability unavailable, a
record conflict) or anything unclassified (AWS errors, 401/403: a wrong key or role is kept, not
dropped). Permanent problems (404 item, other 4xx, invalid transition, malformed message) are
outcomes: recorded, logged and counted by `Reason`, and the record succeeds so it does not loop.
Logs carry ids, codes and dedup keys only.

Batched reads (issue 16): `begin_batch` (called by the runtime's batch runner,
`orders.batch.SqsBatch`, before the batch's first record) reads the items the batch's
`order.created` messages want with one pending listing (`orders.item_reads.BatchItemReads`, its
rule there); while the batch runs, the use cases get that
`OrderItemsApi` instead of the bare client, so a listed item is not fetched again. `end_batch`
drops it: nothing read is kept across invocations.

Only successful outcomes are stored as COMPLETED idempotency records. A permanent failure leaves
the idempotent function as `PermanentFailure` (so Powertools deletes its in-progress record) and is
reported here: a later message with the same dedup key (the pending-order sweep finding an item that
was not readable yet when its webhook came) is then processed instead of replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

from offergrid_integration.checks import ConfigurationError
from offergrid_integration.contract import EventType
from offergrid_integration.errors import PermanentError, classify
from offergrid_integration.observability import ITEM_LOG_KEYS, logger, metrics
from offergrid_integration.orders.batch import SqsRecord
from offergrid_integration.orders.item_reads import BatchItemReads, Prefetch
from offergrid_integration.orders.messages import (
    EventMessage,
    MalformedMessage,
    OrdersMessage,
    StatusChangeMessage,
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
from offergrid_integration.orders.registry import dispatch
from offergrid_integration.orders.steps import record_permanent_failure
from offergrid_integration.queueing import ClaimCheck, ClaimCheckMissing, ClaimCheckStore
from offergrid_integration.secrets import SecretUnavailableError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

__all__ = [
    "IDEMPOTENCY_KEY_PREFIX",
    "PermanentFailure",
    "RecordPipeline",
    "item_log_keys",
    "mark_duplicate",
    "record_malformed",
    "report",
    "wanted_item_ids",
]

IDEMPOTENCY_KEY_PREFIX: Final = "order-processor"
# The plain data the idempotency record is keyed on (`dedupKey`, IdempotencyConfig's jmespath) and
# keeps: the same for every delivery of a message, whatever its SQS message id.
IDEMPOTENCY_FIELDS: Final = ("dedupKey", "kind", "source")


class PermanentFailure(PermanentError):
    """A permanent-failure outcome leaving the idempotent function, so it is not stored as done."""

    def __init__(self, outcome: OrderOutcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


class RecordPipeline:
    """Runs one SQS record of the orders queue; `orders.batch.SqsBatch` runs a batch through it."""

    def __init__(
        self,
        *,
        ports: Ports,
        client: OrderItemsApi,
        persistence: BasePersistenceLayer,
        idempotency_config: IdempotencyConfig,
        claim_checks: ClaimCheckStore | None = None,
    ) -> None:
        self.ports = ports
        self.client = client
        self.claim_checks = claim_checks
        self._reads: BatchItemReads | None = None
        # The batch's records as begin_batch parsed them (by message id): each is parsed once. What
        # parsing one raised is kept too, and is that record's failure alone (handle_record).
        self._parsed: dict[str, OrdersMessage | Exception] = {}
        self.process_once: Callable[..., dict[str, Any]] = idempotent_function(
            data_keyword_argument="message",
            persistence_store=persistence,
            config=idempotency_config,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )(self._process)

    def begin_batch(self, records: Sequence[SqsRecord]) -> Prefetch:
        """Before a batch's first record: read the items its `order.created` messages want with one
        listing (`BatchItemReads.prefetch`); the batch's use cases then read through it."""
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
        """After the batch: drop what was listed (never kept across invocations)."""
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
        """One record, start to end. Whatever it raises is this record's failure alone (SQS retries
        it, finally the DLQ); a permanent problem is an outcome, reported, and the record succeeds."""
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
            return self.process_once(
                message={name: fields[name] for name in IDEMPOTENCY_FIELDS}, parsed=message
            )
        except MalformedMessage as exc:
            if exc.item_id:
                logger.append_keys(itemId=exc.item_id)
            outcome = record_malformed(exc, ports=self.ports)
            report(outcome, message_id=record.message_id)
            return outcome.to_dict()
        except PermanentFailure as failed:
            report(failed.outcome, dedup_key=fields.get("dedupKey"), kind=fields.get("kind"))
            return failed.outcome.to_dict()
        except Exception as exc:
            # Permanent failures are outcomes: whatever escapes is retried (SQS, then the DLQ).
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
    """The `itemId` / `orderId` keys of every log line about `message` (those it names): the same keys
    as the webhook's and the sweep's lines, so one Logs Insights query follows an item everywhere."""
    if isinstance(message, StatusChangeMessage):
        return {"itemId": message.change.item_id}
    event = getattr(message, "event", None)
    if event is None:
        return {}
    keys = {"itemId": event.item_id, "orderId": event.order_id}
    return {name: value for name, value in keys.items() if value}


def wanted_item_ids(messages: Iterable[OrdersMessage]) -> list[str]:
    """The items a batch reads first thing: those of its `order.created` messages (their items are
    pending, so the pending listing holds them). Other kinds (cancellations, fulfilment statuses,
    repairs) are about items already decided, which that listing does not hold: they use GETs."""
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


def record_malformed(error: MalformedMessage, *, ports: Ports) -> OrderOutcome:
    """A permanent failure for a message we could not parse (recorded on the item when we know it)."""
    if error.item_id:
        return record_permanent_failure(
            ports,
            item_id=error.item_id,
            order_id=None,
            failure=error.failure,
            detail=error.detail,
            dedup_key=None,
        )
    return OrderOutcome(OutcomeKind.PERMANENT_FAILURE, error.detail, (), error.failure)


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
