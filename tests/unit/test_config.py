"""Settings validated at cold start: every bad value names its variable, never echoes a value."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from offergrid_integration.config import CommonSettings, ConfigurationError, env_var_names, load_settings
from offergrid_integration.webhooks.ingress import WebhookIngressSettings
from offergrid_integration.webhooks.results import DEFAULT_TOLERANCE_SECONDS, StaleMode

QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/offergrid-orders"
COMMON_ENV = {"OFFERGRID_API_KEY_SECRET": "offergrid/api-key"}
WEBHOOK_ENV = {"OFFERGRID_WEBHOOK_SECRET": "offergrid/webhook-secret", "ORDERS_QUEUE_URL": QUEUE_URL}


def _load(model: Any, environ: dict[str, str]) -> Any:
    """The webhook's settings load without pydantic (webhooks/ingress.py), the others with config.py."""
    if model is WebhookIngressSettings:
        return WebhookIngressSettings.from_environ(environ)
    return load_settings(model, environ)


def _names(model: Any) -> list[str]:
    return WebhookIngressSettings.env_var_names() if model is WebhookIngressSettings else env_var_names(model)


def _problems(model: type[BaseModel], environ: dict[str, str]) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        _load(model, environ)
    return caught.value


# ---------------------------------------------------------------------------------------------------
# Defaults and valid values
# ---------------------------------------------------------------------------------------------------
def test_common_settings_defaults():
    settings = load_settings(CommonSettings, COMMON_ENV)

    assert settings.offergrid_api_url == "https://api.offergrid.io"
    assert settings.offergrid_api_key_secret == "offergrid/api-key"
    assert settings.rate_limit_table is None
    assert settings.offergrid_timeout_seconds == 10.0
    assert settings.secrets_cache_seconds == 300
    assert settings.aws_endpoint_url is None


def test_webhook_settings_defaults_and_no_api_key_needed():
    settings = WebhookIngressSettings.from_environ(WEBHOOK_ENV)

    assert settings.offergrid_webhook_secret == "offergrid/webhook-secret"
    assert settings.orders_queue_url == QUEUE_URL
    assert settings.webhook_max_body_bytes == 6 * 1024 * 1024  # Lambda's request limit (decisions #2)
    assert settings.claim_check_bucket is None
    assert settings.secrets_cache_seconds == 300
    assert settings.aws_endpoint_url is None


def test_common_settings_read_every_variable():
    settings = load_settings(
        CommonSettings,
        {
            "OFFERGRID_API_URL": "https://sandbox.offergrid.io/",
            "OFFERGRID_API_KEY_SECRET": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:og-AbCdEf",
            "RATE_LIMIT_TABLE": "offergrid-rate-budget",
            "OFFERGRID_TIMEOUT_SECONDS": "2.5",
            "SECRETS_CACHE_SECONDS": "0",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
            "UNRELATED": "ignored",
        },
    )

    assert settings.offergrid_api_url == "https://sandbox.offergrid.io"  # trailing slash dropped
    assert settings.offergrid_api_key_secret.endswith(":secret:og-AbCdEf")
    assert settings.rate_limit_table == "offergrid-rate-budget"
    assert settings.offergrid_timeout_seconds == 2.5
    assert settings.secrets_cache_seconds == 0
    assert settings.aws_endpoint_url == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8900",
        "http://localhost:8900/",
        "http://host.docker.internal:8900",
        "https://localhost",
        "https://api.offergrid.io",
    ],
)
def test_api_url_accepts_https_and_local_http(url: str):
    settings = load_settings(CommonSettings, {**COMMON_ENV, "OFFERGRID_API_URL": url})

    assert settings.offergrid_api_url == url.rstrip("/")


@pytest.mark.parametrize(
    "queue_url",
    [
        QUEUE_URL,
        "https://sqs.us-east-1.amazonaws.com/123456789012/orders.fifo",
        "https://eu-west-1.queue.amazonaws.com/123456789012/orders",
        "http://127.0.0.1:5000/123456789012/orders",
        "http://localhost:4566/000000000000/orders",
        "http://host.docker.internal:5000/123456789012/orders",
    ],
)
def test_queue_url_accepts_sqs_and_local_urls(queue_url: str):
    settings = WebhookIngressSettings.from_environ({**WEBHOOK_ENV, "ORDERS_QUEUE_URL": queue_url})

    assert settings.orders_queue_url == queue_url


def test_empty_and_blank_strings_are_unset():
    # Given variables present but empty (SAM renders an unset optional parameter as "")
    environ = {
        **COMMON_ENV,
        "OFFERGRID_API_URL": "",
        "RATE_LIMIT_TABLE": "  ",
        "OFFERGRID_TIMEOUT_SECONDS": "",
        "AWS_ENDPOINT_URL": "",
    }

    settings = load_settings(CommonSettings, environ)

    # Then the defaults apply
    assert settings.offergrid_api_url == "https://api.offergrid.io"
    assert settings.rate_limit_table is None
    assert settings.offergrid_timeout_seconds == 10.0
    assert settings.aws_endpoint_url is None


def test_empty_required_variable_is_missing():
    error = _problems(CommonSettings, {"OFFERGRID_API_KEY_SECRET": ""})

    assert error.problems == {"OFFERGRID_API_KEY_SECRET": "required but not set"}
    assert "OFFERGRID_API_KEY_SECRET" in str(error)


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OFFERGRID_API_KEY_SECRET", "from-os-environ")
    monkeypatch.setenv("OFFERGRID_TIMEOUT_SECONDS", "3")

    settings = load_settings(CommonSettings)

    assert settings.offergrid_api_key_secret == "from-os-environ"
    assert settings.offergrid_timeout_seconds == 3.0


def test_settings_are_frozen():
    settings = load_settings(CommonSettings, COMMON_ENV)

    with pytest.raises(ValueError, match="frozen"):
        settings.offergrid_timeout_seconds = 1.0  # type: ignore[misc]


def test_env_var_names_are_the_aliases():
    assert WebhookIngressSettings.env_var_names() == [
        "SECRETS_CACHE_SECONDS",
        "AWS_ENDPOINT_URL",
        "OFFERGRID_WEBHOOK_SECRET",
        "ORDERS_QUEUE_URL",
        "WEBHOOK_MAX_BODY_BYTES",
        "CLAIM_CHECK_BUCKET",
        "DELIVERY_ARCHIVE_BUCKET",
        "STALE_DELIVERY_MODE",
        "STALE_DELIVERY_TOLERANCE_SECONDS",
    ]


# ---------------------------------------------------------------------------------------------------
# Every bad value of every variable names that variable
# ---------------------------------------------------------------------------------------------------
COMMON_BAD_VALUES = [
    ("OFFERGRID_API_URL", "http://api.offergrid.io"),  # plain http off localhost
    ("OFFERGRID_API_URL", "ftp://api.offergrid.io"),
    ("OFFERGRID_API_URL", "api.offergrid.io"),  # no scheme
    ("OFFERGRID_API_URL", "https://"),  # no host
    ("OFFERGRID_API_URL", "https://api.offergrid.io/v1?debug=1"),
    ("OFFERGRID_API_URL", "https://api offergrid.io"),
    ("OFFERGRID_API_URL", "https://api.offergrid.io:99999"),
    ("OFFERGRID_API_URL", "https://user:pass@api.offergrid.io"),  # credentials in the URL
    ("OFFERGRID_TIMEOUT_SECONDS", "0"),
    ("OFFERGRID_TIMEOUT_SECONDS", "-1"),
    ("OFFERGRID_TIMEOUT_SECONDS", "30.5"),
    ("OFFERGRID_TIMEOUT_SECONDS", "ten"),
    ("OFFERGRID_TIMEOUT_SECONDS", "nan"),
    ("OFFERGRID_TIMEOUT_SECONDS", "inf"),
    ("SECRETS_CACHE_SECONDS", "-1"),
    ("SECRETS_CACHE_SECONDS", "3601"),
    ("SECRETS_CACHE_SECONDS", "1.5"),
    ("SECRETS_CACHE_SECONDS", "five"),
    ("AWS_ENDPOINT_URL", "localhost:5000"),
    ("AWS_ENDPOINT_URL", "file:///tmp/x"),
]

WEBHOOK_BAD_VALUES = [
    ("ORDERS_QUEUE_URL", "offergrid-orders"),  # a name, not a URL
    ("ORDERS_QUEUE_URL", "arn:aws:sqs:eu-west-1:123456789012:offergrid-orders"),
    ("ORDERS_QUEUE_URL", "http://sqs.eu-west-1.amazonaws.com/123456789012/orders"),  # http
    ("ORDERS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/12345/orders"),  # bad account
    ("ORDERS_QUEUE_URL", "https://sqs.eu-west-1.evil.com/123456789012/orders"),
    ("ORDERS_QUEUE_URL", "https://example.com/123456789012/orders"),
    ("ORDERS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/"),
    ("WEBHOOK_MAX_BODY_BYTES", "0"),
    ("WEBHOOK_MAX_BODY_BYTES", "6291457"),
    ("WEBHOOK_MAX_BODY_BYTES", "256KiB"),
    ("SECRETS_CACHE_SECONDS", "7200"),
    ("AWS_ENDPOINT_URL", "not a url"),
    ("STALE_DELIVERY_MODE", "log"),  # docs/decisions.md#20: count or refuse, nothing else
    ("STALE_DELIVERY_MODE", "count,refuse"),
    ("STALE_DELIVERY_TOLERANCE_SECONDS", "0"),
    ("STALE_DELIVERY_TOLERANCE_SECONDS", "86401"),
    ("STALE_DELIVERY_TOLERANCE_SECONDS", "1h"),
]


@pytest.mark.parametrize(
    ("mode", "tolerance", "expected"),
    [
        ("refuse", "600", (StaleMode.REFUSE, 600)),
        ("count", "86400", (StaleMode.COUNT, 86_400)),
        ("", "", (StaleMode.COUNT, DEFAULT_TOLERANCE_SECONDS)),  # blank is unset: the defaults
    ],
)
def test_the_webhook_reads_its_stale_delivery_settings(mode: str, tolerance: str, expected: tuple[Any, int]):
    environ = {**WEBHOOK_ENV, "STALE_DELIVERY_MODE": mode, "STALE_DELIVERY_TOLERANCE_SECONDS": tolerance}
    settings = WebhookIngressSettings.from_environ(environ)

    assert (settings.stale_delivery_mode, settings.stale_delivery_tolerance_seconds) == expected


@pytest.mark.parametrize(("name", "value"), COMMON_BAD_VALUES)
def test_common_bad_value_names_the_variable(name: str, value: str):
    error = _problems(CommonSettings, {**COMMON_ENV, name: value})

    assert list(error.problems) == [name]
    assert name in str(error)
    assert error.problems[name]  # says why


@pytest.mark.parametrize(("name", "value"), WEBHOOK_BAD_VALUES)
def test_webhook_bad_value_names_the_variable(name: str, value: str):
    error = _problems(WebhookIngressSettings, {**WEBHOOK_ENV, name: value})

    assert list(error.problems) == [name]
    assert name in str(error)


@pytest.mark.parametrize(
    ("model", "required"),
    [
        (CommonSettings, ["OFFERGRID_API_KEY_SECRET"]),
        (WebhookIngressSettings, ["OFFERGRID_WEBHOOK_SECRET", "ORDERS_QUEUE_URL"]),
    ],
)
def test_missing_required_variables_are_all_named(model: type[BaseModel], required: list[str]):
    error = _problems(model, {})

    assert sorted(error.problems) == sorted(required)
    assert all(reason == "required but not set" for reason in error.problems.values())
    for name in required:
        assert name in str(error)


def test_several_problems_are_reported_together():
    error = _problems(
        CommonSettings,
        {"OFFERGRID_API_URL": "http://example.com", "OFFERGRID_TIMEOUT_SECONDS": "99"},
    )

    assert set(error.problems) == {
        "OFFERGRID_API_URL",
        "OFFERGRID_TIMEOUT_SECONDS",
        "OFFERGRID_API_KEY_SECRET",
    }
    assert "https" in error.problems["OFFERGRID_API_URL"]


def test_https_rule_explains_itself():
    error = _problems(CommonSettings, {**COMMON_ENV, "OFFERGRID_API_URL": "http://10.0.0.5:8900"})

    assert "must use https" in error.problems["OFFERGRID_API_URL"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OFFERGRID_API_URL", "http://user:hunter2-password@api.example.com"),
        ("ORDERS_QUEUE_URL", "https://hunter2-password.example.com/q"),
        ("WEBHOOK_MAX_BODY_BYTES", "hunter2-password"),
    ],
)
def test_errors_never_echo_values(name: str, value: str):
    # Given a bad value that happens to contain something secret
    environ = {**COMMON_ENV, **WEBHOOK_ENV, name: value}
    model = CommonSettings if name == "OFFERGRID_API_URL" else WebhookIngressSettings

    with pytest.raises(ConfigurationError) as caught:
        _load(model, {k: v for k, v in environ.items() if k in _names(model)})

    # Then neither the message, the repr nor a chained exception carries it
    error = caught.value
    assert "hunter2" not in str(error)
    assert "hunter2" not in repr(error)
    assert "hunter2" not in repr(error.problems)
    assert error.__cause__ is None
    assert error.__suppress_context__


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://user:pw-0123@api.offergrid.io", "credentials"),
        ("http://api.offergrid.io", "must use https"),
        ("https://api.offergrid.io/?key=pw-0123", "query"),
    ],
)
def test_the_client_checks_its_base_url_as_the_settings_do(url: str, problem: str) -> None:
    from offergrid_integration.offergrid.client import OffergridClient

    def key(*, force_refresh: bool = False) -> str:
        return "k"

    assert (
        OffergridClient(base_url="https://api.offergrid.io/", api_key=key).base_url
        == "https://api.offergrid.io"
    )
    with pytest.raises(ValueError, match=problem) as caught:
        OffergridClient(base_url=url, api_key=key)
    assert "pw-0123" not in str(caught.value)
    assert (
        problem
        in _problems(CommonSettings, COMMON_ENV | {"OFFERGRID_API_URL": url}).problems["OFFERGRID_API_URL"]
    )


# ---------------------------------------------------------------------------------------------------
# Orders first in the shared budget (ratelimit.py lanes; template OrderReservePercent)
# ---------------------------------------------------------------------------------------------------
def test_the_order_reserve_defaults_to_40_percent_and_is_read():
    assert load_settings(CommonSettings, COMMON_ENV).order_reserve_percent == 40
    read = load_settings(CommonSettings, {**COMMON_ENV, "ORDER_RESERVE_PERCENT": "25"})
    assert read.order_reserve_percent == 25


@pytest.mark.parametrize("value", ["-1", "91", "40.5", "forty"])
def test_a_bad_order_reserve_names_the_variable(value: str):
    with pytest.raises(ConfigurationError, match="ORDER_RESERVE_PERCENT"):
        load_settings(CommonSettings, {**COMMON_ENV, "ORDER_RESERVE_PERCENT": value})
