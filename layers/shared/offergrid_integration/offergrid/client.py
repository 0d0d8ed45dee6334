"""OffergridClient: the one way this project talks to the Offergrid Provider API.

Every attempt takes a rate-budget token and is bounded by the caller's remaining time, so no retry sleeps
past a Lambda's deadline. Answers are read tolerantly (docs/decisions.md#5, #10, #18; listings in
`paging`). The per-attempt timeout is real seconds whatever the clock (issue 22).
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
from collections.abc import Callable, Iterator
from contextlib import suppress
from itertools import chain
from types import TracebackType
from typing import Any, Final, Protocol, Self
from urllib.parse import quote

import httpx
from pydantic import ValidationError

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
    APIStatusError,
    APITimeoutError,
    OffergridError,
    RateBudgetExhausted,
    UnreadableResponseError,
    error_class_for_status,
)
from offergrid_integration.offergrid.models import (
    ErrorBody,
    Offer,
    OfferCreate,
    OffergridModel,
    OffergridResponse,
    OfferUpdate,
    OrderItem,
    OrderItemStatus,
    StatusUpdate,
    validation_problems,
)
from offergrid_integration.offergrid.observer import ClientObserver, default_observer
from offergrid_integration.offergrid.paging import Params, follow_listing
from offergrid_integration.ratelimit import RateBudget
from offergrid_integration.text import json_text

_USER_AGENT: Final = "offergrid-provider-integration/0.1"
_MAX_ERROR_TEXT: Final = 2_000
# Where a read or write answer may wrap its resource (`{"data": {...}}`) when its top level has no `id`.
RESOURCE_KEYS: Final = ("data", "item", "orderItem", "order", "offer")

_log = logging.getLogger("offergrid_integration.offergrid.client")

type Random = Callable[[], float]


class ApiKeyProvider(Protocol):
    def __call__(self, *, force_refresh: bool = False) -> str: ...


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a `Retry-After` (delta-seconds or HTTP date) relative to `now`; None when unreadable."""
    text = (value or "").strip()
    if not text:
        return None
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
    return max(0.0, seconds) if math.isfinite(seconds) else None


def compute_backoff(attempt: int, rng: Random = random.random) -> float:
    """Full-jitter exponential backoff before retry `attempt` (0-based), capped at `MAX_RETRY_DELAY`."""
    ceiling = min(MAX_RETRY_DELAY, INITIAL_RETRY_DELAY * 2.0 ** max(0, min(attempt, 32)))
    return ceiling * min(1.0, max(0.0, rng()))


def retry_wait(attempt: int, retry_after: float | None, rng: Random = random.random) -> float:
    """The wait before retry `attempt`: the server's Retry-After (capped) if given, else backoff."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    return compute_backoff(attempt, rng)


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

    def list_offers(self) -> Iterator[Offer]:
        """Every offer of the team, lazily; unreadable elements are skipped and reported."""
        return chain.from_iterable(self._pages(Offer, "/provider/offers", {}))

    def get_offer(self, offer_id: str) -> Offer:
        """The offer; `UnreadableResponseError` (retryable) when a 2xx answer does not hold it."""
        return self._read(Offer, f"/provider/offers/{_segment(offer_id)}")

    def create_offer(self, offer: OfferCreate) -> Offer | None:
        """POST the offer: the created offer if the answer holds it, else None (it was created)."""
        return self._write(Offer, "POST", "/provider/offers", offer)

    def update_offer(self, offer_id: str, changes: OfferUpdate) -> Offer | None:
        """PATCH only the fields set on `changes`: the offer if the answer holds it, else None (applied)."""
        return self._write(Offer, "PATCH", f"/provider/offers/{_segment(offer_id)}", changes, offer_id)

    def delete_offer(self, offer_id: str) -> None:
        """DELETE the offer; any 2xx (204, 200 with or without a body) means it is gone."""
        self._send("DELETE", f"/provider/offers/{_segment(offer_id)}")

    def list_orders(self, status: OrderItemStatus | None = None) -> Iterator[OrderItem]:
        """Order items addressed to us (optionally of one status), lazily; unreadable elements are skipped."""
        return chain.from_iterable(self.list_order_pages(status))

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
        return self._read(OrderItem, f"/provider/orders/{_segment(item_id)}")

    def update_order_item_status(self, item_id: str, update: StatusUpdate) -> OrderItem | None:
        """PATCH the status: the item if the answer holds a readable one, else None (applied)."""
        return self._write(
            OrderItem, "PATCH", f"/provider/orders/{_segment(item_id)}/status", update, item_id
        )

    def _pages[M: OffergridResponse](
        self, model: type[M], path: str, params: Params, *, max_retries: int | None = None
    ) -> Iterator[list[M]]:
        def fetch(query: Params) -> tuple[Any, str | None, int]:
            response = self._send("GET", path, params=query, max_retries=max_retries)
            return self._json(response, path), response.links.get("next", {}).get("url"), response.status_code

        return follow_listing(
            fetch,
            model,
            params,
            path=path,
            max_pages=self._max_pages,
            on_unreadable=lambda: self._notify("on_unreadable_item", "GET", path),
        )

    def _read[M: OffergridResponse](self, model: type[M], path: str) -> M:
        """The resource a 2xx read answered; `UnreadableResponseError` when it holds no readable one."""
        response = self._send("GET", path)
        try:
            return model.model_validate(_unwrap(self._json(response, path)))
        except ValidationError as exc:
            raise _unreadable(
                response, path, f"a readable {model.__name__}: {validation_problems(exc)}"
            ) from None

    def _json(self, response: httpx.Response, path: str) -> Any:
        """The JSON of a 2xx read; `UnreadableResponseError` when it has none (empty, or not JSON)."""
        body = _body(response)
        if body is _NO_BODY:
            raise _unreadable(response, path, "a JSON body")
        return body

    def _write[M: OffergridResponse](
        self, model: type[M], method: str, path: str, body: OffergridModel, expected_id: str | None = None
    ) -> M | None:
        """Send a write; the resource its 2xx answer holds, if readable (and of `expected_id`), else None."""
        response = self._send(method, path, json=body.to_wire())
        answer = _body(response)
        if answer is _NO_BODY:
            return None
        try:
            resource = model.model_validate(_unwrap(answer))
        except ValidationError:
            status = response.status_code
            _log.debug(
                "offergrid %s %s answered %d without a readable %s",
                *(method, path, status, model.__name__),
                extra={"method": method, "path": path, "status": status},
            )
            return None
        if expected_id is not None and getattr(resource, "id", None) != expected_id:
            return None
        return resource

    def _time_left(self, last_error: OffergridError | None, why: str) -> float | None:
        """The caller's remaining time; the last error (else a timeout) when too little is left for a try."""
        remaining = None if self._remaining_time is None else self._remaining_time()
        if remaining is not None and remaining <= MIN_TIME_LEFT_FOR_REQUEST:
            raise last_error or APITimeoutError(f"{why} ({remaining:.2f}s left)")
        return remaining

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        max_retries: int | None = None,
    ) -> httpx.Response:
        """One logical request with its retries; any 2xx is success (Decision 10). An error is retried
        exactly when it is transient (`errors`); the 401 key refresh is not counted as a retry.
        """
        retry_limit = self._max_retries if max_retries is None else max_retries
        retries = attempt = 0
        key_refreshed = force_refresh = False
        last_error: OffergridError | None = None
        while True:
            attempt += 1
            remaining = self._time_left(last_error, f"not enough time left for {method} {path}")
            if self._rate_budget is not None:
                self._acquire_token(self._rate_budget, remaining)
                why = f"no time left for {method} {path} after waiting for the rate budget"
                remaining = self._time_left(last_error, why)
            key = self._api_key(force_refresh=force_refresh)
            force_refresh = False
            timeout = self._timeout
            if remaining is not None:
                timeout = min(timeout, remaining - MIN_TIME_LEFT_FOR_REQUEST)
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
                last_error = _status_error(response, method, path)
                if status == 401 and not key_refreshed:
                    # A rotated key: re-read it once, skipping any cache, and try again at once.
                    key_refreshed = force_refresh = True
                    continue
                retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock.now())
            if not last_error.retryable or retries >= retry_limit:
                raise last_error
            wait = retry_wait(retries, retry_after, self._rng)
            remaining = None if self._remaining_time is None else self._remaining_time()
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
        """Call the observer, if any; what it raises is logged, never allowed to fail a request."""
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


def _status_error(response: httpx.Response, method: str, path: str) -> APIStatusError:
    """The error of a non-2xx answer, of the class its status calls for, with the body's message."""
    status = response.status_code
    body = _body(response)
    if body is _NO_BODY:
        body = response.text[:_MAX_ERROR_TEXT] or None
    message: str | None = None
    if isinstance(body, dict):
        with suppress(ValidationError):
            message = ErrorBody.model_validate(body).text()
    return error_class_for_status(status)(
        message or response.reason_phrase or f"HTTP {status}",
        status_code=status,
        body=body,
        request_id=response.headers.get("x-request-id"),
        method=method,
        path=path,
    )


_NO_BODY: Final = object()
"""The body of an answer that has none, or none that is JSON (`null` is one)."""


def _body(response: httpx.Response) -> Any:
    if not response.content.strip():
        return _NO_BODY
    try:
        return response.json()
    except ValueError:
        return _NO_BODY


def _unwrap(body: Any) -> Any:
    """A resource given as is, or wrapped once (`{"data": {...}}`) when the top level has no `id`."""
    if isinstance(body, dict) and "id" not in body:
        return next((body[key] for key in RESOURCE_KEYS if isinstance(body.get(key), dict)), body)
    return body


def _unreadable(response: httpx.Response, path: str, wanted: str) -> UnreadableResponseError:
    status = response.status_code
    return UnreadableResponseError(
        f"answered {status} without {wanted}", status_code=status, method="GET", path=path
    )


def _segment(value: str) -> str:
    """An id as one path segment (docs/decisions.md#12); dots-only ids go as `%2E`s, since URL
    normalisation would drop `.` and `..`.
    """
    if not value:
        raise ValueError("id must not be empty")
    encoded = quote(value, safe="")
    return "%2E" * len(encoded) if encoded.strip(".") == "" else encoded


def _transport_error(exc: httpx.TransportError, method: str, path: str, key: str) -> APIConnectionError:
    detail = str(exc).replace(key, "***") if key else str(exc)
    kind = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    what = "timed out" if kind is APITimeoutError else "connection failed"
    return kind(f"{method} {path} {what}: {type(exc).__name__}{': ' + detail if detail else ''}")
