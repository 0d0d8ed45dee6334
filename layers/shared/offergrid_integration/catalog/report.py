"""What a sync run (and a sweep) did: counts per action, failures with SKU and reason.

Metrics carry this invocation's numbers so a resumed run is not counted twice; stored lists are capped so
one bad catalog cannot outgrow a DynamoDB item or a Lambda response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from offergrid_integration import metrics_names as metric
from offergrid_integration.metrics_names import MAX_LISTED, MetricsSink

# The writes, by action, and the metric that counts this invocation's.
WRITE_METRICS: Final = {
    "create": metric.OFFER_SYNC_CREATED,
    "update": metric.OFFER_SYNC_UPDATED,
    "deactivate": metric.OFFER_SYNC_DEACTIVATED,
    "archive": metric.OFFER_SYNC_ARCHIVED,
    "delete": metric.OFFER_SYNC_DELETED,
}


class RunStatus(StrEnum):
    COMPLETE = "complete"  # the catalog and Offergrid agree (except reported failures)
    INCOMPLETE = "incomplete"  # stopped early (time, budget, API down): checkpointed, resumes next time
    DRY_RUN = "dry_run"  # planned only
    LOCKED = "locked"  # another run holds the lock: nothing done
    FAILED = "failed"  # could not plan at all (catalog unreadable, listing failed)


@dataclass(frozen=True, slots=True)
class ApplyFailure:
    sku: str
    action: str
    reason: str
    status_code: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"sku": self.sku, "action": self.action, "reason": self.reason, "statusCode": self.status_code}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ApplyFailure:
        status = data.get("statusCode")
        return cls(
            sku=str(data.get("sku", "")),
            action=str(data.get("action", "")),
            reason=str(data.get("reason", "")),
            status_code=int(status) if status is not None else None,
        )


@dataclass(slots=True)
class SyncReport:
    run_id: str
    started_at: float
    dry_run: bool = False
    invocation: int = 1
    source: str | None = None
    status: RunStatus = RunStatus.COMPLETE
    finished_at: float | None = None
    stop_reason: str | None = None
    rows_read: int = 0
    rows_valid: int = 0
    offers_listed: int = 0
    planned: dict[str, int] = field(default_factory=dict)  # the plan of this invocation
    counts: dict[str, int] = field(default_factory=dict)  # writes done in this invocation
    totals: dict[str, int] = field(default_factory=dict)  # writes done by the whole run so far
    pending: int = 0  # planned writes not attempted (stopped early)
    # The run's failures: those carried from its earlier invocations (the first `earlier_listed`
    # entries; `earlier_failed` of them in all, the checkpoint keeps at most MAX_LISTED), then this
    # invocation's.
    failures: list[ApplyFailure] = field(default_factory=list)
    earlier_listed: int = 0
    earlier_failed: int = 0
    # Creates that got 409 on a retry after a lost answer, confirmed by a listing (counted as created).
    confirmed_on_retry: list[str] = field(default_factory=list)
    row_errors: list[dict[str, Any]] = field(default_factory=list)  # the first MAX_LISTED
    row_errors_total: int | None = None  # all of them (None: `row_errors` is the whole list)
    unattributable_rows: int = 0  # row errors naming no SKU: nothing was removed (Decision 13)
    plan: list[dict[str, Any]] = field(default_factory=list)  # the planned writes (dry runs)
    offers_without_sku: int = 0
    duplicate_skus: list[str] = field(default_factory=list)
    # Removals the run refused (unattributable rows, or over the removal guard) and the guard's numbers.
    removals_refused: list[dict[str, Any]] = field(default_factory=list)
    removal_guard: dict[str, Any] = field(default_factory=dict)
    # Why the catalog could not be trusted to take offers off sale (Decision 15: a needed column absent,
    # the export cut short, its manifest not matching), and what its manifest said.
    catalog_problems: list[str] = field(default_factory=list)
    catalog_manifest: str | None = None

    @property
    def rows_invalid(self) -> int:
        return len(self.row_errors) if self.row_errors_total is None else self.row_errors_total

    @property
    def refused(self) -> int:
        return int(self.removal_guard.get("refused", len(self.removals_refused)))

    @property
    def failed_this_invocation(self) -> int:
        return len(self.failures) - self.earlier_listed

    @property
    def failed(self) -> int:
        """Failed writes of the whole run so far (like `totals`)."""
        return self.earlier_failed + self.failed_this_invocation

    @property
    def wrote(self) -> int:
        return sum(self.counts.get(action, 0) for action in WRITE_METRICS)

    def stop(self, status: RunStatus, reason: str) -> None:
        self.status, self.stop_reason = status, reason

    def count(self, action: str, n: int = 1) -> None:
        self.counts[action] = self.counts.get(action, 0) + n
        self.totals[action] = self.totals.get(action, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "invocation": self.invocation,
            "status": self.status.value,
            "dryRun": self.dry_run,
            "source": self.source,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "stopReason": self.stop_reason,
            "rowsRead": self.rows_read,
            "rowsValid": self.rows_valid,
            "rowsInvalid": self.rows_invalid,
            "unattributableRows": self.unattributable_rows,
            "offersListed": self.offers_listed,
            "planned": dict(self.planned),
            "counts": dict(self.counts),
            "totals": dict(self.totals),
            "pending": self.pending,
            "failed": self.failed,
            "failedThisInvocation": self.failed_this_invocation,
            "failures": [failure.to_dict() for failure in self.failures[:MAX_LISTED]],
            "confirmedOnRetry": self.confirmed_on_retry[:MAX_LISTED],
            "rowErrors": self.row_errors[:MAX_LISTED],
            "plan": self.plan[:MAX_LISTED],
            "planTruncated": len(self.plan) > MAX_LISTED,
            "offersWithoutSku": self.offers_without_sku,
            "duplicateSkus": self.duplicate_skus[:MAX_LISTED],
            "removalsRefused": self.removals_refused[:MAX_LISTED],
            "removalGuard": dict(self.removal_guard),
            "catalogProblems": list(self.catalog_problems),
            "catalogManifest": self.catalog_manifest,
        }

    def summary(self) -> str:
        counts = ", ".join(f"{name} {value}" for name, value in sorted(self.counts.items())) or "no writes"
        text = (
            f"offer sync {self.status.value}: {counts}; unchanged {self.planned.get('unchanged', 0)}; "
            f"failed {self.failed}; invalid rows {self.rows_invalid}; pending {self.pending}"
        )
        if self.refused:
            text += f"; removals refused {self.refused} ({self.removal_guard.get('reason')})"
        elif self.catalog_problems:
            text += f"; catalog cannot be trusted, nothing leaves sale ({'; '.join(self.catalog_problems)})"
        return text

    def emit_metrics(self, metrics: MetricsSink) -> None:
        real = not self.dry_run  # a dry run refuses nothing for real: only runs that write raise the alarms
        values = {name: self.counts.get(action, 0) for action, name in WRITE_METRICS.items()} | {
            metric.OFFER_SYNC_UNCHANGED: self.planned.get("unchanged", 0),
            metric.OFFER_SYNC_FAILED: self.failed_this_invocation,
            metric.OFFER_SYNC_INVALID_ROWS: self.rows_invalid,
            metric.OFFER_SYNC_UNATTRIBUTABLE_ROWS: self.unattributable_rows if real else 0,
            metric.OFFER_SYNC_REMOVALS_REFUSED: self.refused if real else 0,
            metric.OFFER_SYNC_CATALOG_INCOMPLETE: int(bool(self.catalog_problems)) if real else 0,
            metric.OFFER_SYNC_PENDING: self.pending,
            metric.OFFER_SYNC_INCOMPLETE: int(self.status is RunStatus.INCOMPLETE),
            metric.OFFER_SYNC_RUN_FAILED: int(self.status is RunStatus.FAILED),
            metric.OFFER_SYNC_LOCKED: int(self.status is RunStatus.LOCKED),
            # The heartbeat the offer-sync-not-succeeding alarm watches (a dry run is not the schedule's).
            metric.OFFER_SYNC_SUCCEEDED: int(self.status is RunStatus.COMPLETE and real),
        }
        for name, value in values.items():
            metrics.add_metric(name, "Count", value)
