"""`apply_plan` against the Offergrid fake: the create body, and the answers a retried write can earn."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.offergrid_fake import OffergridFake
from offergrid_integration.catalog.apply import ListingConfirmation, apply_plan
from offergrid_integration.catalog.mapping import DesiredOffer, RawRow, default_mapping
from offergrid_integration.catalog.plan import ChangeKind, OfferChange
from offergrid_integration.catalog.report import SyncReport
from offergrid_integration.clock import ScaledClock
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.offergrid.models import OfferCreate
from offergrid_integration.ratelimit import InProcessRateBudget, RateWindow
from tests.fixtures.catalog import map_all, plan
from tests.fixtures.offergrid_fake import TEST_API_KEY, OffergridClientFactory, OffergridFakeFactory

PRODUCT = {
    "sku": "TV-ESSENTIALS",
    "productName": "TV Essentials",
    "type": "television",
    "price": 39.99,
    "isActive": True,
    "description": "75+ live channels",
    # Issue #11 case 5: television fields are undocumented, so they come as the row's own object.
    "serviceSpecificData": {"channelCount": 75, "includesDvr": True},
}


@pytest.fixture
def fake(offergrid_fake_factory: OffergridFakeFactory) -> OffergridFake:
    return offergrid_fake_factory(time_scale=60.0)


@pytest.fixture
def client(fake: OffergridFake, offergrid_client_factory: OffergridClientFactory) -> OffergridClient:
    return offergrid_client_factory(fake, clock=ScaledClock(60.0), max_retries=0)


def apply(
    changes: list[OfferChange], client: OffergridClient, confirm_created: ListingConfirmation | None = None
) -> SyncReport:
    """`apply_plan` into a fresh report (its `counts` are the writes done)."""
    report = SyncReport(run_id="r", started_at=0.0)
    apply_plan(changes, client, report, confirm_created=confirm_created)
    return report


def create_change() -> OfferChange:
    mapped = map_all(default_mapping(), [RawRow(1, dict(PRODUCT))])
    (change,) = plan(mapped.offers, []).writes
    return change


def test_a_create_sends_the_desired_offers_create_body(
    fake: OffergridFake, client: OffergridClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a planned create, and every DesiredOffer.create_body call counted
    change = create_change()
    assert change.desired is not None
    built: list[OfferCreate] = []
    real_create_body = DesiredOffer.create_body

    def counting_create_body(self: DesiredOffer) -> OfferCreate:
        body = real_create_body(self)
        built.append(body)
        return body

    monkeypatch.setattr(DesiredOffer, "create_body", counting_create_body)

    # When it is applied
    result = apply([change], client)

    # Then the body sent is the one DesiredOffer builds, and the fake holds the offer
    assert result.counts == {"create": 1}
    assert len(built) == 1
    [post] = fake.calls_matching("POST")
    assert post.body == built[0].to_wire()
    [offer] = fake.offers.values()
    assert (offer["sku"], offer["monthlyPrice"], offer["serviceSpecificData"]["channelCount"]) == (
        "TV-ESSENTIALS",
        39.99,
        75,
    )


def seed_existing(fake: OffergridFake, change: OfferChange, **overrides: Any) -> None:
    """The offer a create whose answer was lost made (or, with overrides, someone else's)."""
    fake.add_offer(**{**dict(change.body), **overrides})


def test_a_409_whose_offer_holds_the_catalog_values_is_confirmed_with_one_listing(
    fake: OffergridFake, client: OffergridClient
) -> None:
    # Given the fake already holds the offer (our earlier attempt applied, its answer lost)
    change = create_change()
    seed_existing(fake, change)

    # When the create is applied and answered 409
    result = apply([change], client, confirm_created=ListingConfirmation(client, [change]))

    # Then a listing confirms it: created, not a failure
    assert result.failures == []
    assert result.counts == {"create": 1}
    assert result.confirmed_on_retry == ["TV-ESSENTIALS"]
    assert [call.status for call in fake.calls] == [409, 200]
    assert len(fake.calls_matching("GET", "/provider/offers")) == 1


def test_a_409_for_an_offer_with_other_values_stays_a_failure(
    fake: OffergridFake, client: OffergridClient
) -> None:
    change = create_change()
    seed_existing(fake, change, monthlyPrice=10.0, name="Hand-made")

    result = apply([change], client, confirm_created=ListingConfirmation(client, [change]))

    assert result.counts == {}
    assert [(f.sku, f.status_code) for f in result.failures] == [("TV-ESSENTIALS", 409)]
    assert result.confirmed_on_retry == []


def test_without_a_confirmation_a_409_is_a_failure(fake: OffergridFake, client: OffergridClient) -> None:
    change = create_change()
    seed_existing(fake, change)

    result = apply([change], client)

    assert [(f.sku, f.status_code) for f in result.failures] == [("TV-ESSENTIALS", 409)]
    assert fake.calls_matching("GET") == []


def test_a_failed_confirmation_listing_keeps_the_409(fake: OffergridFake, client: OffergridClient) -> None:
    # Given the offer exists but the confirming listing fails
    change = create_change()
    seed_existing(fake, change)
    fake.inject_fault("status", status=500, method="GET", path="/provider/offers")

    result = apply([change], client, confirm_created=ListingConfirmation(client, [change]))

    assert [(f.sku, f.status_code) for f in result.failures] == [("TV-ESSENTIALS", 409)]
    assert result.counts == {}


def test_a_confirmation_listing_the_rate_budget_refuses_keeps_the_409(fake: OffergridFake) -> None:
    # Given the offer exists, and a rate budget with one token: the create's
    change = create_change()
    seed_existing(fake, change)
    budget = InProcessRateBudget([RateWindow(limit=3, period_seconds=3600)])
    with OffergridClient(
        base_url=fake.base_url,
        api_key=lambda *, force_refresh=False: TEST_API_KEY,
        rate_budget=budget,
        remaining_time=lambda: 2.0,
        max_retries=0,
    ) as client:
        # When the create is answered 409 and the confirming listing finds no token
        result = apply([change], client, confirm_created=ListingConfirmation(client, [change]))

    # Then it confirms nothing: the 409 stays a failure (the next run's listing settles it)
    assert [(f.sku, f.status_code) for f in result.failures] == [("TV-ESSENTIALS", 409)]
    assert result.counts == {}
    assert fake.calls_matching("GET") == []


def test_a_delete_answered_404_is_done(fake: OffergridFake, client: OffergridClient) -> None:
    # Given an offer that is already gone (our earlier attempt deleted it, its answer lost)
    gone = OfferChange(ChangeKind.DELETE, "OLD-1", "no-longer-there", {})

    result = apply([gone], client)

    assert result.failures == []
    assert result.counts == {"delete": 1}
    assert [call.status for call in fake.calls_matching("DELETE")] == [404]


def test_an_update_answered_404_is_still_a_failure(fake: OffergridFake, client: OffergridClient) -> None:
    change = OfferChange(ChangeKind.DEACTIVATE, "OLD-1", "no-longer-there", {"status": "inactive"})

    result = apply([change], client)

    assert [(f.sku, f.status_code) for f in result.failures] == [("OLD-1", 404)]
