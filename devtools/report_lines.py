"""One line a person reads for an offer-sync report (the dict a sync returns and stores).

Shared by `devtools.replay sync` (the function's answer) and `devtools.offer_sync_cli` (plan, apply,
reports), so both word the counts the same way: rows *read* from the catalog, rows *selected* by
`--sku`, rows *invalid*; writes *planned* (a dry run) or *done*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

__all__ = ["plan_lines", "report_line", "sync_line"]

# Plan entries that are not writes: said apart, or not at all.
_NOT_WRITES: Final = frozenset({"unchanged", "missing_untouched", "skipped_invalid", "refused"})
_DONE: Final = {
    "create": "created",
    "update": "updated",
    "deactivate": "deactivated",
    "archive": "archived",
    "delete": "deleted",
}


def _count(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _writes(counts: Mapping[str, Any], *, done: bool) -> str:
    named = [
        f"{_DONE.get(kind, kind) if done else kind} {_count(n)}"
        for kind, n in counts.items()
        if kind not in _NOT_WRITES and _count(n)
    ]
    return ", ".join(named)


def _rows(report: Mapping[str, Any], skus: Sequence[str] | None) -> str:
    read, valid, invalid = (_count(report.get(k)) for k in ("rowsRead", "rowsValid", "rowsInvalid"))
    if skus:
        asked = len(set(skus))
        plural = "s" if asked != 1 else ""
        text = f"{read} catalog rows read, {valid} selected by --sku ({asked} SKU{plural} asked)"
    else:
        text = f"{read} catalog rows read, {valid} valid"
    return text + (f", {invalid} invalid" if invalid else "")


def sync_line(report: Mapping[str, Any], *, skus: Sequence[str] | None = None) -> str:
    """`Plan (dry run): would create 12; 12 catalog rows read, 12 valid; 0 offers listed`."""
    planned = report.get("planned") or {}
    status = report.get("status")
    if report.get("dryRun"):
        head = "Plan (dry run)" if status in (None, "dry_run") else f"Plan (dry run) {status}"
        writes = _writes(planned, done=False)
        parts = [f"would {writes}" if writes else "nothing to write"]
    else:
        head = f"Sync {status}"
        writes = _writes(report.get("counts") or {}, done=True)
        parts = [writes or "no writes"]
    for label, value in (
        ("unchanged", planned.get("unchanged")),
        ("removals refused (removal guard)", report.get("removalGuard", {}).get("refused")),
        ("failed", report.get("failed")),
        ("pending (stopped early)", report.get("pending")),
    ):
        if _count(value):
            parts.append(f"{_count(value)} {label}")
    listed = _count(report.get("offersListed"))
    line = f"{head}: {', '.join(parts)}; {_rows(report, skus)}; {listed} offers listed"
    if report.get("stopReason"):
        line += f"; stopped: {report['stopReason']}"
    return line


def report_line(report: Mapping[str, Any]) -> str:
    """A stored report in one line: when it finished, its run, then `sync_line`."""
    finished = report.get("finishedAt") or report.get("startedAt")
    when = (
        datetime.fromtimestamp(float(finished), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if isinstance(finished, int | float)
        else "?"
    )
    invocation = _count(report.get("invocation")) or 1
    run = f"run {report.get('runId')}" + (f" (invocation {invocation})" if invocation > 1 else "")
    return f"{when}  {run}  {report.get('source') or ''}: {sync_line(report)}"


def plan_lines(report: Mapping[str, Any]) -> list[str]:
    """A dry run's planned writes, one line each: the kind, the SKU and the fields that change."""
    lines = []
    for change in report.get("plan") or []:
        detail = ", ".join(sorted(change.get("body") or {})) if change.get("kind") != "create" else ""
        lines.append(f"    {change.get('kind', '?'):<10} {change.get('sku')}  {detail}".rstrip())
    return lines
