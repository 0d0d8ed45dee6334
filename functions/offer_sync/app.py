"""Lambda entry of the scheduled offer sync and missed-order sweep (EventBridge Scheduler).

Options (every field optional): `{"dryRun": false, "skus": ["NET-FIBER-300"], "sweep": true, "sync": true,
"reconcile": false}` (`reconcile`: the drift reconciliation, orders/reconcile.py; its own schedule sets it),
in any shape the trigger can deliver (docs/decisions.md#14): the EventBridge Scheduler `Input` as it
is, a classic EventBridge rule's `Scheduled Event` envelope (what `sam local generate-event cloudwatch
scheduled-event` and the Lambda console's EventBridge test event make) with the options in `detail`,
or `{}` (defaults). Anything else is an `InvalidScheduleEvent` naming the shapes expected.
Returns `{"dryRun": ..., "sweep": <SweepReport>, "reconcile": <ReconcileReport>, "sync": <SyncReport>}`
(see `catalog.report`, `orders.reconcile`).

The runtime (settings, secret store, client, adapters) is built once per container
(`offergrid_integration.container`: at import inside Lambda, a bad environment failing the init
loudly; on first use elsewhere); `configure()`, `reset()` and `get_runtime()` are for tests.
A bad input raises (the invocation fails and lands in the DLQ); per-offer failures do not: they are
in the report, the logs and the metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from offergrid_integration.catalog.runtime import ScheduleInput, SyncRuntime
from offergrid_integration.catalog.settings import SyncSettings
from offergrid_integration.config import load_settings
from offergrid_integration.container import Container
from offergrid_integration.observability import log_metrics, logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SCHEDULED_EVENT_DETAIL_TYPE: Final = "Scheduled Event"
EXPECTED_SHAPES: Final = (
    'expected the schedule input {"dryRun": bool, "skus": [str, ...], "sweep": bool, "sync": bool, '
    '"reconcile": bool} '
    "(every field optional), an EventBridge 'Scheduled Event' with those options in 'detail', or {}"
)


class InvalidScheduleEvent(ValueError):
    """The invocation's event is none of the shapes the sync accepts; the message says which are."""


def schedule_input(event: object) -> ScheduleInput:
    """The sync's options from any event its trigger can deliver (docs/decisions.md#14)."""
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


_runtime = Container(lambda: SyncRuntime(load_settings(SyncSettings)))
get_runtime, configure, reset = _runtime.get, _runtime.configure, _runtime.reset
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
