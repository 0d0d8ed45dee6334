"""The order-item lifecycle: what may follow what, and why a move is refused."""

from __future__ import annotations

import itertools

import pytest

from devtools.offergrid_fake.lifecycle import transition_error
from offergrid_integration.offergrid.models import OrderItemStatus as S
from offergrid_integration.orders.lifecycle import (
    InvalidTransition,
    TransitionReason,
    allowed_targets,
    check_transition,
    is_decidable,
    is_terminal,
)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.PENDING, S.SUBMITTED_TO_PROVIDER),
        (S.SUBMITTED_TO_PROVIDER, S.ACCEPTED),
        (S.ACCEPTED, S.SCHEDULED),
        (S.SCHEDULED, S.IN_PROGRESS),
        (S.IN_PROGRESS, S.COMPLETED),
        (S.COMPLETED, S.ACTIVE),
        # forward skips: a pending item is accepted directly; a provider may skip `scheduled`
        (S.PENDING, S.ACCEPTED),
        (S.ACCEPTED, S.IN_PROGRESS),
        # failure edges
        (S.PENDING, S.REJECTED),
        (S.SUBMITTED_TO_PROVIDER, S.REJECTED),
        (S.ACCEPTED, S.CANCELLED),
        (S.SCHEDULED, S.CANCELLED),
        (S.IN_PROGRESS, S.CANCELLED),
        (S.IN_PROGRESS, S.FAILED),
    ],
)
def test_documented_moves_are_allowed(current: S, target: S) -> None:
    check_transition(current, target)  # does not raise
    assert target in allowed_targets(current)


@pytest.mark.parametrize(
    ("current", "target", "problem"),
    [
        (S.ACCEPTED, S.ACCEPTED, TransitionReason.SAME_STATUS),
        (S.SCHEDULED, S.SCHEDULED, TransitionReason.SAME_STATUS),
        (S.CANCELLED, S.SCHEDULED, TransitionReason.FROM_TERMINAL),
        (S.REJECTED, S.ACCEPTED, TransitionReason.FROM_TERMINAL),
        (S.FAILED, S.IN_PROGRESS, TransitionReason.FROM_TERMINAL),
        (S.ACTIVE, S.CANCELLED, TransitionReason.FROM_TERMINAL),
        (S.COMPLETED, S.IN_PROGRESS, TransitionReason.REGRESSION),
        (S.SCHEDULED, S.ACCEPTED, TransitionReason.REGRESSION),
        (S.PENDING, S.CANCELLED, TransitionReason.NOT_ALLOWED),
        (S.ACCEPTED, S.FAILED, TransitionReason.NOT_ALLOWED),
        (S.COMPLETED, S.CANCELLED, TransitionReason.NOT_ALLOWED),
        (S.ACCEPTED, S.REJECTED, TransitionReason.NOT_ALLOWED),
    ],
)
def test_refused_moves_say_why(current: S, target: S, problem: TransitionReason) -> None:
    with pytest.raises(InvalidTransition) as caught:
        check_transition(current, target)
    assert caught.value.problem is problem
    assert (caught.value.current, caught.value.target) == (current.value, target.value)


def test_an_unknown_status_is_refused_not_guessed() -> None:
    with pytest.raises(InvalidTransition) as caught:
        check_transition("on_hold", S.ACCEPTED)
    assert caught.value.problem is TransitionReason.UNKNOWN_STATUS
    with pytest.raises(InvalidTransition):
        check_transition(S.ACCEPTED, "teleported")
    assert allowed_targets("on_hold") == frozenset()


def test_terminal_and_decidable_statuses() -> None:
    assert {s for s in S if is_terminal(s)} == {S.REJECTED, S.CANCELLED, S.FAILED, S.ACTIVE}
    assert {s for s in S if is_decidable(s)} == {S.PENDING, S.SUBMITTED_TO_PROVIDER}
    assert is_terminal("cancelled")
    assert not is_terminal("something_new")


def test_agrees_with_the_fake_on_every_pair() -> None:
    # The fake answers 422 exactly where our check refuses: we never send a PATCH it would refuse.
    for current, target in itertools.product(S, S):
        try:
            check_transition(current, target)
            ours_allowed = True
        except InvalidTransition:
            ours_allowed = False
        assert ours_allowed == (transition_error(current.value, target.value) is None), (current, target)
