"""What Offergrid signs: the header carrying the signature and the body's bytes as API Gateway hands
them over. Stdlib, on the bottom floor: the webhook verifies with them and the delivery archive keeps
and reads back with them, neither importing the other's package."""

from __future__ import annotations

import base64
import binascii
from typing import Final

SIGNATURE_HEADER: Final = "x-offergrid-signature"


def decode_body(body: str | None, *, is_base64_encoded: bool) -> bytes:
    """The bytes Offergrid signed; `ValueError` for bad base64 or text that cannot be UTF-8."""
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
