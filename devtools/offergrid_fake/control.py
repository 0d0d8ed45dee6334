"""The control plane under /_fake/: drive a fake running in another process (`make demo`, the local stack).

No API key is needed, nothing here is recorded as an API call or counted against the rate limits.

    GET    /_fake/state          offers, order items, status history, counters, config
    GET    /_fake/calls          the recorded API calls
    DELETE /_fake/calls          forget them
    POST   /_fake/faults         inject_fault kwargs: {"kind", "times"?, "status"?, "retry_after"?,
                                 "delay"?, "method"?, "path"?}
    POST   /_fake/offers         seed an offer (fields as in the API) -> the offer
    POST   /_fake/orders         seed an order item (fields as in the API) -> the item
    POST   /_fake/orders/{itemId}/status
                                 {"status", ...}: set a status as Offergrid would (no lifecycle check)
    PUT    /_fake/orders/{itemId}/listing-view
                                 {"view": {...} | null}: what listings show for the item (null: leave
                                 it out), its GET unchanged (`listing_views`)
    DELETE /_fake/orders/{itemId}/listing-view
                                 listings show the item as the answers mode says again
    POST   /_fake/api-keys       {"key": ..., "role"?: "provider"|"hybrid"|"reseller"}  (key rotation)
    DELETE /_fake/api-keys       {"key": ...}
    GET    /_fake/answers        how undocumented choices are answered (see `answers`)
    POST   /_fake/answers        {"answers": "documented"|"other", <knob>?: ...} -> the answers now used
    POST   /_fake/reset          forget everything but the API keys
    POST   /_fake/webhooks       {"url", "secret", "payload"} or {"url", "secret", "kind", "itemId"}, plus
                                 optional "prefix", "shape", "reason", "includeItemId" -> {"status", "body"}
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit

from devtools.offergrid_fake.answers import answers_from_dict
from devtools.offergrid_fake.replies import Reply, error_reply

if TYPE_CHECKING:
    from devtools.offergrid_fake.server import OffergridFake

_FAULT_ARGS: Final = ("times", "status", "retry_after", "delay", "method", "path")
_ITEM_STATUS = re.compile(r"^/_fake/orders/([^/]+)/status$")
_LISTING_VIEW = re.compile(r"^/_fake/orders/([^/]+)/listing-view$")


def handle_control(fake: OffergridFake, method: str, target: str, raw_body: bytes) -> Reply:
    path = unquote(urlsplit(target).path).rstrip("/")
    try:
        body: Any = json.loads(raw_body) if raw_body.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return error_reply(400, f"invalid JSON: {error}")
    if not isinstance(body, dict):
        return error_reply(400, "control bodies are JSON objects")
    try:
        match (method, path):
            case ("GET", "/_fake/state"):
                return Reply(200, fake.state())
            case ("GET", "/_fake/calls"):
                return Reply(200, [call.to_dict() for call in fake.calls])
            case ("DELETE", "/_fake/calls"):
                fake.clear_calls()
                return Reply(204)
            case ("POST", "/_fake/faults"):
                fault = fake.inject_fault(body["kind"], **{k: body[k] for k in _FAULT_ARGS if k in body})
                return Reply(201, {"kind": fault.kind, "times": fault.remaining})
            case ("POST", "/_fake/offers"):
                return Reply(201, fake.add_offer(**body))
            case ("POST", "/_fake/orders"):
                return Reply(201, fake.add_order_item(**body))
            case ("POST", "/_fake/api-keys"):
                fake.add_api_key(str(body["key"]), role=str(body.get("role", "provider")))
                return Reply(204)
            case ("DELETE", "/_fake/api-keys"):
                fake.revoke_api_key(str(body["key"]))
                return Reply(204)
            case ("GET", "/_fake/answers"):
                return Reply(200, fake.answers.to_dict())
            case ("POST", "/_fake/answers"):
                return Reply(200, fake.set_answers(answers_from_dict(body)).to_dict())
            case ("POST", "/_fake/reset"):
                fake.reset()
                return Reply(204)
            case ("POST", "/_fake/webhooks"):
                return _deliver(fake, body)
            case ("POST", _) if (found := _ITEM_STATUS.match(path)) is not None:
                if found.group(1) not in fake.order_items:
                    return error_reply(404, f"Order item with ID {found.group(1)} not found")
                changes = {k: v for k, v in body.items() if k != "status"}
                return Reply(200, fake.set_order_item_status(found.group(1), body["status"], **changes))
            case ("PUT" | "DELETE", _) if (found := _LISTING_VIEW.match(path)) is not None:
                return _listing_view(fake, method, found.group(1), body)
    except KeyError as error:
        return error_reply(400, f"missing field: {error}")
    except (TypeError, ValueError) as error:
        return error_reply(400, str(error))
    return error_reply(404, f"Cannot {method} {path}")


def _listing_view(fake: OffergridFake, method: str, item_id: str, body: dict[str, Any]) -> Reply:
    if item_id not in fake.order_items:
        return error_reply(404, f"Order item with ID {item_id} not found")
    if method == "DELETE":
        fake.clear_listing_view(item_id)
    else:
        fake.set_listing_view(item_id, body["view"])
    return Reply(204)


def _deliver(fake: OffergridFake, body: dict[str, Any]) -> Reply:
    payload = body.get("payload")
    if payload is None:
        payload = fake.webhook_payload(
            body["kind"],
            body["itemId"],
            reason=body.get("reason", "Customer cancelled the order"),
            include_item_id=bool(body.get("includeItemId", True)),
        )
    try:
        status, answer = fake.deliver_webhook(
            body["url"],
            payload,
            body["secret"],
            prefix=bool(body.get("prefix", False)),
            shape=body.get("shape"),
        )
    except OSError as error:  # the receiver is down or too slow
        return error_reply(502, f"webhook delivery failed: {error}")
    return Reply(
        200, {"status": status, "body": answer.decode("utf-8", errors="replace"), "payload": payload}
    )
