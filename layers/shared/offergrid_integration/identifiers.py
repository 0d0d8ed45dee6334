"""Offergrid identifiers: 1 to 128 characters, no control character, no lone surrogate
(docs/decisions.md#12). Anything else could never be a DynamoDB key, a log field or a path segment, so
it is refused (400, or a permanent failure) rather than retried into the DLQ.
"""

from __future__ import annotations

import unicodedata
from typing import Final

MAX_IDENTIFIER_LENGTH: Final = 128


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
