"""Offer values compared as Offergrid holds them (`59.9` = `59.90`, `null` = absent);
`serviceSpecificData` key by key, sent whole since a PATCH replaces a field's value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel

from offergrid_integration.catalog.mapping import SERVICE_SPECIFIC_DATA
from offergrid_integration.offergrid.models import Offer


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
