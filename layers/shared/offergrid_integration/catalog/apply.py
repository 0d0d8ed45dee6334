"""Apply a plan through the Offergrid client, within the shared rate budget and the Lambda's time.

A run that runs out of time, budget or `max_writes`, or keeps meeting transient errors, stops cleanly with
the rest `pending`: the next invocation re-plans from a fresh listing. A permanent failure is recorded
with its SKU and the run goes on. Two answers a retry can earn for an applied write whose answer was lost
are settled: a create answered 409 is confirmed by a listing (`confirm_created`), and a delete answered
404 is done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from offergrid_integration.catalog.plan import ChangeKind, MissingOfferPolicy, OfferChange, OfferPlanner
from offergrid_integration.catalog.report import ApplyFailure
from offergrid_integration.observability import logger
from offergrid_integration.offergrid.errors import (
    APIStatusError,
    ConflictError,
    NotFoundError,
    OffergridError,
    RateBudgetExhausted,
)
from offergrid_integration.offergrid.models import Offer, OfferCreate, OfferUpdate

DEFAULT_MIN_TIME_LEFT: Final = 30.0  # seconds kept to checkpoint, store the report and answer
MAX_CONSECUTIVE_TRANSIENT_FAILURES: Final = 3
_MAX_REASON: Final = 300


class StopReason:
    TIME = "time_running_out"
    RATE_BUDGET = "rate_budget_exhausted"
    MAX_WRITES = "max_writes_reached"
    API_UNAVAILABLE = "api_unavailable"


class OfferWriter(Protocol):
    """What applying a plan needs of `OffergridClient`."""

    def create_offer(self, offer: OfferCreate) -> Offer | None: ...

    def update_offer(self, offer_id: str, changes: OfferUpdate) -> Offer | None: ...

    def delete_offer(self, offer_id: str) -> None: ...


class OfferLister(Protocol):
    def list_offers(self) -> Iterator[Offer]: ...


class ListingConfirmation:
    """Whether a create answered 409 made our offer after all: one listing per run, taken at the first
    need; a listing that fails confirms nothing (the next run settles it).
    """

    def __init__(
        self, client: OfferLister, creates: Iterable[OfferChange], owned_fields: Iterable[str] | None = None
    ) -> None:
        self._client = client
        self._creates = list(creates)
        self._owned = owned_fields
        self._confirmed: frozenset[str] | None = None

    def __call__(self, change: OfferChange) -> bool:
        if self._confirmed is None:
            self._confirmed = frozenset()
            planner = OfferPlanner(
                MissingOfferPolicy.IGNORE,
                owned_fields=self._owned,
                scope=[create.sku for create in self._creates],
                guard=None,
            )
            for create in self._creates:
                if create.desired is not None:
                    planner.add_desired(create.desired)
            try:
                for offer in self._client.list_offers():
                    planner.add_offer(offer)
            except (OffergridError, RateBudgetExhausted) as error:
                logger.warning(
                    "could not list offers to confirm a create answered 409",
                    extra={"sku": change.sku, "error": type(error).__name__},
                )
                return False
            self._confirmed = frozenset(planner.finish().unchanged)
        return change.sku in self._confirmed


@dataclass(slots=True)
class ApplyResult:
    done: dict[str, int] = field(default_factory=dict)
    failures: list[ApplyFailure] = field(default_factory=list)
    pending: list[OfferChange] = field(default_factory=list)
    stop_reason: str | None = None
    confirmed_on_retry: list[str] = field(default_factory=list)  # SKUs


def apply_plan(
    writes: Sequence[OfferChange],
    client: OfferWriter,
    *,
    remaining_time: Callable[[], float] | None = None,
    min_time_left: float = DEFAULT_MIN_TIME_LEFT,
    max_writes: int | None = None,
    confirm_created: Callable[[OfferChange], bool] | None = None,
) -> ApplyResult:
    """Perform `writes` in order until done or until it must stop (see the module docstring)."""
    result = ApplyResult()
    transient_in_a_row = 0
    attempted = 0
    for position, change in enumerate(writes):
        stop = _must_stop(remaining_time, min_time_left, max_writes, attempted)
        if stop is not None:
            result.stop_reason = stop
            result.pending = list(writes[position:])
            return result
        attempted += 1
        try:
            _write(client, change)
        except RateBudgetExhausted:
            result.stop_reason = StopReason.RATE_BUDGET
            result.pending = list(writes[position:])
            return result
        except OffergridError as error:
            if _out_of_time(remaining_time, min_time_left):
                # The client gave up because the deadline is near, not because the write is wrong.
                result.stop_reason = StopReason.TIME
                result.pending = list(writes[position:])
                return result
            if _done_after_all(change, error, confirm_created):
                transient_in_a_row = 0
                result.done[change.kind.value] = result.done.get(change.kind.value, 0) + 1
                if change.kind is ChangeKind.CREATE:
                    result.confirmed_on_retry.append(change.sku)
                continue
            result.failures.append(_failure(change, error))
            transient_in_a_row = transient_in_a_row + 1 if error.retryable else 0
            if transient_in_a_row >= MAX_CONSECUTIVE_TRANSIENT_FAILURES:
                result.stop_reason = StopReason.API_UNAVAILABLE
                result.pending = list(writes[position + 1 :])
                return result
            continue
        transient_in_a_row = 0
        result.done[change.kind.value] = result.done.get(change.kind.value, 0) + 1
    return result


def _must_stop(
    remaining_time: Callable[[], float] | None, min_time_left: float, max_writes: int | None, attempted: int
) -> str | None:
    if max_writes is not None and attempted >= max_writes:
        return StopReason.MAX_WRITES
    if _out_of_time(remaining_time, min_time_left):
        return StopReason.TIME
    return None


def _out_of_time(remaining_time: Callable[[], float] | None, min_time_left: float) -> bool:
    return remaining_time is not None and remaining_time() < min_time_left


def _done_after_all(
    change: OfferChange, error: OffergridError, confirm_created: Callable[[OfferChange], bool] | None
) -> bool:
    """Whether a write that raised `error` reached its goal anyway (see the module docstring)."""
    if change.kind is ChangeKind.DELETE and isinstance(error, NotFoundError):
        return True
    if (
        change.kind is ChangeKind.CREATE
        and isinstance(error, ConflictError)
        and confirm_created is not None
        and confirm_created(change)
    ):
        logger.info(
            "create answered 409 confirmed: the offer exists with the catalog's values",
            extra={"sku": change.sku},
        )
        return True
    return False


def _write(client: OfferWriter, change: OfferChange) -> None:
    match change.kind:
        case ChangeKind.CREATE:
            if change.desired is None:  # the plan always sets it; a bug if it does not
                raise ValueError(f"create of {change.sku} has no desired offer")
            client.create_offer(change.desired.create_body())
        case ChangeKind.DELETE:
            client.delete_offer(_offer_id(change))
        case _:
            client.update_offer(_offer_id(change), OfferUpdate.model_validate(dict(change.body)))


def _offer_id(change: OfferChange) -> str:
    if change.offer_id is None:  # the plan never builds one; a bug if it does
        raise ValueError(f"{change.kind.value} of {change.sku} has no offer id")
    return change.offer_id


def _failure(change: OfferChange, error: OffergridError) -> ApplyFailure:
    status = error.status_code if isinstance(error, APIStatusError) else None
    if isinstance(error, ConflictError) and change.kind is ChangeKind.CREATE:
        reason = (
            "SKU already exists in Offergrid (409 Conflict) but was not in our listing of the team's "
            "offers: another team's offer, or created since the listing"
        )
    else:
        reason = str(error)
    if len(reason) > _MAX_REASON:
        reason = reason[: _MAX_REASON - 3] + "..."
    return ApplyFailure(sku=change.sku, action=change.kind.value, reason=reason, status_code=status)
