"""The error taxonomy (issue 14): transient vs permanent is a base class, and `retryable` agrees."""

from __future__ import annotations

import pytest

from offergrid_integration.config import ConfigurationError
from offergrid_integration.errors import PermanentError, TransientError, classify
from offergrid_integration.offergrid.errors import (
    APIConnectionError,
    APITimeoutError,
    RateBudgetExhausted,
    UnexpectedResponseError,
    UnreadableResponseError,
    error_class_for_status,
)
from offergrid_integration.orders.ports import RecordConflict, WorkOrderPublishError, WorkOrderWriteConflict
from offergrid_integration.orders.serviceability import ServiceabilityUnavailable


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 418, 422, 429, 500, 502, 503, 504])
def test_an_offergrid_status_error_is_transient_exactly_when_its_status_is_retryable(status: int) -> None:
    retryable = status in (408, 429) or status >= 500
    error = error_class_for_status(status)("refused", status_code=status)
    expected = True if retryable else (None if status == 418 else False)
    assert classify(error) is expected
    assert error.retryable is retryable
    # Every documented status is one or the other; an undocumented one (418) is neither.
    assert isinstance(error, PermanentError) is (not retryable and status != 418)


@pytest.mark.parametrize(
    "error",
    [
        APIConnectionError("refused"),
        APITimeoutError("slow"),
        RateBudgetExhausted(3.0),
        UnreadableResponseError("no item"),
        RecordConflict("changed"),
        WorkOrderPublishError("bus down"),
        WorkOrderWriteConflict("wo-1"),
        ServiceabilityUnavailable("hook down"),
    ],
    ids=type,
)
def test_transient_errors_derive_from_transient_error(error: TransientError) -> None:
    assert isinstance(error, TransientError)
    assert not isinstance(error, PermanentError)
    assert error.retryable is True


def test_serviceability_unavailable_is_not_a_configuration_error() -> None:
    assert not isinstance(ServiceabilityUnavailable("rules missing"), ConfigurationError)


def test_a_list_that_cannot_be_followed_is_permanent() -> None:
    error = UnexpectedResponseError("pages do not advance")
    assert isinstance(error, PermanentError)
    assert error.retryable is False
    assert classify(ConfigurationError("bad variable")) is None
