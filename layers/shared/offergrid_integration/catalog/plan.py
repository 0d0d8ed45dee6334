"""Plan the writes that make Offergrid's offers equal to the catalog: the fewest calls possible.

`plan_offer_changes` compares the desired offers (from the mapping) with Offergrid's current offers
(one listing, indexed by SKU) and returns a `CatalogDiff`:

- create: a SKU Offergrid does not have (POST with the catalog's fields);
- update: a SKU whose owned fields differ (PATCH with only those fields);
- unchanged: nothing differs (no call at all);
- missing: an offer whose SKU is not in the catalog, handled by the `MissingOfferPolicy`
  (`inactive` by default; `archive`; `ignore`; `delete` only when explicitly configured).

Values are compared normalised, so `59.9` vs `59.90`, `100` vs `100.0`, key order, or `null` vs
absent never cause a write. `serviceSpecificData` is compared key by key on the keys the catalog
owns; when it differs the PATCH carries the whole object (current keys kept, catalog keys over them),
since a PATCH replaces a field's value.

The order of the writes is deterministic: updates, creates, then missing offers, each by SKU.
Pure logic: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel

from offergrid_integration.catalog.mapping import SERVICE_SPECIFIC_DATA, DesiredOffer
from offergrid_integration.offergrid.models import Offer, OfferStatus

__all__ = [
    "CatalogDiff",
    "ChangeKind",
    "MissingOfferPolicy",
    "OfferChange",
    "OfferIndex",
    "canonical",
    "index_offers_by_sku",
    "matches",
    "plan_offer_changes",
    "same",
]


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


def index_offers_by_sku(offers: Iterable[Offer], owned_fields: Iterable[str] | None = None) -> OfferIndex:
    """Index a listing (consumed lazily: each `Offer` model is dropped once summarised). Only the
    `owned_fields` (wire names; default: every field) are kept."""
    owned = None if owned_fields is None else tuple(owned_fields)
    index = OfferIndex()
    for offer in offers:
        index.listed += 1
        sku = offer.sku.strip() if offer.sku else ""
        if not sku:
            index.without_sku.append(offer.id)
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
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts(),
            "writes": [change.to_dict() for change in self.writes],
            "unchanged": list(self.unchanged),
            "missingUntouched": list(self.missing_untouched),
            "skippedInvalid": list(self.skipped_invalid),
            "missingGuarded": self.missing_guarded,
        }

    def render(self) -> str:
        """The plan as readable text (the dry run's output)."""
        counts = self.counts()
        lines = ["Plan: " + ", ".join(f"{name} {count}" for name, count in counts.items())]
        if self.missing_guarded:
            lines.append("  ! the catalog has no valid row: missing offers are left alone")
        for change in self.writes:
            lines.append(f"  {change.kind.value:<10} {change.sku}" + _describe(change))
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
) -> CatalogDiff:
    """The writes that make `current` (Offergrid's offers by SKU) match `desired`.

    `protected_skus`: SKUs whose catalog row was invalid; their offers are left alone.
    `scope`: when given (a partial run over some SKUs), only offers with those SKUs may be treated as
    missing; otherwise every offer with a SKU not in `desired` is.
    """
    diff = CatalogDiff()
    wanted = {offer.sku: offer for offer in desired}
    protected = set(protected_skus) - set(wanted)
    for sku in sorted(wanted):
        offer = wanted[sku]
        existing = current.get(sku)
        if existing is None:
            diff.creates.append(OfferChange(ChangeKind.CREATE, sku, None, dict(offer.fields), desired=offer))
            continue
        body, before = _differences(offer.fields, existing)
        if body:
            diff.updates.append(OfferChange(ChangeKind.UPDATE, sku, existing.id, body, before))
        else:
            diff.unchanged.append(sku)

    in_scope = set(current) if scope is None else set(scope) & set(current)
    candidates = sorted(in_scope - set(wanted))
    diff.skipped_invalid = [sku for sku in candidates if sku in protected]
    candidates = [sku for sku in candidates if sku not in protected]
    if not wanted and candidates and missing_policy is not MissingOfferPolicy.IGNORE:
        # An empty (or entirely invalid) catalog is far more likely a broken export than a provider
        # withdrawing every product: never deactivate everything on its say-so.
        diff.missing_guarded = True
        diff.missing_untouched = candidates
        return diff
    for sku in candidates:
        change = _missing_change(sku, current[sku], missing_policy)
        if change is None:
            diff.missing_untouched.append(sku)
        else:
            diff.missing.append(change)
    return diff


def _missing_change(sku: str, offer: CurrentOffer, policy: MissingOfferPolicy) -> OfferChange | None:
    if policy is MissingOfferPolicy.IGNORE:
        return None
    if policy is MissingOfferPolicy.DELETE:
        return OfferChange(ChangeKind.DELETE, sku, offer.id, {})
    status = offer.status
    if status in _ALREADY_DONE[policy]:
        return None
    kind, target = _POLICY_CHANGE[policy]
    return OfferChange(kind, sku, offer.id, {"status": target}, {"status": status})


# ---------------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------------
def matches(desired: Mapping[str, Any], offer: CurrentOffer) -> bool:
    """Whether `offer` already holds every value of `desired` (normalised, as the plan compares)."""
    body, _ = _differences(desired, offer)
    return not body


def _differences(desired: Mapping[str, Any], offer: CurrentOffer) -> tuple[dict[str, Any], dict[str, Any]]:
    """(PATCH body, current values) for the owned fields whose normalised values differ."""
    current = offer.values
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
