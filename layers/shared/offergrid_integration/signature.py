"""What Offergrid signs and how we verify it: `x-offergrid-signature` = hex HMAC-SHA256 of the body.

docs/decisions.md#1: verify the raw bytes, else the compact JSON re-serialisation (what Offergrid's
`JSON.stringify` example signs); constant time; several secrets for rotation. Every bad header is one
`SignatureVerificationError` with a metric-safe `reason`, never carrying the signature, body or secret.
Exactly one signature is accepted: "any of several" would let a sender probe guesses per request.
Stdlib, on the bottom floor: the webhook verifies with it, the delivery archive keeps and reads back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal

from offergrid_integration.text import LONE_SURROGATE

SIGNATURE_HEADER: Final = "x-offergrid-signature"
SIGNATURE_PREFIX: Final = "sha256="
_DIGEST_HEX_LENGTH: Final = hashlib.sha256().digest_size * 2


class SignatureReason(StrEnum):
    """Why a signature was refused; the values form the `Reason` metric dimension."""

    MISSING = "signature_missing"  # no header at all
    EMPTY = "signature_empty"  # header present but blank, or only the `sha256=` prefix
    MULTIPLE = "signature_multiple"  # repeated header, list value or comma-joined values
    NOT_HEX = "signature_not_hex"  # characters outside 0-9a-fA-F (includes unknown prefixes)
    WRONG_LENGTH = "signature_wrong_length"  # hex, but not 64 digits
    MISMATCH = "signature_mismatch"  # well formed, matches no secret over any accepted form


class SignatureVerificationError(Exception):
    """The request is not provably from Offergrid. Maps to a generic 401; `reason` goes to logs."""

    def __init__(self, reason: SignatureReason) -> None:
        super().__init__(f"webhook signature rejected: {reason.value}")
        self.reason = reason

    def __repr__(self) -> str:
        return f"SignatureVerificationError(reason={self.reason.value!r})"


@dataclass(frozen=True, slots=True)
class SignatureMatch:
    """Which form of the body and which secret matched (for logs: spot clients on the old secret)."""

    form: Literal["raw", "compact_json"]
    secret_index: int  # 0 = current secret, 1+ = previous ones


def sign(body: bytes | str, secret: str, *, prefix: bool = False) -> str:
    """The header value Offergrid would send for `body` (tests, sample events, replay tooling)."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    digest = hmac.new(secret.encode("utf-8"), data, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest if prefix else digest


def compact_json(parsed: Any) -> bytes:
    """The compact re-serialisation the fallback signs: like `JSON.stringify`, no spaces, UTF-8,
    and (as JSON.stringify does since ES2019) a lone surrogate written as its lowercase escape."""
    text = json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)
    return LONE_SURROGATE.sub(_escaped, text).encode("utf-8")


def _escaped(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def find_signature_header(
    headers: Mapping[str, Any] | None,
    multi_value_headers: Mapping[str, Any] | None = None,
) -> str:
    """The single signature value from both header maps, case-insensitively; several are `MULTIPLE`."""
    from_multi = _header_values(multi_value_headers)
    from_single = _header_values(headers)
    if len(from_multi) > 1 or len(from_single) > 1:
        raise SignatureVerificationError(SignatureReason.MULTIPLE)
    distinct = set(from_multi) | set(from_single)
    if not distinct:
        raise SignatureVerificationError(SignatureReason.MISSING)
    if len(distinct) > 1:
        raise SignatureVerificationError(SignatureReason.MULTIPLE)
    return distinct.pop()


def _header_values(mapping: Mapping[str, Any] | None) -> list[str]:
    values: list[str] = []
    for name, value in (mapping or {}).items():
        if not isinstance(name, str) or name.lower() != SIGNATURE_HEADER or value is None:
            continue
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if not isinstance(item, str):
                raise SignatureVerificationError(SignatureReason.NOT_HEX)
            values.append(item)
    return values


def parse_signature(value: str | None) -> bytes:
    """The 32 digest bytes a header value claims, or the typed reason it is malformed."""
    if value is None:
        raise SignatureVerificationError(SignatureReason.MISSING)
    text = value.strip()
    if "," in text:
        raise SignatureVerificationError(SignatureReason.MULTIPLE)
    if text[: len(SIGNATURE_PREFIX)].lower() == SIGNATURE_PREFIX:
        text = text[len(SIGNATURE_PREFIX) :].strip()
    if not text:
        raise SignatureVerificationError(SignatureReason.EMPTY)
    if not text.isascii() or any(char not in "0123456789abcdefABCDEF" for char in text):
        raise SignatureVerificationError(SignatureReason.NOT_HEX)
    if len(text) != _DIGEST_HEX_LENGTH:
        raise SignatureVerificationError(SignatureReason.WRONG_LENGTH)
    return bytes.fromhex(text)


def verify_signature(body: bytes, signature: str | None, secrets: Sequence[str]) -> SignatureMatch:
    """Check `signature` against the raw bytes, then the compact JSON, with each secret, or raise."""
    if not secrets:
        # A deployment without a secret is a configuration fault, not the sender's: never a 401.
        raise ValueError("no webhook secret configured")
    expected = parse_signature(signature)
    keys = [secret.encode("utf-8") for secret in secrets]
    for index, key in enumerate(keys):
        if hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), expected):
            return SignatureMatch(form="raw", secret_index=index)
    reserialised = _compact_form(body)
    if reserialised is not None and reserialised != body:
        for index, key in enumerate(keys):
            if hmac.compare_digest(hmac.new(key, reserialised, hashlib.sha256).digest(), expected):
                return SignatureMatch(form="compact_json", secret_index=index)
    raise SignatureVerificationError(SignatureReason.MISMATCH)


def _compact_form(body: bytes) -> bytes | None:
    try:
        return compact_json(load_json(body))
    except (ValueError, TypeError, RecursionError):  # UnicodeError is a ValueError
        return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_json(body: bytes) -> Any:
    """Strict JSON (no NaN/Infinity); deep nesting raises `ValueError`, not `RecursionError`."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def decode_body(body: str | None, *, is_base64_encoded: bool) -> bytes:
    """The bytes Offergrid signed, as API Gateway hands them over; `ValueError` for bad base64 or text
    that cannot be UTF-8."""
    if body is None:
        return b""
    if is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("body is not valid base64") from None
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("body is not valid UTF-8 text") from None
