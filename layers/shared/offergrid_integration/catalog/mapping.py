"""The declarative mapping from catalog rows to Offergrid offer fields (reference: samples/README.md;
default: docs/decisions.md#8). A field the mapping produces is owned by the catalog; others are left
alone.

A row that breaks a rule is a `RowError` and skipped; its SKU protects its offer, and one naming no SKU
takes nothing off sale (docs/decisions.md#13; a cut row protects nothing, #15).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from offergrid_integration.catalog.values import (
    Invalid,
    is_missing,
    lookup,
    show,
    table_key,
    to_bool,
    to_number,
    to_object,
    to_string,
    to_string_list,
)
from offergrid_integration.offergrid.models import (
    InternetServiceData,
    OfferCategory,
    OfferCreate,
    OfferFields,
    OffergridModel,
    SecurityServiceData,
)

DEFAULT_MAPPING_RESOURCE: Final = "default_mapping.json"
SERVICE_SPECIFIC_DATA: Final = "serviceSpecificData"
# Wire names of the top-level fields a mapping may write (every writable offer field but the nested one).
WRITABLE_FIELDS: Final = frozenset(
    (info.alias or name) for name, info in OfferFields.model_fields.items() if name != "service_specific_data"
)
# Documented serviceSpecificData shapes, validated strictly (the fake and Offergrid reject bad ones).
_DOCUMENTED_SERVICE_DATA: Final[dict[str, type[OffergridModel]]] = {
    OfferCategory.INTERNET.value: InternetServiceData,
    OfferCategory.SECURITY.value: SecurityServiceData,
}


class MappingError(ValueError):
    """The mapping document itself is unusable (names the problem; nothing can be synced)."""


# --- The document -------------------------------------------------------------------------------------------
class FieldRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    comment: str | None = Field(default=None, alias="$comment")
    source: str | None = Field(default=None, alias="from", min_length=1)
    value: Any = None
    type: Literal["string", "number", "integer", "boolean", "stringList", "object"] = "string"
    required: bool = False
    nullable: bool = False
    nullable_when: dict[str, list[str]] | None = Field(default=None, alias="nullableWhen")
    default: Any = None
    values: dict[str, Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = Field(default=None, alias="maxLength", ge=1)

    @field_validator("values")
    @classmethod
    def _case_insensitive_keys(cls, values: dict[str, Any] | None) -> dict[str, Any] | None:
        if values is None:
            return None
        return {key.strip().lower(): value for key, value in values.items()}

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.source is None) == (self.value is None):
            raise ValueError("a rule needs exactly one of 'from' (a source field) or 'value' (a constant)")
        return self


class MappingDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    comment: str | None = Field(default=None, alias="$comment")
    version: Literal[1] = 1
    fields: dict[str, FieldRule]
    # Per category: a rule set (one rule per key), or one `object` rule for the whole object.
    service_specific_data: dict[OfferCategory, FieldRule | dict[str, FieldRule]] = Field(
        default_factory=dict, alias=SERVICE_SPECIFIC_DATA
    )

    @model_validator(mode="after")
    def _targets(self) -> Self:
        missing = [name for name in ("sku", "name", "category") if name not in self.fields]
        if missing:
            raise ValueError(f"fields must map {', '.join(missing)}")
        unknown = sorted(set(self.fields) - WRITABLE_FIELDS)
        if unknown:
            raise ValueError(f"fields are not writable offer fields: {', '.join(unknown)}")
        category = self.fields["category"]
        if category.values is not None:
            bad = sorted({str(v) for v in category.values.values()} - {c.value for c in OfferCategory})
            if bad:
                raise ValueError(f"category values map to unknown categories: {', '.join(bad)}")
        for name, rule in self.fields.items():
            if rule.nullable_when and not set(rule.nullable_when) <= set(self.fields) - {name}:
                raise ValueError(f"{name}: nullableWhen names fields this mapping does not map")
        for kind, rule_set in self.service_specific_data.items():
            if isinstance(rule_set, FieldRule) and rule_set.type != "object":
                raise ValueError(f"serviceSpecificData.{kind}: a single rule must be of type object")
        return self


# --- Rows in, offers and row errors out ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RawRow:
    """One product as read from the catalog. `number` is where the file puts it (see sources)."""

    number: int
    fields: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that was not synced. `candidates`: every value that may be the SKU when a shifted row does
    not name it for certain; `cut`: nothing of it is used, not even its SKU (docs/decisions.md#15).
    """

    row: int
    sku: str | None
    reason: str
    candidates: tuple[str, ...] = ()
    cut: bool = False

    @property
    def protects(self) -> frozenset[str]:
        """The SKUs whose offers this error protects from being treated as missing."""
        return frozenset((self.sku, *self.candidates) if self.sku else self.candidates)

    @property
    def attributable(self) -> bool:
        return bool(self.sku or self.candidates)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"row": self.row, "sku": self.sku, "reason": self.reason}
        if self.candidates:
            data["candidates"] = list(self.candidates)
        if self.cut:
            data["cut"] = True
        return data


@dataclass(frozen=True, slots=True)
class DesiredOffer:
    """What Offergrid should hold for one SKU: the wire fields the catalog owns (sku included)."""

    sku: str
    fields: Mapping[str, Any]
    row: int

    def create_body(self) -> OfferCreate:
        return OfferCreate.model_validate(dict(self.fields))


class NeededColumns:
    """Which of a mapping's needed sources the rows read so far have: a key (whatever its value, null
    included) or a CSV header column (every row read from a CSV file has all of them)."""

    def __init__(self, needed: Iterable[str]) -> None:
        self._unseen = dict.fromkeys(needed)
        self.rows = 0

    def see(self, row: RawRow) -> None:
        self.rows += 1
        if self._unseen and isinstance(row.fields, Mapping):
            for source in [source for source in self._unseen if _has_source(row.fields, source)]:
                del self._unseen[source]

    @property
    def absent(self) -> list[str]:
        """The needed sources no row seen had (none when no row was seen: an empty catalog is no
        broken one, and the plan never empties the shop on its say-so)."""
        return list(self._unseen) if self.rows else []


def _has_source(row: Mapping[str, Any], source: str) -> bool:
    return lookup(row, source, _MISSING) is not _MISSING


_MISSING: Final = object()


class CatalogMapping:
    """A validated mapping document, ready to turn rows into `DesiredOffer`s."""

    def __init__(self, document: MappingDocument) -> None:
        self.document = document
        by_category = document.service_specific_data
        self._service_rules = {str(category): rules for category, rules in by_category.items()}
        # Rules that depend on other mapped fields (`nullableWhen`) are resolved after the others.
        fields = document.fields
        self._field_order = [
            *(name for name, rule in fields.items() if not rule.nullable_when),
            *(name for name, rule in fields.items() if rule.nullable_when),
        ]
        self._reorder = self._field_order != list(fields)

    @property
    def sku_source(self) -> str | None:
        """The catalog field the SKU comes from (to recover it from a row that cannot be read)."""
        return self.document.fields["sku"].source

    @property
    def needed_sources(self) -> tuple[str, ...]:
        """The columns this mapping cannot do without (docs/decisions.md#15): an export none of whose rows
        has one is broken (without `isActive`, every product would read as `inactive`).
        """
        return tuple(
            rule.source
            for rule in self.document.fields.values()
            if rule.source is not None
            and (rule.required or rule.default is not None or rule.nullable or rule.nullable_when)
        )

    @property
    def owned_fields(self) -> list[str]:
        """The offer fields (wire names) this mapping can write: the ones the sync compares."""
        owned = list(self.document.fields)
        if self._service_rules:
            owned.append(SERVICE_SPECIFIC_DATA)
        return owned

    def map_one(self, row: RawRow) -> DesiredOffer | RowError:
        """The row's `DesiredOffer`, or its `RowError` naming every problem; never raises for a bad row."""
        if not isinstance(row.fields, Mapping):
            return RowError(row.number, None, "row is not an object")
        problems: list[str] = []
        fields: dict[str, Any] = {}
        rules_by_target = self.document.fields
        for target in self._field_order:
            _apply(rules_by_target[target], target, row.fields, fields, problems)
        if self._reorder:  # the document's order, whatever order the rules were resolved in
            fields = {target: fields[target] for target in rules_by_target if target in fields}
        category = fields.get("category")
        rules = self._service_rules.get(category) if isinstance(category, str) else None
        if isinstance(rules, FieldRule):
            _apply(rules, SERVICE_SPECIFIC_DATA, row.fields, fields, problems)
        elif rules:
            service_data: dict[str, Any] = {}
            for target, rule in rules.items():
                _apply(rule, f"{SERVICE_SPECIFIC_DATA}.{target}", row.fields, service_data, problems, target)
            if service_data and not problems:
                problems.extend(_check_service_data(str(category), service_data))
            if service_data:
                fields[SERVICE_SPECIFIC_DATA] = service_data
        if not problems:
            problems.extend(_check_offer(fields))
        if problems:
            return RowError(row.number, _sku_of(row, self.document), "; ".join(problems))
        return DesiredOffer(sku=str(fields["sku"]), fields=fields, row=row.number)


def _apply(
    rule: FieldRule,
    label: str,
    row: Mapping[str, Any],
    out: dict[str, Any],
    problems: list[str],
    key: str | None = None,
) -> None:
    key = key or label
    try:
        value = _resolve(rule, row, out)
    except Invalid as invalid:
        problems.append(f"{label} ({rule.source or '<constant>'}): {invalid}")
        return
    if value is not _MISSING:
        out[key] = value


def _resolve(rule: FieldRule, row: Mapping[str, Any], mapped: Mapping[str, Any]) -> Any:
    raw = rule.value if rule.source is None else lookup(row, rule.source)
    if is_missing(raw):
        if rule.default is not None:
            raw = rule.default
        elif rule.nullable_when and _condition_met(rule.nullable_when, mapped):
            return None
        elif rule.required:
            raise Invalid("is required")
        elif rule.nullable:
            return None
        else:
            return _MISSING
    value = _coerce(rule, raw)
    if rule.values is not None:
        key = table_key(value)
        if key not in rule.values:
            allowed = ", ".join(sorted(rule.values))
            raise Invalid(f"unknown value {show(raw)} (expected one of: {allowed})")
        value = rule.values[key]
    return value


def _condition_met(condition: Mapping[str, list[str]], mapped: Mapping[str, Any]) -> bool:
    """Whether a mapped field has one of the listed values (compared like `values` keys)."""
    return any(
        name in mapped and table_key(mapped[name]) in {table_key(v) for v in allowed}
        for name, allowed in condition.items()
    )


def _coerce(rule: FieldRule, raw: Any) -> Any:
    match rule.type:
        case "string":
            value: Any = to_string(raw)
            if rule.max_length is not None and len(value) > rule.max_length:
                raise Invalid(f"longer than {rule.max_length} characters")
            return value
        case "number" | "integer":
            number = to_number(raw, integer=rule.type == "integer")
            if rule.minimum is not None and number < rule.minimum:
                raise Invalid(f"{show(raw)} is below the minimum {rule.minimum:g}")
            if rule.maximum is not None and number > rule.maximum:
                raise Invalid(f"{show(raw)} is above the maximum {rule.maximum:g}")
            return number
        case "boolean":
            return to_bool(raw)
        case "stringList":
            return to_string_list(raw)
        case "object":
            return to_object(raw)


def _pydantic_problems(exc: ValidationError, prefix: str = "") -> list[str]:
    # include_input=False: the message names the field and the rule, never quotes the row.
    return [
        f"{prefix}{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    ]


def _check_service_data(category: str, data: Mapping[str, Any]) -> list[str]:
    model = _DOCUMENTED_SERVICE_DATA.get(category)
    if model is None:
        return []
    try:
        model.model_validate(dict(data))
    except ValidationError as exc:
        return _pydantic_problems(exc, f"{SERVICE_SPECIFIC_DATA}.")
    low, high = data.get("minBandwidth"), data.get("maxBandwidth")
    if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
        return [f"{SERVICE_SPECIFIC_DATA}: minBandwidth {low:g} is above maxBandwidth {high:g}"]
    return []


def _check_offer(fields: Mapping[str, Any]) -> list[str]:
    try:
        OfferCreate.model_validate(dict(fields))
    except ValidationError as exc:
        return _pydantic_problems(exc)
    return []


def _sku_of(row: RawRow, document: MappingDocument) -> str | None:
    """The row's SKU for the error report, when it has a readable one."""
    rule = document.fields["sku"]
    if not isinstance(row.fields, Mapping) or rule.source is None:
        return None
    raw = lookup(row.fields, rule.source)
    if is_missing(raw) or isinstance(raw, bool) or not isinstance(raw, str | int):
        return None
    return str(raw).strip()


# --- Loading ------------------------------------------------------------------------------------------------
def load_mapping(document: str | bytes | Mapping[str, Any]) -> CatalogMapping:
    """A mapping from a JSON document (text, bytes or parsed); `MappingError` naming what is wrong."""
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise MappingError(f"mapping document is not JSON: {exc}") from None
    if not isinstance(document, Mapping):
        raise MappingError("mapping document must be a JSON object")
    try:
        return CatalogMapping(MappingDocument.model_validate(dict(document)))
    except ValidationError as exc:
        raise MappingError("invalid mapping document: " + "; ".join(_pydantic_problems(exc))) from None


@functools.cache
def default_mapping() -> CatalogMapping:
    """The mapping of docs/decisions.md#8, read and validated once per process (it is never changed)."""
    package = resources.files("offergrid_integration.catalog")
    text = package.joinpath(DEFAULT_MAPPING_RESOURCE).read_text(encoding="utf-8")
    return load_mapping(text)
