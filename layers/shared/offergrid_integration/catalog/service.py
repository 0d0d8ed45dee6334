"""One offer sync invocation: lock, read, map, list, plan, apply, checkpoint, report.

A run that stops early saves a checkpoint; the next re-plans from a fresh listing (so hand edits in
between are respected) under the same run id. A dry run takes no lock and writes nothing.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from offergrid_integration.catalog.apply import (
    DEFAULT_MIN_TIME_LEFT,
    ListingConfirmation,
    OfferWriter,
    apply_plan,
)
from offergrid_integration.catalog.guard import RemovalGuard
from offergrid_integration.catalog.mapping import CatalogMapping, RowError
from offergrid_integration.catalog.plan import CatalogDiff, MissingOfferPolicy, OfferPlanner
from offergrid_integration.catalog.report import MAX_LISTED, ApplyFailure, MetricsSink, RunStatus, SyncReport
from offergrid_integration.catalog.sources import CatalogCheck, CatalogReadError, CatalogSource
from offergrid_integration.catalog.state import SyncCheckpoint, SyncStateStore
from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.observability import logger
from offergrid_integration.offergrid.errors import APITimeoutError, OffergridError, RateBudgetExhausted
from offergrid_integration.offergrid.models import Offer

DEFAULT_LOCK_SECONDS: Final = 900.0  # no deadline known (CLI): the longest a Lambda may run
LOCK_MARGIN_SECONDS: Final = 60.0


class OfferSyncClient(OfferWriter, Protocol):
    """What the sync needs of `OffergridClient`."""

    def list_offers(self) -> Iterator[Offer]: ...


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
    new_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)


def run_offer_sync(
    deps: SyncDependencies,
    options: SyncOptions,
    *,
    remaining_time: Callable[[], float] | None = None,
) -> SyncReport:
    """Run (or resume) the sync once and return its report (also logged, stored and emitted)."""
    started = deps.clock.now()
    owner = deps.new_id()
    if options.dry_run:
        report = SyncReport(run_id=owner, started_at=started, dry_run=True, status=RunStatus.DRY_RUN)
        _sync(deps, options, report, remaining_time)
        return _finish(deps, report)

    deadline = remaining_time() if remaining_time is not None else DEFAULT_LOCK_SECONDS
    if not math.isfinite(deadline):
        deadline = DEFAULT_LOCK_SECONDS
    lock_seconds = deadline + LOCK_MARGIN_SECONDS
    if not deps.state.acquire_lock(owner, lock_seconds):
        report = SyncReport(run_id=owner, started_at=started, status=RunStatus.LOCKED)
        report.stop_reason = "another sync run holds the lock"
        return _finish(deps, report)
    try:
        checkpoint = _resumable(deps.state.load_checkpoint(), options)
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
                    scope=sorted(options.skus) if options.skus is not None else None,
                )
            )
        elif report.status is RunStatus.COMPLETE:
            deps.state.clear_checkpoint()
        return _finish(deps, report)
    finally:
        deps.state.release_lock(owner)


def _resumable(checkpoint: SyncCheckpoint | None, options: SyncOptions) -> SyncCheckpoint | None:
    """The checkpoint to continue, if it was left by a run over the same scope."""
    if checkpoint is None:
        return None
    scope = sorted(options.skus) if options.skus is not None else None
    return checkpoint if checkpoint.scope == scope else None


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
        _stop(report, RunStatus.FAILED, f"catalog unreadable: {error}")
        return

    try:
        # Streamed: each Offer model is compared and reduced to its id and status as it arrives.
        for offer in deps.client.list_offers():
            planner.add_offer(offer)
    except (RateBudgetExhausted, APITimeoutError) as error:
        _stop(report, RunStatus.INCOMPLETE, f"listing offers stopped: {error}")
        return
    except OffergridError as error:
        _stop(report, RunStatus.FAILED, f"listing offers failed: {error}")
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
    _apply(deps, options, report, remaining_time, diff)


def _read_catalog(
    deps: SyncDependencies, options: SyncOptions, report: SyncReport, planner: OfferPlanner
) -> None:
    """Stream the catalog into the planner; a catalog found not whole (docs/decisions.md#15) blocks every
    change off sale.
    """
    scope = None if options.skus is None else frozenset(options.skus)
    mapping = deps.mapping
    check = CatalogCheck()
    columns = mapping.needed_columns()
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


def _apply(
    deps: SyncDependencies,
    options: SyncOptions,
    report: SyncReport,
    remaining_time: Callable[[], float] | None,
    diff: CatalogDiff,
) -> None:
    result = apply_plan(
        diff.writes,
        deps.client,
        remaining_time=remaining_time,
        min_time_left=options.min_time_left,
        max_writes=options.max_writes,
        confirm_created=ListingConfirmation(deps.client, diff.creates, deps.mapping.owned_fields),
    )
    for action, count in result.done.items():
        report.count(action, count)
    report.failures.extend(result.failures)
    report.confirmed_on_retry.extend(result.confirmed_on_retry)
    report.pending = len(result.pending)
    if result.stop_reason is not None:
        _stop(report, RunStatus.INCOMPLETE, result.stop_reason)
    else:
        report.status = RunStatus.COMPLETE


def _stop(report: SyncReport, status: RunStatus, reason: str) -> None:
    report.status = status
    report.stop_reason = reason


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
