"""SyncSettings: the offer sync environment, each bad variable named (never its value)."""

from __future__ import annotations

import pytest

from offergrid_integration.catalog.plan import MissingOfferPolicy
from offergrid_integration.catalog.settings import SyncSettings
from offergrid_integration.catalog.sources import CatalogFormat
from offergrid_integration.config import ConfigurationError, load_settings

GOOD = {
    "OFFERGRID_API_KEY_SECRET": "offergrid/dev/api-key",
    "CATALOG_SOURCE_URI": "s3://provider-catalog/exports/catalog.csv",
    "SYNC_STATE_TABLE": "offer-sync-state",
    "ORDERS_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",
}


def test_defaults() -> None:
    settings = load_settings(SyncSettings, GOOD)

    assert settings.catalog_format is CatalogFormat.AUTO
    assert settings.missing_offer_policy is MissingOfferPolicy.INACTIVE
    assert settings.catalog_mapping is None
    assert settings.orders_table is None
    assert settings.sync_max_writes_per_run is None
    assert settings.sync_min_time_left_seconds == 30.0
    # The removal guard of docs/decisions.md#13: max(5, 10 % of the live offers) per run.
    assert (settings.removal_guard.percent, settings.removal_guard.minimum) == (10.0, 5)


def test_all_options() -> None:
    settings = load_settings(
        SyncSettings,
        GOOD
        | {
            "CATALOG_SOURCE_URI": "https://crm.example.com/api/products",
            "CATALOG_FORMAT": "jsonl",
            "CATALOG_MAPPING": "s3://provider-catalog/mapping.json",
            "CATALOG_API_KEY_SECRET": "crm/api-key",
            "MISSING_OFFER_POLICY": "delete",
            "ORDERS_TABLE": "orders",
            "SYNC_MAX_WRITES_PER_RUN": "500",
            "SWEEP_MIN_AGE_SECONDS": "0",
        },
    )

    assert settings.catalog_format is CatalogFormat.JSONL
    assert settings.missing_offer_policy is MissingOfferPolicy.DELETE
    assert settings.sync_max_writes_per_run == 500
    assert settings.sweep_min_age_seconds == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CATALOG_SOURCE_URI", "ftp://example.com/catalog.csv"),
        ("CATALOG_SOURCE_URI", "http://crm.example.com/catalog.csv"),
        ("CATALOG_SOURCE_URI", "s3://bucket-only"),
        ("CATALOG_MAPPING", "https://example.com/mapping.json"),
        ("CATALOG_FORMAT", "xml"),
        ("MISSING_OFFER_POLICY", "purge"),
        ("ORDERS_QUEUE_URL", "orders"),
        ("SYNC_MAX_WRITES_PER_RUN", "0"),
        ("SYNC_MIN_TIME_LEFT_SECONDS", "1"),
    ],
)
def test_a_bad_value_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(SyncSettings, GOOD | {name: value})

    assert set(raised.value.problems) == {name}
    assert value not in str(raised.value)


@pytest.mark.parametrize("name", ["CATALOG_SOURCE_URI", "SYNC_STATE_TABLE", "ORDERS_QUEUE_URL"])
def test_required_variables(name: str) -> None:
    environ = {key: value for key, value in GOOD.items() if key != name}
    with pytest.raises(ConfigurationError, match=f"{name}: required but not set"):
        load_settings(SyncSettings, environ)


def test_the_removal_guard_threshold_is_configurable_and_checked() -> None:
    settings = load_settings(
        SyncSettings, GOOD | {"SYNC_REMOVAL_GUARD_PERCENT": "25", "SYNC_REMOVAL_GUARD_MINIMUM": "2"}
    )
    assert settings.removal_guard.allowance(100) == 25
    assert settings.removal_guard.allowance(3) == 2

    with pytest.raises(ConfigurationError) as raised:
        load_settings(SyncSettings, GOOD | {"SYNC_REMOVAL_GUARD_PERCENT": "150"})
    assert "SYNC_REMOVAL_GUARD_PERCENT" in str(raised.value)
