"""Pure decisions of the Offergrid client: Retry-After, backoff, what is retried (list pages:
test_offergrid_client_paging.py)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from offergrid_integration.clock import ScaledClock, SystemClock
from offergrid_integration.offergrid import INITIAL_RETRY_DELAY, MAX_RETRY_AFTER, MAX_RETRY_DELAY
from offergrid_integration.offergrid.client import (
    OffergridClient,
    compute_backoff,
    parse_retry_after,
    retry_wait,
)
from offergrid_integration.offergrid.errors import APIConnectionError, APITimeoutError, error_class_for_status

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC).timestamp()


class TestParseRetryAfter:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("5", 5.0),
            ("0", 0.0),
            ("1.5", 1.5),
            (" 2 ", 2.0),
            ("120", 120.0),  # capping is the caller's job
            ("-3", 0.0),
        ],
    )
    def test_delta_seconds(self, value, expected):
        assert parse_retry_after(value, NOW) == expected

    def test_http_date_relative_to_the_clock(self):
        in_30s = format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True)
        assert in_30s.endswith("GMT")
        assert parse_retry_after(in_30s, NOW) == pytest.approx(30.0)

    def test_http_date_in_the_past_means_now(self):
        assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 0.0

    @pytest.mark.parametrize("value", [None, "", "   ", "soon", "nan", "inf", "Wed, 99 Foo 2015"])
    def test_absent_or_unreadable(self, value):
        assert parse_retry_after(value, NOW) is None


class TestBackoff:
    @pytest.mark.parametrize("attempt", range(8))
    def test_full_jitter_bounds(self, attempt):
        ceiling = min(MAX_RETRY_DELAY, INITIAL_RETRY_DELAY * 2**attempt)
        assert compute_backoff(attempt, lambda: 0.0) == 0.0
        assert compute_backoff(attempt, lambda: 0.999999) == pytest.approx(ceiling, rel=1e-5)
        assert compute_backoff(attempt, lambda: 0.5) == pytest.approx(ceiling / 2)

    def test_grows_exponentially_then_is_capped(self):
        top = [compute_backoff(attempt, lambda: 1.0) for attempt in range(10)]
        assert top[:4] == [0.5, 1.0, 2.0, 4.0]
        assert top[4:] == [MAX_RETRY_DELAY] * 6

    def test_huge_attempt_does_not_overflow(self):
        assert compute_backoff(10_000, lambda: 1.0) == MAX_RETRY_DELAY

    def test_default_random_stays_within_bounds(self):
        waits = [compute_backoff(3) for _ in range(200)]
        assert all(0.0 <= wait <= 4.0 for wait in waits)
        assert len(set(waits)) > 1  # jittered, not constant

    def test_retry_after_wins_over_backoff_and_is_capped(self):
        assert retry_wait(0, 7.5, lambda: 0.0) == 7.5
        assert retry_wait(0, 3600.0, lambda: 0.0) == MAX_RETRY_AFTER
        assert retry_wait(2, None, lambda: 1.0) == 2.0


class TestShouldRetry:
    """The client retries an error exactly when it is transient: its class, by status, says which."""

    @pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
    def test_transient_statuses_are_retried(self, status):
        assert error_class_for_status(status)("refused", status_code=status).retryable is True

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 451, 499])
    def test_permanent_statuses_are_not(self, status):
        assert error_class_for_status(status)("refused", status_code=status).retryable is False

    @pytest.mark.parametrize("status", [200, 201, 204, 301, 302, 304])
    def test_unexpected_non_error_statuses_are_not(self, status):
        assert error_class_for_status(status)("unexpected", status_code=status).retryable is False

    def test_no_answer_at_all_is_retried(self):
        assert APIConnectionError("refused").retryable is True
        assert APITimeoutError("slow").retryable is True


class TestClientBasics:
    def test_repr_shows_no_key(self):
        client = OffergridClient(api_key=lambda *, force_refresh=False: "sk-very-secret")
        try:
            assert "sk-very-secret" not in repr(client)
            assert "api.offergrid.io" in repr(client)
        finally:
            client.close()

    @pytest.mark.parametrize("kwargs", [{"timeout": 0}, {"max_retries": -1}, {"max_pages": 0}])
    def test_bad_settings_are_refused(self, kwargs):
        with pytest.raises(ValueError, match="must"):
            OffergridClient(api_key=lambda *, force_refresh=False: "k", **kwargs)

    @pytest.mark.parametrize("clock", [SystemClock(), ScaledClock(60)], ids=["system", "scaled"])
    def test_an_attempt_waits_real_seconds_whatever_the_clock(self, clock):
        # A server's answer takes real time, which no clock compresses: on ScaledClock(60) the 10 s
        # timeout was 1/6 real second, which a loaded machine exceeds (a retried POST: issue 22)
        seen: list[dict[str, float]] = []

        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request.extensions["timeout"])
            return httpx.Response(200, json=[])

        for left in (None, 4.0):
            client = OffergridClient(
                api_key=lambda *, force_refresh=False: "k",
                clock=clock,
                remaining_time=None if left is None else (lambda: 4.0),
                transport=httpx.MockTransport(answer),
            )
            with client:
                list(client.list_offers())

        # 10 s per attempt (3 s to connect), bounded by the time left less the 1 s margin
        assert seen == [
            {"connect": 3.0, "read": 10.0, "write": 10.0, "pool": 10.0},
            {"connect": 3.0, "read": 3.0, "write": 3.0, "pool": 3.0},
        ]

    def test_ids_are_one_path_segment(self):
        client = OffergridClient(api_key=lambda *, force_refresh=False: "k")
        try:
            with pytest.raises(ValueError, match="must not be empty"):
                client.get_offer("")
        finally:
            client.close()


def test_jitter_source_is_injectable():
    values = itertools.cycle([0.25, 0.75])
    waits = [compute_backoff(2, lambda: next(values)) for _ in range(2)]
    assert waits == [0.5, 1.5]
