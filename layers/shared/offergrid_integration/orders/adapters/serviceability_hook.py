"""The provider's own serviceability API as the `ServiceabilityChecker` (HTTPS)."""

from __future__ import annotations

from typing import Final

import httpx

from offergrid_integration.offergrid.models import OrderItem
from offergrid_integration.orders.serviceability import (
    ServiceabilityCode,
    ServiceabilityDecision,
    ServiceabilityUnavailable,
)

__all__ = ["DEFAULT_HOOK_TIMEOUT", "HttpsHookChecker"]

DEFAULT_HOOK_TIMEOUT: Final = 5.0


class HttpsHookChecker:
    """Asks the provider's own serviceability API.

    Request: `POST <url>` with `{"itemId", "orderId", "offerId", "serviceAddress": {street, city,
    state, zipCode, country}}`. Answer: 200 with `{"serviceable": true|false, "reason": "..."}`.
    Anything else (connection error, timeout, other status, another body) is
    `ServiceabilityUnavailable`, so the order is retried, never rejected by accident.
    """

    def __init__(
        self, url: str, *, timeout: float = DEFAULT_HOOK_TIMEOUT, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url
        self._http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)

    def check(self, item: OrderItem) -> ServiceabilityDecision:
        address = item.service_address.to_wire() if item.service_address else None
        payload = {
            "itemId": item.id,
            "orderId": item.order_id,
            "offerId": item.offer_id,
            "serviceAddress": address,
        }
        try:
            response = self._http.post(self.url, json=payload)
        except httpx.HTTPError as exc:
            raise ServiceabilityUnavailable(
                f"serviceability hook unreachable: {type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            raise ServiceabilityUnavailable(f"serviceability hook answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ServiceabilityUnavailable(
                "serviceability hook answered something other than JSON"
            ) from None
        if not isinstance(body, dict) or not isinstance(body.get("serviceable"), bool):
            raise ServiceabilityUnavailable("serviceability hook answer has no boolean 'serviceable'")
        reason = body.get("reason")
        serviceable: bool = body["serviceable"]
        if not isinstance(reason, str) or not reason.strip():
            reason = "Serviceable." if serviceable else "The service address is outside our coverage area."
        return ServiceabilityDecision(serviceable, ServiceabilityCode.HOOK, reason.strip()[:500])

    def close(self) -> None:
        self._http.close()
