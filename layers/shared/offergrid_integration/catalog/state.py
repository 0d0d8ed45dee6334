"""The offer sync's own state: the run lock, the checkpoint of an unfinished run, stored run reports.

Items (pk, sk): (`offer-sync#lock`, `lock`), (`offer-sync#checkpoint`, `current`), (`offer-sync#report`,
`<finished ISO>#<run id>#<invocation>`); TTL `expires_at`. The lock expires on its own, since a Lambda
killed at its timeout never releases it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from botocore.exceptions import ClientError

from offergrid_integration import aws
from offergrid_integration.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_LOCK: Final[dict[str, Any]] = {"pk": {"S": "offer-sync#lock"}, "sk": {"S": "lock"}}
_CHECKPOINT: Final[dict[str, Any]] = {"pk": {"S": "offer-sync#checkpoint"}, "sk": {"S": "current"}}
REPORT_PK: Final = "offer-sync#report"
CHECKPOINT_TTL_SECONDS: Final = 7 * 24 * 3600
REPORT_TTL_SECONDS: Final = 90 * 24 * 3600
LOCK_TTL_GRACE_SECONDS: Final = 24 * 3600  # the item lingers this long after the lock lapses


@dataclass(slots=True)
class SyncCheckpoint:
    """Progress of a run that stopped early; the next invocation re-plans and carries the counts forward."""

    run_id: str
    started_at: float
    invocations: int = 1
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    failed: int = 0
    stop_reason: str | None = None
    updated_at: float = 0.0
    scope: list[str] | None = None  # the SKUs of a partial run; None: the whole catalog

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SyncCheckpoint:
        data = json.loads(text)
        return cls(
            run_id=str(data["run_id"]),
            started_at=float(data["started_at"]),
            invocations=int(data.get("invocations", 1)),
            counts={str(k): int(v) for k, v in (data.get("counts") or {}).items()},
            failures=list(data.get("failures") or []),
            failed=int(data.get("failed", len(data.get("failures") or []))),
            stop_reason=data.get("stop_reason"),
            updated_at=float(data.get("updated_at", 0.0)),
            scope=[str(sku) for sku in data["scope"]] if data.get("scope") is not None else None,
        )


class SyncStateStore(Protocol):
    def acquire_lock(self, owner: str, ttl_seconds: float) -> bool:
        """Take the run lock for `ttl_seconds`; False when another live run holds it."""
        ...

    def release_lock(self, owner: str) -> None:
        """Release the lock if `owner` still holds it (never someone else's)."""
        ...

    def load_checkpoint(self) -> SyncCheckpoint | None: ...

    def save_checkpoint(self, checkpoint: SyncCheckpoint) -> None: ...

    def clear_checkpoint(self) -> None: ...

    def save_report(self, report: dict[str, Any]) -> None:
        """Store a run report (a `SyncReport.to_dict()`, which has `runId`, `invocation`, `finishedAt`)."""
        ...

    def latest_reports(self, limit: int = 10) -> list[dict[str, Any]]:
        """Stored reports, newest first."""
        ...


def _report_sort_key(report: dict[str, Any]) -> str:
    finished = float(report.get("finishedAt") or 0.0)
    stamp = datetime.fromtimestamp(finished, UTC).isoformat(timespec="milliseconds")
    return f"{stamp}#{report.get('runId', '')}#{int(report.get('invocation') or 1):04d}"


class InMemorySyncState:
    """The store for one process (the CLI without a table, unit tests)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self.lock_owner: str | None = None
        self.lock_expires_at = 0.0
        self.checkpoint: SyncCheckpoint | None = None
        self.reports: dict[str, dict[str, Any]] = {}

    def acquire_lock(self, owner: str, ttl_seconds: float) -> bool:
        now = self._clock.now()
        if self.lock_owner not in (None, owner) and self.lock_expires_at > now:
            return False
        self.lock_owner, self.lock_expires_at = owner, now + ttl_seconds
        return True

    def release_lock(self, owner: str) -> None:
        if self.lock_owner == owner:
            self.lock_owner, self.lock_expires_at = None, 0.0

    def load_checkpoint(self) -> SyncCheckpoint | None:
        return self.checkpoint

    def save_checkpoint(self, checkpoint: SyncCheckpoint) -> None:
        self.checkpoint = SyncCheckpoint.from_json(checkpoint.to_json())

    def clear_checkpoint(self) -> None:
        self.checkpoint = None

    def save_report(self, report: dict[str, Any]) -> None:
        self.reports[_report_sort_key(report)] = json.loads(json.dumps(report))

    def latest_reports(self, limit: int = 10) -> list[dict[str, Any]]:
        return [self.reports[key] for key in sorted(self.reports, reverse=True)[:limit]]


class DynamoDBSyncState:
    """The store in `SYNC_STATE_TABLE` (schema in the module docstring)."""

    def __init__(
        self,
        table_name: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        client: DynamoDBClient | None = None,
    ) -> None:
        """`client`: the DynamoDB client to use (default: the container's, `aws.clients()`)."""
        self.table_name = table_name
        self._clock = clock
        self.client: DynamoDBClient = client if client is not None else aws.clients().dynamodb

    def __repr__(self) -> str:
        return f"DynamoDBSyncState(table_name={self.table_name!r})"

    def acquire_lock(self, owner: str, ttl_seconds: float) -> bool:
        now = self._clock.now()
        expires = now + ttl_seconds
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    **_LOCK,
                    "owner": {"S": owner},
                    "lock_expires_at": {"N": f"{expires:.3f}"},
                    "expires_at": {"N": str(int(expires + LOCK_TTL_GRACE_SECONDS))},
                },
                ConditionExpression="attribute_not_exists(pk) OR lock_expires_at < :now OR #owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}, ":owner": {"S": owner}},
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    def release_lock(self, owner: str) -> None:
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key=_LOCK,
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):  # someone else's lock (ours expired): leave it
                raise

    def load_checkpoint(self) -> SyncCheckpoint | None:
        response = self.client.get_item(
            TableName=self.table_name,
            Key=_CHECKPOINT,
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item or "data" not in item:
            return None
        return SyncCheckpoint.from_json(item["data"]["S"])

    def save_checkpoint(self, checkpoint: SyncCheckpoint) -> None:
        self.client.put_item(
            TableName=self.table_name,
            Item={
                **_CHECKPOINT,
                "run_id": {"S": checkpoint.run_id},
                "data": {"S": checkpoint.to_json()},
                "expires_at": {"N": str(int(self._clock.now() + CHECKPOINT_TTL_SECONDS))},
            },
        )

    def clear_checkpoint(self) -> None:
        self.client.delete_item(TableName=self.table_name, Key=_CHECKPOINT)

    def save_report(self, report: dict[str, Any]) -> None:
        self.client.put_item(
            TableName=self.table_name,
            Item={
                "pk": {"S": REPORT_PK},
                "sk": {"S": _report_sort_key(report)},
                "run_id": {"S": str(report.get("runId", ""))},
                "data": {"S": json.dumps(report, separators=(",", ":"), default=str)},
                "expires_at": {"N": str(int(self._clock.now() + REPORT_TTL_SECONDS))},
            },
        )

    def latest_reports(self, limit: int = 10) -> list[dict[str, Any]]:
        response = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": REPORT_PK}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [json.loads(item["data"]["S"]) for item in response.get("Items", [])]


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
