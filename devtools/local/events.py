"""The sample events of `events/`: which function takes each one, and each function's default.

One rule, by the start of a file's name (its trigger), read against the template's functions: the
local invoke picks a function's default event from it (`make invoke FUNCTION=OfferSyncFunction` with
no EVENT), the tests invoke every sample through it, and the README's table of sample events is
`events_table()`, checked by tests/unit/test_readme.py, so it lists what `events/` holds.
`eventbridge_*.json` is what the provider puts on its bus (`aws events put-events`): the bus's rule
queues it for the order processor, no function is invoked with it as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from devtools.local.runtime import REPO_ROOT

__all__ = [
    "BUS_EVENT_PREFIX",
    "DEFAULT_EVENTS",
    "EVENTS_DIR",
    "TRIGGERS",
    "default_event",
    "events_table",
    "function_for",
    "sample_events",
    "trigger_types",
]

EVENTS_DIR: Final = REPO_ROOT / "events"
# The trigger (SAM event types) a sample file is, by the start of its name; the longest match wins.
TRIGGERS: Final[dict[str, tuple[str, ...]]] = {
    "webhook_": ("Api",),
    "http_api_webhook_": ("Api", "HttpApi"),
    "sam_apigateway_": ("Api", "HttpApi"),
    "sqs_": ("SQS",),
    "sam_sqs_": ("SQS",),
    "scheduled_": ("ScheduleV2", "Schedule"),
    "sam_cloudwatch_scheduled_": ("ScheduleV2", "Schedule"),
}
BUS_EVENT_PREFIX: Final = "eventbridge_"
# What `invoke` sends a function of each trigger when no event is given: the everyday input, and for
# the schedule a dry run (a plain run would write to Offergrid).
DEFAULT_EVENTS: Final[dict[tuple[str, ...], str]] = {
    ("Api",): "webhook_order_created.json",
    ("SQS",): "sqs_order_created.json",
    ("ScheduleV2", "Schedule"): "scheduled_offer_sync_dry_run.json",
}
NOT_EVENTS: Final = frozenset({"env.json"})  # sam's --env-vars file lives here too


def sample_events(folder: Path = EVENTS_DIR) -> list[Path]:
    return sorted(path for path in folder.glob("*.json") if path.name not in NOT_EVENTS)


def trigger_of(name: str) -> tuple[str, ...] | None:
    """The SAM event types a sample file is for (None: a bus event, or a name no rule knows)."""
    matches = [prefix for prefix in TRIGGERS if name.startswith(prefix)]
    return TRIGGERS[max(matches, key=len)] if matches else None


def trigger_types(template_document: dict[str, Any], function_id: str) -> set[str]:
    """The SAM event types of a function's `Events` (`Api`, `SQS`, `ScheduleV2`, ...)."""
    properties = (template_document.get("Resources") or {}).get(function_id, {}).get("Properties") or {}
    return {str(event.get("Type")) for event in (properties.get("Events") or {}).values()}


def _functions(template_document: dict[str, Any]) -> list[str]:
    return [
        logical_id
        for logical_id, resource in (template_document.get("Resources") or {}).items()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]


def function_for(template_document: dict[str, Any], name: str) -> str | None:
    """The function that takes the sample file `name` (the first with a matching trigger)."""
    trigger = trigger_of(name)
    if trigger is None:
        return None
    for function_id in _functions(template_document):
        if trigger_types(template_document, function_id) & set(trigger):
            return function_id
    return None


def default_event(
    template_document: dict[str, Any], function_id: str, folder: Path = EVENTS_DIR
) -> Path | None:
    """The sample event `invoke` sends `function_id` when none is given (None: no sample fits it)."""
    types = trigger_types(template_document, function_id)
    for trigger, name in DEFAULT_EVENTS.items():
        if types & set(trigger) and (folder / name).exists():
            return folder / name
    return None


def _cells(names: Iterable[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def events_table(template_document: dict[str, Any], folder: Path = EVENTS_DIR) -> str:
    """The README's table: each function's sample events (its default first), then the bus events."""
    rows = [
        "| Function | Sample events in `events/` (the first is `make invoke`'s default) |",
        "|---|---|",
    ]
    names = [path.name for path in sample_events(folder)]
    for function_id in _functions(template_document):
        mine = [name for name in names if function_for(template_document, name) == function_id]
        default = default_event(template_document, function_id, folder)
        if default is not None and default.name in mine:
            mine.remove(default.name)
            mine.insert(0, default.name)
        if mine:
            rows.append(f"| `{function_id}` | {_cells(mine)} |")
    bus = [name for name in names if name.startswith(BUS_EVENT_PREFIX)]
    if bus:
        where = "the provider bus (`aws events put-events`; its rule queues it for the processor)"
        rows.append(f"| {where} | {_cells(bus)} |")
    return "\n".join(rows) + "\n"
