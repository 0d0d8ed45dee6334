"""Webhook delivery the way Offergrid does it, written independently of our verification code.

The body is the payload as JavaScript's `JSON.stringify` writes it (compact, non-ASCII kept as
UTF-8) and `x-offergrid-signature` is the lowercase hex HMAC-SHA256 of those bytes keyed with the
webhook secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from devtools.offergrid_fake.clocks import iso_timestamp

SIGNATURE_HEADER: Final = "x-offergrid-signature"
WebhookKind = Literal["order.created", "order.cancelled"]
PayloadShape = Literal["flat", "nested"]
_ENVELOPE_KEYS: Final = ("event", "timestamp")
# Never route a delivery through an environment proxy: receivers are local.
_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def compact_json(payload: object) -> bytes:
    """`JSON.stringify(payload)` as UTF-8 bytes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(body: bytes, secret: str, *, prefix: bool = False) -> str:
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}" if prefix else digest


def reshape(payload: dict[str, Any], shape: PayloadShape) -> dict[str, Any]:
    """Convert between the flat shape and the nested `{"event", "data": {...}, "timestamp"}` shape."""
    if shape == "nested":
        if isinstance(payload.get("data"), dict):
            return dict(payload)
        data = {key: value for key, value in payload.items() if key not in _ENVELOPE_KEYS}
        nested: dict[str, Any] = {"event": payload.get("event"), "data": data}
        if "timestamp" in payload:
            nested["timestamp"] = payload["timestamp"]
        return nested
    if not isinstance(payload.get("data"), dict):
        return dict(payload)
    flat = {key: value for key, value in payload.items() if key != "data"}
    return {"event": flat.pop("event", None), **payload["data"], **flat}


def webhook_payload(
    kind: WebhookKind,
    item: Mapping[str, Any],
    *,
    timestamp: str | None = None,
    reason: str = "Customer cancelled the order",
    include_item_id: bool = True,
    shape: PayloadShape = "flat",
) -> dict[str, Any]:
    """The `order.created` / `order.cancelled` payload announcing `item` (an order item dict).

    `timestamp` defaults to now (real time); `OffergridFake.webhook_payload` stamps it with fake time.
    """
    if timestamp is None:
        timestamp = iso_timestamp(time.time())
    if kind == "order.created":
        payload: dict[str, Any] = {
            "event": kind,
            "orderId": item["orderId"],
            "itemId": item["id"],
            "offerId": item["offerId"],
            "timestamp": timestamp,
        }
    elif kind == "order.cancelled":
        payload = {"event": kind, "orderId": item["orderId"]}
        if include_item_id:
            payload["itemId"] = item["id"]
        payload["reason"] = reason
        payload["timestamp"] = timestamp
    else:
        raise ValueError(f"unknown webhook kind {kind!r}")
    return reshape(payload, shape)


def deliver_webhook(
    url: str,
    payload: Mapping[str, Any],
    secret: str,
    *,
    prefix: bool = False,
    raw_body: bytes | None = None,
    timeout: float = 10.0,
    shape: PayloadShape | None = None,
    sign_body: bool = True,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, bytes]:
    """POST a signed webhook to `url`; returns the receiver's status and body.

    `raw_body` sends (and signs) those exact bytes instead of the serialised payload, e.g. to test
    pretty-printed or re-ordered JSON. `sign_body=False` omits the signature header; `headers`
    are added last, so a test can send a wrong signature.
    """
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("webhook url must be http(s)")
    body_payload = reshape(dict(payload), shape) if shape is not None else payload
    body = raw_body if raw_body is not None else compact_json(body_payload)
    request_headers = {"Content-Type": "application/json", "User-Agent": "Offergrid-Webhooks (fake)"}
    if sign_body:
        request_headers[SIGNATURE_HEADER] = sign(body, secret, prefix=prefix)
    request_headers.update(headers or {})
    request = urllib.request.Request(url, data=body, headers=request_headers, method="POST")  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code), bytes(error.read())
