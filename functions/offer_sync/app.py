"""Lambda entry of the scheduled offer sync and missed-order sweep (EventBridge Scheduler).

Input (the schedule's `Input`, every field optional):
`{"dryRun": false, "skus": ["NET-FIBER-300"], "sweep": true, "sync": true}`.
Returns `{"dryRun": ..., "sweep": <SweepReport>, "sync": <SyncReport>}` (see `catalog.report`).

The runtime (settings, secret store, client, adapters) is built once per container: at import inside
Lambda (a bad environment fails the init loudly), on first use elsewhere; `configure()` and
`reset()` are for tests.
A bad input raises (the invocation fails and lands in the DLQ); per-offer failures do not: they are
in the report, the logs and the metrics.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from offergrid_integration.catalog.runtime import ScheduleInput, SyncRuntime
from offergrid_integration.catalog.settings import SyncSettings
from offergrid_integration.config import load_settings
from offergrid_integration.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

_runtime: SyncRuntime | None = None


def get_runtime() -> SyncRuntime:
    global _runtime
    if _runtime is None:
        _runtime = SyncRuntime(load_settings(SyncSettings))
    return _runtime


def configure(runtime: SyncRuntime) -> None:
    """Use `runtime` (built with a test clock or adapters) for the next invocations."""
    global _runtime
    _runtime = runtime


def reset() -> None:
    """Forget the runtime so the next invocation re-reads the environment (tests)."""
    global _runtime
    _runtime = None


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    get_runtime()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any] | None, context: LambdaContext) -> dict[str, Any]:
    request = ScheduleInput.model_validate(event or {})
    return get_runtime().run(
        request,
        remaining_time=lambda: context.get_remaining_time_in_millis() / 1000,
        correlation_id=context.aws_request_id,
        metrics=metrics,
    )
