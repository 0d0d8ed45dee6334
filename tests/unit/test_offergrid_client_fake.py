"""OffergridClient against the Offergrid HTTP fake: endpoints, errors, retries, deadlines, pages.

Retries run with a zero-jitter random source (no backoff wait) unless a test is about the wait;
waits that must be real run on a `ScaledClock` against a fake at the same `time_scale`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import boto3
import httpx
import pytest

from devtools.offergrid_fake import OffergridFake
from offergrid_integration.clock import ScaledClock
from offergrid_integration.offergrid import MAX_RETRIES, MAX_RETRY_AFTER
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.offergrid.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateBudgetExhausted,
    RateLimitError,
    RequestTimeoutError,
    UnexpectedResponseError,
    UnprocessableEntityError,
)
from offergrid_integration.offergrid.models import (
    ConnectionType,
    InternetServiceData,
    Offer,
    OfferCategory,
    OfferCreate,
    OfferStatus,
    OfferUpdate,
    OrderItemStatus,
    StatusUpdate,
)
from offergrid_integration.secrets import Secret, parse_api_key
from tests.fixtures.offergrid_fake import OffergridClientFactory

KEY = "test-api-key"


class KeyProvider:
    """An `ApiKeyProvider` that serves `stale` until asked to refresh, then `fresh`."""

    def __init__(self, stale: str = KEY, fresh: str | None = None) -> None:
        self.current = stale
        self.fresh = fresh if fresh is not None else stale
        self.calls: list[bool] = []

    def __call__(self, *, force_refresh: bool = False) -> str:
        self.calls.append(force_refresh)
        if force_refresh:
            self.current = self.fresh
        return self.current


class CountingBudget:
    """Stands in for the shared rate budget: counts acquisitions, optionally refuses."""

    def __init__(self, *, exhausted: bool = False) -> None:
        self.acquired: list[float | None] = []
        self.exhausted = exhausted

    def acquire(self, *, remaining_time: float | None = None) -> None:
        if self.exhausted:
            raise RateBudgetExhausted(12.5)
        self.acquired.append(remaining_time)


class RecordingClock:
    """Real `now()`, but `sleep()` only records: proves what the client would have waited."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture
def make_client(
    offergrid_fake: OffergridFake, offergrid_client_factory: OffergridClientFactory
) -> Callable[..., OffergridClient]:
    def make(**kwargs: Any) -> OffergridClient:
        kwargs.setdefault("api_key", KeyProvider())
        kwargs.setdefault("timeout", 5.0)
        return offergrid_client_factory(offergrid_fake, **kwargs)

    return make


@pytest.fixture
def client(make_client: Callable[..., OffergridClient]) -> OffergridClient:
    return make_client()


def fiber_offer(sku: str = "INT-1000-001", **fields: Any) -> OfferCreate:
    return OfferCreate(
        name="Fiber 1000",
        category=OfferCategory.INTERNET,
        sku=sku,
        monthly_price=59.99,
        service_specific_data=InternetServiceData(
            min_bandwidth=100, max_bandwidth=1000, connection_type=ConnectionType.FIBER
        ),
        **fields,
    )


# --- endpoints --------------------------------------------------------------------------------


class TestOffers:
    def test_create_get_list_patch_delete_round_trip(self, client, offergrid_fake):
        # Given a new offer created through the API
        created = client.create_offer(fiber_offer())
        assert created.id
        assert created.status is OfferStatus.DRAFT  # the fake's default, parsed to our enum
        assert created.sku == "INT-1000-001"
        (post,) = offergrid_fake.calls_matching("POST", "/provider/offers")
        assert post.body == fiber_offer().to_wire()
        assert post.status == 201

        # When it is read back, singly and in the list
        assert client.get_offer(created.id) == created
        assert [offer.id for offer in client.list_offers()] == [created.id]

        # When only the price is patched
        offergrid_fake.clear_calls()
        updated = client.update_offer(created.id, OfferUpdate(monthly_price=49.99))

        # Then exactly that field was sent and the rest is untouched
        (patch,) = offergrid_fake.calls_matching("PATCH", "/provider/offers/")
        assert patch.body == {"monthlyPrice": 49.99}
        assert patch.path == f"/provider/offers/{created.id}"
        assert updated.monthly_price == 49.99
        assert updated.name == "Fiber 1000"
        assert updated.service_specific_data == created.service_specific_data

        # When deleted (the fake answers 204), it is gone
        assert client.delete_offer(created.id) is None
        with pytest.raises(NotFoundError):
            client.get_offer(created.id)

    def test_patch_sends_explicit_null_and_several_fields_only(self, client, offergrid_fake):
        offer = offergrid_fake.add_offer(sku="S-1", monthlyPrice=10, description="old")

        client.update_offer(offer["id"], OfferUpdate(description=None, status=OfferStatus.ACTIVE))

        (patch,) = offergrid_fake.calls_matching("PATCH")
        assert patch.body == {"description": None, "status": "active"}
        assert offergrid_fake.offers[offer["id"]]["monthlyPrice"] == 10

    def test_unknown_fields_from_the_server_are_kept(self, client, offergrid_fake):
        seeded = offergrid_fake.add_offer(sku="S-2", visibility="preferred", futureField={"x": 1})

        offer = client.get_offer(seeded["id"])

        assert offer.model_extra == {"visibility": "preferred", "futureField": {"x": 1}}

    def test_ids_are_escaped_into_one_path_segment(self, client, offergrid_fake):
        with pytest.raises(NotFoundError):
            client.get_offer("../orders")
        (call,) = offergrid_fake.calls
        assert call.path == "/provider/offers/../orders"  # decoded by the fake, sent as one segment


class TestOrders:
    def test_list_by_status(self, client, offergrid_fake):
        pending = [offergrid_fake.add_order_item()["id"] for _ in range(2)]
        offergrid_fake.add_order_item(status="accepted")

        items = list(client.list_orders(OrderItemStatus.PENDING))

        assert sorted(item.id for item in items) == sorted(pending)
        assert {item.status for item in items} == {OrderItemStatus.PENDING}
        (call,) = offergrid_fake.calls_matching("GET", "/provider/orders")
        assert call.query == {"status": ["pending"]}

    def test_list_without_status_sends_no_filter(self, client, offergrid_fake):
        offergrid_fake.add_order_item()
        offergrid_fake.add_order_item(status="accepted")

        assert len(list(client.list_orders())) == 2
        assert offergrid_fake.calls[0].query == {}

    def test_get_item_with_customer_and_address(self, client, offergrid_fake):
        seeded = offergrid_fake.add_order_item(metadata={"unitNumber": "4B"})

        item = client.get_order_item(seeded["id"])

        assert item.order_id == seeded["orderId"]
        assert item.customer_info is not None
        assert item.customer_info.full_name == "Jane Doe"
        assert item.service_address is not None
        assert item.service_address.zip_code == "62701"
        assert item.metadata == {"unitNumber": "4B"}

    def test_status_updates(self, client, offergrid_fake):
        seeded = offergrid_fake.add_order_item()

        accepted = client.update_order_item_status(
            seeded["id"], StatusUpdate(status=OrderItemStatus.ACCEPTED, provider_notes="We can serve this")
        )
        when = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
        scheduled = client.update_order_item_status(
            seeded["id"],
            StatusUpdate(
                status=OrderItemStatus.SCHEDULED, scheduled_for=when, metadata={"workOrderId": "wo-1"}
            ),
        )

        assert accepted.status is OrderItemStatus.ACCEPTED
        assert accepted.provider_notes == "We can serve this"
        assert scheduled.status is OrderItemStatus.SCHEDULED
        assert scheduled.scheduled_for == when
        first, second = offergrid_fake.calls_matching("PATCH", "/provider/orders/")
        assert first.path == f"/provider/orders/{seeded['id']}/status"
        assert first.body == {"status": "accepted", "providerNotes": "We can serve this"}
        assert second.body == {
            "status": "scheduled",
            "scheduledFor": "2026-12-01T09:30:00Z",
            "metadata": {"workOrderId": "wo-1"},
        }


# --- errors -----------------------------------------------------------------------------------


class TestErrors:
    def test_wrong_key_is_refreshed_once_then_authentication_error(self, make_client, offergrid_fake):
        provider = KeyProvider("wrong-secret-key")
        client = make_client(api_key=provider)

        with pytest.raises(AuthenticationError) as info:
            client.get_offer("anything")

        err = info.value
        assert err.status_code == 401
        assert err.message == "Unauthorized - invalid API key"
        assert err.retryable is False
        assert provider.calls == [False, True]
        assert len(offergrid_fake.calls) == 2
        for text in (str(err), repr(err), repr(err.body), repr(client)):
            assert "wrong-secret-key" not in text

    def test_rotated_key_is_picked_up_after_one_401(self, make_client, offergrid_fake):
        # Given a provider still caching the previous key while Offergrid only knows the new one
        offergrid_fake.add_api_key("new-key")
        offergrid_fake.revoke_api_key(KEY)
        provider = KeyProvider(stale=KEY, fresh="new-key")
        client = make_client(api_key=provider)
        seeded = offergrid_fake.add_offer(sku="ROT-1")

        # When the client calls twice
        first = client.get_offer(seeded["id"])
        second = client.get_offer(seeded["id"])

        # Then the first call needed one refresh, the second went straight through
        assert first.id == second.id == seeded["id"]
        assert [call.status for call in offergrid_fake.calls] == [401, 200, 200]
        assert provider.calls == [False, True, False]

    def test_a_key_rotated_in_secrets_manager_is_read_again_after_one_401(
        self, aws, make_client, offergrid_fake
    ):
        # docs/decisions.md#19. Given the key in Secrets Manager, read and cached by a warm client
        secrets = boto3.client("secretsmanager")
        secrets.create_secret(Name="offergrid/api-key", SecretString="old-api-key-0001")
        offergrid_fake.add_api_key("old-api-key-0001")
        secret = Secret("offergrid/api-key", parse_api_key, max_age_seconds=3600)
        client = make_client(api_key=secret)
        seeded = offergrid_fake.add_offer(sku="ROT-2")
        client.get_offer(seeded["id"])

        # When the key is rotated (Secrets Manager has the new one, Offergrid refuses the old one)
        secrets.put_secret_value(SecretId="offergrid/api-key", SecretString="new-api-key-0002")
        offergrid_fake.add_api_key("new-api-key-0002")
        offergrid_fake.revoke_api_key("old-api-key-0001")
        offer = client.get_offer(seeded["id"])

        # Then one 401 cost one extra request: the key was read again past its cache, and kept
        again = client.get_offer(seeded["id"])
        assert offer.id == again.id == seeded["id"]
        assert [call.status for call in offergrid_fake.calls] == [200, 401, 200, 200]
        assert secret() == "new-api-key-0002"

    def test_reseller_key_gets_permission_denied(self, offergrid_fake_factory, make_client):
        fake = offergrid_fake_factory(reseller_keys=["reseller-key"])
        client = make_client(base_url=fake.base_url, api_key=KeyProvider("reseller-key"))

        with pytest.raises(PermissionDeniedError) as info:
            list(client.list_offers())

        assert info.value.status_code == 403
        assert info.value.message == "Forbidden - Provider role required"
        assert len(fake.calls) == 1

    def test_not_found(self, client, offergrid_fake):
        with pytest.raises(NotFoundError) as info:
            client.get_order_item("item-missing")

        assert info.value.status_code == 404
        assert "item-missing" in info.value.message
        assert info.value.method == "GET"
        assert info.value.path == "/provider/orders/item-missing"
        assert info.value.body["statusCode"] == 404

    def test_duplicate_sku_is_a_conflict(self, client, offergrid_fake):
        offergrid_fake.add_offer(sku="DUP-1")

        with pytest.raises(ConflictError) as info:
            client.create_offer(fiber_offer(sku="DUP-1"))

        assert info.value.status_code == 409
        assert "DUP-1" in info.value.message

    def test_validation_error_joins_the_message_list(self, client, offergrid_fake):
        bad = OfferCreate(
            name="Fiber",
            category=OfferCategory.INTERNET,
            sku="BAD-1",
            service_specific_data={"maxBandwidth": "x"},
        )

        with pytest.raises(BadRequestError) as info:
            client.create_offer(bad)

        err = info.value
        assert isinstance(err.body["message"], list)
        assert len(err.body["message"]) == 3
        assert err.message == "; ".join(err.body["message"])
        assert "serviceSpecificData.minBandwidth should not be empty" in err.message

    def test_lifecycle_violation_is_unprocessable(self, client, offergrid_fake):
        seeded = offergrid_fake.add_order_item(status="rejected")

        with pytest.raises(UnprocessableEntityError) as info:
            client.update_order_item_status(seeded["id"], StatusUpdate(status=OrderItemStatus.ACCEPTED))

        assert info.value.status_code == 422
        assert "terminal" in info.value.message

    def test_request_id_header_is_kept(self, client, offergrid_fake):
        # The fake sends none; the attribute is still there for callers that log it.
        with pytest.raises(NotFoundError) as info:
            client.get_offer("missing")
        assert info.value.request_id is None


# --- retries ----------------------------------------------------------------------------------


class TestRetries:
    def test_two_503_then_success(self, client, offergrid_fake):
        seeded = offergrid_fake.add_offer(sku="R-1")
        offergrid_fake.inject_fault("status", times=2, status=503)

        offer = client.get_offer(seeded["id"])

        assert offer.id == seeded["id"]
        assert [call.status for call in offergrid_fake.calls] == [503, 503, 200]

    @pytest.mark.parametrize("status", [408, 429, 500, 502, 504])
    def test_every_transient_status_is_retried(self, client, offergrid_fake, status):
        offergrid_fake.inject_fault("status", status=status, retry_after=0)

        assert list(client.list_offers()) == []
        assert [call.status for call in offergrid_fake.calls] == [status, 200]

    def test_a_408_is_retried_like_a_5xx(self, make_client, offergrid_fake):
        # docs/decisions.md#19: the server gave up waiting; a later attempt can succeed
        item = offergrid_fake.add_order_item()
        waits: dict[int, list[float]] = {}
        for status in (503, 408):
            clock = RecordingClock()
            client = make_client(clock=clock, rng=lambda: 1.0)
            offergrid_fake.inject_fault("status", status=status, times=MAX_RETRIES + 1)
            with pytest.raises(APIStatusError) as info:
                client.update_order_item_status(item["id"], StatusUpdate(status=OrderItemStatus.ACCEPTED))
            assert info.value.retryable is True
            assert [call.status for call in offergrid_fake.calls] == [status] * (MAX_RETRIES + 1)
            waits[status] = clock.sleeps
            offergrid_fake.clear_calls()
        assert waits[408] == waits[503]
        assert isinstance(info.value, RequestTimeoutError)

        # and a 408 followed by a success applies the change once
        offergrid_fake.inject_fault("status", status=408)
        make_client().update_order_item_status(item["id"], StatusUpdate(status=OrderItemStatus.ACCEPTED))
        assert [call.status for call in offergrid_fake.calls] == [408, 200]
        assert offergrid_fake.order_items[item["id"]]["status"] == "accepted"

    def test_dropped_connection_is_retried(self, client, offergrid_fake):
        seeded = offergrid_fake.add_offer(sku="R-2")
        offergrid_fake.inject_fault("drop")

        assert client.get_offer(seeded["id"]).id == seeded["id"]
        assert [call.status for call in offergrid_fake.calls] == [None, 200]

    def test_retries_exhausted_raise_the_last_typed_error(self, make_client, offergrid_fake):
        client = make_client(max_retries=2)
        offergrid_fake.inject_fault("status", times=10, status=502)

        with pytest.raises(InternalServerError) as info:
            client.get_offer("any")

        assert info.value.status_code == 502
        assert info.value.retryable is True
        assert len(offergrid_fake.calls) == 3

    def test_rate_limit_exhausted_raises_rate_limit_error(self, make_client, offergrid_fake):
        client = make_client(max_retries=1)
        offergrid_fake.inject_fault("rate_limit", times=5, retry_after=0)

        with pytest.raises(RateLimitError) as info:
            list(client.list_orders())

        assert info.value.status_code == 429
        assert len(offergrid_fake.calls) == 2

    @pytest.mark.parametrize(
        ("status", "error"),
        [
            (400, BadRequestError),
            (403, PermissionDeniedError),
            (404, NotFoundError),
            (409, ConflictError),
            (422, UnprocessableEntityError),
            (418, APIStatusError),
        ],
    )
    def test_permanent_statuses_are_not_retried(self, client, offergrid_fake, status, error):
        offergrid_fake.inject_fault("status", status=status, times=3)

        with pytest.raises(error) as info:
            client.get_offer("any")

        assert info.value.status_code == status
        assert len(offergrid_fake.calls) == 1

    def test_real_404_and_409_and_422_are_sent_once(self, client, offergrid_fake):
        offergrid_fake.add_offer(sku="ONCE-1")
        item = offergrid_fake.add_order_item(status="active")

        with pytest.raises(NotFoundError):
            client.delete_offer("missing")
        with pytest.raises(ConflictError):
            client.create_offer(fiber_offer(sku="ONCE-1"))
        with pytest.raises(UnprocessableEntityError):
            client.update_order_item_status(item["id"], StatusUpdate(status=OrderItemStatus.CANCELLED))

        assert [call.status for call in offergrid_fake.calls] == [404, 409, 422]

    def test_retry_after_is_honoured_on_the_clock(self, offergrid_fake_factory, make_client):
        # Given a fake and a client on the same compressed time line (1 real second = 60 s)
        fake = offergrid_fake_factory(time_scale=60)
        clock = ScaledClock(60)
        client = make_client(base_url=fake.base_url, clock=clock, timeout=600.0)
        fake.inject_fault("rate_limit", retry_after=30)

        # When the first attempt is told to come back in 30 s
        started = clock.now()
        assert list(client.list_offers()) == []
        waited = clock.now() - started

        # Then the client waited at least that long (not the zero backoff), and not the cap
        first, second = fake.calls
        assert (first.status, second.status) == (429, 200)
        assert second.at - first.at >= 30 - 0.5
        assert waited >= 30
        assert waited < 300  # 5 real seconds: generous for a noisy machine

    def test_retry_after_is_capped(self, make_client, offergrid_fake):
        clock = RecordingClock()
        client = make_client(clock=clock)
        offergrid_fake.inject_fault("status", status=503, retry_after=3600)

        list(client.list_offers())

        assert clock.sleeps == [MAX_RETRY_AFTER]
        assert len(offergrid_fake.calls) == 2

    def test_retry_after_as_an_http_date(self, make_client, offergrid_fake):
        clock = RecordingClock()
        client = make_client(clock=clock)
        in_20s = format_datetime(datetime.fromtimestamp(time.time() + 20, UTC), usegmt=True)
        offergrid_fake.inject_fault("rate_limit", retry_after=in_20s)

        list(client.list_offers())

        (slept,) = clock.sleeps
        assert 15.0 <= slept <= 20.0

    def test_backoff_without_retry_after_goes_through_the_clock(self, make_client, offergrid_fake):
        clock = RecordingClock()
        client = make_client(clock=clock, rng=lambda: 1.0)
        offergrid_fake.inject_fault("status", status=500, times=3)

        list(client.list_offers())

        assert clock.sleeps == [0.5, 1.0, 2.0]

    def test_slow_answer_times_out(self, make_client, offergrid_fake):
        client = make_client(timeout=1.0, max_retries=0)
        offergrid_fake.inject_fault("slow", delay=8.0)

        started = time.monotonic()
        with pytest.raises(APITimeoutError) as info:
            list(client.list_offers())

        assert time.monotonic() - started < 6.0
        assert info.value.retryable is True
        assert "timed out" in info.value.message

    def test_slow_answer_times_out_then_the_retry_succeeds(self, make_client, offergrid_fake):
        client = make_client(timeout=1.0)
        seeded = offergrid_fake.add_offer(sku="SLOW-1")
        offergrid_fake.inject_fault("slow", delay=8.0)

        started = time.monotonic()
        assert client.get_offer(seeded["id"]).id == seeded["id"]
        assert time.monotonic() - started < 6.0


# --- deadlines --------------------------------------------------------------------------------


class TestRemainingTime:
    def test_too_little_time_sends_nothing(self, make_client, offergrid_fake):
        budget = CountingBudget()
        client = make_client(remaining_time=lambda: 0.5, rate_budget=budget)

        with pytest.raises(APITimeoutError):
            client.get_offer("any")

        assert offergrid_fake.calls == []
        assert budget.acquired == []

    def test_wait_that_would_overrun_raises_the_last_error_now(self, make_client, offergrid_fake):
        # Given 10 s left and a server asking for 30 s
        clock = RecordingClock()
        client = make_client(clock=clock, remaining_time=lambda: 10.0)
        offergrid_fake.inject_fault("status", status=503, retry_after=30)

        with pytest.raises(InternalServerError) as info:
            client.get_offer("any")

        # Then it gave up at once, without sleeping
        assert info.value.status_code == 503
        assert clock.sleeps == []
        assert len(offergrid_fake.calls) == 1

    def test_wait_that_fits_is_taken(self, make_client, offergrid_fake):
        clock = RecordingClock()
        client = make_client(clock=clock, remaining_time=lambda: 40.0)
        offergrid_fake.inject_fault("status", status=503, retry_after=30)

        list(client.list_offers())

        assert clock.sleeps == [30.0]

    def test_timeout_is_bounded_by_the_remaining_time(self, make_client, offergrid_fake):
        # Given 1.6 s left (1 s of it is the safety margin) and a 10 s client timeout
        deadline = time.monotonic() + 1.6
        client = make_client(timeout=10.0, remaining_time=lambda: deadline - time.monotonic())
        offergrid_fake.inject_fault("slow", delay=8.0)

        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            list(client.list_offers())

        # Then the attempt gave up well before the slow answer, and no retry ran past the deadline
        assert time.monotonic() - started < 6.0


# --- auth refresh, rate budget, hygiene ----------------------------------------------------------


class TestRateBudget:
    def test_one_acquire_per_attempt_with_the_remaining_time(self, make_client, offergrid_fake):
        budget = CountingBudget()
        client = make_client(rate_budget=budget, remaining_time=lambda: 100.0)
        offergrid_fake.inject_fault("status", status=503, times=2)

        list(client.list_offers())

        assert budget.acquired == [100.0, 100.0, 100.0]
        assert len(offergrid_fake.calls) == 3

    def test_the_401_retry_takes_a_token_too(self, make_client, offergrid_fake):
        budget = CountingBudget()
        client = make_client(rate_budget=budget, api_key=KeyProvider("old-key", fresh=KEY))

        list(client.list_offers())

        assert len(budget.acquired) == 2
        assert [call.status for call in offergrid_fake.calls] == [401, 200]

    def test_exhausted_budget_sends_nothing(self, make_client, offergrid_fake):
        client = make_client(rate_budget=CountingBudget(exhausted=True))

        with pytest.raises(RateBudgetExhausted) as info:
            client.get_offer("any")

        assert info.value.retry_after == 12.5
        assert offergrid_fake.calls == []


class TestHygiene:
    def test_connection_errors_and_logs_never_show_the_key(self, offergrid_fake_factory, make_client, caplog):
        fake = offergrid_fake_factory()
        url = fake.base_url
        fake.stop()
        client = make_client(base_url=url, api_key=KeyProvider("sk-live-very-secret"), max_retries=1)
        caplog.set_level(logging.DEBUG, logger="offergrid_integration.offergrid.client")

        with pytest.raises(APIConnectionError) as info:
            client.get_offer("o1")

        assert not isinstance(info.value, APITimeoutError)
        assert info.value.retryable is True
        assert "GET /provider/offers/o1" in info.value.message
        assert "sk-live-very-secret" not in str(info.value)
        assert "sk-live-very-secret" not in caplog.text
        attempts = [getattr(record, "attempt", None) for record in caplog.records]
        assert 1 in attempts
        assert 2 in attempts
        assert any(getattr(record, "wait", None) == 0.0 for record in caplog.records)

    def test_debug_logs_name_method_path_and_status(self, client, offergrid_fake, caplog):
        caplog.set_level(logging.DEBUG, logger="offergrid_integration.offergrid.client")
        offergrid_fake.inject_fault("status", status=503)

        list(client.list_offers())

        statuses = [(r.method, r.path, r.status) for r in caplog.records if hasattr(r, "status")]
        assert statuses == [("GET", "/provider/offers", 503), ("GET", "/provider/offers", 200)]
        assert KEY not in caplog.text


# --- pagination -------------------------------------------------------------------------------


class TestPagination:
    @pytest.mark.parametrize("style", ["envelope-cursor", "envelope-page"])
    def test_every_page_is_read(self, offergrid_fake_factory, make_client, style):
        fake = offergrid_fake_factory(list_style=style, page_size=2)
        client = make_client(base_url=fake.base_url)
        skus = [fake.add_offer(sku=f"P-{n}")["sku"] for n in range(5)]

        offers = list(client.list_offers())

        assert [offer.sku for offer in offers] == skus
        assert all(isinstance(offer, Offer) for offer in offers)
        assert len(fake.calls_matching("GET", "/provider/offers")) == 3

    def test_bare_array(self, offergrid_fake_factory, make_client):
        fake = offergrid_fake_factory(list_style="array")
        client = make_client(base_url=fake.base_url)
        for n in range(3):
            fake.add_offer(sku=f"A-{n}")

        assert len(list(client.list_offers())) == 3
        assert len(fake.calls) == 1

    @pytest.mark.parametrize("style", ["envelope-cursor", "envelope-page"])
    def test_order_filter_is_kept_on_every_page(self, offergrid_fake_factory, make_client, style):
        fake = offergrid_fake_factory(list_style=style, page_size=1)
        client = make_client(base_url=fake.base_url)
        pending = [fake.add_order_item()["id"] for _ in range(3)]
        fake.add_order_item(status="accepted")

        items = list(client.list_orders(OrderItemStatus.PENDING))

        assert [item.id for item in items] == pending
        calls = fake.calls_matching("GET", "/provider/orders")
        assert len(calls) >= 3
        assert all(call.query["status"] == ["pending"] for call in calls)

    def test_pages_are_fetched_lazily(self, offergrid_fake_factory, make_client):
        fake = offergrid_fake_factory(list_style="envelope-cursor", page_size=2)
        client = make_client(base_url=fake.base_url)
        for n in range(6):
            fake.add_offer(sku=f"L-{n}")

        offers = client.list_offers()
        assert fake.calls == []
        first = next(offers)

        assert first.sku == "L-0"
        assert len(fake.calls) == 1

    def test_a_retry_inside_pagination_resumes_the_same_page(self, offergrid_fake_factory, make_client):
        fake = offergrid_fake_factory(list_style="envelope-page", page_size=2)
        client = make_client(base_url=fake.base_url)
        for n in range(4):
            fake.add_offer(sku=f"RP-{n}")
        offers = client.list_offers()
        assert [next(offers).sku, next(offers).sku] == ["RP-0", "RP-1"]
        fake.inject_fault("status", status=503)

        rest = [offer.sku for offer in offers]

        assert rest == ["RP-2", "RP-3"]
        assert [call.query.get("page") for call in fake.calls] == [None, ["2"], ["2"]]

    def test_a_server_repeating_its_cursor_is_refused(self):
        # The fake paginates correctly; this server does not: it hands out the same cursor forever.
        seen: list[str] = []

        def same_cursor(request: httpx.Request) -> httpx.Response:
            seen.append(str(request.url))
            assert request.headers["x-api-key"] == KEY
            return httpx.Response(200, json={"data": [{"id": "o1"}], "nextCursor": "again"})

        client = OffergridClient(
            base_url="http://127.0.0.1:9", api_key=KeyProvider(), transport=httpx.MockTransport(same_cursor)
        )
        with client, pytest.raises(UnexpectedResponseError, match="does not advance"):
            list(client.list_offers())

        assert seen == [
            "http://127.0.0.1:9/provider/offers",
            "http://127.0.0.1:9/provider/offers?cursor=again",
        ]

    def test_an_unknown_list_shape_is_refused(self):
        def odd_shape(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={"results": []})

        client = OffergridClient(
            base_url="http://127.0.0.1:9", api_key=KeyProvider(), transport=httpx.MockTransport(odd_shape)
        )
        with client, pytest.raises(UnexpectedResponseError, match="no list"):
            list(client.list_orders())
