"""The environment's checks without pydantic, for the webhook's cold start; `config.py` builds its field
types from them. Every check names the rule, never the value (it may be a secret).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

# host.docker.internal: `sam local invoke` runs the function in Docker, where the host is that name.
LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "host.docker.internal"})
# Lambda's limit on a synchronous invocation's request (6 MB = 6 MiB): no body API Gateway accepts
# beyond it can reach the webhook function, so every one that can is taken (docs/decisions.md#2).
MAX_WEBHOOK_BODY_BYTES: Final = 6 * 1024 * 1024


class ConfigurationError(Exception):
    """The environment (or a secret's content) is unusable. Names what is wrong, never a value."""

    def __init__(self, message: str, *, problems: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.problems: dict[str, str] = dict(problems or {})

    @classmethod
    def from_problems(cls, problems: Mapping[str, str]) -> ConfigurationError:
        details = "; ".join(f"{name}: {reason}" for name, reason in problems.items())
        return cls(f"invalid configuration: {details}", problems=problems)


def non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


def http_url(value: str, *, allow_remote_http: bool = False, allow_query: bool = False) -> str:
    """`value`, stripped, if an absolute https URL (http only for a local host unless `allow_remote_http`)
    without whitespace, credentials, fragment or (unless `allow_query`) query. The one check of every
    URL we call.
    """
    value = value.strip()
    if any(char.isspace() for char in value):
        raise ValueError("must be a URL without whitespace")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL with a host")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    if parts.scheme == "http" and not allow_remote_http and parts.hostname not in LOCAL_HOSTS:
        raise ValueError("must use https (plain http only for 127.0.0.1, localhost or host.docker.internal)")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials")
    if parts.fragment or (parts.query and not allow_query):
        raise ValueError("must not have a query or fragment")
    return value


def base_url(value: str) -> str:
    """A base URL (the Offergrid API's): `http_url`, without a trailing slash."""
    return http_url(value).rstrip("/")


def endpoint_url(value: str) -> str:
    """An AWS endpoint override (`AWS_ENDPOINT_URL`): plain http allowed (moto), no trailing slash."""
    return http_url(value, allow_remote_http=True).rstrip("/")


_SQS_QUEUE_URL_RE: Final = re.compile(
    r"""^(?:
        https://sqs\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?      # https://sqs.<region>.amazonaws.com
      | https://[a-z0-9-]+\.queue\.amazonaws\.com(?:\.cn)?    # legacy https://<region>.queue...
      | https?://(?:localhost|127\.0\.0\.1|host\.docker\.internal)(?::\d{1,5})?  # moto server / local stack
    )/\d{12}/[A-Za-z0-9_-]{1,80}(?:\.fifo)?$""",
    re.VERBOSE,
)


def queue_url(value: str) -> str:
    value = value.strip()
    if not _SQS_QUEUE_URL_RE.match(value):
        raise ValueError(
            "must be an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>, "
            "or http(s)://127.0.0.1|localhost|host.docker.internal[:port]/<account>/<name> locally)"
        )
    return value


# What pydantic's lax mode takes as an integer from a string: ASCII digits, an optional sign,
# `_` between digits, and a fractional part of zeros only ("300.0").
_INTEGER_RE: Final = re.compile(r"^[+-]?[0-9](?:_?[0-9])*(?:\.0+)?$")


def bounded_int(value: str, *, ge: int, le: int) -> int:
    """`value` as an integer in [ge, le] (the rules, and wording, of the pydantic settings' fields)."""
    text = value.strip()
    if not _INTEGER_RE.match(text):
        raise ValueError("Input should be a valid integer, unable to parse string as an integer")
    number = int(text.split(".", 1)[0])
    if number < ge:
        raise ValueError(f"Input should be greater than or equal to {ge}")
    if number > le:
        raise ValueError(f"Input should be less than or equal to {le}")
    return number
