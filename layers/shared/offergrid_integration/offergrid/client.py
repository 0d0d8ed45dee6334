"""OffergridClient: the one way this project talks to the Offergrid Provider API.

Every attempt takes a rate-budget token and is bounded by the caller's remaining time, so no retry sleeps
past a Lambda's deadline. Answers are read tolerantly (docs/decisions.md#5, #10, #18; see `responses` and
`paging`). The per-attempt timeout is real seconds whatever the clock (issue 22).
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Final, Protocol, Self
from urllib.parse import quote

import httpx

from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.config import DEFAULT_OFFERGRID_API_URL
from offergrid_integration.config import base_url as normalised_base_url
from offergrid_integration.offergrid import (
    CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    INITIAL_RETRY_DELAY,
    MAX_PAGES,
    MAX_RETRIES,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    MIN_TIME_LEFT_FOR_REQUEST,
)
from offergrid_integration.offergrid.errors import (
    APIConnectionError,
    APITimeoutError,
    OffergridError,
    RateBudgetExhausted,
    is_retryable_status,
)
from offergrid_integration.offergrid.models import (
    Offer,
    OfferCreate,
    OffergridResponse,
    OfferUpdate,
    OrderItem,
    OrderItemStatus,
    StatusUpdate,
)
from offergrid_integration.offergrid.observer import ClientObserver, default_observer
from offergrid_integration.offergrid.paging import Params, follow_listing
from offergrid_integration.offergrid.responses import (
    json_body,
    listed_element,
    read_resource,
    status_error,
    written_resource,
)
from offergrid_integration.ratelimit import RateBudget
from offergrid_integration.text import json_text

_USER_AGENT: Final = "offergrid-provider-integration/0.1"

_log = logging.getLogger("offergrid_integration.offergrid.client")

type Random = Callable[[], float]


class ApiKeyProvider(Protocol):
    def __call__(self, *, force_refresh: bool = False) -> str: ...


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a `Retry-After` (delta-seconds or HTTP date) relative to `now`; None when unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            return None
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def compute_backoff(attempt: int, rng: Random = random.random) -> float:
    """Full-jitter exponential backoff before retry `attempt` (0-based), capped at `MAX_RETRY_DELAY`."""
    ceiling = min(MAX_RETRY_DELAY, INITIAL_RETRY_DELAY * 2.0 ** max(0, min(attempt, 32)))
    return ceiling * min(1.0, max(0.0, rng()))


def retry_wait(attempt: int, retry_after: float | None, rng: Random = random.random) -> float:
    """The wait before retry `attempt`: the server's Retry-After (capped) if given, else backoff."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    return compute_backoff(attempt, rng)


def _should_retry(status_code: int | None) -> bool:
    """Whether an outcome may succeed if repeated (`None`: no HTTP answer). 401 is handled apart."""
    if status_code is None:
        return True
    return is_retryable_status(status_code)


class OffergridClient:
    """Sync client of the Offergrid Provider API (one reused connection pool; close() it)."""

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_OFFERGRID_API_URL,
        api_key: ApiKeyProvider,
        rate_budget: RateBudget | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = MAX_RETRIES,
        clock: Clock = SYSTEM_CLOCK,
        remaining_time: Callable[[], float] | None = None,
        transport: httpx.BaseTransport | None = None,
        rng: Random = random.random,
        observer: ClientObserver | None = None,
        max_pages: int = MAX_PAGES,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        if max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        self.base_url = normalised_base_url(base_url)
        self._api_key = api_key
        self._rate_budget = rate_budget
        self._timeout = timeout
        self._max_retries = max_retries
        self._max_pages = max_pages
        self._clock = clock
        self._remaining_time = remaining_time
        self._rng = rng
        self._observer = observer if observer is not None else default_observer()
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            headers={"accept": "application/json", "user-agent": _USER_AGENT},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"OffergridClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- offers -------------------------------------------------------------------------------

    def list_offers(self) -> Iterator[Offer]:
        """Every offer of the team, lazily; unreadable elements are skipped and reported."""
        return self._paginate(Offer, "/provider/offers", {})

    def get_offer(self, offer_id: str) -> Offer:
        """The offer; `UnreadableResponseError` (retryable) when a 2xx answer does not hold it."""
        path = f"/provider/offers/{_segment(offer_id)}"
        return self._read(Offer, path)

    def create_offer(self, offer: OfferCreate) -> Offer | None:
        """POST the offer: the created offer if the answer holds it, else None (it was created)."""
        path = "/provider/offers"
        response = self._send("POST", path, json=offer.to_wire())
        return written_resource(Offer, response, "POST", path)

    def update_offer(self, offer_id: str, changes: OfferUpdate) -> Offer | None:
        """PATCH only the fields set on `changes`: the offer if the answer holds it, else None (applied)."""
        path = f"/provider/offers/{_segment(offer_id)}"
        response = self._send("PATCH", path, json=changes.to_wire())
        return written_resource(Offer, response, "PATCH", path, expected_id=offer_id)

    def delete_offer(self, offer_id: str) -> None:
        """DELETE the offer; any 2xx (204, 200 with or without a body) means it is gone."""
        self._send("DELETE", f"/provider/offers/{_segment(offer_id)}")

    # --- order items --------------------------------------------------------------------------

    def list_orders(self, status: OrderItemStatus | None = None) -> Iterator[OrderItem]:
        """Order items addressed to us (optionally of one status), lazily; unreadable elements are skipped."""
        params: Params = {"status": str(status)} if status is not None else {}
        return self._paginate(OrderItem, "/provider/orders", params)

    def list_order_pages(
        self, status: OrderItemStatus | None = None, *, max_retries: int | None = None
    ) -> Iterator[list[OrderItem]]:
        """`list_orders` page by page, fetched as the iterator advances. A listing that is only an
        optimisation passes `max_retries=0` to give up at its first failure.
        """
        params: Params = {"status": str(status)} if status is not None else {}
        return self._pages(OrderItem, "/provider/orders", params, max_retries=max_retries)

    def get_order_item(self, item_id: str) -> OrderItem:
        """The item; `UnreadableResponseError` (retryable) when a 2xx answer does not hold it."""
        path = f"/provider/orders/{_segment(item_id)}"
        return self._read(OrderItem, path)

    def update_order_item_status(self, item_id: str, update: StatusUpdate) -> OrderItem | None:
        """PATCH the status: the item if the answer holds a readable one, else None (applied)."""
        path = f"/provider/orders/{_segment(item_id)}/status"
        response = self._send("PATCH", path, json=update.to_wire())
        return written_resource(OrderItem, response, "PATCH", path, expected_id=item_id)

    # --- plumbing -----------------------------------------------------------------------------

    def _paginate[M: OffergridResponse](self, model: type[M], path: str, params: Params) -> Iterator[M]:
        for page in self._pages(model, path, params):
            yield from page

    def _pages[M: OffergridResponse](
        self, model: type[M], path: str, params: Params, *, max_retries: int | None = None
    ) -> Iterator[list[M]]:
        """Every page of a listing (Decisions 5 and 18); `paging.follow_listing` decides the next page."""

        def fetch(query: Params) -> tuple[Any, str | None, int]:
            response, body = self._get_json(path, query, max_retries=max_retries)
            return body, response.links.get("next", {}).get("url"), response.status_code

        position = 0
        for items in follow_listing(fetch, params, path=path, max_pages=self._max_pages):
            page: list[M] = []
            for raw in items:
                position += 1
                parsed = listed_element(model, raw, path, position)
                if parsed is None:
                    self._notify("on_unreadable_item", "GET", path)
                else:
                    page.append(parsed)
            yield page

    def _get_json(
        self, path: str, params: Params | None = None, *, max_retries: int | None = None
    ) -> tuple[httpx.Response, Any]:
        response = self._send("GET", path, params=params, max_retries=max_retries)
        return response, json_body(response, path)

    def _read[M: OffergridResponse](self, model: type[M], path: str) -> M:
        response, body = self._get_json(path)
        return read_resource(model, response, body, path)

    def _remaining(self) -> float | None:
        return None if self._remaining_time is None else self._remaining_time()

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        max_retries: int | None = None,
    ) -> httpx.Response:
        """One logical request with its retries; any 2xx is success (Decision 10). The 401 key refresh is
        not counted as a retry.
        """
        retry_limit = self._max_retries if max_retries is None else max_retries
        retries = 0
        attempt = 0
        key_refreshed = False
        force_refresh = False
        last_error: OffergridError | None = None
        while True:
            attempt += 1
            remaining = self._remaining()
            if remaining is not None and remaining <= MIN_TIME_LEFT_FOR_REQUEST:
                raise last_error or APITimeoutError(
                    f"not enough time left for {method} {path} ({remaining:.2f}s)"
                )
            if self._rate_budget is not None:
                self._acquire_token(self._rate_budget, remaining)
                remaining = self._remaining()
                if remaining is not None and remaining <= MIN_TIME_LEFT_FOR_REQUEST:
                    raise last_error or APITimeoutError(
                        f"no time left for {method} {path} after waiting for the rate budget"
                    )
            key = self._api_key(force_refresh=force_refresh)
            force_refresh = False
            timeout = self._timeout
            if remaining is not None:
                timeout = min(timeout, remaining - MIN_TIME_LEFT_FOR_REQUEST)
            status: int | None = None
            retry_after: float | None = None
            try:
                response = self._attempt(method, path, key, params, json, timeout)
            except httpx.TransportError as exc:
                self._notify("on_response", method, None)
                last_error = _transport_error(exc, method, path, key)
                error = type(exc).__name__
                _log.debug(
                    "offergrid %s %s failed: %s",
                    *(method, path, error),
                    extra={"method": method, "path": path, "attempt": attempt, "error": error},
                )
            else:
                status = response.status_code
                self._notify("on_response", method, status)
                _log.debug(
                    "offergrid %s %s -> %d",
                    *(method, path, status),
                    extra={"method": method, "path": path, "status": status, "attempt": attempt},
                )
                if 200 <= status < 300:
                    return response
                last_error = status_error(response, method, path)
                if status == 401 and not key_refreshed:
                    # A rotated key: re-read it once, skipping any cache, and try again at once.
                    key_refreshed = force_refresh = True
                    continue
                retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock.now())
            if not _should_retry(status) or retries >= retry_limit:
                raise last_error
            wait = retry_wait(retries, retry_after, self._rng)
            remaining = self._remaining()
            if remaining is not None and remaining - wait < MIN_TIME_LEFT_FOR_REQUEST:
                raise last_error
            _log.debug(
                "offergrid %s %s retry in %.3fs",
                *(method, path, wait),
                extra={"method": method, "path": path, "attempt": attempt, "wait": wait},
            )
            retries += 1
            self._clock.sleep(wait)

    def _acquire_token(self, budget: RateBudget, remaining: float | None) -> None:
        """One rate-budget token; the observer hears how long it took, or that none was left."""
        started = self._clock.now()
        try:
            budget.acquire(remaining_time=remaining)
        except RateBudgetExhausted:
            self._notify("on_budget_exhausted")
            raise
        self._notify("on_budget_wait", max(0.0, self._clock.now() - started))

    def _notify(self, event: str, *args: object) -> None:
        """Call the observer; what it raises is logged, never allowed to fail a request."""
        try:
            callback = getattr(self._observer, event, None)
            if callback is not None:  # an observer written before the event existed
                callback(*args)
        except Exception as exc:
            _log.warning(
                "offergrid client observer failed in %s: %s",
                event,
                type(exc).__name__,
                extra={"observerEvent": event, "error": type(exc).__name__},
            )

    def _attempt(
        self, method: str, path: str, key: str, params: Params | None, json: Any, timeout: float
    ) -> httpx.Response:
        headers = {"x-api-key": key}
        content = None
        if json is not None:
            # Text from outside (a cancellation's reason, a catalog's description) may hold a lone
            # surrogate, which UTF-8 cannot encode: sent as U+FFFD (docs/decisions.md#17).
            content = json_text(json).encode("utf-8")
            headers["content-type"] = "application/json"
        return self._http.request(
            method,
            path,
            params=params or None,
            content=content,
            headers=headers,
            # Real seconds whatever the clock: a compressed clock speeds up the waits we choose, not
            # how long a server takes to answer.
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
        )


def _segment(value: str) -> str:
    """An id as one path segment (docs/decisions.md#12); dots-only ids go as `%2E`s, since URL
    normalisation would drop `.` and `..`.
    """
    if not value:
        raise ValueError("id must not be empty")
    encoded = quote(value, safe="")
    if encoded.strip(".") == "":
        return "%2E" * len(encoded)
    return encoded


def _transport_error(exc: httpx.TransportError, method: str, path: str, key: str) -> APIConnectionError:
    detail = str(exc).replace(key, "***") if key else str(exc)
    kind = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    what = "timed out" if kind is APITimeoutError else "connection failed"
    return kind(f"{method} {path} {what}: {type(exc).__name__}{': ' + detail if detail else ''}")
