"""The Offergrid Provider API fake: in-memory state behind a real HTTP server.

`OffergridFake` owns the state (offers, order items, their status history), the per-key sliding
rate window, the fault queue and the call log. `_Handler` only moves bytes: it reads a request,
asks the fake for a `Reply` and writes it (or drops the connection). Everything the docs state is
enforced; see docs/offergrid-api.md and docs/decisions.md, and the module docstrings of `validation`,
`lifecycle`, `ratelimit` and `pagination` for the choices made where the docs are silent, and
`answers` for the switch that answers each of those choices the documented way or the other way.

Paths are routed on their raw segments, each percent-decoded on its own (as Express/NestJS route
parameters are): `/provider/orders/a%2Fb` is the item `a/b`, `/provider/orders/%2E` the item `.`.
Literal `.`/`..` segments are removed first, as URL normalisation in any proxy would.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import math
import socket
import sys
import threading
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import parse_qs, unquote, urlsplit

from devtools.offergrid_fake import control
from devtools.offergrid_fake.answers import SPARSE_ORDER_ITEM_FIELDS, Answers, resolve_answers
from devtools.offergrid_fake.clocks import NowClock, ScaledTime, iso_timestamp
from devtools.offergrid_fake.faults import AFTER_EFFECT_KINDS, Fault, FaultQueue, make_fault
from devtools.offergrid_fake.lifecycle import transition_error
from devtools.offergrid_fake.listing_views import check_view, listed_elements
from devtools.offergrid_fake.pagination import PageError, continued_style, listing_key, paginate
from devtools.offergrid_fake.ratelimit import SlidingWindowLimiter
from devtools.offergrid_fake.replies import Reply, error_body, error_reply, phrase
from devtools.offergrid_fake.validation import (
    ORDER_ITEM_STATUSES,
    SERVER_OFFER_FIELDS,
    one_of,
    validate_offer,
    validate_status_update,
)
from devtools.offergrid_fake.webhooks import (
    PayloadShape,
    WebhookKind,
    compact_json,
    deliver_webhook,
    webhook_payload,
)

API_KEY_HEADER: Final = "x-api-key"
CONTROL_PREFIX: Final = "/_fake/"
ROLES: Final = ("provider", "hybrid", "reseller")
UNAUTHORIZED_BODY: Final = {
    "statusCode": 401,
    "message": "Unauthorized - invalid API key",
    "error": "Unauthorized",
}
FORBIDDEN_BODY: Final = {
    "statusCode": 403,
    "message": "Forbidden - Provider role required",
    "error": "Forbidden",
}
TOO_MANY_REQUESTS_BODY: Final = {
    "statusCode": 429,
    "message": "Too Many Requests",
    "error": "Too Many Requests",
}
_ANONYMOUS: Final = "anonymous"

_ID: Final = "{id}"  # a route segment that matches any one non-empty path segment
_OFFERS: Final = ("provider", "offers")
_OFFER: Final = ("provider", "offers", _ID)
_ORDERS: Final = ("provider", "orders")
_ORDER_ITEM: Final = ("provider", "orders", _ID)
_ORDER_ITEM_STATUS: Final = ("provider", "orders", _ID, "status")
MESSAGE_ONLY_BODIES: Final = {
    "status_patch": {"message": "Order item status updated successfully"},
    "offer_create": {"message": "Offer created successfully"},
    "offer_update": {"message": "Offer updated successfully"},
    "offer_delete": {"message": "Offer deleted successfully"},
}


@dataclass(frozen=True)
class RecordedCall:
    """One API request as the fake saw it. The API key itself is never kept, only whether it was valid."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int | None  # None: the connection was dropped without an answer
    api_key_valid: bool
    at: float  # arrival, on the fake's clock
    fault: str | None = None  # the injected fault kind that shaped the answer, if any
    raw_path: str | None = None  # the path exactly as sent, before any decoding (`/provider/orders/%2E`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def format_retry_after(seconds: float) -> str:
    """Seconds as a decimal string, rounded up to the millisecond so waiting that long is enough."""
    value = math.ceil(max(seconds, 0.0) * 1000 - 1e-6) / 1000
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def _key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class OffergridFake:
    """A faithful, in-memory Offergrid Provider API. Use as a context manager, or start() and stop()."""

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = ("test-api-key",),
        time_scale: float = 1.0,
        per_minute: int = 100,
        per_hour: int = 10_000,
        page_size: int | None = None,
        list_style: str | None = None,
        answers: str | Answers | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: NowClock | None = None,
        enforce_lifecycle: bool = True,
        reseller_keys: Iterable[str] = (),
        verbose: bool = False,
    ) -> None:
        self.answers = resolve_answers(answers).with_lists(list_style, page_size)
        self.clock: NowClock = clock if clock is not None else ScaledTime(time_scale)
        self.time_scale = time_scale if clock is None else None
        self._turns: Counter[str] = Counter()  # round robin per knob of `answers`
        # The style that answered the first page of each listing (path + filters): its next pages
        # are answered in it when their paging parameter could belong to several styles.
        self._listing_styles: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self.enforce_lifecycle = enforce_lifecycle
        self.verbose = verbose
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._roles: dict[str, str] = {}  # sha256(key) -> role; the keys themselves are not kept
        for key in api_keys:
            self.add_api_key(key)
        for key in reseller_keys:
            self.add_api_key(key, role="reseller")
        self._limiter = SlidingWindowLimiter(per_minute=per_minute, per_hour=per_hour)
        self._faults = FaultQueue()
        self.offers: dict[str, dict[str, Any]] = {}
        self.order_items: dict[str, dict[str, Any]] = {}
        self.order_history: dict[str, list[dict[str, Any]]] = {}
        self.listing_views: dict[str, dict[str, Any] | None] = {}  # devtools.offergrid_fake.listing_views
        self.webhook_deliveries: list[dict[str, Any]] = []
        self.status_counts: Counter[int] = Counter()
        self.rate_limited = 0  # 429s sent by the sliding window (injected ones are counted in status_counts)
        self._calls: list[RecordedCall] = []
        self._last_stamp = -math.inf
        self._seq = itertools.count(1)
        self._server: _FakeHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def __repr__(self) -> str:
        where = self.base_url if self._server is not None else "stopped"
        return f"OffergridFake({where}, offers={len(self.offers)}, order_items={len(self.order_items)})"

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _FakeHTTPServer((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="offergrid-fake",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a "slow" fault
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Offergrid fake is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- configuration -------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    @property
    def page_size(self) -> int | None:
        return self.answers.page_size

    @property
    def list_style(self) -> str:
        """The list style, or "rotate" when several are used in turn."""
        styles = self.answers.list_styles
        return styles[0] if len(styles) == 1 else "rotate"

    def set_answers(self, answers: str | Answers) -> Answers:
        """Switch how undocumented choices are answered (see `answers`); state is kept."""
        resolved = resolve_answers(answers)
        with self._lock:
            self.answers = resolved
            self._turns.clear()
            self._listing_styles.clear()
        return resolved

    def _turn(self, knob: str, choices: tuple[str, ...]) -> str:
        """The next of `choices` for `knob` (under the lock)."""
        choice = choices[self._turns[knob] % len(choices)]
        self._turns[knob] += 1
        return choice

    def add_api_key(self, key: str, *, role: str = "provider") -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if not key:
            raise ValueError("an API key must not be empty")
        with self._lock:
            self._roles[_key_digest(key)] = role

    def revoke_api_key(self, key: str) -> None:
        with self._lock:
            self._roles.pop(_key_digest(key), None)

    def inject_fault(
        self,
        kind: str,
        *,
        times: int = 1,
        status: int | None = None,
        retry_after: float | str | None = None,
        delay: float = 0.0,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        """Make the next `times` matching API requests fail. Faults are consumed first-in first-out.

                kinds: "status" (answer `status`, default 503, with an error body, `Retry-After` if given),
                "rate_limit" (429 + `Retry-After`, default 1 s; none when the answers leave it out),
                "slow" (wait `delay` REAL seconds, then answer normally), "drop" (close the connection
                without any response). These three let the request take effect, then change its answer
        when it succeeded (an error answer is left as it is):
                "empty" (answer `status`, default 204, with no body), "message" (answer `status`, default
                200, with only `{"message": ...}`), "drop_after" (close the connection without an answer:
                a timeout after the change was applied).
        """
        fault = make_fault(
            kind, times=times, status=status, retry_after=retry_after, delay=delay, method=method, path=path
        )
        self._faults.add(fault)
        return fault

    def pending_faults(self) -> list[Fault]:
        return self._faults.pending()

    def clear_faults(self) -> None:
        """Forget every fault not consumed yet (Offergrid recovered), keeping all other state."""
        self._faults.clear()

    def reset(self) -> None:
        """Forget all state, calls, faults, counters and rate windows (API keys are kept)."""
        with self._lock:
            self.offers.clear()
            self.order_items.clear()
            self.order_history.clear()
            self.listing_views.clear()
            self.webhook_deliveries.clear()
            self.status_counts.clear()
            self.rate_limited = 0
            self._calls.clear()
            self._limiter.reset()
            self._faults.clear()
            self._turns.clear()
            self._listing_styles.clear()

    # -- call log ------------------------------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    def calls_matching(self, method: str | None = None, path_prefix: str | None = None) -> list[RecordedCall]:
        return [
            call
            for call in self.calls
            if (method is None or call.method == method.upper())
            and (path_prefix is None or call.path.startswith(path_prefix))
        ]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # -- seeding and inspection ----------------------------------------------------------------

    def add_offer(self, **fields: Any) -> dict[str, Any]:
        """Seed an offer without API validation (SKU uniqueness still holds). Returns a copy."""
        with self._lock:
            n = next(self._seq)
            offer: dict[str, Any] = {
                "id": str(uuid.uuid4()),
                "name": f"Seeded offer {n}",
                "category": "internet",
                "status": "draft",
                "sku": f"SEED-{n:04d}",
            }
            offer.update(fields)
            if self._sku_owner(offer["sku"]) is not None:
                raise ValueError(f"an offer with SKU {offer['sku']!r} already exists")
            stamp = self._stamp()
            offer.setdefault("createdAt", stamp)
            offer.setdefault("updatedAt", stamp)
            self.offers[offer["id"]] = offer
            return copy.deepcopy(offer)

    def add_order_item(self, **fields: Any) -> dict[str, Any]:
        """Seed an order item (status "pending" unless given) with realistic customer data. Returns a copy."""
        status = fields.get("status", "pending")
        if status not in ORDER_ITEM_STATUSES:
            raise ValueError(one_of("status", ORDER_ITEM_STATUSES))
        with self._lock:
            offer = self.offers.get(fields.get("offerId", ""))
            item: dict[str, Any] = {
                "id": f"item-{uuid.uuid4().hex[:12]}",
                "orderId": f"ord-{uuid.uuid4().hex[:12]}",
                "offerId": offer["id"] if offer else f"off-{uuid.uuid4().hex[:12]}",
                "offerName": offer.get("name") if offer else "High-Speed Internet 1000 Mbps",
                "status": status,
                "createdAt": self._stamp(),
                "customerInfo": {
                    "fullName": "Jane Doe",
                    "email": "jane.doe@example.com",
                    "phone": "+1-555-123-4567",
                },
                "serviceAddress": {
                    "street": "123 Main St",
                    "city": "Springfield",
                    "state": "IL",
                    "zipCode": "62701",
                    "country": "US",
                },
                "notes": None,
                "metadata": {},
                "providerNotes": None,
                "scheduledFor": None,
            }
            item.update(fields)
            if item["id"] in self.order_items:
                raise ValueError(f"order item {item['id']!r} already exists")
            self.order_items[item["id"]] = item
            self.order_history[item["id"]] = []
            return copy.deepcopy(item)

    def set_order_item_status(self, item_id: str, status: str, **changes: Any) -> dict[str, Any]:
        """Change an item's status as Offergrid or a reseller would (no lifecycle check)."""
        if status not in ORDER_ITEM_STATUSES:
            raise ValueError(one_of("status", ORDER_ITEM_STATUSES))
        with self._lock:
            item = self.order_items[item_id]
            self._record_transition(item, status, source="fake", changes=changes)
            item.update(changes, status=status)
            return copy.deepcopy(item)

    def set_listing_view(self, item_id: str, view: dict[str, Any] | None) -> None:
        """Listings show `view` for this item instead of the item (None: leave it out of listings);
        its GET is unchanged (`devtools.offergrid_fake.listing_views`)."""
        with self._lock:
            if item_id not in self.order_items:
                raise KeyError(item_id)
            self.listing_views[item_id] = check_view(view)

    def clear_listing_view(self, item_id: str) -> None:
        """Listings show this item as the answers mode says again."""
        with self._lock:
            self.listing_views.pop(item_id, None)

    def history(self, item_id: str) -> list[dict[str, Any]]:
        """The status changes of one order item, oldest first."""
        with self._lock:
            return copy.deepcopy(self.order_history.get(item_id, []))

    def state(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(
                {
                    "offers": list(self.offers.values()),
                    "orderItems": list(self.order_items.values()),
                    "history": self.order_history,
                    "listingViews": self.listing_views,
                    "counters": {
                        "calls": len(self._calls),
                        "rateLimited": self.rate_limited,
                        "statusCounts": {str(code): n for code, n in sorted(self.status_counts.items())},
                    },
                    "pendingFaults": [asdict(fault) for fault in self._faults.pending()],
                    "config": {
                        "timeScale": self.time_scale,
                        "perMinute": self._limiter.per_minute,
                        "perHour": self._limiter.per_hour,
                        "pageSize": self.page_size,
                        "listStyle": self.list_style,
                        "answers": self.answers.to_dict(),
                        "enforceLifecycle": self.enforce_lifecycle,
                    },
                    "now": self.now(),
                }
            )

    # -- webhooks ------------------------------------------------------------------------------

    def webhook_payload(
        self,
        kind: WebhookKind,
        item: dict[str, Any] | str,
        *,
        reason: str = "Customer cancelled the order",
        include_item_id: bool = True,
        shape: PayloadShape = "flat",
    ) -> dict[str, Any]:
        """The payload Offergrid sends about `item` (an order item or its id), stamped with fake time."""
        if isinstance(item, str):
            with self._lock:
                item = copy.deepcopy(self.order_items[item])
        return webhook_payload(
            kind,
            item,
            timestamp=iso_timestamp(self.now()),
            reason=reason,
            include_item_id=include_item_id,
            shape=shape,
        )

    def deliver_webhook(
        self,
        url: str,
        payload: dict[str, Any],
        secret: str,
        *,
        prefix: bool = False,
        raw_body: bytes | None = None,
        timeout: float = 10.0,
        shape: PayloadShape | None = None,
        sign_body: bool = True,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Sign and POST a webhook like Offergrid (see `webhooks.deliver_webhook`); the delivery is logged."""
        status, body = deliver_webhook(
            url,
            payload,
            secret,
            prefix=prefix,
            raw_body=raw_body,
            timeout=timeout,
            shape=shape,
            sign_body=sign_body,
            headers=headers,
        )
        with self._lock:
            self.webhook_deliveries.append(
                {"url": url, "event": payload.get("event"), "status": status, "at": self.now()}
            )
        return status, body

    # -- request handling (called by the HTTP handler threads) ---------------------------------

    def _serve(
        self, method: str, target: str, api_key: str | None, raw_body: bytes, wait: Callable[[float], object]
    ) -> Reply:
        parts = urlsplit(target)
        segments = _segments(parts.path)
        path = "/" + "/".join(segments)
        query = parse_qs(parts.query, keep_blank_values=True)
        body, body_error = _parse_json(raw_body)
        arrival = self.now()
        bucket = _key_digest(api_key) if api_key is not None else _ANONYMOUS
        with self._lock:
            role = self._roles.get(bucket) if api_key is not None else None
            retry_after = self._limiter.retry_after(bucket, arrival)
            fault = None if retry_after is not None else self._faults.take(method, path)
            if retry_after is None and (fault is None or fault.kind != "rate_limit"):
                self._limiter.admit(bucket, arrival)

        def finish(reply: Reply, fault_kind: str | None = None) -> Reply:
            call = RecordedCall(
                method,
                path,
                query,
                body,
                None if reply.drop else reply.status,
                role is not None,
                arrival,
                fault_kind,
                parts.path,
            )
            with self._lock:
                self._calls.append(call)
                if not reply.drop:
                    self.status_counts[reply.status] += 1
            return reply

        if retry_after is not None:
            with self._lock:
                self.rate_limited += 1
                with_header = self.answers.retry_after_on_429
            headers = {"Retry-After": format_retry_after(retry_after)} if with_header else {}
            return finish(Reply(429, dict(TOO_MANY_REQUESTS_BODY), headers))
        if fault is not None:
            if fault.kind == "slow":
                wait(fault.delay)
            elif fault.kind not in AFTER_EFFECT_KINDS:
                return finish(self._fault_reply(fault), fault.kind)
        reply = self._answer(method, segments, query, body, body_error, role)
        if fault is not None and fault.kind in AFTER_EFFECT_KINDS and 200 <= reply.status < 300:
            reply = _after_effect_reply(fault)
        return finish(reply, fault.kind if fault else None)

    def _fault_reply(self, fault: Fault) -> Reply:
        if fault.kind == "drop":
            return Reply(0, drop=True)
        headers: dict[str, str] = {}
        retry_after = fault.retry_after
        if retry_after is None and fault.kind == "rate_limit" and self.answers.retry_after_on_429:
            retry_after = 1
        if retry_after is not None:
            headers["Retry-After"] = (
                retry_after if isinstance(retry_after, str) else format_retry_after(float(retry_after))
            )
        body = (
            dict(TOO_MANY_REQUESTS_BODY)
            if fault.status == 429
            else error_body(fault.status, phrase(fault.status))
        )
        return Reply(fault.status, body, headers)

    def _answer(
        self,
        method: str,
        segments: list[str],
        query: dict[str, list[str]],
        body: Any,
        body_error: str | None,
        role: str | None,
    ) -> Reply:
        if role is None:
            return Reply(401, dict(UNAUTHORIZED_BODY))
        if role == "reseller":
            return Reply(403, dict(FORBIDDEN_BODY))
        route = _route(method, segments)
        if route is None:
            return error_reply(404, f"Cannot {method} /{'/'.join(segments)}")
        handler, ident = route
        if method in ("POST", "PATCH"):
            if body_error is not None:
                return error_reply(400, body_error)
            if not isinstance(body, dict):
                return error_reply(400, ["request body must be a JSON object"])
        with self._lock:
            return handler(self, ident, query, body)

    # Handlers run under the lock; `body` is a dict for POST/PATCH.

    def _list_offers(self, _ident: str, query: dict[str, list[str]], _body: Any) -> Reply:
        offers = list(self.offers.values())
        if self.answers.sparse_listings:  # optional fields left out instead of null
            offers = [{key: value for key, value in offer.items() if value is not None} for offer in offers]
        return self._page(offers, query, "/provider/offers")

    def _create_offer(self, _ident: str, _query: dict[str, list[str]], body: dict[str, Any]) -> Reply:
        errors = validate_offer(body)
        if errors:
            return error_reply(400, errors)
        if self._sku_owner(body["sku"]) is not None:
            return _sku_conflict(body["sku"])
        stamp = self._stamp()
        fields = {key: value for key, value in body.items() if key not in SERVER_OFFER_FIELDS}
        if fields.get("status") is None:
            fields["status"] = "draft"
        offer = {"id": str(uuid.uuid4()), **fields, "createdAt": stamp, "updatedAt": stamp}
        self.offers[offer["id"]] = offer
        return self._written("offer_create", offer)

    def _get_offer(self, offer_id: str, _query: dict[str, list[str]], _body: Any) -> Reply:
        offer = self.offers.get(offer_id)
        return Reply(200, copy.deepcopy(offer)) if offer else _offer_not_found(offer_id)

    def _update_offer(self, offer_id: str, _query: dict[str, list[str]], body: dict[str, Any]) -> Reply:
        offer = self.offers.get(offer_id)
        if offer is None:
            return _offer_not_found(offer_id)
        errors = validate_offer(body, existing=offer)
        if errors:
            return error_reply(400, errors)
        if "sku" in body and self._sku_owner(body["sku"]) not in (None, offer_id):
            return _sku_conflict(body["sku"])
        offer.update({key: value for key, value in body.items() if key not in SERVER_OFFER_FIELDS})
        offer["updatedAt"] = self._stamp()
        return self._written("offer_update", offer)

    def _delete_offer(self, offer_id: str, _query: dict[str, list[str]], _body: Any) -> Reply:
        offer = self.offers.pop(offer_id, None)
        if offer is None:
            return _offer_not_found(offer_id)
        return self._written("offer_delete", offer)

    def _list_orders(self, _ident: str, query: dict[str, list[str]], _body: Any) -> Reply:
        statuses = query.get("status")
        items = list(self.order_items.items())
        if statuses is not None:
            if len(statuses) != 1 or statuses[0] not in ORDER_ITEM_STATUSES:
                return error_reply(400, [one_of("status", ORDER_ITEM_STATUSES)])
            items = [(item_id, item) for item_id, item in items if item["status"] == statuses[0]]
        return self._page(
            listed_elements(items, self.listing_views, self._listed_order_item), query, "/provider/orders"
        )

    def _listed_order_item(self, item: dict[str, Any]) -> dict[str, Any]:
        if self.answers.sparse_listings:  # a listing summary: what identifies the item and its state
            return {key: item[key] for key in SPARSE_ORDER_ITEM_FIELDS if key in item}
        return item

    def _get_order_item(self, item_id: str, _query: dict[str, list[str]], _body: Any) -> Reply:
        item = self.order_items.get(item_id)
        return Reply(200, copy.deepcopy(item)) if item else _item_not_found(item_id)

    def _update_order_item_status(
        self, item_id: str, _query: dict[str, list[str]], body: dict[str, Any]
    ) -> Reply:
        item = self.order_items.get(item_id)
        if item is None:
            return _item_not_found(item_id)
        errors = validate_status_update(body)
        if errors:
            return error_reply(400, errors)
        target = body["status"]
        if self.enforce_lifecycle and (problem := transition_error(item["status"], target)) is not None:
            return error_reply(422, problem)
        changes: dict[str, Any] = {key: body[key] for key in ("providerNotes", "scheduledFor") if key in body}
        self._record_transition(item, target, source="api", changes=changes)
        item.update(changes, status=target)
        if isinstance(body.get("metadata"), dict):
            # Shallow merge: the reseller's metadata (unitNumber, moveInDate...) survives provider updates.
            item["metadata"] = {**(item.get("metadata") or {}), **body["metadata"]}
        return self._written("status_patch", item)

    # -- helpers (under the lock) ----------------------------------------------------------------

    def _page(self, items: list[dict[str, Any]], query: dict[str, list[str]], path: str) -> Reply:
        styles = self.answers.list_styles
        listing = listing_key(path, query)
        style = continued_style(query, styles, self._listing_styles.get(listing))
        if style is None:
            style = self._listing_styles[listing] = self._turn("list_styles", styles)
        try:
            body, headers = paginate(
                items, style, self.answers.page_size, query, path, self.answers.list_misbehaviour
            )
        except PageError as error:
            return error_reply(400, [str(error)])
        return Reply(200, copy.deepcopy(body), headers)

    def _written(self, knob: str, resource: dict[str, Any]) -> Reply:
        """The answer to a successful write, as `answers` says for `knob` (e.g. "status_patch")."""
        choice = self._turn(knob, getattr(self.answers, knob))
        status, _, shape = choice.partition("-")
        if shape == "item":
            return Reply(int(status), copy.deepcopy(resource))
        if shape == "message":
            return Reply(int(status), dict(MESSAGE_ONLY_BODIES[knob]))
        return Reply(int(status))

    def _sku_owner(self, sku: object) -> str | None:
        return next((offer_id for offer_id, offer in self.offers.items() if offer.get("sku") == sku), None)

    def _stamp(self) -> str:
        """An ISO timestamp on the fake's clock, at least 1 ms later than the previous one."""
        self._last_stamp = max(self.now(), self._last_stamp + 0.001)
        return iso_timestamp(self._last_stamp)

    def _record_transition(
        self, item: dict[str, Any], target: str, *, source: str, changes: dict[str, Any]
    ) -> None:
        self.order_history.setdefault(item["id"], []).append(
            {
                "from": item["status"],
                "to": target,
                "at": self._stamp(),
                "source": source,
                "providerNotes": changes.get("providerNotes"),
                "scheduledFor": changes.get("scheduledFor"),
            }
        )


_Handler = Callable[[OffergridFake, str, dict[str, list[str]], Any], Reply]
_ROUTES: Final[list[tuple[str, tuple[str, ...], _Handler]]] = [
    ("GET", _OFFERS, OffergridFake._list_offers),
    ("POST", _OFFERS, OffergridFake._create_offer),
    ("GET", _OFFER, OffergridFake._get_offer),
    ("PATCH", _OFFER, OffergridFake._update_offer),
    ("DELETE", _OFFER, OffergridFake._delete_offer),
    ("GET", _ORDERS, OffergridFake._list_orders),
    ("PATCH", _ORDER_ITEM_STATUS, OffergridFake._update_order_item_status),
    ("GET", _ORDER_ITEM, OffergridFake._get_order_item),
]


def _segments(raw_path: str) -> list[str]:
    """The decoded segments of a raw path: dot segments removed first (RFC 3986 5.2.4), then each
    segment percent-decoded on its own, so an encoded `/` or `.` stays inside its segment. One
    trailing slash is ignored."""
    out: list[str] = []
    for segment in raw_path.split("/")[1:]:
        if segment == ".":
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    if out and out[-1] == "" and raw_path.endswith("/"):
        out.pop()
    return [unquote(segment) for segment in out]


def _route(method: str, segments: list[str]) -> tuple[_Handler, str] | None:
    for route_method, pattern, handler in _ROUTES:
        if route_method != method or len(pattern) != len(segments):
            continue
        ident = ""
        for expected, actual in zip(pattern, segments, strict=True):
            if expected == _ID:
                if not actual:
                    break
                ident = actual
            elif expected != actual:
                break
        else:
            return handler, ident
    return None


def _after_effect_reply(fault: Fault) -> Reply:
    """The answer of an "empty", "message" or "drop_after" fault (the request took effect)."""
    if fault.kind == "drop_after":
        return Reply(0, drop=True)
    if fault.kind == "message":
        return Reply(fault.status, {"message": "OK"})
    return Reply(fault.status)


def _parse_json(raw: bytes) -> tuple[Any, str | None]:
    if not raw.strip():
        return None, None
    try:
        return json.loads(raw), None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, f"Unexpected token in JSON: {error}"


def _offer_not_found(offer_id: str) -> Reply:
    return error_reply(404, f"Offer with ID {offer_id} not found")


def _item_not_found(item_id: str) -> Reply:
    return error_reply(404, f"Order item with ID {item_id} not found")


def _sku_conflict(sku: object) -> Reply:
    return error_reply(409, f"Offer with SKU {sku} already exists")


class _FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], fake: OffergridFake) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Close kept-alive client connections so a stopped fake answers nothing."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError):
            traceback.print_exc()


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "OffergridFake/1.0"
    sys_version = ""
    timeout = 30  # idle keep-alive connections are closed after this many real seconds
    disable_nagle_algorithm = True  # headers and body go out in two writes; do not wait for an ACK
    server: _FakeHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        # The request line and status only: headers (and so the API key) are never logged.
        if self.server.fake.verbose:
            sys.stderr.write(f"offergrid-fake: {format % args}\n")

    def _handle(self) -> None:
        fake = self.server.fake
        if not fake.running:
            self.close_connection = True
            return
        try:
            raw_body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._write(error_reply(400, "Malformed request body framing"))
            return
        try:
            if urlsplit(self.path).path.startswith(CONTROL_PREFIX):
                reply = control.handle_control(fake, self.command, self.path, raw_body)
            else:
                api_key = self.headers.get(API_KEY_HEADER)
                reply = fake._serve(self.command, self.path, api_key, raw_body, fake._stopping.wait)
        except Exception:
            traceback.print_exc()
            reply = error_reply(500, "Internal Server Error")
        if reply.drop:
            self.close_connection = True
            return
        self._write(reply)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, reply: Reply) -> None:
        payload = b"" if reply.body is None else compact_json(reply.body)
        try:
            self.send_response(reply.status)
            if reply.body is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
