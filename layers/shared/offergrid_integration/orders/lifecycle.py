"""The documented order-item lifecycle and the one check every status change goes through.

Forward along the happy path, steps may be skipped; failure edges: pending/submitted_to_provider ->
rejected; accepted/scheduled/in_progress -> cancelled; in_progress -> failed. Rejected, cancelled,
failed and (in practice) active are terminal; setting the current status is refused too. The fake
(devtools/offergrid_fake/lifecycle.py) enforces the same rules with a 422.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from offergrid_integration.offergrid.models import OrderItemStatus

S = OrderItemStatus

HAPPY_PATH: Final[tuple[OrderItemStatus, ...]] = (
    S.PENDING,
    S.SUBMITTED_TO_PROVIDER,
    S.ACCEPTED,
    S.SCHEDULED,
    S.IN_PROGRESS,
    S.COMPLETED,
    S.ACTIVE,
)
FAILURE_EDGES: Final[dict[OrderItemStatus, frozenset[OrderItemStatus]]] = {
    S.PENDING: frozenset({S.REJECTED}),
    S.SUBMITTED_TO_PROVIDER: frozenset({S.REJECTED}),
    S.ACCEPTED: frozenset({S.CANCELLED}),
    S.SCHEDULED: frozenset({S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.CANCELLED, S.FAILED}),
}
TERMINAL_STATUSES: Final = frozenset({S.REJECTED, S.CANCELLED, S.FAILED, S.ACTIVE})
# The statuses in which the provider still has to accept or reject the item.
DECIDABLE_STATUSES: Final = frozenset({S.PENDING, S.SUBMITTED_TO_PROVIDER})
# The statuses an accepted item can be in afterwards, short of a cancellation.
AFTER_ACCEPTANCE: Final = frozenset({S.ACCEPTED, S.SCHEDULED, S.IN_PROGRESS, S.COMPLETED, S.ACTIVE, S.FAILED})
# The statuses in which the provider still has work to do: the item needs an open work order.
PROVIDER_WORK: Final = frozenset({S.ACCEPTED, S.SCHEDULED, S.IN_PROGRESS})
# The statuses that end the provider's work when Offergrid (not our fulfilment) put the item there.
WORK_ENDED: Final = frozenset({S.CANCELLED, S.REJECTED, S.FAILED})


class TransitionReason(StrEnum):
    """Why a transition is refused; the values are low-cardinality metric/log reasons."""

    SAME_STATUS = "same_status"
    FROM_TERMINAL = "from_terminal"
    REGRESSION = "regression"
    NOT_ALLOWED = "not_allowed"
    UNKNOWN_STATUS = "unknown_status"


class InvalidTransition(Exception):
    """`current -> target` is not a move the lifecycle allows. Permanent: retrying cannot help."""

    def __init__(self, current: str, target: str, problem: TransitionReason) -> None:
        super().__init__(f"invalid status transition {current!r} -> {target!r}: {problem.value}")
        self.current = current
        self.target = target
        self.problem = problem


def parse_status(value: str | OrderItemStatus) -> OrderItemStatus | None:
    """The enum member for `value`, or None for a status Offergrid added that we do not know."""
    try:
        return OrderItemStatus(value)
    except ValueError:
        return None


def is_terminal(status: str | OrderItemStatus) -> bool:
    """Whether nothing may follow `status` (unknown statuses are not terminal: we cannot tell)."""
    return parse_status(status) in TERMINAL_STATUSES


def is_decidable(status: str | OrderItemStatus) -> bool:
    """Whether the item still waits for the provider's accept/reject decision."""
    return parse_status(status) in DECIDABLE_STATUSES


def allowed_targets(current: str | OrderItemStatus) -> frozenset[OrderItemStatus]:
    status = parse_status(current)
    if status is None:
        return frozenset()
    forward: frozenset[OrderItemStatus] = frozenset()
    if status in HAPPY_PATH:
        forward = frozenset(HAPPY_PATH[HAPPY_PATH.index(status) + 1 :])
    return forward | FAILURE_EDGES.get(status, frozenset())


def check_transition(current: str | OrderItemStatus, target: str | OrderItemStatus) -> None:
    """Return if `current -> target` is allowed, else raise `InvalidTransition` saying why."""
    source, destination = parse_status(current), parse_status(target)
    if source is None or destination is None:
        raise InvalidTransition(str(current), str(target), TransitionReason.UNKNOWN_STATUS)
    if destination in allowed_targets(source):
        return
    if source is destination:
        problem = TransitionReason.SAME_STATUS
    elif source in TERMINAL_STATUSES:
        problem = TransitionReason.FROM_TERMINAL
    elif source in HAPPY_PATH and destination in HAPPY_PATH:
        problem = TransitionReason.REGRESSION
    else:
        problem = TransitionReason.NOT_ALLOWED
    raise InvalidTransition(source.value, destination.value, problem)
