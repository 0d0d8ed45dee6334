"""The offer sync function wired to its environment: adapters built once per container.

`SyncRuntime(settings)` builds the secret store, the Offergrid client (shared rate budget, bounded by
the invocation's remaining time), the state table, the orders queue and the decision lookup. What
a run may not need is made on first use, each once (the cold start: a dry run, or a sweep that finds
nothing to queue, needs neither): the SQS client of the orders queue on its first message, the
DynamoDB resource of the order and work-order tables on its first read, the reconciliation's
modules and client on its first run.
`run(ScheduleInput, ...)` runs the missed-order sweep (first: deciding orders is the more urgent job,
and it costs two listing calls), the reconciliation when asked (`"reconcile": true`, its own schedule:
orders/reconcile.py, with its own client capped at its share of the hourly budget) and then the offer
sync, and returns their reports.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from offergrid_integration import aws
from offergrid_integration.catalog.mapping import CatalogMapping, MappingError, default_mapping, load_mapping
from offergrid_integration.catalog.report import MetricsSink
from offergrid_integration.catalog.service import SyncDependencies, SyncOptions, run_offer_sync
from offergrid_integration.catalog.settings import SyncSettings
from offergrid_integration.catalog.sources import (
    CatalogReadError,
    CatalogSource,
    open_catalog_source,
    read_s3_object,
)
from offergrid_integration.catalog.state import DynamoDBSyncState, SyncStateStore
from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.config import ConfigurationError
from offergrid_integration.offergrid.client import ApiKeyProvider, OffergridClient
from offergrid_integration.offergrid.wiring import client_from_settings
from offergrid_integration.orders.records import DynamoDBOrderStore, OrderStore
from offergrid_integration.orders.sqs_queue import SqsQueue
from offergrid_integration.orders.sweep import DecisionLookup, OrderRecordDecisions, sweep_missed_orders
from offergrid_integration.ratelimit import Lane, RateBudget
from offergrid_integration.secrets import Secret, parse_api_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from offergrid_integration.contract import QueuePort
    from offergrid_integration.orders.reconcile import CappedRateBudget, WorkOrderIndex

__all__ = ["ScheduleInput", "SyncRuntime"]


class ScheduleInput(BaseModel):
    """The EventBridge Scheduler input (also what the CLI and a manual invoke send)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    dry_run: bool = Field(default=False, alias="dryRun")
    skus: list[str] | None = Field(default=None, min_length=1)
    sweep: bool = True
    sync: bool = True
    # The reconciliation (orders/reconcile.py): off unless asked; its own schedule asks for it.
    reconcile: bool = False

    @field_validator("skus")
    @classmethod
    def _non_blank(cls, skus: list[str] | None) -> list[str] | None:
        if skus is None:
            return None
        cleaned = list(dict.fromkeys(sku.strip() for sku in skus))
        if any(not sku for sku in cleaned):
            raise ValueError("skus must not contain blank values")
        return cleaned


class SyncRuntime:
    """Everything a container reuses between invocations."""

    def __init__(
        self,
        settings: SyncSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        api_key: ApiKeyProvider | None = None,
        state: SyncStateStore | None = None,
        queue: QueuePort | None = None,
        decisions: DecisionLookup | None = None,
        s3_client: S3Client | None = None,
        orders: OrderStore | None = None,
        work_orders: WorkOrderIndex | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._remaining: Callable[[], float] | None = None
        self.client = client_from_settings(
            settings, remaining_time=self.remaining_time, clock=clock, api_key=api_key, lane=Lane.BACKGROUND
        )
        self.state = state or DynamoDBSyncState(settings.sync_state_table, clock=clock)
        # Its SQS client is made on the first message (a dry run or a quiet sweep sends none).
        self.queue: QueuePort = queue or SqsQueue(settings.orders_queue_url, client_on_first_send=True)
        # One store of order records for the sweep's decisions and the reconciliation; its table (the
        # container's DynamoDB resource) is made on its first read.
        store = DynamoDBOrderStore(settings.orders_table) if settings.orders_table else None
        if decisions is None and store is not None:
            decisions = OrderRecordDecisions(store)
        self.decisions = decisions
        self._s3 = s3_client
        self.orders = orders if orders is not None else store
        self._work_orders = work_orders
        self.reconcile_budget: CappedRateBudget | None = None
        self._clock_and_key = (clock, api_key)

    @property
    def work_orders(self) -> WorkOrderIndex | None:
        """The work-order index of the reconciliation (default: `WORK_ORDERS_TABLE`), made on first use
        with the reconciliation's module."""
        if self._work_orders is None and self.settings.work_orders_table:
            from offergrid_integration.orders.reconcile import DynamoDBWorkOrderIndex

            self._work_orders = DynamoDBWorkOrderIndex(self.settings.work_orders_table)
        return self._work_orders

    @property
    def s3(self) -> S3Client:
        """The S3 client for catalog and mapping reads (default: the container's)."""
        return self._s3 if self._s3 is not None else aws.clients().s3

    @cached_property
    def source(self) -> CatalogSource:
        """Where the catalog comes from, built on first use (an S3 source shares `s3`)."""
        return self._catalog_source()

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
        """One scheduled invocation: the sweep, then the sync. Returns `{"sweep": ..., "sync": ...}`."""
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
                deps = SyncDependencies(
                    source=self.source,
                    mapping=self.load_mapping(),
                    client=self.client,
                    state=self.state,
                    clock=self.clock,
                    metrics=metrics,
                )
                report = run_offer_sync(
                    deps, self.options(request.dry_run, request.skus), remaining_time=self.remaining_time
                )
                result["sync"] = report.to_dict()
            return result
        finally:
            self._remaining = None

    @cached_property
    def reconcile_client(self) -> OffergridClient:
        """The reconciliation's own client: the shared budget, capped at its share per run."""
        from offergrid_integration.orders.reconcile import CappedRateBudget, max_calls_per_run

        clock, api_key = self._clock_and_key
        settings = self.settings
        cap = max_calls_per_run(settings.reconcile_budget_share, settings.reconcile_interval_minutes)

        def capped(budget: RateBudget) -> RateBudget:
            self.reconcile_budget = CappedRateBudget(budget, cap)
            return self.reconcile_budget

        return client_from_settings(
            settings,
            remaining_time=self.remaining_time,
            clock=clock,
            api_key=api_key,
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

    def options(self, dry_run: bool, skus: Sequence[str] | None) -> SyncOptions:
        return SyncOptions(
            dry_run=dry_run,
            skus=skus,
            missing_policy=self.settings.missing_offer_policy,
            min_time_left=self.settings.sync_min_time_left_seconds,
            max_writes=self.settings.sync_max_writes_per_run,
            removal_guard=self.settings.removal_guard,
        )

    def load_mapping(self) -> CatalogMapping:
        """The configured mapping (read on every run, so a new document needs no deploy); the default
        one is read once per process."""
        uri = self.settings.catalog_mapping
        if uri is None:
            return default_mapping()
        try:
            return load_mapping(read_s3_object(uri, self.s3))
        except (CatalogReadError, MappingError) as error:
            raise ConfigurationError(
                f"CATALOG_MAPPING: {error}", problems={"CATALOG_MAPPING": str(error)}
            ) from None

    def _catalog_source(self) -> CatalogSource:
        settings = self.settings
        uri = settings.catalog_source_uri
        if uri.startswith("s3://"):
            return open_catalog_source(uri, settings.catalog_format, s3_client=self.s3)
        key: Callable[[], str] | None = None
        if settings.catalog_api_key_secret:
            key = Secret(
                settings.catalog_api_key_secret, parse_api_key, max_age_seconds=settings.secrets_cache_seconds
            )
        return open_catalog_source(
            uri, settings.catalog_format, api_key=key, api_key_header=settings.catalog_api_key_header
        )
