"""Text we did not write, made valid before we store, queue or send it (docs/decisions.md#17): JSON may
escape a lone UTF-16 surrogate, which no UTF-8 encoder takes, so every encoder of outside text writes it
through here (-> U+FFFD). Identifiers are refused instead (docs/decisions.md#12).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

REPLACEMENT_CHARACTER: Final = "\ufffd"
ELLIPSIS: Final = "\u2026"
# The longest string we store in a record or put in an event: about twice the longest note we
# send Offergrid. At most 8 KB of UTF-8, so even a work order whose every field is that long fits
# an EventBridge entry (256 KB) and a DynamoDB item (400 KB).
MAX_STORED_TEXT: Final = 2_000
# In a Python `str`, any surrogate code point is one UTF-8 cannot encode (JSON's escaped pairs are
# decoded into the one character they stand for).
LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD; `text` itself when it has none."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return LONE_SURROGATE.sub(REPLACEMENT_CHARACTER, text)
    return text


def valid_texts(value: Any, *, max_length: int | None = None) -> Any:
    """`valid_text` through dicts (keys too), lists and tuples. `max_length` cuts longer strings with an
    ellipsis, so a 1 MB reason cannot make a bounded write (DynamoDB, EventBridge) fail.
    """
    if isinstance(value, str):
        text = valid_text(value)
        if max_length is not None and len(text) > max_length:
            return text[: max_length - 1] + ELLIPSIS
        return text
    if isinstance(value, dict):
        return {
            valid_texts(key, max_length=max_length): valid_texts(child, max_length=max_length)
            for key, child in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(valid_texts(child, max_length=max_length) for child in value)
    return value


def json_text(value: Any) -> str:
    """Compact JSON, characters as themselves (not `\\u` escapes), lone surrogates as U+FFFD, no NaN."""
    return valid_text(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False))
