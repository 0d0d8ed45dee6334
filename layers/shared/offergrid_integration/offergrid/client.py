"""OffergridClient: the one way this project talks to the Offergrid Provider API.

Transport, auth, timeouts, retries and error construction live in `_send`; the endpoint methods
only name a path and a model. Every attempt takes one rate-budget token, reads the API key from
the provider, and is bounded by the caller's remaining time (a Lambda's deadline), so a retry
never sleeps past it.

An observer (`offergrid.observer`) hears about every attempt's status, every rate-budget wait and
every refused token; by default it emits the client's CloudWatch metrics inside a Lambda function.

Durations are seconds of the injected `Clock` (see `offergrid_integration.clock`). httpx timeouts
are real seconds, so a clock that runs faster (`ScaledClock.scale`) has its timeouts divided by
that scale.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Final, Protocol, Self
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.offergrid.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    OffergridError,
    RateBudgetExhausted,
    UnexpectedResponseError,
    error_class_for_status,
    is_retryable_status,
)
from offergrid_integration.offergrid.models import (
    ErrorBody,
    Offer,
    OfferCreate,
    OfferUpdate,
    OrderItem,
    OrderItemStatus,
    StatusUpdate,
)
from offergrid_integration.offergrid.observer import ClientObserver, default_observer

# --- tunables (clock seconds) -----------------------------------------------------------------
DEFAULT_BASE_URL: Final = "https://api.offergrid.io"
DEFAULT_TIMEOUT: Final = 10.0  # per attempt; the documented recommendation
CONNECT_TIMEOUT: Final = 3.0
MAX_RETRIES: Final = 4  # retries after the first attempt (the 401 key refresh is extra)
INITIAL_RETRY_DELAY: Final = 0.5
MAX_RETRY_DELAY: Final = 8.0
MAX_RETRY_AFTER: Final = 60.0
MIN_TIME_LEFT_FOR_REQUEST: Final = 1.0  # never start an attempt with less time than this left
MAX_PAGES: Final = 10_000  # a list longer than this is a server bug, not a catalogue

LIST_KEYS: Final = ("data", "items", "offers", "orders")
CURSOR_KEYS: Final = ("nextCursor", "next_cursor", "cursor", "next")
TOTAL_PAGES_KEYS: Final = ("totalPages", "total_pages", "pages")
HAS_MORE_KEYS: Final = ("hasMore", "has_more")
CURSOR_PARAM: Final = "cursor"
PAGE_PARAM: Final = "page"

_USER_AGENT: Final = "offergrid-provider-integration/0.1"
_MAX_ERROR_TEXT: Final = 2_000

_log = logging.getLogger("offergrid_integration.offergrid.client")

type Params = dict[str, str]
type Random = Callable[[], float]


class ApiKeyProvider(Protocol):
    def __call__(self, *, force_refresh: bool = False) -> str: ...


class RateBudget(Protocol):
    def acquire(self, *, remaining_time: float | None = None) -> None: ...


# --- pure helpers -----------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` value: delta-seconds (decimals allowed) or an HTTP
    date, relative to `now` (epoch seconds of the clock). None when absent or unreadable; never
    negative. The caller applies `MAX_RETRY_AFTER`."""
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
    """Full-jitter exponential backoff before retry number `attempt` (0-based):
    uniform in [0, min(MAX_RETRY_DELAY, INITIAL_RETRY_DELAY * 2**attempt)]."""
    ceiling = min(MAX_RETRY_DELAY, INITIAL_RETRY_DELAY * 2.0 ** max(0, min(attempt, 32)))
    return ceiling * min(1.0, max(0.0, rng()))


def retry_wait(attempt: int, retry_after: float | None, rng: Random = random.random) -> float:
    """The wait before retry `attempt`: the server's Retry-After (capped) if given, else backoff."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    return compute_backoff(attempt, rng)


def _should_retry(status_code: int | None) -> bool:
    """Whether an attempt's outcome may succeed if repeated. `None`: no HTTP answer at all
    (refused, reset, dropped, timed out). 401 is handled apart (one key refresh, then final)."""
    if status_code is None:
        return True
    return is_retryable_status(status_code)


def parse_page(body: Any, params: Mapping[str, str]) -> tuple[list[Any], Params | None]:
    """One list response -> (its items, the query of the next page or None when it is the last).

    Accepts a bare array, or an object holding the list under one of `LIST_KEYS` with an optional
    cursor (`CURSOR_KEYS`) or page number (`page` + `TOTAL_PAGES_KEYS`, or `HAS_MORE_KEYS`).
    A page number without totals continues until an empty page.
    """
    if isinstance(body, list):
        return body, None
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON array or object, got {type(body).__name__}")
    items = next((body[key] for key in LIST_KEYS if isinstance(body.get(key), list)), None)
    if items is None:
        raise ValueError(f"no list under any of {', '.join(LIST_KEYS)}")

    for key in CURSOR_KEYS:
        cursor = body.get(key)
        if isinstance(cursor, str | int) and not isinstance(cursor, bool) and str(cursor):
            return items, _cursor_params(str(cursor), params)

    has_more = next((body[key] for key in HAS_MORE_KEYS if isinstance(body.get(key), bool)), None)
    page = body.get(PAGE_PARAM)
    if isinstance(page, int) and not isinstance(page, bool):
        total = next((body[key] for key in TOTAL_PAGES_KEYS if _is_int(body.get(key))), None)
        if total is not None:
            more = page < total
        elif has_more is not None:
            more = has_more
        else:
            more = bool(items)
        return items, {**params, PAGE_PARAM: str(page + 1)} if more else None
    if has_more:
        current = int(params.get(PAGE_PARAM, "1"))
        return items, {**params, PAGE_PARAM: str(current + 1)}
    return items, None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _cursor_params(cursor: str, params: Mapping[str, str]) -> Params:
    # A `next` link (absolute or relative URL) carries the whole next query; a token is a cursor.
    if cursor.startswith(("http://", "https://", "/")):
        return {**params, **dict(httpx.URL(cursor).params)}
    return {**params, CURSOR_PARAM: cursor}


def _real_seconds(clock: Clock, seconds: float) -> float:
    """httpx waits in real seconds; a `ScaledClock` runs `scale` clock seconds per real one."""
    scale = getattr(clock, "scale", 1.0)
    return seconds / scale if isinstance(scale, int | float) and scale > 0 else seconds


# --- the client -------------------------------------------------------------------------------


class OffergridClient:
    """Sync client of the Offergrid Provider API (one reused connection pool; close() it)."""

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_key: ApiKeyProvider,
        rate_budget: RateBudget | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = MAX_RETRIES,
        clock: Clock = SYSTEM_CLOCK,
        remaining_time: Callable[[], float] | None = None,
        transport: httpx.BaseTransport | None = None,
        rng: Random = random.random,
        observer: ClientObserver | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._rate_budget = rate_budget
        self._timeout = timeout
        self._max_retries = max_retries
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
        """Every offer of the team, page after page, fetched lazily as the iterator advances."""
        for raw in self._paginate("/provider/offers", {}):
            yield self._parse(Offer, raw, "GET", "/provider/offers")

    def get_offer(self, offer_id: str) -> Offer:
        path = f"/provider/offers/{_segment(offer_id)}"
        return self._parse(Offer, self._call("GET", path), "GET", path)

    def create_offer(self, offer: OfferCreate) -> Offer:
        path = "/provider/offers"
        body = self._call("POST", path, json=offer.to_wire(), ok=(200, 201))
        return self._parse(Offer, body, "POST", path)

    def update_offer(self, offer_id: str, changes: OfferUpdate) -> Offer:
        """PATCH only the fields set on `changes` (see `OfferUpdate`)."""
        path = f"/provider/offers/{_segment(offer_id)}"
        body = self._call("PATCH", path, json=changes.to_wire())
        return self._parse(Offer, body, "PATCH", path)

    def delete_offer(self, offer_id: str) -> None:
        self._send("DELETE", f"/provider/offers/{_segment(offer_id)}", ok=(200, 204))

    # --- order items --------------------------------------------------------------------------

    def list_orders(self, status: OrderItemStatus | None = None) -> Iterator[OrderItem]:
        """Order items addressed to us (optionally of one status), fetched lazily page by page."""
        params: Params = {"status": str(status)} if status is not None else {}
        for raw in self._paginate("/provider/orders", params):
            yield self._parse(OrderItem, raw, "GET", "/provider/orders")

    def get_order_item(self, item_id: str) -> OrderItem:
        path = f"/provider/orders/{_segment(item_id)}"
        return self._parse(OrderItem, self._call("GET", path), "GET", path)

    def update_order_item_status(self, item_id: str, update: StatusUpdate) -> OrderItem:
        path = f"/provider/orders/{_segment(item_id)}/status"
        body = self._call("PATCH", path, json=update.to_wire())
        return self._parse(OrderItem, body, "PATCH", path)

    # --- plumbing -----------------------------------------------------------------------------

    def _paginate(self, path: str, params: Params) -> Iterator[Any]:
        seen: set[tuple[tuple[str, str], ...]] = set()
        for _ in range(MAX_PAGES):
            body = self._call("GET", path, params=params)
            try:
                items, next_params = parse_page(body, params)
            except ValueError as exc:
                raise UnexpectedResponseError(
                    f"unexpected list response: {exc}", status_code=200, method="GET", path=path
                ) from None
            yield from items
            if next_params is None:
                return
            marker = tuple(sorted(next_params.items()))
            if next_params == params or marker in seen:
                raise UnexpectedResponseError(
                    "pagination does not advance (the server repeated a cursor or page)",
                    status_code=200,
                    method="GET",
                    path=path,
                )
            seen.add(marker)
            params = next_params
        raise UnexpectedResponseError(f"more than {MAX_PAGES} pages", method="GET", path=path)

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        ok: tuple[int, ...] = (200,),
    ) -> Any:
        response = self._send(method, path, params=params, json=json, ok=ok)
        try:
            return response.json()
        except ValueError:
            raise UnexpectedResponseError(
                "response body is not JSON", status_code=response.status_code, method=method, path=path
            ) from None

    @staticmethod
    def _parse[M: BaseModel](model: type[M], raw: Any, method: str, path: str) -> M:
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            # The pydantic message quotes the input; keep only where and what went wrong.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<body>'}: {err['msg']}" for err in exc.errors()
            )
            raise UnexpectedResponseError(
                f"unexpected {model.__name__} in response: {problems}", method=method, path=path
            ) from None

    def _remaining(self) -> float | None:
        return None if self._remaining_time is None else self._remaining_time()

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """One logical request: attempts, retries, waits and the final typed error."""
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
                _log.debug(
                    "offergrid %s %s failed: %s",
                    method,
                    path,
                    type(exc).__name__,
                    extra={"method": method, "path": path, "attempt": attempt, "error": type(exc).__name__},
                )
            else:
                status = response.status_code
                self._notify("on_response", method, status)
                _log.debug(
                    "offergrid %s %s -> %d",
                    method,
                    path,
                    status,
                    extra={"method": method, "path": path, "status": status, "attempt": attempt},
                )
                if status in ok:
                    return response
                last_error = _status_error(response, method, path)
                if status == 401 and not key_refreshed:
                    # A rotated key: re-read it once, skipping any cache, and try again at once.
                    key_refreshed = force_refresh = True
                    continue
                retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock.now())
            if not _should_retry(status) or retries >= self._max_retries:
                raise last_error
            wait = retry_wait(retries, retry_after, self._rng)
            remaining = self._remaining()
            if remaining is not None and remaining - wait < MIN_TIME_LEFT_FOR_REQUEST:
                raise last_error
            _log.debug(
                "offergrid %s %s retry in %.3fs",
                method,
                path,
                wait,
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
            getattr(self._observer, event)(*args)
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
        real = _real_seconds(self._clock, timeout)
        return self._http.request(
            method,
            path,
            params=params or None,
            json=json,
            headers={"x-api-key": key},
            timeout=httpx.Timeout(real, connect=min(real, _real_seconds(self._clock, CONNECT_TIMEOUT))),
        )


def _segment(value: str) -> str:
    """An id as one path segment (no `/`, `..` or query can escape it)."""
    if not value:
        raise ValueError("id must not be empty")
    return quote(value, safe="")


def _transport_error(exc: httpx.TransportError, method: str, path: str, key: str) -> APIConnectionError:
    detail = str(exc).replace(key, "***") if key else str(exc)
    kind = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    what = "timed out" if kind is APITimeoutError else "connection failed"
    return kind(f"{method} {path} {what}: {type(exc).__name__}{': ' + detail if detail else ''}")


def _status_error(response: httpx.Response, method: str, path: str) -> APIStatusError:
    status = response.status_code
    body: Any
    message: str | None = None
    try:
        body = response.json()
    except ValueError:
        body = response.text[:_MAX_ERROR_TEXT] or None
    if isinstance(body, dict):
        try:
            message = ErrorBody.model_validate(body).text()
        except ValidationError:
            message = None
    if not message:
        message = response.reason_phrase or f"HTTP {status}"
    if 200 <= status < 300:
        message = f"unexpected success status {status}"
    return error_class_for_status(status)(
        message,
        status_code=status,
        body=body,
        request_id=response.headers.get("x-request-id"),
        method=method,
        path=path,
    )


__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "INITIAL_RETRY_DELAY",
    "MAX_RETRIES",
    "MAX_RETRY_AFTER",
    "MAX_RETRY_DELAY",
    "MIN_TIME_LEFT_FOR_REQUEST",
    "ApiKeyProvider",
    "OffergridClient",
    "RateBudget",
    "compute_backoff",
    "parse_page",
    "parse_retry_after",
    "retry_wait",
]
