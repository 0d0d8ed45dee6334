"""The order items the sample events name, seeded into the local Offergrid fake by `make local`.

The webhooks in `events/` announce items (`item-456-def` of `order-123-abc`, ...) that a real
Offergrid would hold. Without them in the fake, every replayed webhook ends in a 404 at the order
processor; with them, `make replay ARGS="webhook events/webhook_order_created.json"` ends in a
decision. Each item is `pending`, at the fake's default service address (inside the default
coverage rules), so the processor accepts it.

More items: `POST /_fake/orders` on the fake (docs/local.md), or `seed_order_items(fake, [...])`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol

from devtools.local.runtime import REPO_ROOT

EVENTS_DIR: Final = REPO_ROOT / "events"
_ID_FIELDS: Final = ("itemId", "orderId", "offerId")


class OrderItemSink(Protocol):
    """What can take a seeded item: `OffergridFake.add_order_item` (in process or over /_fake/orders)."""

    def add_order_item(self, **fields: Any) -> dict[str, Any]: ...


def _json(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None


def _payloads(document: Any) -> Iterable[Mapping[str, Any]]:
    """Webhook payloads and queued events inside one sample event file, whatever its shape."""
    if not isinstance(document, Mapping):
        return
    if isinstance(document.get("body"), str):  # API Gateway, REST v1 or HTTP API v2
        body = document["body"]
        if document.get("isBase64Encoded") is True:
            try:
                body = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                return
        parsed = _json(body)
        if isinstance(parsed, Mapping):
            yield parsed
            if isinstance(parsed.get("data"), Mapping):
                yield {"event": parsed.get("event"), **parsed["data"]}
    for record in document.get("Records") or []:  # SQS: the queued message, its event inside
        parsed = _json(record.get("body", "")) if isinstance(record, Mapping) else None
        if isinstance(parsed, Mapping):
            yield from _payloads({"body": json.dumps(parsed.get("event") or {})})
            if isinstance(parsed.get("detail"), Mapping):  # an EventBridge envelope on the queue
                yield {"itemId": parsed["detail"].get("offergridItemId")}


def sample_order_items(events_dir: Path = EVENTS_DIR) -> list[dict[str, str]]:
    """Every order item the sample events name, with the order and offer ids they give it."""
    items: dict[str, dict[str, str]] = {}
    for path in sorted(events_dir.glob("*.json")):
        for payload in _payloads(_json(path.read_text(encoding="utf-8"))):
            item_id = payload.get("itemId")
            if not isinstance(item_id, str) or not item_id:
                continue
            item = items.setdefault(item_id, {"id": item_id})
            for name, key in (("orderId", "orderId"), ("offerId", "offerId")):
                value = payload.get(name)
                if isinstance(value, str) and value and key not in item:
                    item[key] = value
    return [items[item_id] for item_id in sorted(items)]


def seed_order_items(fake: OrderItemSink, items: Iterable[Mapping[str, str]]) -> list[str]:
    """Add each item (pending) to the fake; returns the ids added (ids it already holds are skipped)."""
    added = []
    for item in items:
        try:
            fake.add_order_item(status="pending", **item)
        except ValueError:  # already there
            continue
        added.append(item["id"])
    return added
