"""One offer sync invocation: lock, read, map, list, plan, apply, checkpoint, report.

A run that stops early (time, rate budget, `max_writes`, or transient errors in a row) saves a checkpoint
with the rest pending; the next re-plans from a fresh listing (so hand edits in between are respected)
under the same run id. A permanent write failure is recorded with its SKU and the run goes on. A retried
write whose first answer was lost is settled: a create answered 409 is confirmed by a listing, a delete
answered 404 is done. A dry run takes no lock and writes nothing.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from offergrid_integration.catalog.guard import RemovalGuard
from offergrid_integration.catalog.mapping import CatalogMapping, NeededColumns, RowError
from offergrid_integration.catalog.plan import (
    ChangeKind,
    MissingOfferPolicy,
    OfferChange,
    OfferPlanner,
)
from offergrid_integration.catalog.report import ApplyFailure, RunStatus, SyncReport
from offergrid_integration.catalog.sources import CatalogCheck, CatalogReadError, CatalogSource
from offergrid_integration.catalog.state import SyncCheckpoint, SyncStateStore
from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.metrics_names import MAX_LISTED, MetricsSink
from offergrid_integration.observability import logger
from offergrid_integration.offergrid.errors import (
    APIStatusError,
    APITimeoutError,
    ConflictError,
    NotFoundError,
    OffergridError,
    RateBudgetExhausted,
)
from offergrid_integration.offergrid.models import Offer, OfferCreate, OfferUpdate

DEFAULT_LOCK_SECONDS: Final = 900.0  # no deadline known (CLI): the longest a Lambda may run
LOCK_MARGIN_SECONDS: Final = 60.0
DEFAULT_MIN_TIME_LEFT: Final = 30.0  # seconds kept to checkpoint, store the report and answer
MAX_CONSECUTIVE_TRANSIENT_FAILURES: Final = 3
_MAX_REASON: Final = 300


class OfferLister(Protocol):
    def list_offers(self) -> Iterator[Offer]: ...


class OfferSyncClient(OfferLister, Protocol):
    """What the sync needs of `OffergridClient`."""

    def create_offer(self, offer: OfferCreate) -> Offer | None: ...

    def update_offer(self, offer_id: str, changes: OfferUpdate) -> Offer | None: ...

    def delete_offer(self, offer_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class SyncOptions:
    dry_run: bool = False
    skus: Sequence[str] | None = None  # a partial run over these SKUs
    missing_policy: MissingOfferPolicy = MissingOfferPolicy.INACTIVE
    min_time_left: float = DEFAULT_MIN_TIME_LEFT
    max_writes: int | None = None
    removal_guard: RemovalGuard = field(default_factory=RemovalGuard)


@dataclass(slots=True)
class SyncDependencies:
    source: CatalogSource
    mapping: CatalogMapping
    client: OfferSyncClient
    state: SyncStateStore
    clock: Clock = SYSTEM_CLOCK
    metrics: MetricsSink | None = None


def run_offer_sync(
    deps: SyncDependencies,
    options: SyncOptions,
    *,
    remaining_time: Callable[[], float] | None = None,
) -> SyncReport:
    """Run (or resume) the sync once and return its report (also logged, stored and emitted)."""
    started = deps.clock.now()
    owner = uuid.uuid4().hex
    if options.dry_run:
        report = SyncReport(run_id=owner, started_at=started, dry_run=True, status=RunStatus.DRY_RUN)
        _sync(deps, options, report, remaining_time)
        return _finish(deps, report)

    deadline = remaining_time() if remaining_time is not None else DEFAULT_LOCK_SECONDS
    if not math.isfinite(deadline):
        deadline = DEFAULT_LOCK_SECONDS
    if not deps.state.acquire_lock(owner, deadline + LOCK_MARGIN_SECONDS):
        report = SyncReport(run_id=owner, started_at=started, status=RunStatus.LOCKED)
        report.stop_reason = "another sync run holds the lock"
        return _finish(deps, report)
    try:
        scope = sorted(options.skus) if options.skus is not None else None
        checkpoint = deps.state.load_checkpoint()
        if checkpoint is not None and checkpoint.scope != scope:
            checkpoint = None  # left by a run over another scope: not this one's to continue
        report = SyncReport(run_id=owner, started_at=started)
        if checkpoint is not None:
            report.run_id = checkpoint.run_id
            report.invocation = checkpoint.invocations + 1
            report.totals = dict(checkpoint.counts)
            # The run's earlier failures stay in its report until the run completes.
            report.failures = [ApplyFailure.from_dict(failure) for failure in checkpoint.failures]
            report.earlier_listed = len(report.failures)
            report.earlier_failed = max(checkpoint.failed, report.earlier_listed)
        _sync(deps, options, report, remaining_time)
        if report.status is RunStatus.INCOMPLETE:
            deps.state.save_checkpoint(
                SyncCheckpoint(
                    run_id=report.run_id,
                    started_at=checkpoint.started_at if checkpoint else started,
                    invocations=report.invocation,
                    counts=dict(report.totals),
                    failures=[failure.to_dict() for failure in report.failures[:MAX_LISTED]],
                    failed=report.failed,
                    stop_reason=report.stop_reason,
                    updated_at=deps.clock.now(),
                    scope=scope,
                )
            )
        elif report.status is RunStatus.COMPLETE:
            deps.state.clear_checkpoint()
        return _finish(deps, report)
    finally:
        deps.state.release_lock(owner)


def _sync(
    deps: SyncDependencies,
    options: SyncOptions,
    report: SyncReport,
    remaining_time: Callable[[], float] | None,
) -> None:
    report.source = deps.source.description
    planner = OfferPlanner(
        options.missing_policy,
        owned_fields=deps.mapping.owned_fields,
        scope=options.skus,
        guard=options.removal_guard,
    )
    try:
        _read_catalog(deps, options, report, planner)
    except CatalogReadError as error:
        report.stop(RunStatus.FAILED, f"catalog unreadable: {error}")
        return

    try:
        # Streamed: each Offer model is compared and reduced to its id and status as it arrives.
        for offer in deps.client.list_offers():
            planner.add_offer(offer)
    except (RateBudgetExhausted, APITimeoutError) as error:
        report.stop(RunStatus.INCOMPLETE, f"listing offers stopped: {error}")
        return
    except OffergridError as error:
        report.stop(RunStatus.FAILED, f"listing offers failed: {error}")
        return
    report.offers_listed = planner.listed
    report.offers_without_sku = len(planner.without_sku)
    report.duplicate_skus = sorted(planner.duplicate_ids)

    diff = planner.finish()
    report.planned = diff.counts()
    report.removal_guard = diff.guard_dict()
    report.removals_refused = [change.to_dict() for change in diff.refused]  # the CLI lists them all
    if diff.missing_guarded:
        logger.warning("catalog has no valid row: offers missing from it are left alone")
    if report.catalog_problems:
        logger.warning(
            "catalog cannot be trusted: nothing leaves sale", extra={"problems": report.catalog_problems}
        )
    if diff.refused:
        logger.warning(
            "removals refused",
            extra={
                "refused": len(diff.refused),
                "reason": diff.refused_reason,
                "confirmation": diff.removal_token,
            },
        )
    if options.dry_run:
        report.plan = [change.to_dict() for change in diff.writes]
        return
    apply_plan(
        diff.writes,
        deps.client,
        report,
        remaining_time=remaining_time,
        min_time_left=options.min_time_left,
        max_writes=options.max_writes,
        confirm_created=ListingConfirmation(deps.client, diff.creates, deps.mapping.owned_fields),
    )


def _read_catalog(
    deps: SyncDependencies, options: SyncOptions, report: SyncReport, planner: OfferPlanner
) -> None:
    """Stream the catalog into the planner; a catalog found not whole (docs/decisions.md#15) blocks every
    change off sale.
    """
    scope = None if options.skus is None else frozenset(options.skus)
    mapping = deps.mapping
    check = CatalogCheck()
    columns = NeededColumns(mapping.needed_sources)
    read = 0
    invalid = 0

    def reject(error: RowError) -> None:
        nonlocal invalid
        if scope is not None and error.attributable and not error.protects & scope:
            return  # another SKU's row, outside this partial run
        invalid += 1
        if len(report.row_errors) < MAX_LISTED:
            report.row_errors.append(error.to_dict())
        planner.reject(error)

    for item in deps.source.rows(mapping.sku_source, check=check):
        read += 1
        if not isinstance(item, RowError):
            columns.see(item)
        mapped = item if isinstance(item, RowError) else mapping.map_one(item)
        if isinstance(mapped, RowError):
            reject(mapped)
            continue
        first = planner.add_desired(mapped)
        if first is not None:
            reject(RowError(mapped.row, mapped.sku, f"duplicate sku (first on row {first}); row skipped"))
    report.rows_read = read
    report.rows_valid = planner.desired_count
    report.row_errors_total = invalid
    report.unattributable_rows = planner.unattributable
    report.catalog_manifest = check.manifest.value
    if columns.absent:
        names = ", ".join(columns.absent)
        planner.block(
            "columns",
            f"no row of the catalog has {names}, which the mapping needs: the export lost a column "
            "(or the mapping names another); fix the export or the mapping",
        )
    if check.truncated:
        planner.block("truncated", check.truncated)
    if check.manifest_problem:
        planner.block("manifest", check.manifest_problem)
    report.catalog_problems = planner.problems


def _finish(deps: SyncDependencies, report: SyncReport) -> SyncReport:
    report.finished_at = deps.clock.now()
    data = report.to_dict()
    try:
        deps.state.save_report(data)
    except Exception as error:  # the run itself is done: a lost report must not fail it
        logger.warning("could not store the sync report", extra={"error": type(error).__name__})
    log = logger.warning if report.status in (RunStatus.FAILED, RunStatus.INCOMPLETE) else logger.info
    log(report.summary(), extra={"sync_report": data})
    if deps.metrics is not None:
        report.emit_metrics(deps.metrics)
    return report


class ListingConfirmation:
    """Whether a create answered 409 made our offer after all: one listing per run, taken at the first
    need; a listing that fails confirms nothing (the next run settles it).
    """

    def __init__(
        self, client: OfferLister, creates: Iterable[OfferChange], owned_fields: Iterable[str] | None = None
    ) -> None:
        self._client = client
        self._creates = list(creates)
        self._owned = owned_fields
        self._confirmed: frozenset[str] | None = None

    def __call__(self, change: OfferChange) -> bool:
        if self._confirmed is None:
            self._confirmed = frozenset()
            planner = OfferPlanner(
                MissingOfferPolicy.IGNORE,
                owned_fields=self._owned,
                scope=[create.sku for create in self._creates],
                guard=None,
            )
            for create in self._creates:
                if create.desired is not None:
                    planner.add_desired(create.desired)
            try:
                for offer in self._client.list_offers():
                    planner.add_offer(offer)
            except (OffergridError, RateBudgetExhausted) as error:
                logger.warning(
                    "could not list offers to confirm a create answered 409",
                    extra={"sku": change.sku, "error": type(error).__name__},
                )
                return False
            self._confirmed = frozenset(planner.finish().unchanged)
        return change.sku in self._confirmed


def apply_plan(
    writes: Sequence[OfferChange],
    client: OfferSyncClient,
    report: SyncReport,
    *,
    remaining_time: Callable[[], float] | None = None,
    min_time_left: float = DEFAULT_MIN_TIME_LEFT,
    max_writes: int | None = None,
    confirm_created: Callable[[OfferChange], bool] | None = None,
) -> None:
    """Perform `writes` in order until done or until it must stop (see the module docstring), counting
    them in `report`."""

    def out_of_time() -> bool:
        return remaining_time is not None and remaining_time() < min_time_left

    transient_in_a_row = 0
    for position, change in enumerate(writes):
        if max_writes is not None and position >= max_writes:
            stop = "max_writes_reached"
        elif out_of_time():
            stop = "time_running_out"
        else:
            try:
                _write(client, change)
            except RateBudgetExhausted:
                stop = "rate_budget_exhausted"
            except OffergridError as error:
                if out_of_time():  # the client gave up because the deadline is near, not the write
                    stop = "time_running_out"
                elif _done_after_all(change, error, confirm_created):
                    transient_in_a_row = 0
                    report.count(change.kind.value)
                    if change.kind is ChangeKind.CREATE:
                        report.confirmed_on_retry.append(change.sku)
                    continue
                else:
                    report.failures.append(_failure(change, error))
                    transient_in_a_row = transient_in_a_row + 1 if error.retryable else 0
                    if transient_in_a_row < MAX_CONSECUTIVE_TRANSIENT_FAILURES:
                        continue
                    report.pending = len(writes) - position - 1
                    report.stop(RunStatus.INCOMPLETE, "api_unavailable")
                    return
            else:
                transient_in_a_row = 0
                report.count(change.kind.value)
                continue
        # Stopped before `change`: it and the rest are pending for the next invocation.
        report.pending = len(writes) - position
        report.stop(RunStatus.INCOMPLETE, stop)
        return
    report.status = RunStatus.COMPLETE


def _done_after_all(
    change: OfferChange, error: OffergridError, confirm_created: Callable[[OfferChange], bool] | None
) -> bool:
    """Whether a write that raised `error` reached its goal anyway (see the module docstring)."""
    if change.kind is ChangeKind.DELETE and isinstance(error, NotFoundError):
        return True
    if (
        change.kind is ChangeKind.CREATE
        and isinstance(error, ConflictError)
        and confirm_created is not None
        and confirm_created(change)
    ):
        logger.info(
            "create answered 409 confirmed: the offer exists with the catalog's values",
            extra={"sku": change.sku},
        )
        return True
    return False


def _write(client: OfferSyncClient, change: OfferChange) -> None:
    # The plan gives every create its desired offer and every other change its offer id.
    if change.kind is ChangeKind.CREATE:
        assert change.desired is not None
        client.create_offer(change.desired.create_body())
        return
    assert change.offer_id is not None
    if change.kind is ChangeKind.DELETE:
        client.delete_offer(change.offer_id)
    else:
        client.update_offer(change.offer_id, OfferUpdate.model_validate(dict(change.body)))


def _failure(change: OfferChange, error: OffergridError) -> ApplyFailure:
    status = error.status_code if isinstance(error, APIStatusError) else None
    if isinstance(error, ConflictError) and change.kind is ChangeKind.CREATE:
        reason = (
            "SKU already exists in Offergrid (409 Conflict) but was not in our listing of the team's "
            "offers: another team's offer, or created since the listing"
        )
    else:
        reason = str(error)
    if len(reason) > _MAX_REASON:
        reason = reason[: _MAX_REASON - 3] + "..."
    return ApplyFailure(sku=change.sku, action=change.kind.value, reason=reason, status_code=status)
