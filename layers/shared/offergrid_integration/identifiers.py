"""Offergrid identifiers (`itemId`, `orderId`, `offerId`, SKUs): what a usable one looks like.

docs/decisions.md#12: an identifier is an opaque string of 1 to 128 characters with no control
character and no lone surrogate. Anything else is a bad request at the ingress (400) and a permanent
failure in the processor: it could never be a DynamoDB key (2,048 bytes at most, valid UTF-8), a
log field or a path segment, so retrying it can only end in the dead-letter queue.
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["MAX_IDENTIFIER_LENGTH", "InvalidIdentifier", "check_identifier", "identifier_problem"]

MAX_IDENTIFIER_LENGTH: Final = 128


class InvalidIdentifier(ValueError):
    """An identifier that breaks docs/decisions.md#12. The message names the problem, never the value."""


def identifier_problem(value: object) -> str | None:
    """Why `value` is not a usable identifier, or None when it is."""
    if not isinstance(value, str):
        return "not a string"
    if not value:
        return "empty"
    if len(value) > MAX_IDENTIFIER_LENGTH:
        return f"longer than {MAX_IDENTIFIER_LENGTH} characters"
    for char in value:
        if 0xD800 <= ord(char) <= 0xDFFF:
            return "contains a lone surrogate"
        if unicodedata.category(char) == "Cc":
            return "contains a control character"
    return None


def check_identifier(value: object, *, name: str = "identifier") -> str:
    """`value` if it is a usable identifier; `InvalidIdentifier` naming `name` and the problem."""
    problem = identifier_problem(value)
    if problem is not None:
        raise InvalidIdentifier(f"{name} {problem}")
    assert isinstance(value, str)
    return value
