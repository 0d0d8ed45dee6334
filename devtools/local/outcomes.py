"""What one local invocation did, in one line: the answer, and for an SQS batch each record's outcome.

An SQS partial batch response lists only the records to retry (`batchItemFailures`): a record that
ended in a permanent failure (an item Offergrid answers 404 for, a message that is not ours) is
recorded, counted and deleted, so `{"batchItemFailures": []}` says nothing of it. Each record's
outcome is in the processor's log instead (`orders.processor.report`: `decision`, `failure`, `reason`,
`itemIds`, and `retryable` for one that will be retried); `record_outcomes` reads them from the log
lines of the invocation, and `summary` says them in a line, so a 404 in a batch shows (and fails the
invoke) instead of hiding behind an empty list.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["RecordOutcome", "record_outcomes", "summary", "unsuccessful"]

PERMANENT_FAILURE: Final = "permanent_failure"
RETRY: Final = "retry"
OUTCOME_MESSAGE: Final = "order message "  # processed / failed permanently / failed; it will be retried


@dataclass(frozen=True)
class RecordOutcome:
    decision: str  # accepted, rejected, cancelled, ..., permanent_failure, or retry
    item_ids: tuple[str, ...] = ()
    failure: str | None = None
    reason: str = ""

    @property
    def failed(self) -> bool:
        return self.decision in (PERMANENT_FAILURE, RETRY)

    def describe(self) -> str:
        items = ", ".join(self.item_ids) or "no item"
        what = self.failure or self.decision
        return f"{items}: {what}" + (f" ({self.reason})" if self.reason else "")


def record_outcomes(log_lines: Iterable[str]) -> list[RecordOutcome]:
    """Each record's outcome, from the order processor's JSON log lines: its `order message ...`
    lines (`orders.processor`); every other line is skipped."""
    outcomes = []
    for line in log_lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or not str(entry.get("message", "")).startswith(OUTCOME_MESSAGE):
            continue
        if "decision" in entry:
            outcomes.append(
                RecordOutcome(
                    decision=str(entry["decision"]),
                    item_ids=tuple(str(i) for i in entry.get("itemIds") or ()),
                    failure=entry.get("failure"),
                    reason=str(entry.get("reason") or ""),
                )
            )
        elif "retryable" in entry:
            key = entry.get("dedupKey") or entry.get("dedup_key") or "?"
            outcomes.append(RecordOutcome(RETRY, (), None, f"{key}: {entry.get('error')}"))
    return outcomes


def unsuccessful(result: Any, outcomes: list[RecordOutcome]) -> str | None:
    """Why the function's answer is not a success though it returned: a non-2xx HTTP answer (an API
    Gateway proxy result), records SQS would retry, a pre-traffic hook that failed its checks, or
    records that failed for good."""
    if isinstance(result, dict):
        status = result.get("statusCode")
        if isinstance(status, int) and not 200 <= status < 300:
            return f"the function answered HTTP {status}"
        failures = result.get("batchItemFailures")
        if isinstance(failures, list) and failures:
            return f"{len(failures)} record(s) failed (batchItemFailures): SQS would retry them"
        if result.get("status") == "Failed" and "checks" in result:
            return "the pre-traffic hook's checks failed: CodeDeploy would roll the release back"
    permanent = [outcome for outcome in outcomes if outcome.decision == PERMANENT_FAILURE]
    if permanent:
        return f"{len(permanent)} record(s) failed permanently (recorded, not retried): " + "; ".join(
            outcome.describe() for outcome in permanent
        )
    return None


def summary(function_id: str, event: Any, result: Any, outcomes: list[RecordOutcome]) -> str:
    """`OrderProcessorFunction: 1 record: 1 accepted (item-456-def)`, `WebhookIngressFunction: HTTP 200`."""
    records = event.get("Records") if isinstance(event, dict) else None
    if isinstance(records, list):
        counts = Counter(outcome.decision.replace("_", " ") for outcome in outcomes)
        done = ", ".join(f"{n} {decision}" for decision, n in counts.items()) or "no outcome logged"
        items = sorted({item for outcome in outcomes for item in outcome.item_ids})
        return f"{function_id}: {len(records)} record{'s' if len(records) != 1 else ''}: {done}" + (
            f" ({', '.join(items)})" if items else ""
        )
    if isinstance(result, dict) and isinstance(result.get("statusCode"), int):
        return f"{function_id}: HTTP {result['statusCode']}"
    return f"{function_id}: returned"
