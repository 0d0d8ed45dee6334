"""The Offergrid API key and webhook secrets, read from AWS Secrets Manager and registered for log
redaction. Formats: docs/architecture.md#secrets-secretspy; rotation: docs/runbooks/rotate-secrets.md.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from offergrid_integration import aws
from offergrid_integration.checks import ConfigurationError
from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.observability import logger, register_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

DEFAULT_MAX_AGE_SECONDS = 300
# A forced refresh (after a 401) reaches Secrets Manager at most once per this many seconds per secret.
MIN_REFRESH_INTERVAL_SECONDS = 30.0


class SecretFormatError(ConfigurationError):
    """A secret's content is not one of the documented formats. Names the secret, never the value."""

    def __init__(self, secret_id: str, problem: str) -> None:
        super().__init__(f"secret {secret_id!r} {problem}", problems={secret_id: problem})
        self.secret_id = secret_id


class SecretUnavailableError(Exception):
    """Secrets Manager could not return the secret; names the secret and the AWS error, never a value."""

    def __init__(self, secret_id: str, reason: str, *, aws_error_code: str | None = None) -> None:
        self.secret_id = secret_id
        self.aws_error_code = aws_error_code or "unknown"
        super().__init__(f"secret {secret_id!r} is unavailable ({self.aws_error_code}): {reason}")

    def log_fields(self) -> dict[str, str]:
        return {"secretId": self.secret_id, "awsErrorCode": self.aws_error_code}


def _aws_error_code(error: BaseException) -> str | None:
    """The AWS error behind `error` or its causes: a `ClientError`'s code, a botocore error's class."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        if isinstance(response, dict) and isinstance(response.get("Error"), dict):
            code = response["Error"].get("Code")
            if code:
                return str(code)
        if type(current).__module__.startswith("botocore."):
            return type(current).__name__
        current = current.__cause__ or current.__context__
    return None


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


class SecretParser[T](Protocol):
    """Turns a secret's text into its value; `SecretFormatError` naming `secret_id` if it cannot."""

    def __call__(self, raw: str, *, secret_id: str) -> T: ...


class Secret[T]:
    """One secret in Secrets Manager, parsed and cached for `max_age_seconds`. A forced refresh (after a
    401 or an unknown signature) bypasses the cache at most once per `refresh_interval_seconds`, so a
    storm of them cannot hammer Secrets Manager."""

    def __init__(
        self,
        secret_id: str,
        parse: SecretParser[T],
        *,
        max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS,
        refresh_interval_seconds: float = MIN_REFRESH_INTERVAL_SECONDS,
        clock: Clock = SYSTEM_CLOCK,
        client: SecretsManagerClient | None = None,
    ) -> None:
        if not secret_id.strip():
            raise ConfigurationError("a Secret needs a non-blank secret id")
        self.secret_id = secret_id
        self._parse = parse
        self._max_age = max_age_seconds
        self._refresh_interval = refresh_interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last_forced_refresh: float | None = None
        self._provider = aws.OnFirstUse(
            lambda: parameters.SecretsProvider(boto3_client=client or aws.clients().secretsmanager)
        )

    def __repr__(self) -> str:
        return f"Secret(secret_id={self.secret_id!r}, max_age_seconds={self._max_age})"

    def __call__(self, *, force_refresh: bool = False) -> T:
        value = self._parse(self._read(force_refresh=force_refresh), secret_id=self.secret_id)
        for text in value if isinstance(value, list | tuple) else [value]:
            register_secret(text)  # each parsed string (it ignores anything else)
        return value

    def _read(self, *, force_refresh: bool) -> str:
        force_fetch = force_refresh and self._claim_forced_refresh()
        try:
            value = self._provider.get().get(self.secret_id, max_age=self._max_age, force_fetch=force_fetch)
        except GetParameterError as exc:
            code = _aws_error_code(exc)
            raise SecretUnavailableError(self.secret_id, str(exc), aws_error_code=code) from exc
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise SecretFormatError(self.secret_id, "is binary and not UTF-8 text") from None
        if not isinstance(value, str):
            raise SecretFormatError(self.secret_id, "has no string value")
        register_secret(value)
        return value

    def _claim_forced_refresh(self) -> bool:
        """Whether a forced refresh may go to Secrets Manager now (and note it did)."""
        with self._lock:
            now = self._clock.now()
            last = self._last_forced_refresh
            if last is not None and now - last < self._refresh_interval:
                logger.warning(
                    "secret refresh throttled, serving the cached value",
                    extra={"secret_id": self.secret_id, "seconds_since_refresh": round(now - last, 3)},
                )
                return False
            self._last_forced_refresh = now
            return True
