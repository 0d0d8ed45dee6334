"""The fake's rate limit: a per-key sliding window on its own clock (manual, or time-scaled)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import httpx
import pytest

from devtools.offergrid_fake import TOO_MANY_REQUESTS_BODY, OffergridFake, clocks, format_retry_after
from devtools.offergrid_fake.ratelimit import SlidingWindowLimiter
from tests.fixtures.offergrid_fake import OffergridFakeFactory, fake_http_client


class ManualClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def statuses(client: httpx.Client, n: int, path: str = "/provider/offers") -> list[int]:
    return [client.get(path).status_code for _ in range(n)]


def test_exactly_100_per_minute_then_429_with_retry_after(offergrid_fake_factory: OffergridFakeFactory):
    # Given the documented defaults and a clock that only moves when told
    clock = ManualClock()
    fake = offergrid_fake_factory(clock=clock)
    with fake_http_client(fake) as client:
        # When 100 requests arrive in the same instant, some of them ending in 404
        assert set(statuses(client, 90)) == {200}
        assert set(statuses(client, 10, "/provider/orders/missing")) == {404}
        # Then the 101st is refused, with the wait until the oldest request leaves the window
        clock.advance(20)
        refused = client.get("/provider/offers")
        assert refused.status_code == 429
        assert refused.json() == TOO_MANY_REQUESTS_BODY
        assert refused.headers["retry-after"] == "40"
        # And it frees exactly when the window has passed, not a moment before
        clock.advance(39.999)
        assert client.get("/provider/offers").headers["retry-after"] == "0.001"
        clock.advance(0.001)
        assert set(statuses(client, 100)) == {200}
        assert client.get("/provider/offers").status_code == 429
    assert fake.rate_limited == 3
    assert fake.status_counts[429] == 3


def test_window_slides_rather_than_resetting(offergrid_fake_factory: OffergridFakeFactory):
    clock = ManualClock()
    fake = offergrid_fake_factory(clock=clock, per_minute=5)
    with fake_http_client(fake) as client:
        # Given 3 requests at t=0 and 2 at t=30
        assert statuses(client, 3) == [200] * 3
        clock.advance(30)
        assert statuses(client, 2) == [200] * 2
        # When more arrive at t=59: refused (and being refused does not count)
        clock.advance(29)
        refused = [client.get("/provider/offers") for _ in range(5)]
        assert {r.status_code for r in refused} == {429}
        assert refused[0].headers["retry-after"] == "1"
        # Then at t=60 only the 3 slots of t=0 are free; the next waits for the t=30 requests
        clock.advance(1)
        assert statuses(client, 3) == [200] * 3
        blocked = client.get("/provider/offers")
        assert (blocked.status_code, blocked.headers["retry-after"]) == (429, "30")


def test_hourly_limit_also_applies(offergrid_fake_factory: OffergridFakeFactory):
    clock = ManualClock()
    fake = offergrid_fake_factory(clock=clock, per_minute=100, per_hour=3)
    with fake_http_client(fake) as client:
        assert statuses(client, 3) == [200] * 3
        clock.advance(100)
        refused = client.get("/provider/offers")
        assert (refused.status_code, refused.headers["retry-after"]) == (429, "3500")
        clock.advance(3500)
        assert client.get("/provider/offers").status_code == 200


def test_limits_are_per_api_key_and_cover_bad_keys(offergrid_fake_factory: OffergridFakeFactory):
    clock = ManualClock()
    fake = offergrid_fake_factory(clock=clock, per_minute=2)
    fake.add_api_key("second-key")
    with (
        fake_http_client(fake) as first,
        fake_http_client(fake, "second-key") as second,
        fake_http_client(fake, "wrong-key") as wrong,
    ):
        assert statuses(first, 3) == [200, 200, 429]
        assert statuses(second, 2) == [200, 200]
        assert statuses(wrong, 3) == [401, 401, 429]


def test_control_plane_is_not_rate_limited(offergrid_fake_factory: OffergridFakeFactory):
    fake = offergrid_fake_factory(clock=ManualClock(), per_minute=1)
    with fake_http_client(fake, key=None) as control, fake_http_client(fake) as client:
        for _ in range(5):
            assert control.get("/_fake/state").status_code == 200
        assert statuses(client, 2) == [200, 429]
    assert len(fake.calls) == 2


def test_injected_rate_limit_fault_is_not_counted_but_other_faults_are(offergrid_fake_factory):
    fake = offergrid_fake_factory(clock=ManualClock(), per_minute=2)
    fake.inject_fault("rate_limit")
    fake.inject_fault("status", status=500)
    with fake_http_client(fake) as client:
        # 429 (fault, not counted), 500 (counted), 200 (counted), then the window is full
        assert statuses(client, 4) == [429, 500, 200, 429]
    assert fake.rate_limited == 1


def test_time_scale_compresses_the_window(
    offergrid_fake_factory: OffergridFakeFactory, monkeypatch: pytest.MonkeyPatch
):
    # Given a fake whose minute lasts 0.1 real seconds, on a real time that moves only when told (a
    # loaded machine may take those 0.1 s to send the three requests, the third then let through)
    real = [time.time()]
    monkeypatch.setattr(clocks, "time", SimpleNamespace(time=lambda: real[0]))
    scale = 600.0
    fake = offergrid_fake_factory(time_scale=scale, per_minute=2)
    start = fake.now()
    with fake_http_client(fake) as client:
        assert statuses(client, 2) == [200, 200]
        refused = client.get("/provider/offers")
        assert refused.status_code == 429
        # Retry-After is in the fake's seconds
        retry_after = float(refused.headers["retry-after"])
        assert 0 < retry_after <= 60
        # When that long passes on the same compressed time line
        real[0] += retry_after / scale + 0.001
        assert client.get("/provider/offers").status_code == 200
    assert fake.now() - start >= retry_after


def test_scaled_time_runs_scale_times_faster(monkeypatch: pytest.MonkeyPatch):
    real = [5_000.0]
    monkeypatch.setattr(clocks, "time", SimpleNamespace(time=lambda: real[0]))
    scaled = clocks.ScaledTime(60.0)
    assert scaled.now() == 5_000.0
    real[0] += 1.5
    assert scaled.now() == pytest.approx(5_000.0 + 90.0)
    with pytest.raises(ValueError, match="positive"):
        clocks.ScaledTime(0)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(40.0, "40"), (0.75, "0.75"), (0.0001, "0.001"), (59.9991, "60"), (0.0, "0"), (-1, "0")],
)
def test_retry_after_rounds_up_to_the_millisecond(seconds, text):
    assert format_retry_after(seconds) == text


def test_limiter_unit_never_admits_more_than_the_limit_in_any_window():
    # Given arrivals every 0.1 s for 10 minutes, admitted whenever the limiter allows
    limiter = SlidingWindowLimiter(per_minute=100, per_hour=10_000)
    admitted: list[float] = []
    for step in range(0, 6000):
        now = step * 0.1
        if limiter.retry_after("k", now) is None:
            limiter.admit("k", now)
            admitted.append(now)
    # Then no 60 s window holds more than 100, and the limit is reached (not undershot)
    for i, t in enumerate(admitted):
        in_window = [u for u in admitted[i:] if u - t < 60]
        assert len(in_window) <= 100
    assert len(admitted) == 1000


def test_rejects_nonsense_limits():
    with pytest.raises(ValueError, match="positive"):
        OffergridFake(per_minute=0)
