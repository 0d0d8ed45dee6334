"""The offer sync's options from any event its trigger can deliver (docs/decisions.md#14).

Options (every field optional): `{"dryRun": false, "skus": ["NET-FIBER-300"], "sweep": true, "sync": true,
"reconcile": false}`, in any shape the trigger can deliver: the EventBridge Scheduler `Input` as it
is, a classic EventBridge rule's `Scheduled Event` envelope (what `sam local generate-event cloudwatch
scheduled-event` and the Lambda console's EventBridge test event make) with the options in `detail`,
or `{}` (defaults). Anything else is an `InvalidScheduleEvent` naming the shapes expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from pydantic import ValidationError

from offergrid_integration.catalog.runtime import ScheduleInput

__all__ = ["EXPECTED_SHAPES", "SCHEDULED_EVENT_DETAIL_TYPE", "InvalidScheduleEvent", "schedule_input"]

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
