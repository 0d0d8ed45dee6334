"""Plan the writes that make Offergrid's offers equal to the catalog: the fewest calls possible.

`plan_offer_changes` compares the desired offers (from the mapping) with Offergrid's current offers
(one listing, indexed by SKU) and returns a `CatalogDiff`:

- create: a SKU Offergrid does not have (POST with the catalog's fields);
- update: a SKU whose owned fields differ (PATCH with only those fields);
- unchanged: nothing differs (no call at all);
- missing: an offer whose SKU is not in the catalog, handled by the `MissingOfferPolicy`
  (`inactive` by default; `archive`; `ignore`; `delete` only when explicitly configured).

An offer *leaving sale* has one guard, here, whatever the road (docs/decisions.md#13 and #15): a
removal of an offer missing from the catalog (deactivate, archive, delete) and an update that takes a
live (`active`) offer to any other status (`isActive` false or absent, a changed mapping) count alike
against `RemovalGuard` (max(5, 10 %) of the team's live offers). An offer whose catalog row could not
be read is protected by the SKU the row error names. When the run would take more offers off sale
than the guard allows, when a row error names no SKU, or when the catalog cannot be trusted as a
whole (`block`: a column the mapping needs is absent from the export, the export is cut short, its
manifest does not match), nothing leaves sale: those changes are `refused` (reported, counted,
alarmed), and a refused status change's other fields are still written. A dry run's `removal_token`
confirms exactly the refused list for one later run (`RemovalGuard(confirm=...)`).

`OfferPlanner` builds the plan from streams: the catalog's offers first (each kept as compact JSON
of its values), then Offergrid's listing (each offer compared as it arrives and reduced to its id
and status), so planning costs well under 1 KB per offer; `plan_offer_changes` is the same plan
from lists.

Values are compared normalised, so `59.9` vs `59.90`, `100` vs `100.0`, key order, or `null` vs
absent never cause a write. `serviceSpecificData` is compared key by key on the keys the catalog
owns; when it differs the PATCH carries the whole object (current keys kept, catalog keys over them),
since a PATCH replaces a field's value.

The order of the writes is deterministic: updates, creates, then missing offers, each by SKU.
Pure logic: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel

from offergrid_integration.catalog.mapping import SERVICE_SPECIFIC_DATA, DesiredOffer, RowError
from offergrid_integration.offergrid.models import Offer, OfferStatus

__all__ = [
    "DEFAULT_REMOVAL_MINIMUM",
    "DEFAULT_REMOVAL_PERCENT",
    "REMOVAL_KINDS",
    "CatalogDiff",
    "ChangeKind",
    "MissingOfferPolicy",
    "OfferChange",
    "OfferIndex",
    "OfferPlanner",
    "RemovalGuard",
    "canonical",
    "index_offers_by_sku",
    "matches",
    "plan_offer_changes",
    "removal_token",
    "same",
]

DEFAULT_REMOVAL_PERCENT: Final = 10.0
DEFAULT_REMOVAL_MINIMUM: Final = 5


class MissingOfferPolicy(StrEnum):
    """What to do with an offer whose SKU is no longer in the catalog."""

    INACTIVE = "inactive"
    ARCHIVE = "archive"
    IGNORE = "ignore"
    DELETE = "delete"


class ChangeKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
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
_WRITE_ORDER: Final = (
    ChangeKind.UPDATE,
    ChangeKind.CREATE,
    ChangeKind.DEACTIVATE,
    ChangeKind.ARCHIVE,
    ChangeKind.DELETE,
)
REMOVAL_KINDS: Final = frozenset({ChangeKind.DEACTIVATE, ChangeKind.ARCHIVE, ChangeKind.DELETE})


@dataclass(frozen=True, slots=True)
class RemovalGuard:
    """One run removes at most max(`minimum`, `percent` % of the team's live offers) offers
    (live: listed with status `active`). `confirm`: the `removal_token` a dry run printed for its
    refused removals; when the run plans exactly that list, it is applied (a one-run override)."""

    percent: float = DEFAULT_REMOVAL_PERCENT
    minimum: int = DEFAULT_REMOVAL_MINIMUM
    confirm: str | None = None

    def allowance(self, live: int) -> int:
        return max(self.minimum, math.floor(live * self.percent / 100 + 1e-9))

    def describe(self, live: int) -> str:
        return f"max({self.minimum}, {self.percent:g} % of {live} live offers) = {self.allowance(live)}"


def removal_token(changes: Iterable[OfferChange]) -> str:
    """A short digest of a list of changes that take offers off sale (kind, SKU, offer id, the status
    set): what an override confirms."""
    digest = hashlib.sha256()
    for change in sorted(changes, key=lambda c: (c.sku, c.kind.value, c.offer_id or "")):
        status = change.body.get("status", "")
        digest.update(f"{change.kind.value}\t{change.sku}\t{change.offer_id}\t{status}\n".encode())
    return digest.hexdigest()[:16]


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

    @property
    def fields(self) -> list[str]:
        return sorted(self.body)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value, "sku": self.sku, "offerId": self.offer_id}
        if self.kind is not ChangeKind.DELETE:
            data["body"] = dict(self.body)
        if self.before:
            data["before"] = dict(self.before)
        return data


@dataclass(frozen=True, slots=True)
class CurrentOffer:
    """What the plan needs of one Offergrid offer: a fraction of an `Offer` model's memory, so 50,000
    of them fit a small Lambda. `values` holds the wire values of the fields the catalog owns."""

    id: str
    sku: str
    status: str | None
    created_at: str
    values: Mapping[str, Any]


@dataclass(slots=True)
class OfferIndex:
    """Offergrid's offers by SKU. Offers without a SKU are not ours to manage; a SKU held twice
    (Offergrid says SKUs are unique, so a data problem) keeps the oldest id and reports the rest."""

    by_sku: dict[str, CurrentOffer] = field(default_factory=dict)
    without_sku: list[str] = field(default_factory=list)
    duplicate_ids: dict[str, list[str]] = field(default_factory=dict)
    listed: int = 0


def index_offers_by_sku(
    offers: Iterable[Offer], owned_fields: Iterable[str] | None = None, *, only: Iterable[str] | None = None
) -> OfferIndex:
    """Index a listing (consumed lazily: each `Offer` model is dropped once summarised). Only the
    `owned_fields` (wire names; default: every field) are kept; with `only`, only those SKUs."""
    owned = None if owned_fields is None else tuple(owned_fields)
    wanted = None if only is None else frozenset(only)
    index = OfferIndex()
    for offer in offers:
        index.listed += 1
        sku = offer.sku.strip() if offer.sku else ""
        if not sku:
            index.without_sku.append(offer.id)
            continue
        if wanted is not None and sku not in wanted:
            continue
        current = summarise(offer, owned, sku=sku)
        held = index.by_sku.get(sku)
        if held is None:
            index.by_sku[sku] = current
            continue
        keep, extra = (held, current) if _age_key(held) <= _age_key(current) else (current, held)
        index.by_sku[sku] = keep
        index.duplicate_ids.setdefault(sku, []).append(extra.id)
    return index


def summarise(
    offer: Offer, owned_fields: Iterable[str] | None = None, *, sku: str | None = None
) -> CurrentOffer:
    names = owned_fields if owned_fields is not None else offer.model_dump(by_alias=True, exclude_none=True)
    return CurrentOffer(
        id=offer.id,
        sku=sku if sku is not None else (offer.sku or ""),
        status=str(offer.status) if offer.status is not None else None,
        created_at=offer.created_at.isoformat() if offer.created_at else "",
        values=_wire_values(offer, names),
    )


def _age_key(offer: CurrentOffer) -> tuple[str, str]:
    return (offer.created_at, offer.id)


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
        by_kind: dict[ChangeKind, list[OfferChange]] = {kind: [] for kind in _WRITE_ORDER}
        for change in (*self.updates, *self.creates, *self.missing):
            by_kind[change.kind].append(change)
        return [change for kind in _WRITE_ORDER for change in by_kind[kind]]

    def counts(self) -> dict[str, int]:
        counts = {kind.value: 0 for kind in _WRITE_ORDER}
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts(),
            "writes": [change.to_dict() for change in self.writes],
            "unchanged": list(self.unchanged),
            "missingUntouched": list(self.missing_untouched),
            "skippedInvalid": list(self.skipped_invalid),
            "missingGuarded": self.missing_guarded,
            "refused": [change.to_dict() for change in self.refused],
            "removalGuard": self.guard_dict(),
            "catalogProblems": list(self.catalog_problems),
        }

    def render(self) -> str:
        """The plan as readable text (the dry run's output)."""
        counts = self.counts()
        lines = ["Plan: " + ", ".join(f"{name} {count}" for name, count in counts.items())]
        if self.missing_guarded:
            lines.append("  ! the catalog has no valid row: missing offers are left alone")
        lines.extend(f"  ! {problem}" for problem in self.catalog_problems)
        for change in self.writes:
            lines.append(f"  {change.kind.value:<10} {change.sku}" + _describe(change))
        if self.refused:
            lines.append(f"  ! {len(self.refused)} removals refused: {self.refused_reason}")
            lines.extend(f"  refused    {change.kind.value} {change.sku}" for change in self.refused)
        return "\n".join(lines)


def _describe(change: OfferChange) -> str:
    if change.kind is ChangeKind.DELETE:
        return f"  (offer {change.offer_id})"
    if change.kind is ChangeKind.CREATE:
        return f"  {change.body.get('name', '')!s} [{change.body.get('category', '')}]"
    parts = [
        f"{name}: {_short(change.before.get(name))} -> {_short(change.body[name])}" for name in change.fields
    ]
    return "  " + "; ".join(parts)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def plan_offer_changes(
    desired: Sequence[DesiredOffer],
    current: Mapping[str, CurrentOffer],
    missing_policy: MissingOfferPolicy = MissingOfferPolicy.INACTIVE,
    *,
    protected_skus: Iterable[str] = (),
    scope: Iterable[str] | None = None,
    guard: RemovalGuard | None = RemovalGuard(),
    unattributable_rows: int = 0,
    catalog_problems: Iterable[str] = (),
) -> CatalogDiff:
    """The writes that make `current` (Offergrid's offers by SKU) match `desired`.

    `protected_skus`: SKUs whose catalog row was invalid; their offers are left alone.
    `scope`: when given (a partial run over some SKUs), only offers with those SKUs may be treated as
    missing; otherwise every offer with a SKU not in `desired` is.
    `guard`: the removal guard (None: none); `unattributable_rows`: row errors naming no SKU, and
    `catalog_problems`: why the catalog cannot be trusted (either way nothing leaves sale).
    """
    planner = OfferPlanner(missing_policy, scope=scope, guard=guard)
    for wanted in desired:
        planner.add_desired(wanted)
    planner.protect(protected_skus)
    planner.unattributable += unattributable_rows
    for problem in catalog_problems:
        planner.block(problem, problem)
    for sku, offer in current.items():
        planner.add_current(offer, sku=sku)
    return planner.finish()


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
    """The plan, built from streams: `add_desired` / `reject` every catalog row first, then
    `add_offer` (or `add_current`) every listed offer, then `finish()`."""

    def __init__(
        self,
        missing_policy: MissingOfferPolicy = MissingOfferPolicy.INACTIVE,
        *,
        owned_fields: Iterable[str] | None = None,
        scope: Iterable[str] | None = None,
        guard: RemovalGuard | None = RemovalGuard(),
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
        desired = _encode(list(offer.fields.values()))  # in `shape` order
        self._entries[offer.sku] = (desired, shape, offer.row, *entry[_OFFER_ID:])
        self.desired_count += 1
        return None

    def reject(self, error: RowError) -> None:
        """A catalog row that was not mapped: its SKUs are protected, or it names none. A row the
        catalog ends inside protects nothing (its SKU may be another's, cut) and blocks every change
        that takes an offer off sale: the rest of the export is missing."""
        if error.cut:
            self.block("truncated", f"the catalog ends inside row {error.row}")
        elif error.attributable:
            self._protected.update(error.protects)
        else:
            self.unattributable += 1

    def protect(self, skus: Iterable[str]) -> None:
        self._protected.update(skus)

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
        """One listed offer, compared at once and then reduced to its id, age and status."""
        self.listed += 1
        sku = offer.sku.strip() if offer.sku else ""
        if not sku:
            self.without_sku.append(offer.id)
            return
        entry = self._entries.get(sku)
        wanted = entry is not None and entry[_DESIRED] is not None
        # Only an offer the catalog also has is compared: the others need no field values.
        values = (
            _wire_values(offer, self._owned if self._owned is not None else _all_fields(offer))
            if wanted
            else {}
        )
        created = offer.created_at.timestamp() if offer.created_at else -math.inf
        status = str(offer.status) if offer.status is not None else None
        self._add(sku, offer.id, created, status, values)

    def add_current(self, offer: CurrentOffer, *, sku: str | None = None) -> None:
        self.listed += 1
        sku = (offer.sku if sku is None else sku).strip()
        if not sku:
            self.without_sku.append(offer.id)
            return
        self._add(sku, offer.id, _age(offer.created_at), offer.status, offer.values)

    def _add(
        self, sku: str, offer_id: str, created: float, status: str | None, values: Mapping[str, Any]
    ) -> None:
        entry = self._entries.get(sku, _EMPTY)
        held = entry[_OFFER_ID]
        if held is not None:
            if (entry[_CREATED], held) <= (created, offer_id):
                self.duplicate_ids.setdefault(sku, []).append(offer_id)
                return
            self.duplicate_ids.setdefault(sku, []).append(held)
        status = None if status is None else self._statuses.setdefault(status, status)
        entry = self._entries[sku] = (*entry[:_OFFER_ID], offer_id, created, status)
        if entry[_DESIRED] is not None:
            body, before = _differences(_decode(entry), values)
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
        """The one guard of an offer leaving sale: removals and status changes alike."""
        guard = self.guard
        if guard is not None:
            diff.removal_allowance = guard.allowance(diff.live_offers)
        leaving = [*removals, *(_status_part(update) for update in flips)]
        diff.leaving_sale = len(leaving)
        reason = None
        if leaving and self._problems:
            reason = "the catalog cannot be trusted to take offers off sale: " + "; ".join(
                self._problems.values()
            )
        elif leaving and self.unattributable:
            reason = (
                f"{self.unattributable} catalog rows could not be read and name no SKU: "
                "any offer may be theirs, so nothing is taken off sale"
            )
        elif guard is not None and len(leaving) > diff.removal_allowance:
            reason = (
                f"{len(leaving)} offers would leave sale, more than the removal guard allows in one run: "
                f"{guard.describe(diff.live_offers)}"
            )
        if reason is None:
            diff.missing = removals
            return
        token = removal_token(leaving)
        diff.removal_token = token
        if guard is not None and guard.confirm == token:
            diff.missing = removals
            diff.removals_confirmed = True
            return
        diff.refused = leaving
        diff.refused_reason = reason
        # A refused status change keeps the rest of its row: the other fields are still written.
        refused = {update.sku for update in flips}
        diff.updates = [
            rest
            for update in diff.updates
            if (rest := _without_status(update) if update.sku in refused else update) is not None
        ]


_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_DECODER: Final = json.JSONDecoder()


def _encode(values: list[Any]) -> str:
    return _ENCODER.encode(values)


def _decode(entry: _Entry) -> dict[str, Any]:
    return dict(zip(entry[_SHAPE], _DECODER.decode(entry[_DESIRED] or "[]"), strict=True))


def _all_fields(offer: Offer) -> list[str]:
    return list(offer.model_dump(by_alias=True, exclude_none=True))


def _age(created_at: str) -> float:
    if not created_at:
        return -math.inf
    try:
        return datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return -math.inf


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


# ---------------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------------
def matches(desired: Mapping[str, Any], offer: CurrentOffer) -> bool:
    """Whether `offer` already holds every value of `desired` (normalised, as the plan compares)."""
    body, _ = _differences(desired, offer.values)
    return not body


def _differences(
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


def _wire_values(offer: Offer, names: Iterable[str]) -> dict[str, Any]:
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
