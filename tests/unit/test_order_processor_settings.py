"""The order processor's environment: a missing or bad variable fails at cold start, named."""

from __future__ import annotations

import pytest

from offergrid_integration.config import ConfigurationError, load_settings
from offergrid_integration.orders.processor import ProcessorSettings

VALID = {
    "OFFERGRID_API_KEY_SECRET": "offergrid/dev/api-key",
    "ORDERS_TABLE": "orders",
    "WORK_ORDERS_TABLE": "work-orders",
    "IDEMPOTENCY_TABLE": "idempotency",
    "EVENT_BUS_NAME": "provider-bus",
    "SERVICEABILITY_RULES_PARAMETER": "/offergrid/dev/coverage-rules",
}


def test_a_valid_environment_loads_with_defaults() -> None:
    settings = load_settings(ProcessorSettings, VALID)
    assert settings.orders_table == "orders"
    assert settings.customer_contact_hours == 24
    assert settings.idempotency_expiry_seconds == 86_400
    assert settings.serviceability_rules_s3_uri is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ORDERS_TABLE", ""),
        ("WORK_ORDERS_TABLE", None),
        ("IDEMPOTENCY_TABLE", "   "),
        ("EVENT_BUS_NAME", None),
        ("OFFERGRID_API_KEY_SECRET", None),
        ("SERVICEABILITY_RULES_S3_URI", "https://bucket/key"),
        ("SERVICEABILITY_HOOK_URL", "http://provider.example/hook"),
        ("CUSTOMER_CONTACT_HOURS", "0"),
        ("IDEMPOTENCY_EXPIRY_SECONDS", "10"),
        ("SERVICEABILITY_CACHE_SECONDS", "-1"),
    ],
)
def test_a_bad_variable_is_named(name: str, value: str | None) -> None:
    environ = dict(VALID)
    if value is None:
        del environ[name]
    else:
        environ[name] = value
    with pytest.raises(ConfigurationError) as caught:
        load_settings(ProcessorSettings, environ)
    assert name in caught.value.problems


def test_some_serviceability_source_is_required() -> None:
    environ = {key: value for key, value in VALID.items() if key != "SERVICEABILITY_RULES_PARAMETER"}
    with pytest.raises(ConfigurationError, match="SERVICEABILITY_RULES_PARAMETER"):
        load_settings(ProcessorSettings, environ)
    with_hook = {**environ, "SERVICEABILITY_HOOK_URL": "https://provider.example/serviceability"}
    assert (
        load_settings(ProcessorSettings, with_hook).serviceability_hook_url
        == "https://provider.example/serviceability"
    )
