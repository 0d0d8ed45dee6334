"""Typed errors for talking to Offergrid: one hierarchy by HTTP status, each transient or permanent
(docs/architecture.md#errors-offergriderrorspy).
"""

from __future__ import annotations

from typing import Any

from offergrid_integration.errors import PermanentError, TransientError

# The rate budget's own error (nothing was sent), here beside the request errors it stands with.
from offergrid_integration.ratelimit.buckets import RateBudgetExhausted as RateBudgetExhausted


class OffergridError(Exception):
    """Base of every error of a request the client made or tried to make."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def retryable(self) -> bool:
        """Whether trying later can succeed: the error is a `TransientError`."""
        return isinstance(self, TransientError)


class APIConnectionError(OffergridError, TransientError):
    """The request never got an HTTP answer (refused, reset, DNS, TLS...)."""


class APITimeoutError(APIConnectionError):
    """No answer within the timeout (or within the Lambda's remaining time)."""


class ResponseBodyError(OffergridError):
    """Offergrid answered 2xx, but with a body we cannot use; base of the two kinds below."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.method = method
        self.path = path

    def __str__(self) -> str:
        where = f" ({self.method} {self.path})" if self.method and self.path else ""
        return f"{self.message}{where}"


class UnexpectedResponseError(ResponseBodyError, PermanentError):
    """A list we cannot follow; not retryable, the same request would get the same answer."""


class UnreadableResponseError(ResponseBodyError, TransientError):
    """A 2xx read without the resource asked for (docs/decisions.md#10). Retryable, so the processor keeps
    the message instead of dropping it.
    """


class APIStatusError(OffergridError):
    """Offergrid answered with a non-2xx status."""

    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Any = None,
        request_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.request_id = request_id
        self.method = method
        self.path = path

    def __str__(self) -> str:
        where = f" ({self.method} {self.path})" if self.method and self.path else ""
        return f"{self.status_code} {self.message}{where}"


class BadRequestError(APIStatusError, PermanentError):
    status_code = 400


class AuthenticationError(APIStatusError, PermanentError):
    status_code = 401


class PermissionDeniedError(APIStatusError, PermanentError):
    status_code = 403


class NotFoundError(APIStatusError, PermanentError):
    status_code = 404


class RequestTimeoutError(APIStatusError, TransientError):
    status_code = 408


class ConflictError(APIStatusError, PermanentError):
    status_code = 409


class UnprocessableEntityError(APIStatusError, PermanentError):
    status_code = 422


class RateLimitError(APIStatusError, TransientError):
    status_code = 429


class InternalServerError(APIStatusError, TransientError):
    """Any 5xx."""

    status_code = 500


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_class_for_status(status_code: int) -> type[APIStatusError]:
    if status_code >= 500:
        return InternalServerError
    return _BY_STATUS.get(status_code, APIStatusError)


def is_retryable_status(status_code: int) -> bool:
    return status_code in (408, 429) or status_code >= 500
