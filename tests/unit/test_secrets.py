"""Secret against moto: formats, TTL cache, throttled refresh, errors that never leak values."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from moto.server import ThreadedMotoServer

from offergrid_integration import aws
from offergrid_integration.config import ConfigurationError
from offergrid_integration.observability import REDACTED, redact
from offergrid_integration.secrets import (
    Secret,
    SecretFormatError,
    SecretUnavailableError,
    parse_api_key,
    parse_webhook_secrets,
)
from tests.fixtures.aws import REGION

API_KEY_ID = "offergrid/test/api-key"
WEBHOOK_ID = "offergrid/test/webhook-secret"
LEAKY = "leaky-secret-value-9f8e7d"  # must never show up in an error


class FakeClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


@pytest.fixture
def put_secret(aws: None) -> Callable[[str, str | bytes], None]:
    """Create the secret, or store a new version of it."""
    client = boto3.client("secretsmanager", region_name=REGION)
    created: set[str] = set()

    def put(secret_id: str, value: str | bytes) -> None:
        field = {"SecretBinary": value} if isinstance(value, bytes) else {"SecretString": value}
        if secret_id in created:
            client.put_secret_value(SecretId=secret_id, **field)
        else:
            client.create_secret(Name=secret_id, **field)
            created.add(secret_id)

    return put


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class Secrets:
    """The two secrets a stack reads: the API key and the webhook secrets."""

    api_key: Secret[str]
    webhook_secrets: Secret[list[str]]


@pytest.fixture
def store(aws: None, clock: FakeClock) -> Secrets:
    return Secrets(
        api_key=Secret(API_KEY_ID, parse_api_key, clock=clock),
        webhook_secrets=Secret(WEBHOOK_ID, parse_webhook_secrets, clock=clock),
    )


# ---------------------------------------------------------------------------------------------------
# API key formats
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "stored",
    [
        "test-api-key",
        "  test-api-key\n",
        '{"apiKey": "test-api-key"}',
        '{"api_key": "test-api-key", "note": "rotated 2026-11"}',
        ' {"apiKey": " test-api-key "} ',
    ],
)
def test_api_key_formats(stored: str):
    assert parse_api_key(stored, secret_id=API_KEY_ID) == "test-api-key"


def test_api_key_read_from_secrets_manager(store: Secrets, put_secret):
    put_secret(API_KEY_ID, '{"apiKey": "test-api-key"}')

    assert store.api_key() == "test-api-key"


def test_api_key_from_binary_secret(store: Secrets, put_secret):
    put_secret(API_KEY_ID, b'{"apiKey": "binary-api-key"}')

    assert store.api_key() == "binary-api-key"


def test_api_key_is_registered_for_redaction(store: Secrets, put_secret):
    put_secret(API_KEY_ID, '{"apiKey": "registered-api-key-123"}')

    key = store.api_key()

    assert redact(f"calling with {key} now") == f"calling with {REDACTED} now"


# ---------------------------------------------------------------------------------------------------
# Webhook secret formats
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("local-dev-webhook-secret", ["local-dev-webhook-secret"]),
        ('{"current": "whsec-new-0001"}', ["whsec-new-0001"]),
        ('{"current": "whsec-new-0001", "previous": "whsec-old-0001"}', ["whsec-new-0001", "whsec-old-0001"]),
        (
            '{"current": "whsec-new-0001", "previous": ["whsec-old-0001", "whsec-older-01"]}',
            ["whsec-new-0001", "whsec-old-0001", "whsec-older-01"],
        ),
        ('{"current": "whsec-new-0001", "previous": ""}', ["whsec-new-0001"]),
        ('{"current": "whsec-new-0001", "previous": null}', ["whsec-new-0001"]),
        ('{"current": "whsec-new-0001", "previous": ["whsec-new-0001", " "]}', ["whsec-new-0001"]),
        ('["whsec-new-0001", "whsec-old-0001"]', ["whsec-new-0001", "whsec-old-0001"]),
        ("  whsec-padded-01 \n", ["whsec-padded-01"]),
    ],
)
def test_webhook_secret_formats(stored: str, expected: list[str]):
    assert parse_webhook_secrets(stored, secret_id=WEBHOOK_ID) == expected


def test_webhook_secrets_read_from_secrets_manager(store: Secrets, put_secret):
    put_secret(WEBHOOK_ID, '{"current": "whsec-new-0001", "previous": ["whsec-old-0001"]}')

    assert store.webhook_secrets() == ["whsec-new-0001", "whsec-old-0001"]


def test_every_webhook_secret_is_registered(store: Secrets, put_secret):
    put_secret(WEBHOOK_ID, '{"current": "whsec-current-77", "previous": ["whsec-previous-77"]}')

    store.webhook_secrets()

    assert "whsec" not in redact("tried whsec-current-77 and whsec-previous-77")


def test_webhook_secret_alone_needs_no_api_key(put_secret):
    # Given the webhook ingress's one secret
    put_secret(WEBHOOK_ID, "local-dev-webhook-secret")

    assert Secret(WEBHOOK_ID, parse_webhook_secrets)() == ["local-dev-webhook-secret"]


def test_a_secret_needs_an_id():
    with pytest.raises(ConfigurationError, match="non-blank secret id"):
        Secret("  ", parse_api_key)


# ---------------------------------------------------------------------------------------------------
# Malformed secrets: a clear error naming the secret id, never the value
# ---------------------------------------------------------------------------------------------------
API_KEY_MALFORMED = [
    ("", "is empty"),
    ("   \n", "is empty"),
    ('{"apiKey": ""}', "apiKey"),
    ('{"apiKey": 12345678}', "apiKey"),
    (f'{{"key": "{LEAKY}"}}', "apiKey"),
    (f'{{"apiKey": "{LEAKY}"', "does not parse"),
]
WEBHOOK_MALFORMED = [
    ("", "is empty"),
    (" ", "is empty"),
    (f'{{"previous": "{LEAKY}"}}', "current"),
    (f'{{"current": "", "previous": "{LEAKY}"}}', "current"),
    (f'{{"current": "{LEAKY}", "previous": 5}}', "previous"),
    (f'{{"current": "{LEAKY}", "previous": {{"a": "b"}}}}', "previous"),
    (f'{{"current": "{LEAKY}", "previous": [1]}}', "previous"),
    (f'["{LEAKY}", 2]', "other than strings"),
    ("[]", "without a non-empty string"),
    ('["", "  "]', "without a non-empty string"),
    (f'{{"current": "{LEAKY}",', "does not parse"),
    (f'["{LEAKY}"', "does not parse"),
]


@pytest.mark.parametrize(("stored", "reason"), API_KEY_MALFORMED)
def test_malformed_api_key_secret(stored: str, reason: str):
    with pytest.raises(SecretFormatError) as caught:
        parse_api_key(stored, secret_id=API_KEY_ID)

    _assert_names_secret_without_value(caught.value, API_KEY_ID, reason)


@pytest.mark.parametrize(("stored", "reason"), WEBHOOK_MALFORMED)
def test_malformed_webhook_secret(stored: str, reason: str):
    with pytest.raises(SecretFormatError) as caught:
        parse_webhook_secrets(stored, secret_id=WEBHOOK_ID)

    _assert_names_secret_without_value(caught.value, WEBHOOK_ID, reason)


@pytest.mark.parametrize(
    ("secret_id", "stored", "read"),
    [
        (API_KEY_ID, f'{{"key": "{LEAKY}"}}', lambda store: store.api_key()),
        (WEBHOOK_ID, f'{{"current": "", "previous": "{LEAKY}"}}', lambda store: store.webhook_secrets()),
        (WEBHOOK_ID, "   ", lambda store: store.webhook_secrets()),
    ],
)
def test_malformed_secret_read_from_secrets_manager(store: Secrets, put_secret, secret_id, stored, read):
    put_secret(secret_id, stored)

    with pytest.raises(SecretFormatError) as caught:
        read(store)

    _assert_names_secret_without_value(caught.value, secret_id, "")


def test_binary_secret_that_is_not_text(store: Secrets, put_secret):
    put_secret(API_KEY_ID, b"\xff\xfe\x00binary")

    with pytest.raises(SecretFormatError, match="not UTF-8"):
        store.api_key()


def test_parsers_are_usable_without_aws():
    assert parse_api_key('{"apiKey": "k-123456"}', secret_id="x") == "k-123456"
    assert parse_webhook_secrets('["a", "b", "a"]', secret_id="x") == ["a", "b"]
    with pytest.raises(SecretFormatError, match="'x'"):
        parse_webhook_secrets("{}", secret_id="x")


def test_format_error_is_a_configuration_error():
    error = SecretFormatError(API_KEY_ID, "is empty")

    assert isinstance(error, ConfigurationError)
    assert error.problems == {API_KEY_ID: "is empty"}


def _assert_names_secret_without_value(error: Exception, secret_id: str, reason: str) -> None:
    assert secret_id in str(error)
    assert reason in str(error)
    assert LEAKY not in str(error)
    assert LEAKY not in repr(error)
    # No chained exception (a JSONDecodeError keeps the whole document) can print it either.
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None


# ---------------------------------------------------------------------------------------------------
# Cache and refresh
# ---------------------------------------------------------------------------------------------------
def test_cached_value_served_until_force_refresh(store: Secrets, put_secret):
    # Given a key read once
    put_secret(API_KEY_ID, "api-key-version-1")
    assert store.api_key() == "api-key-version-1"

    # When the secret is rotated in Secrets Manager
    put_secret(API_KEY_ID, "api-key-version-2")

    # Then the cached value is served until a forced refresh
    assert store.api_key() == "api-key-version-1"
    assert store.api_key(force_refresh=True) == "api-key-version-2"
    assert store.api_key() == "api-key-version-2"


def test_cached_value_expires_after_max_age(put_secret, cache_clock):
    store = Secrets(
        api_key=Secret(API_KEY_ID, parse_api_key, max_age_seconds=60),
        webhook_secrets=Secret(WEBHOOK_ID, parse_webhook_secrets, max_age_seconds=60),
    )
    put_secret(API_KEY_ID, "api-key-version-1")
    assert store.api_key() == "api-key-version-1"
    put_secret(API_KEY_ID, "api-key-version-2")

    # Just inside max_age: still the cached value
    cache_clock(50)
    assert store.api_key() == "api-key-version-1"

    # Past max_age: read again
    cache_clock(20)
    assert store.api_key() == "api-key-version-2"


def test_max_age_zero_disables_the_cache(put_secret):
    store = Secrets(
        api_key=Secret(API_KEY_ID, parse_api_key, max_age_seconds=0),
        webhook_secrets=Secret(WEBHOOK_ID, parse_webhook_secrets, max_age_seconds=0),
    )
    put_secret(WEBHOOK_ID, "whsec-version-1")
    assert store.webhook_secrets() == ["whsec-version-1"]

    put_secret(WEBHOOK_ID, '{"current": "whsec-version-2", "previous": "whsec-version-1"}')

    assert store.webhook_secrets() == ["whsec-version-2", "whsec-version-1"]


def test_forced_refresh_is_throttled_per_secret(store: Secrets, put_secret, clock: FakeClock):
    put_secret(API_KEY_ID, "api-key-version-1")
    put_secret(WEBHOOK_ID, "whsec-version-1")
    assert store.api_key() == "api-key-version-1"
    assert store.webhook_secrets() == ["whsec-version-1"]

    # Given one forced refresh just happened
    put_secret(API_KEY_ID, "api-key-version-2")
    assert store.api_key(force_refresh=True) == "api-key-version-2"

    # When another is asked for within the interval (a 401 storm)
    put_secret(API_KEY_ID, "api-key-version-3")
    clock.sleep(29)
    # Then Secrets Manager is not asked again: the cached value is served
    assert store.api_key(force_refresh=True) == "api-key-version-2"

    # And the throttle is per secret: the webhook secret can still be refreshed
    put_secret(WEBHOOK_ID, "whsec-version-2")
    assert store.webhook_secrets(force_refresh=True) == ["whsec-version-2"]

    # Once the interval has passed, a forced refresh goes through again
    clock.sleep(2)
    assert store.api_key(force_refresh=True) == "api-key-version-3"


def test_refresh_storm_reaches_secrets_manager_once(store: Secrets, put_secret, monkeypatch):
    put_secret(API_KEY_ID, "api-key-version-1")
    calls: list[str] = []
    original = SecretsProvider._get

    def counting_get(self, name, **sdk_options):
        calls.append(name)
        return original(self, name, **sdk_options)

    monkeypatch.setattr(SecretsProvider, "_get", counting_get)
    store.api_key()

    # When 50 requests in a row get a 401 and each asks for a fresh key
    for _ in range(50):
        store.api_key(force_refresh=True)

    # Then Secrets Manager saw the first read and one forced refresh only
    assert calls == [API_KEY_ID, API_KEY_ID]


# ---------------------------------------------------------------------------------------------------
# Secrets Manager errors
# ---------------------------------------------------------------------------------------------------
def test_missing_secret_names_the_id_and_chains_the_cause(store: Secrets, put_secret):
    put_secret(API_KEY_ID, LEAKY)
    assert store.api_key() == LEAKY

    with pytest.raises(SecretUnavailableError) as caught:
        store.webhook_secrets()

    error = caught.value
    assert error.secret_id == WEBHOOK_ID
    assert WEBHOOK_ID in str(error)
    assert "ResourceNotFoundException" in str(error)
    assert isinstance(error.__cause__, GetParameterError)
    assert LEAKY not in str(error)
    assert LEAKY not in repr(error)


@pytest.mark.parametrize(
    ("delete", "code"),
    [
        ({"ForceDeleteWithoutRecovery": True}, "ResourceNotFoundException"),  # gone
        ({"RecoveryWindowInDays": 7}, "InvalidRequestException"),  # scheduled for deletion
    ],
)
def test_an_unavailable_secret_names_its_id_and_the_aws_error_code(
    store: Secrets, put_secret, delete: dict[str, object], code: str
):
    """On-call reads one log line: which secret, and why Secrets Manager refused it (issue 22)."""
    # Given the API key secret deleted (for good, or scheduled for deletion)
    put_secret(API_KEY_ID, LEAKY)
    boto3.client("secretsmanager", region_name=REGION).delete_secret(SecretId=API_KEY_ID, **delete)

    # When the key is read
    with pytest.raises(SecretUnavailableError) as caught:
        store.api_key(force_refresh=True)

    # Then the error and its log fields name the secret and the AWS error code, never the value
    error = caught.value
    assert error.log_fields() == {"secretId": API_KEY_ID, "awsErrorCode": code}
    assert API_KEY_ID in str(error)
    assert code in str(error)
    assert LEAKY not in str(error)
    assert LEAKY not in repr(error.log_fields())


def test_without_credentials_the_error_names_the_botocore_error(monkeypatch: pytest.MonkeyPatch):
    # Given no credentials at all (a shell without the exports)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.session.Session().client("secretsmanager", region_name=REGION)

    with pytest.raises(SecretUnavailableError) as caught:
        Secret(API_KEY_ID, parse_api_key, client=client)()

    assert caught.value.log_fields() == {"secretId": API_KEY_ID, "awsErrorCode": "NoCredentialsError"}


def test_repr_shows_ids_not_values(store: Secrets, put_secret):
    put_secret(API_KEY_ID, LEAKY)
    store.api_key()

    assert API_KEY_ID in repr(store.api_key)
    assert LEAKY not in repr(store.api_key)


# ---------------------------------------------------------------------------------------------------
# Local stack: an explicit endpoint (moto server on 127.0.0.1)
# ---------------------------------------------------------------------------------------------------
@pytest.fixture
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_aws_endpoint_url_points_the_secret_at_that_endpoint(
    moto_server: str, monkeypatch: pytest.MonkeyPatch
):
    # Given a secret that exists only on the moto server (no in-process mock here)
    boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_server).create_secret(
        Name=API_KEY_ID, SecretString='{"apiKey": "server-api-key"}'
    )
    # And the environment the local stack gives its functions
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    aws.reset()

    # Then the secret is read there, through the container's client
    assert Secret(API_KEY_ID, parse_api_key)() == "server-api-key"
    with pytest.raises(SecretUnavailableError, match="offergrid/test/missing"):
        Secret("offergrid/test/missing", parse_api_key)()
