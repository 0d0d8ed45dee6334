"""Text we did not write, made valid before we store, queue or send it (docs/decisions.md#17).

JSON may escape a lone UTF-16 surrogate (`"\\ud83d"`: half of an emoji a JavaScript sender cut in
two). Python decodes it into a `str` that no UTF-8 encoder takes (`UnicodeEncodeError`), and
Offergrid, SQS, DynamoDB, EventBridge and the logs all take UTF-8. So every encoder that writes text
from outside (the queue body, the Offergrid client's request, the order and work-order writes, the
events, the log lines) writes it through here: each lone surrogate becomes U+FFFD, nothing else
changes. Identifiers are never repaired: one holding a lone surrogate is refused
(docs/decisions.md#12), as a key must be exactly what was sent.

Stdlib only, and nothing else imported: the webhook ingress writes its queue body with it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

__all__ = [
    "ELLIPSIS",
    "LONE_SURROGATE",
    "MAX_STORED_TEXT",
    "REPLACEMENT_CHARACTER",
    "json_text",
    "valid_text",
    "valid_texts",
]

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
    """`value` with `valid_text` applied to every string in it, dictionary keys included, through
    dicts, lists and tuples (anything else is kept as it is).

    `max_length`: a string longer than that many characters is cut to it, its last character then
    an ellipsis. For the writes whose whole item is bounded (DynamoDB 400 KB, EventBridge 256 KB):
    a customer's 1 MB reason must not make its cancellation fail to store.
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
    """Compact JSON of `value` as UTF-8 takes it: characters written as themselves (not `\\u`
    escapes, a third of the size for most scripts), each lone surrogate as U+FFFD, no NaN.

    The raw characters `json.dumps` writes can only stand inside JSON strings, so repairing the
    finished text is repairing every string in it, keys included.
    """
    return valid_text(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False))
