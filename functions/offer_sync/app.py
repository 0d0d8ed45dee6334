"""Lambda entry of the scheduled jobs: the missed-order sweep, the reconciliation and the offer sync,
composed here so that neither the catalog nor the orders package runs the other.

Any event shape the trigger can deliver is read (docs/decisions.md#14); a bad one raises
`InvalidScheduleEvent` and fails into the DLQ. What a run may not need is made on first use.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

from offergrid_integration.container import Container, init_phase

with init_phase():  # the GC paused while the imports and the init allocate (container.init_phase)
    from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

    from offergrid_integration.catalog.apply import SyncDependencies, SyncOptions, run_offer_sync
    from offergrid_integration.catalog.mapping import (
        CatalogMapping,
        MappingError,
        default_mapping,
        load_mapping,
    )
    from offergrid_integration.catalog.report import SyncReport
    from offergrid_integration.catalog.settings import SyncSettings
    from offergrid_integration.catalog.sources import (
        CatalogReadError,
        CatalogSource,
        open_catalog_source,
        read_s3_object,
    )
    from offergrid_integration.catalog.state import DynamoDBSyncState, SyncStateStore
    from offergrid_integration.clock import SYSTEM_CLOCK, Clock
    from offergrid_integration.config import ConfigurationError, load_settings
    from offergrid_integration.metrics_names import MetricsSink
    from offergrid_integration.observability import log_metrics, logger, metrics, tracer
    from offergrid_integration.offergrid.client import ApiKeyProvider, OffergridClient
    from offergrid_integration.offergrid.wiring import client_from_settings
    from offergrid_integration.orders.adapters.dynamodb import DynamoDBOrderStore
    from offergrid_integration.orders.sweep import OrderRecordDecisions, sweep_missed_orders
    from offergrid_integration.ratelimit import Lane, RateBudget
    from offergrid_integration.secrets import Secret, parse_api_key
    from offergrid_integration.sqs_queue import SqsQueue

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from offergrid_integration.orders.reconcile import CappedRateBudget, WorkOrderIndex

SCHEDULED_EVENT_DETAIL_TYPE: Final = "Scheduled Event"
EXPECTED_SHAPES: Final = (
    'expected the schedule input {"dryRun": bool, "skus": [str, ...], "sweep": bool, "sync": bool, '
    '"reconcile": bool} '
    "(every field optional), an EventBridge 'Scheduled Event' with those options in 'detail', or {}"
)


class ScheduleInput(BaseModel):
    """The EventBridge Scheduler input (also what the CLI and a manual invoke send)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    dry_run: bool = Field(default=False, alias="dryRun")
    skus: list[str] | None = Field(default=None, min_length=1)
    sweep: bool = True
    sync: bool = True
    reconcile: bool = False  # its own schedule asks for it

    @field_validator("skus")
    @classmethod
    def _non_blank(cls, skus: list[str] | None) -> list[str] | None:
        if skus is None:
            return None
        cleaned = list(dict.fromkeys(sku.strip() for sku in skus))
        if any(not sku for sku in cleaned):
            raise ValueError("skus must not contain blank values")
        return cleaned


class InvalidScheduleEvent(ValueError):
    """The invocation's event is none of the shapes the function accepts; the message says which are."""


def schedule_input(event: object) -> ScheduleInput:
    """The options from the Scheduler's input as is, a classic EventBridge `Scheduled Event` envelope
    (what `sam local generate-event` and the console's test event make) with them in `detail`, or `{}`."""
    if event is None:
        event = {}
    if not isinstance(event, Mapping):
        raise InvalidScheduleEvent(
            f"offer sync: the event is a JSON {type(event).__name__}; {EXPECTED_SHAPES}"
        )
    options: object = event
    if "detail-type" in event:  # an EventBridge envelope: only a schedule's carries our options
        detail_type = event["detail-type"]
        if detail_type != SCHEDULED_EVENT_DETAIL_TYPE:
            raise InvalidScheduleEvent(
                f"offer sync: an EventBridge event of detail-type {detail_type!r} is not a schedule; "
                + EXPECTED_SHAPES
            )
        options = event.get("detail") or {}
    try:
        return ScheduleInput.model_validate(options)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'options'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise InvalidScheduleEvent(f"offer sync: bad options ({problems}); {EXPECTED_SHAPES}") from exc


class SyncRuntime:
    """The jobs' adapters for a container: one background-lane client for the sweep and the sync, and the
    reconciliation's own, capped at its share of the hourly budget; the Offergrid client is not the sync's.
    """

    def __init__(
        self,
        settings: SyncSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        api_key: ApiKeyProvider | None = None,
        state: SyncStateStore | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._api_key = api_key
        self._remaining: Callable[[], float] | None = None
        self.client = client_from_settings(
            settings, remaining_time=self.remaining_time, clock=clock, api_key=api_key, lane=Lane.BACKGROUND
        )
        self.state = state or DynamoDBSyncState(settings.sync_state_table, clock=clock)
        self.queue = SqsQueue(settings.orders_queue_url, client_on_first_send=True)
        self.orders = DynamoDBOrderStore(settings.orders_table) if settings.orders_table else None
        self.decisions = OrderRecordDecisions(self.orders) if self.orders is not None else None
        self.reconcile_budget: CappedRateBudget | None = None

    @cached_property
    def catalog(self) -> CatalogSource:
        settings = self.settings
        key: Callable[[], str] | None = None
        if settings.catalog_api_key_secret:
            key = Secret(
                settings.catalog_api_key_secret, parse_api_key, max_age_seconds=settings.secrets_cache_seconds
            )
        return open_catalog_source(
            settings.catalog_source_uri,
            settings.catalog_format,
            api_key=key,
            api_key_header=settings.catalog_api_key_header,
        )

    def mapping(self) -> CatalogMapping:
        """The configured mapping, read on every run (a new document needs no deploy); the default one
        once per process."""
        uri = self.settings.catalog_mapping
        if uri is None:
            return default_mapping()
        try:
            return load_mapping(read_s3_object(uri))
        except (CatalogReadError, MappingError) as error:
            raise ConfigurationError(
                f"CATALOG_MAPPING: {error}", problems={"CATALOG_MAPPING": str(error)}
            ) from None

    @cached_property
    def work_orders(self) -> WorkOrderIndex | None:
        """The reconciliation's work-order index (`WORK_ORDERS_TABLE`), made with its module."""
        if not self.settings.work_orders_table:
            return None
        from offergrid_integration.orders.adapters.dynamodb import DynamoDBWorkOrderIndex

        return DynamoDBWorkOrderIndex(self.settings.work_orders_table)

    def remaining_time(self) -> float:
        """Seconds left in the current invocation (infinite outside one)."""
        return math.inf if self._remaining is None else self._remaining()

    def run(
        self,
        request: ScheduleInput,
        *,
        remaining_time: Callable[[], float] | None = None,
        correlation_id: str | None = None,
        metrics: MetricsSink | None = None,
    ) -> dict[str, Any]:
        """The sweep first (deciding orders is the more urgent job, and it costs two listing calls),
        the reconciliation when asked, then the sync."""
        self._remaining = remaining_time
        try:
            result: dict[str, Any] = {"dryRun": request.dry_run}
            if request.sweep:
                sweep = sweep_missed_orders(
                    self.client,
                    self.queue,
                    clock=self.clock,
                    decisions=self.decisions,
                    min_age_seconds=self.settings.sweep_min_age_seconds,
                    dry_run=request.dry_run,
                    correlation_id=correlation_id,
                )
                if metrics is not None:
                    sweep.emit_metrics(metrics)
                result["sweep"] = sweep.to_dict()
            if request.reconcile:
                result["reconcile"] = self.reconcile(request.dry_run, correlation_id, metrics)
            if request.sync:
                result["sync"] = self.sync(request, metrics).to_dict()
            return result
        finally:
            self._remaining = None

    def sync(self, request: ScheduleInput, metrics: MetricsSink | None) -> SyncReport:
        settings = self.settings
        deps = SyncDependencies(
            self.catalog, self.mapping(), self.client, self.state, clock=self.clock, metrics=metrics
        )
        options = SyncOptions(
            dry_run=request.dry_run,
            skus=request.skus,
            missing_policy=settings.missing_offer_policy,
            min_time_left=settings.sync_min_time_left_seconds,
            max_writes=settings.sync_max_writes_per_run,
            removal_guard=settings.removal_guard,
        )
        return run_offer_sync(deps, options, remaining_time=self.remaining_time)

    @cached_property
    def reconcile_client(self) -> OffergridClient:
        """The reconciliation's own client: the shared budget, capped at its share per run."""
        from offergrid_integration.orders.reconcile import CappedRateBudget, max_calls_per_run

        settings = self.settings
        cap = max_calls_per_run(settings.reconcile_budget_share, settings.reconcile_interval_minutes)

        def capped(budget: RateBudget) -> RateBudget:
            self.reconcile_budget = CappedRateBudget(budget, cap)
            return self.reconcile_budget

        return client_from_settings(
            settings,
            remaining_time=self.remaining_time,
            clock=self.clock,
            api_key=self._api_key,
            budget_wrapper=capped,
            lane=Lane.BACKGROUND,
        )

    def reconcile(
        self, dry_run: bool, correlation_id: str | None, metrics: MetricsSink | None
    ) -> dict[str, Any]:
        """One reconciliation run; its report (an `error` when the tables it needs are not configured)."""
        if self.orders is None or self.work_orders is None:
            return {"error": "reconciliation needs ORDERS_TABLE and WORK_ORDERS_TABLE", "dryRun": dry_run}
        from offergrid_integration.orders.reconcile import reconcile

        client = self.reconcile_client
        assert self.reconcile_budget is not None
        self.reconcile_budget.used = 0
        report = reconcile(
            client,
            self.queue,
            orders=self.orders,
            work_orders=self.work_orders,
            clock=self.clock,
            lookback_seconds=self.settings.reconcile_lookback_hours * 3600,
            dry_run=dry_run,
            correlation_id=correlation_id,
            max_calls=self.reconcile_budget.max_calls,
        )
        if metrics is not None:
            report.emit_metrics(metrics)
        result = report.to_dict()
        result["calls"] = self.reconcile_budget.used
        return result


_runtime = Container(lambda: SyncRuntime(load_settings(SyncSettings)))
get_runtime, configure, reset = _runtime.get, _runtime.configure, _runtime.reset
with init_phase():
    _runtime.build_at_init()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
def lambda_handler(event: dict[str, Any] | None, context: LambdaContext) -> dict[str, Any]:
    request = schedule_input(event)
    return get_runtime().run(
        request,
        remaining_time=lambda: context.get_remaining_time_in_millis() / 1000,
        correlation_id=context.aws_request_id,
        metrics=metrics,
    )
