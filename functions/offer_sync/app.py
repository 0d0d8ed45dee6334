"""Lambda entry of the scheduled offer sync and missed-order sweep (EventBridge Scheduler).

Wiring only. The options come from any event shape the trigger can deliver (`catalog.schedule`,
docs/decisions.md#14: `{"dryRun", "skus", "sweep", "sync", "reconcile"}`, every field optional; a bad
input raises `InvalidScheduleEvent` naming the shapes expected, the invocation fails and lands in the
DLQ). Returns `{"dryRun": ..., "sweep": <SweepReport>, "reconcile": <ReconcileReport>, "sync":
<SyncReport>}` (see `catalog.report`, `orders.reconcile`); per-offer failures are in the report, the
logs and the metrics. The runtime is built once per container (`offergrid_integration.container`);
`configure()`, `reset()` and `get_runtime()` are for tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from offergrid_integration.container import Container, init_phase

with init_phase():  # the GC paused while the imports and the init allocate (container.init_phase)
    from offergrid_integration.catalog.runtime import SyncRuntime
    from offergrid_integration.catalog.schedule import InvalidScheduleEvent, schedule_input
    from offergrid_integration.catalog.settings import SyncSettings
    from offergrid_integration.config import load_settings
    from offergrid_integration.observability import log_metrics, logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

__all__ = ["InvalidScheduleEvent", "configure", "get_runtime", "lambda_handler", "reset", "schedule_input"]

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
