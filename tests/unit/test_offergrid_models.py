"""Offergrid models: wire names, leniency on responses, strictness on requests, partial updates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from offergrid_integration.offergrid.models import (
    ConnectionType,
    CustomerInfo,
    ErrorBody,
    InternetServiceData,
    Offer,
    OfferCategory,
    OfferCreate,
    OfferStatus,
    OfferUpdate,
    OrderItem,
    OrderItemStatus,
    PricingType,
    SecurityServiceData,
    ServiceAddress,
    StatusUpdate,
)

DOCS_OFFER = {
    "id": "off-789-ghi",
    "name": "High-Speed Internet 1000 Mbps",
    "internalName": "HSI-1000-Q4-2024",
    "category": "internet",
    "status": "draft",
    "sku": "INT-1000-001",
    "externalId": "ext-12345",
    "metadata": {"tags": ["fiber", "residential"], "priority": 1},
    "keyFeatures": ["1000 Mbps download", "Unlimited data"],
    "serviceSpecificData": {
        "minBandwidth": 100,
        "maxBandwidth": 1000,
        "connectionType": "fiber",
        "dataCap": None,
    },
    "pricingType": "fixed",
    "monthlyPrice": 59.99,
    "complianceStatus": "unknown",
    "createdAt": "2025-01-02T10:00:00.000Z",
}

DOCS_ORDER_ITEM = {
    "id": "item-456-def",
    "orderId": "ord-123-abc",
    "offerId": "off-789-ghi",
    "offerName": "High-Speed Internet 1000 Mbps",
    "status": "pending",
    "createdAt": "2025-01-02T10:00:00Z",
    "customerInfo": {"fullName": "Jane Doe", "email": "jane@example.com", "phone": "+1-555-123-4567"},
    "serviceAddress": {
        "street": "1 Main St",
        "city": "Springfield",
        "state": "IL",
        "zipCode": "62701",
        "country": "US",
    },
    "notes": None,
    "metadata": {"unitNumber": "4B", "moveInDate": "2025-01-15"},
}


class TestOffer:
    def test_docs_example_parses_with_typed_fields(self):
        offer = Offer.model_validate(DOCS_OFFER)

        assert offer.id == "off-789-ghi"
        assert offer.internal_name == "HSI-1000-Q4-2024"
        assert offer.category is OfferCategory.INTERNET
        assert offer.status is OfferStatus.DRAFT
        assert offer.pricing_type is PricingType.FIXED
        assert isinstance(offer.service_specific_data, InternetServiceData)
        assert offer.service_specific_data.connection_type is ConnectionType.FIBER
        assert offer.created_at == datetime(2025, 1, 2, 10, tzinfo=UTC)

    def test_unknown_fields_are_kept_and_round_trip(self):
        offer = Offer.model_validate({**DOCS_OFFER, "visibility": "preferred", "newThing": {"a": 1}})

        assert offer.model_extra == {"visibility": "preferred", "newThing": {"a": 1}}
        wire = offer.to_wire()
        assert wire["newThing"] == {"a": 1}
        assert wire["internalName"] == "HSI-1000-Q4-2024"

    def test_unknown_enum_values_on_a_response_stay_plain_strings(self):
        # Given a value Offergrid added after we shipped
        offer = Offer.model_validate({"id": "o1", "category": "mobile", "status": "paused"})

        assert offer.category == "mobile"
        assert not isinstance(offer.category, OfferCategory)
        assert offer.status == "paused"

    def test_only_id_is_required(self):
        assert Offer.model_validate({"id": "o1"}).name is None
        with pytest.raises(ValidationError):
            Offer.model_validate({"name": "no id"})

    def test_security_data_and_undocumented_categories(self):
        security = Offer.model_validate(
            {
                "id": "o1",
                "serviceSpecificData": {
                    "monitoringType": "hybrid",
                    "installationType": "diy",
                    "equipmentIncluded": "hub, 2 sensors",
                },
            }
        )
        television = Offer.model_validate({"id": "o2", "serviceSpecificData": {"channels": 180}})

        assert isinstance(security.service_specific_data, SecurityServiceData)
        assert television.service_specific_data == {"channels": 180}


class TestOfferCreate:
    def test_requires_name_category_and_sku(self):
        with pytest.raises(ValidationError) as info:
            OfferCreate.model_validate({"name": "x"})
        missing = {err["loc"][0] for err in info.value.errors()}
        assert missing == {"category", "sku"}

    def test_rejects_an_unknown_category(self):
        with pytest.raises(ValidationError):
            OfferCreate.model_validate({"name": "x", "sku": "s", "category": "mobile"})

    def test_wire_body_is_camel_case_and_keeps_explicit_nulls(self):
        create = OfferCreate(
            name="Fiber 500",
            category=OfferCategory.INTERNET,
            sku="INT-500",
            pricing_type=PricingType.VARIABLE,
            monthly_price=None,
            service_specific_data=InternetServiceData(
                min_bandwidth=100, max_bandwidth=500, connection_type=ConnectionType.HOME_5G, data_cap=None
            ),
        )

        assert create.to_wire() == {
            "name": "Fiber 500",
            "category": "internet",
            "sku": "INT-500",
            "pricingType": "variable",
            "monthlyPrice": None,
            "serviceSpecificData": {
                "minBandwidth": 100,
                "maxBandwidth": 500,
                "connectionType": "5g_home",
                "dataCap": None,
            },
        }

    def test_accepts_wire_names_too(self):
        create = OfferCreate.model_validate(
            {"name": "x", "category": "other", "sku": "s", "internalName": "int", "keyFeatures": ["a"]}
        )
        assert create.internal_name == "int"
        assert create.key_features == ["a"]


class TestOfferUpdate:
    def test_sends_only_the_fields_set(self):
        update = OfferUpdate(monthly_price=49.99, status=OfferStatus.INACTIVE)
        assert update.to_wire() == {"monthlyPrice": 49.99, "status": "inactive"}

    def test_empty_update_sends_an_empty_object(self):
        assert OfferUpdate().to_wire() == {}

    def test_explicit_none_is_sent_as_null(self):
        assert OfferUpdate(description=None).to_wire() == {"description": None}


class TestOrderItem:
    def test_docs_example_parses(self):
        item = OrderItem.model_validate(DOCS_ORDER_ITEM)

        assert item.order_id == "ord-123-abc"
        assert item.status is OrderItemStatus.PENDING
        assert item.customer_info == CustomerInfo(
            full_name="Jane Doe", email="jane@example.com", phone="+1-555-123-4567"
        )
        assert isinstance(item.service_address, ServiceAddress)
        assert item.service_address.zip_code == "62701"
        assert item.metadata == {"unitNumber": "4B", "moveInDate": "2025-01-15"}

    @pytest.mark.parametrize("missing", ["id", "status"])
    def test_identifying_fields_are_required(self, missing):
        body = {key: value for key, value in DOCS_ORDER_ITEM.items() if key != missing}
        with pytest.raises(ValidationError):
            OrderItem.model_validate(body)

    @pytest.mark.parametrize("bad", [{"id": None}, {"id": ["i"]}, {"status": None}, {"status": 3}])
    def test_unreadable_identifying_fields_still_fail(self, bad):
        with pytest.raises(ValidationError):
            OrderItem.model_validate({**DOCS_ORDER_ITEM, **bad})

    def test_an_item_without_order_id_is_readable(self):
        # Decision 10: only what the code needs is required (the order id is not, to read an item)
        body = {key: value for key, value in DOCS_ORDER_ITEM.items() if key != "orderId"}
        item = OrderItem.model_validate(body)
        assert item.order_id is None
        assert item.unreadable_fields == ()

    def test_numeric_zip_code_and_ids_are_read_as_text(self):
        item = OrderItem.model_validate(
            {**DOCS_ORDER_ITEM, "id": 42, "orderId": 7, "serviceAddress": {"zipCode": 62701, "country": "US"}}
        )
        assert item.id == "42"
        assert item.order_id == "7"
        assert item.service_address is not None
        assert item.service_address.zip_code == "62701"
        assert item.unreadable_fields == ()

    def test_unreadable_optional_fields_are_left_out_and_named(self):
        item = OrderItem.model_validate(
            {
                **DOCS_ORDER_ITEM,
                "metadata": ["unitNumber", "4B"],
                "createdAt": "last tuesday",
                "customerInfo": "Jane Doe",
                "serviceAddress": {"city": ["Springfield"], "zipCode": "62701"},
            }
        )
        assert item.metadata is None
        assert item.created_at is None
        assert item.customer_info is None
        assert item.unreadable_fields == ("createdAt", "customerInfo", "metadata")
        assert item.service_address is not None
        assert item.service_address.city is None
        assert item.service_address.zip_code == "62701"
        assert item.service_address.unreadable_fields == ("city",)
        # what could be read is intact
        assert item.order_id == "ord-123-abc"
        assert item.status is OrderItemStatus.PENDING

    def test_offer_needs_only_an_id(self):
        offer = Offer.model_validate({"id": 9, "metadata": [1], "monthlyPrice": "n/a", "sku": "S"})
        assert offer.id == "9"
        assert offer.sku == "S"
        assert offer.metadata is None
        assert offer.monthly_price is None
        assert offer.unreadable_fields == ("metadata", "monthlyPrice")
        with pytest.raises(ValidationError):
            Offer.model_validate({"sku": "S"})

    def test_requests_stay_strict(self):
        with pytest.raises(ValidationError):
            OfferCreate.model_validate({"name": "x", "category": "other", "sku": "s", "metadata": [1]})

    def test_minimal_item_and_partial_customer_are_accepted(self):
        item = OrderItem.model_validate(
            {"id": "i", "orderId": "o", "status": "accepted", "customerInfo": {"email": "a@b.c"}}
        )
        assert item.offer_id is None
        assert item.customer_info is not None
        assert item.customer_info.full_name is None

    def test_unknown_status_is_kept_as_a_string(self):
        item = OrderItem.model_validate({"id": "i", "orderId": "o", "status": "on_hold"})
        assert item.status == "on_hold"


class TestStatusUpdate:
    def test_scheduled_requires_scheduled_for(self):
        with pytest.raises(ValidationError, match="scheduledFor is required"):
            StatusUpdate(status=OrderItemStatus.SCHEDULED)

    def test_scheduled_for_is_sent_as_utc_with_z(self):
        local = datetime(2025, 1, 15, 12, 0, tzinfo=timezone(timedelta(hours=2)))
        update = StatusUpdate(status=OrderItemStatus.SCHEDULED, scheduled_for=local, provider_notes="AM slot")

        assert update.to_wire() == {
            "status": "scheduled",
            "scheduledFor": "2025-01-15T10:00:00Z",
            "providerNotes": "AM slot",
        }

    def test_naive_scheduled_for_is_taken_as_utc(self):
        update = StatusUpdate(status=OrderItemStatus.SCHEDULED, scheduled_for=datetime(2025, 1, 15, 10, 30))
        assert update.to_wire()["scheduledFor"] == "2025-01-15T10:30:00Z"

    def test_iso_string_input_is_parsed(self):
        update = StatusUpdate.model_validate({"status": "scheduled", "scheduledFor": "2025-01-15T10:00:00Z"})
        assert update.scheduled_for == datetime(2025, 1, 15, 10, tzinfo=UTC)

    def test_other_statuses_need_no_date_and_send_only_what_is_set(self):
        update = StatusUpdate(status=OrderItemStatus.ACCEPTED, metadata={"workOrderId": "wo-1"})
        assert update.to_wire() == {"status": "accepted", "metadata": {"workOrderId": "wo-1"}}

    def test_request_status_is_strict(self):
        with pytest.raises(ValidationError):
            StatusUpdate.model_validate({"status": "on_hold"})


class TestErrorBody:
    def test_string_message(self):
        body = ErrorBody.model_validate(
            {"statusCode": 401, "message": "Unauthorized - invalid API key", "error": "Unauthorized"}
        )
        assert body.status_code == 401
        assert body.text() == "Unauthorized - invalid API key"

    def test_list_message_is_joined(self):
        body = ErrorBody.model_validate(
            {"statusCode": 400, "message": ["name must be a string", "sku should not be empty"]}
        )
        assert body.text() == "name must be a string; sku should not be empty"

    def test_missing_message(self):
        assert ErrorBody.model_validate({"statusCode": 500}).text() is None
