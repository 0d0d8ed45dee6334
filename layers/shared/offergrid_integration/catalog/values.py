"""Catalog values to the types a mapping rule names; a reason never quotes more than a short prefix."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

LIST_SEPARATOR: Final = "|"
_TRUE_WORDS: Final = frozenset({"true", "yes", "y", "1", "on"})
_FALSE_WORDS: Final = frozenset({"false", "no", "n", "0", "off"})
_MAX_VALUE_IN_REASON: Final = 40


class Invalid(Exception):
    """A value that breaks its rule; the message is the reason."""


def lookup(row: Mapping[str, Any], source: str, default: Any = None) -> Any:
    """The value of `source` in a row: a key, else a dotted path into nested objects; or `default`."""
    if source in row:
        return row[source]
    current: Any = row
    for part in source.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return default
        current = current[part]
    return current


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def to_string(raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise Invalid(f"must be a string, got {type(raw).__name__}")
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    return str(raw).strip()


def to_number(raw: Any, *, integer: bool) -> int | float:
    kind = "an integer" if integer else "a number"
    if isinstance(raw, bool):
        raise Invalid(f"must be {kind}, got a boolean")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        number = raw
    elif isinstance(raw, str):
        try:
            parsed = Decimal(raw.strip())
        except InvalidOperation:
            raise Invalid(f"must be {kind}, got {show(raw)}") from None
        if not parsed.is_finite():
            raise Invalid(f"must be a finite number, got {show(raw)}")
        if parsed == parsed.to_integral_value() and "." not in raw and "e" not in raw.lower():
            return int(parsed)
        number = float(parsed)
    else:
        raise Invalid(f"must be {kind}, got {type(raw).__name__}")
    if not math.isfinite(number):
        raise Invalid(f"must be a finite number, got {show(raw)}")
    if integer:
        if not number.is_integer():
            raise Invalid(f"must be an integer, got {show(raw)}")
        return int(number)
    return number


def to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise Invalid(f"must be a boolean (true/false), got {show(raw)}")


def to_string_list(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(LIST_SEPARATOR) if part.strip()]
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return [item.strip() for item in raw if item.strip()]
    raise Invalid(f"must be a list of strings or a '{LIST_SEPARATOR}'-separated string")


def to_object(raw: Any) -> dict[str, Any]:
    """A JSON object as given, or the JSON text of one (a CSV cell)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise Invalid("must be a JSON object, got text that is not JSON") from None
    if not isinstance(raw, dict):
        raise Invalid(f"must be a JSON object, got {type(raw).__name__}")
    return raw


def table_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()


def show(raw: Any) -> str:
    text = json.dumps(raw, default=str, ensure_ascii=False) if not isinstance(raw, str) else repr(raw)
    return text if len(text) <= _MAX_VALUE_IN_REASON else text[: _MAX_VALUE_IN_REASON - 3] + "..."
