"""Plan the writes that make Offergrid's offers equal to the catalog, with the fewest calls.

Creates what Offergrid lacks, PATCHes only differing owned fields, and applies `MissingOfferPolicy` to
offers missing from the catalog; every change off sale goes through `guard` (docs/decisions.md#13, #15).
It plans from streams, keeping well under 1 KB per SKU. Values are compared as Offergrid holds them
(`59.9` = `59.90`, `null` = absent); `serviceSpecificData` key by key, sent whole since a PATCH replaces
a field's value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel

from offergrid_integration.catalog.guard import RemovalGuard, judge
from offergrid_integration.catalog.mapping import SERVICE_SPECIFIC_DATA, DesiredOffer, RowError
from offergrid_integration.offergrid.models import Offer, OfferStatus


class MissingOfferPolicy(StrEnum):
    """What to do with an offer whose SKU is no longer in the catalog."""

    INACTIVE = "inactive"
    ARCHIVE = "archive"
    IGNORE = "ignore"
    DELETE = "delete"


class ChangeKind(StrEnum):
    """In the order writes are applied."""

    UPDATE = "update"
    CREATE = "create"
    DEACTIVATE = "deactivate"
    ARCHIVE = "archive"
    DELETE = "delete"


# Statuses that already satisfy a policy: no write needed.
_ALREADY_DONE: Final = {
    # A draft is hidden from resellers already: turning it `inactive` would be a write for nothing.
    MissingOfferPolicy.INACTIVE: frozenset(
        {OfferStatus.INACTIVE.value, OfferStatus.ARCHIVED.value, OfferStatus.DRAFT.value}
    ),
    MissingOfferPolicy.ARCHIVE: frozenset({OfferStatus.ARCHIVED.value}),
}
_POLICY_CHANGE: Final = {
    MissingOfferPolicy.INACTIVE: (ChangeKind.DEACTIVATE, OfferStatus.INACTIVE.value),
    MissingOfferPolicy.ARCHIVE: (ChangeKind.ARCHIVE, OfferStatus.ARCHIVED.value),
}
_DEFAULT_GUARD: Final = RemovalGuard()
_WRITE_ORDER: Final = {kind: position for position, kind in enumerate(ChangeKind)}


@dataclass(frozen=True, slots=True)
class OfferChange:
    """One write. `body` is the wire JSON to send (empty for a delete); `before` the current values
    of the fields it changes (for display); `desired` the catalog's offer a create comes from."""

    kind: ChangeKind
    sku: str
    offer_id: str | None
    body: Mapping[str, Any]
    before: Mapping[str, Any] = field(default_factory=dict)
    desired: DesiredOffer | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value, "sku": self.sku, "offerId": self.offer_id}
        if self.kind is not ChangeKind.DELETE:
            data["body"] = dict(self.body)
        if self.before:
            data["before"] = dict(self.before)
        return data


@dataclass(slots=True)
class CatalogDiff:
    """The plan: what to write, and what needs nothing."""

    creates: list[OfferChange] = field(default_factory=list)
    updates: list[OfferChange] = field(default_factory=list)
    missing: list[OfferChange] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # Missing from the catalog but left alone: the policy is `ignore`, the offer already has the
    # policy's status, or the catalog produced no valid row at all (see `missing_guarded`).
    missing_untouched: list[str] = field(default_factory=list)
    # Offers of SKUs whose catalog row was invalid: neither updated nor treated as missing.
    skipped_invalid: list[str] = field(default_factory=list)
    missing_guarded: bool = False
    # Changes that would take offers off sale and that this run will not make (Decisions 13 and 15):
    # removals, and the status part of updates (their other fields are in `updates`); why, and the
    # token that confirms them.
    refused: list[OfferChange] = field(default_factory=list)
    refused_reason: str | None = None
    removal_token: str | None = None
    removals_confirmed: bool = False  # refused but for an override that confirmed this exact list
    live_offers: int = 0
    removal_allowance: int = 0
    unattributable_rows: int = 0
    leaving_sale: int = 0  # planned changes that take an offer off sale, made or refused
    # Why the catalog cannot be trusted to take anything off sale (docs/decisions.md#15).
    catalog_problems: list[str] = field(default_factory=list)

    @property
    def writes(self) -> list[OfferChange]:
        """Every write, in the order they are applied."""
        return sorted(
            (*self.updates, *self.creates, *self.missing), key=lambda change: _WRITE_ORDER[change.kind]
        )

    def counts(self) -> dict[str, int]:
        counts = {kind.value: 0 for kind in ChangeKind}
        for change in self.writes:
            counts[change.kind.value] += 1
        counts["unchanged"] = len(self.unchanged)
        counts["missing_untouched"] = len(self.missing_untouched)
        counts["skipped_invalid"] = len(self.skipped_invalid)
        counts["refused"] = len(self.refused)
        return counts

    def guard_dict(self) -> dict[str, Any]:
        """The removal guard's numbers and verdict (reports, the CLI)."""
        return {
            "liveOffers": self.live_offers,
            "allowance": self.removal_allowance,
            "leavingSale": self.leaving_sale,
            "unattributableRows": self.unattributable_rows,
            "refused": len(self.refused),
            "reason": self.refused_reason,
            "confirmation": self.removal_token,
            "confirmed": self.removals_confirmed,
        }


# One SKU while planning, a plain tuple of atomic values (which the garbage collector stops tracking,
# so 200,000 of them cost no collection time): the catalog's values as compact JSON in `shape` order
# (None: not in the catalog) and its row, then the listed offer kept for it (None: not listed), its
# age and status.
type _Entry = tuple[str | None, tuple[str, ...], int, str | None, float, str | None]
_DESIRED: Final = 0
_SHAPE: Final = 1
_ROW: Final = 2
_OFFER_ID: Final = 3
_CREATED: Final = 4
_STATUS: Final = 5
_EMPTY: Final[_Entry] = (None, (), 0, None, -math.inf, None)


class OfferPlanner:
    """The plan, built from streams: `add_desired` / `reject` every catalog row first (and `block`
    what makes the whole catalog untrustworthy), then `add_offer` every listed offer, then `finish()`."""

    def __init__(
        self,
        missing_policy: MissingOfferPolicy = MissingOfferPolicy.INACTIVE,
        *,
        owned_fields: Iterable[str] | None = None,
        scope: Iterable[str] | None = None,
        guard: RemovalGuard | None = _DEFAULT_GUARD,
    ) -> None:
        self.missing_policy = missing_policy
        self.guard = guard
        self._owned = None if owned_fields is None else tuple(owned_fields)
        self._scope = None if scope is None else frozenset(scope)
        self._entries: dict[str, _Entry] = {}
        self._updates: dict[str, OfferChange] = {}
        self._protected: set[str] = set()
        self._shapes: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._statuses: dict[str, str] = {}
        self._problems: dict[str, str] = {}
        self.desired_count = 0
        self.unattributable = 0
        self.listed = 0
        self.without_sku: list[str] = []
        self.duplicate_ids: dict[str, list[str]] = {}

    # --- the catalog -----------------------------------------------------------------------------
    def add_desired(self, offer: DesiredOffer) -> int | None:
        """Keep a catalog offer; returns the row that already holds its SKU (a duplicate, not kept)."""
        if self._scope is not None and offer.sku not in self._scope:
            return None
        entry = self._entries.get(offer.sku, _EMPTY)
        if entry[_ROW]:
            return entry[_ROW]
        shape = tuple(offer.fields)
        shape = self._shapes.setdefault(shape, shape)
        desired = _ENCODER.encode(list(offer.fields.values()))  # in `shape` order
        self._entries[offer.sku] = (desired, shape, offer.row, *entry[_OFFER_ID:])
        self.desired_count += 1
        return None

    def reject(self, error: RowError) -> None:
        """A row that was not mapped protects its SKUs; a cut row protects nothing and blocks every change
        off sale, since the rest of the export is missing.
        """
        if error.cut:
            self.block("truncated", f"the catalog ends inside row {error.row}")
        elif error.attributable:
            self._protected.update(error.protects)
        else:
            self.unattributable += 1

    @property
    def problems(self) -> list[str]:
        """Why the catalog cannot be trusted to take offers off sale (`block`)."""
        return list(self._problems.values())

    def block(self, key: str, reason: str) -> None:
        """The catalog cannot be trusted to take offers off sale (docs/decisions.md#15): nothing leaves
        sale this run, for `reason` (one per `key`, the latest kept)."""
        self._problems[key] = reason

    # --- the listing -----------------------------------------------------------------------------
    def add_offer(self, offer: Offer) -> None:
        """One listed offer, compared at once and then reduced to its id, age and status (a SKU held
        twice keeps its oldest offer and reports the other)."""
        self.listed += 1
        sku = offer.sku.strip() if offer.sku else ""
        if not sku:
            self.without_sku.append(offer.id)
            return
        offer_id = offer.id
        created = offer.created_at.timestamp() if offer.created_at else -math.inf
        status = str(offer.status) if offer.status is not None else None
        entry = self._entries.get(sku, _EMPTY)
        held = entry[_OFFER_ID]
        if held is not None:
            if (entry[_CREATED], held) <= (created, offer_id):
                self.duplicate_ids.setdefault(sku, []).append(offer_id)
                return
            self.duplicate_ids.setdefault(sku, []).append(held)
        status = None if status is None else self._statuses.setdefault(status, status)
        entry = self._entries[sku] = (*entry[:_OFFER_ID], offer_id, created, status)
        if entry[_DESIRED] is not None:  # only an offer the catalog also has is compared
            owned = self._owned
            if owned is None:
                owned = tuple(offer.model_dump(by_alias=True, exclude_none=True))
            values = wire_values(offer, owned)
            body, before = differences(_decode(entry), values)
            if body:
                self._updates[sku] = OfferChange(ChangeKind.UPDATE, sku, offer_id, body, before)
            else:
                self._updates.pop(sku, None)

    # --- the plan --------------------------------------------------------------------------------
    def finish(self) -> CatalogDiff:
        diff = CatalogDiff(
            unattributable_rows=self.unattributable, catalog_problems=[*self._problems.values()]
        )
        candidates: list[tuple[str, _Entry]] = []
        flips: list[OfferChange] = []  # updates that take a live offer off sale
        live = 0
        for sku in sorted(self._entries):
            entry = self._entries[sku]
            offer_id = entry[_OFFER_ID]
            is_live = offer_id is not None and entry[_STATUS] == OfferStatus.ACTIVE.value
            live += is_live
            if entry[_DESIRED] is not None:
                if offer_id is None:
                    fields = _decode(entry)
                    wanted = DesiredOffer(sku=sku, fields=fields, row=entry[_ROW])
                    diff.creates.append(
                        OfferChange(ChangeKind.CREATE, sku, None, dict(fields), desired=wanted)
                    )
                elif sku in self._updates:
                    update = self._updates[sku]
                    diff.updates.append(update)
                    if is_live and _takes_off_sale(update.body):
                        flips.append(update)
                else:
                    diff.unchanged.append(sku)
            elif offer_id is not None and (self._scope is None or sku in self._scope):
                if sku in self._protected:
                    diff.skipped_invalid.append(sku)
                else:
                    candidates.append((sku, entry))
        diff.live_offers = live
        policy = self.missing_policy
        if not self.desired_count and candidates and policy is not MissingOfferPolicy.IGNORE:
            # An empty (or entirely invalid) catalog is far more likely a broken export than a provider
            # withdrawing every product: never deactivate everything on its say-so.
            diff.missing_guarded = True
            diff.missing_untouched = [sku for sku, _ in candidates]
            return diff
        removals: list[OfferChange] = []
        for sku, entry in candidates:
            change = _missing_change(sku, entry[_OFFER_ID] or "", entry[_STATUS], policy)
            if change is None:
                diff.missing_untouched.append(sku)
            else:
                removals.append(change)
        self._guard(diff, removals, flips)
        return diff

    def _guard(self, diff: CatalogDiff, removals: list[OfferChange], flips: list[OfferChange]) -> None:
        """Removals and status flips alike before the one guard; a refused flip keeps its other fields."""
        if self.guard is not None:
            diff.removal_allowance = self.guard.allowance(diff.live_offers)
        leaving = [*removals, *(_status_part(update) for update in flips)]
        diff.leaving_sale = len(leaving)
        verdict = judge(
            leaving,
            self.guard,
            live=diff.live_offers,
            problems=self._problems.values(),
            unattributable=self.unattributable,
        )
        diff.removal_token, diff.removals_confirmed = verdict.token, verdict.confirmed
        if not verdict.refused:
            diff.missing = removals
            return
        diff.refused, diff.refused_reason = leaving, verdict.reason
        refused = {update.sku for update in flips}
        diff.updates = [
            rest
            for update in diff.updates
            if (rest := _without_status(update) if update.sku in refused else update) is not None
        ]


_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_DECODER: Final = json.JSONDecoder()


def _decode(entry: _Entry) -> dict[str, Any]:
    return dict(zip(entry[_SHAPE], _DECODER.decode(entry[_DESIRED] or "[]"), strict=True))


def _takes_off_sale(body: Mapping[str, Any]) -> bool:
    """Whether a PATCH of a live offer takes it off sale (sets any status but `active`)."""
    return "status" in body and str(body["status"]) != OfferStatus.ACTIVE.value


def _status_part(update: OfferChange) -> OfferChange:
    """The part of an update that takes a live offer off sale, as the removal it amounts to."""
    status = update.body["status"]
    kind = ChangeKind.ARCHIVE if status == OfferStatus.ARCHIVED.value else ChangeKind.DEACTIVATE
    return OfferChange(
        kind, update.sku, update.offer_id, {"status": status}, {"status": OfferStatus.ACTIVE.value}
    )


def _without_status(update: OfferChange) -> OfferChange | None:
    """The update without its status change (None: nothing else was to change)."""
    body = {name: value for name, value in update.body.items() if name != "status"}
    if not body:
        return None
    before = {name: value for name, value in update.before.items() if name != "status"}
    return OfferChange(ChangeKind.UPDATE, update.sku, update.offer_id, body, before)


def _missing_change(
    sku: str, offer_id: str, status: str | None, policy: MissingOfferPolicy
) -> OfferChange | None:
    if policy is MissingOfferPolicy.IGNORE:
        return None
    if policy is MissingOfferPolicy.DELETE:
        return OfferChange(ChangeKind.DELETE, sku, offer_id, {})
    if status in _ALREADY_DONE[policy]:
        return None
    kind, target = _POLICY_CHANGE[policy]
    return OfferChange(kind, sku, offer_id, {"status": target}, {"status": status})


# --- comparing values ------------------------------------------------------------------------------
def differences(
    desired: Mapping[str, Any], current: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(PATCH body, current values) for the owned fields whose normalised values differ."""
    body: dict[str, Any] = {}
    before: dict[str, Any] = {}
    for name, value in desired.items():
        now = current.get(name)
        if name == SERVICE_SPECIFIC_DATA and isinstance(value, Mapping):
            now_map = now if isinstance(now, Mapping) else {}
            if not all(same(v, now_map.get(k)) for k, v in value.items()):
                body[name] = {**now_map, **value}
                before[name] = now
        elif not same(value, now):
            body[name] = value
            before[name] = now
    return body, before


def wire_values(offer: Offer, names: Iterable[str]) -> dict[str, Any]:
    """The offer's current values of `names` (wire names), as plain JSON types."""
    extra = offer.model_extra or {}
    values: dict[str, Any] = {}
    for name in names:
        attribute = _ATTRIBUTES.get(name)
        value = getattr(offer, attribute) if attribute is not None else extra.get(name)
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json", by_alias=True)
        values[name] = value
    return values


_ATTRIBUTES: Final = {(info.alias or name): name for name, info in Offer.model_fields.items()} | {
    name: name for name in Offer.model_fields
}


def same(desired: Any, current: Any) -> bool:
    """Whether two values are equal once normalised (`canonical`). Plain equality first: it decides
    the common case (an unchanged offer) without normalising anything."""
    if desired == current and isinstance(desired, bool) == isinstance(current, bool):
        return True
    return bool(canonical(desired) == canonical(current))


def canonical(value: Any) -> Any:
    """A value normalised for comparison: numbers as normalised decimals (`59.9 == 59.90 == 5.99e1`,
    `100 == 100.0`), enums as their values, objects without their null members (null == absent)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.value if isinstance(value, StrEnum) else value
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value)) if not isinstance(value, Decimal) else value
        return number.normalize() + 0  # `+ 0` turns -0 into 0
    if isinstance(value, dict | Mapping):
        return {str(k): canonical(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    if isinstance(value, BaseModel):
        return canonical(value.model_dump(mode="json", by_alias=True))
    return value
