"""The Offergrid API key and webhook secrets, read from AWS Secrets Manager.

Secret formats
--------------
API key secret (`OFFERGRID_API_KEY_SECRET`), either form:

- the key itself as a plain string: `og_live_...`
- a JSON object: `{"apiKey": "og_live_..."}` (`"api_key"` is accepted too)

Webhook secret (`OFFERGRID_WEBHOOK_SECRET`), any of these forms:

- the secret itself as a plain string: `whsec_...`
- a JSON object with the current secret and, during a rotation, the previous one(s):
  `{"current": "whsec_new", "previous": "whsec_old"}` or
  `{"current": "whsec_new", "previous": ["whsec_old", "whsec_older"]}`
- a JSON array, current first: `["whsec_new", "whsec_old"]`

Signatures made with any listed secret are accepted, so a rotation needs no downtime: put the new
secret in `current`, move the old one to `previous`, switch Offergrid to the new one, then remove
`previous`. Surrounding whitespace is ignored; a blank value, or JSON without the required field,
is a `SecretFormatError` naming the secret id (never its value).

Reading
-------
Values are read through Powertools `parameters.get_secret` with a TTL cache (`max_age_seconds`,
`SECRETS_CACHE_SECONDS`). `force_refresh=True` (the API client sends it after a 401) bypasses the
cache, but at most once per `refresh_interval_seconds` per secret, so a storm of 401s cannot hammer
Secrets Manager. Create one `SecretStore` per cold start. Every value read is registered with
`observability.register_secret()`, so the log formatter redacts it. With `endpoint_url` (the local
stack's moto server) a Secrets Manager client for that endpoint is created on first use.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.config import ConfigurationError
from offergrid_integration.observability import logger, register_secret

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

__all__ = [
    "DEFAULT_MAX_AGE_SECONDS",
    "MIN_REFRESH_INTERVAL_SECONDS",
    "SecretFormatError",
    "SecretStore",
    "SecretUnavailableError",
    "parse_api_key",
    "parse_webhook_secrets",
]

DEFAULT_MAX_AGE_SECONDS = 300
# A forced refresh (after a 401) reaches Secrets Manager at most once per this many seconds per secret.
MIN_REFRESH_INTERVAL_SECONDS = 30.0


class SecretFormatError(ConfigurationError):
    """A secret's content is not one of the documented formats. Names the secret, never the value."""

    def __init__(self, secret_id: str, problem: str) -> None:
        super().__init__(f"secret {secret_id!r} {problem}", problems={secret_id: problem})
        self.secret_id = secret_id


class SecretUnavailableError(Exception):
    """Secrets Manager could not return the secret (not found, access denied, unreachable)."""

    def __init__(self, secret_id: str, reason: str) -> None:
        super().__init__(f"secret {secret_id!r} is unavailable: {reason}")
        self.secret_id = secret_id


# ---------------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------------
def _load_json(text: str, secret_id: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        # `from None`: a JSONDecodeError carries the whole document (the secret) in `.doc`.
        raise SecretFormatError(secret_id, "looks like JSON but does not parse") from None


def _non_blank(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_api_key(raw: str, *, secret_id: str) -> str:
    """The API key in `raw`: a plain string or `{"apiKey": "..."}` / `{"api_key": "..."}`."""
    text = raw.strip()
    if not text:
        raise SecretFormatError(secret_id, "is empty")
    if not text.startswith("{"):
        return text
    document = _load_json(text, secret_id)
    key = _non_blank(document.get("apiKey")) or _non_blank(document.get("api_key"))
    if key is None:
        raise SecretFormatError(secret_id, 'is a JSON object without a non-empty "apiKey" string')
    return key


def parse_webhook_secrets(raw: str, *, secret_id: str) -> list[str]:
    """The webhook secrets in `raw`, current first, without blanks or duplicates."""
    text = raw.strip()
    if not text:
        raise SecretFormatError(secret_id, "is empty")
    if not text.startswith(("{", "[")):
        return [text]
    document = _load_json(text, secret_id)
    if isinstance(document, dict):
        current = _non_blank(document.get("current"))
        if current is None:
            raise SecretFormatError(secret_id, 'is a JSON object without a non-empty "current" string')
        previous = document.get("previous") or []
        if isinstance(previous, str):
            previous = [previous]
        if not isinstance(previous, list) or not all(isinstance(item, str) for item in previous):
            raise SecretFormatError(secret_id, 'has a "previous" that is not a string or a list of strings')
        candidates = [current, *previous]
    else:
        candidates = document
        if not all(isinstance(item, str) for item in candidates):
            raise SecretFormatError(secret_id, "is a JSON array that holds something other than strings")
    secrets = list(dict.fromkeys(value for item in candidates if (value := _non_blank(item))))
    if not secrets:
        raise SecretFormatError(secret_id, "is a JSON array without a non-empty string")
    return secrets


# ---------------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------------
class SecretStore:
    """The API key and webhook secrets, cached for `max_age_seconds`."""

    def __init__(
        self,
        *,
        api_key_secret_id: str | None,
        webhook_secret_id: str | None,
        max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS,
        refresh_interval_seconds: float = MIN_REFRESH_INTERVAL_SECONDS,
        endpoint_url: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        client: SecretsManagerClient | None = None,
    ) -> None:
        """`client`: the Secrets Manager client to read with (a function shares its clients);
        default: Powertools' own, or one for `endpoint_url` (the local stack)."""
        self._api_key_secret_id = api_key_secret_id
        self._client = client
        self._webhook_secret_id = webhook_secret_id
        self._max_age = max_age_seconds
        self._refresh_interval = refresh_interval_seconds
        self._endpoint_url = endpoint_url
        self._clock = clock
        self._lock = threading.Lock()
        self._last_forced_refresh: dict[str, float] = {}
        self._provider: SecretsProvider | None = None

    def __repr__(self) -> str:
        return (
            f"SecretStore(api_key_secret_id={self._api_key_secret_id!r}, "
            f"webhook_secret_id={self._webhook_secret_id!r}, max_age_seconds={self._max_age})"
        )

    def api_key(self, *, force_refresh: bool = False) -> str:
        secret_id = self._configured(self._api_key_secret_id, "API key")
        raw = self._read(secret_id, force_refresh=force_refresh)
        key = parse_api_key(raw, secret_id=secret_id)
        register_secret(key)
        return key

    def webhook_secrets(self, *, force_refresh: bool = False) -> list[str]:
        """Every accepted webhook secret, current first."""
        secret_id = self._configured(self._webhook_secret_id, "webhook")
        raw = self._read(secret_id, force_refresh=force_refresh)
        secrets = parse_webhook_secrets(raw, secret_id=secret_id)
        for secret in secrets:
            register_secret(secret)
        return secrets

    @staticmethod
    def _configured(secret_id: str | None, what: str) -> str:
        if not secret_id:
            raise ConfigurationError(f"this SecretStore has no {what} secret id configured")
        return secret_id

    def _read(self, secret_id: str, *, force_refresh: bool) -> str:
        force_fetch = force_refresh and self._claim_forced_refresh(secret_id)
        try:
            value = self._get_secret(secret_id, force_fetch=force_fetch)
        except GetParameterError as exc:
            raise SecretUnavailableError(secret_id, str(exc)) from exc
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise SecretFormatError(secret_id, "is binary and not UTF-8 text") from None
        if not isinstance(value, str):
            raise SecretFormatError(secret_id, "has no string value")
        register_secret(value)
        return value

    def _claim_forced_refresh(self, secret_id: str) -> bool:
        """Whether a forced refresh of `secret_id` may go to Secrets Manager now (and note it did)."""
        with self._lock:
            now = self._clock.now()
            last = self._last_forced_refresh.get(secret_id)
            if last is not None and now - last < self._refresh_interval:
                logger.warning(
                    "secret refresh throttled, serving the cached value",
                    extra={"secret_id": secret_id, "seconds_since_refresh": round(now - last, 3)},
                )
                return False
            self._last_forced_refresh[secret_id] = now
            return True

    def _get_secret(self, secret_id: str, *, force_fetch: bool) -> str | bytes | dict[str, Any] | None:
        if self._endpoint_url is None and self._client is None:
            return parameters.get_secret(secret_id, max_age=self._max_age, force_fetch=force_fetch)
        return self._endpoint_provider().get(secret_id, max_age=self._max_age, force_fetch=force_fetch)

    def _endpoint_provider(self) -> SecretsProvider:
        with self._lock:
            if self._provider is None:
                client = self._client
                if client is None:
                    import boto3  # only the local stack needs its own client

                    client = boto3.client("secretsmanager", endpoint_url=self._endpoint_url)
                self._provider = parameters.SecretsProvider(boto3_client=client)
            return self._provider
