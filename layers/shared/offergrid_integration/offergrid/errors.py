"""Typed errors of talking to Offergrid: one hierarchy by HTTP status, each transient or permanent, the
one classification the client retries by (docs/architecture.md#errors-offergriderrorspy).
"""

from __future__ import annotations

from typing import Any, Final

from offergrid_integration.errors import PermanentError, TransientError

# The rate budget's own error (nothing was sent), here beside the request errors it stands with.
from offergrid_integration.ratelimit.buckets import RateBudgetExhausted as RateBudgetExhausted


class OffergridError(Exception):
    """Base of every error of a request the client made or tried to make."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.method = method
        self.path = path

    @property
    def retryable(self) -> bool:
        """Whether trying later can succeed: the error is a `TransientError`."""
        return isinstance(self, TransientError)

    def __str__(self) -> str:
        where = f" ({self.method} {self.path})" if self.method and self.path else ""
        return f"{self.message}{where}"


class APIConnectionError(OffergridError, TransientError):
    """The request never got an HTTP answer (refused, reset, DNS, TLS...)."""


class APITimeoutError(APIConnectionError):
    """No answer within the timeout (or within the Lambda's remaining time)."""


class UnexpectedResponseError(OffergridError, PermanentError):
    """A 2xx list we cannot follow: the same request would get the same answer."""


class UnreadableResponseError(OffergridError, TransientError):
    """A 2xx read without the resource asked for (docs/decisions.md#10). Retryable, so the processor keeps
    the message instead of dropping it.
    """


class APIStatusError(OffergridError):
    """Offergrid answered with a non-2xx status."""

    status_code: int

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
        super().__init__(message, status_code=status_code, method=method, path=path)
        self.body = body
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.status_code} {super().__str__()}"


class BadRequestError(APIStatusError, PermanentError):
    """400."""


class AuthenticationError(APIStatusError, PermanentError):
    """401."""


class PermissionDeniedError(APIStatusError, PermanentError):
    """403."""


class NotFoundError(APIStatusError, PermanentError):
    """404."""


class RequestTimeoutError(APIStatusError, TransientError):
    """408."""


class ConflictError(APIStatusError, PermanentError):
    """409."""


class UnprocessableEntityError(APIStatusError, PermanentError):
    """422."""


class RateLimitError(APIStatusError, TransientError):
    """429."""


class InternalServerError(APIStatusError, TransientError):
    """Any 5xx."""


_BY_STATUS: Final[dict[int, type[APIStatusError]]] = {
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
    """The class of a refusal: transient for 408, 429 and 5xx, permanent for the other documented
    statuses, neither (not retried, kept by the processor) for an undocumented one."""
    return InternalServerError if status_code >= 500 else _BY_STATUS.get(status_code, APIStatusError)
