"""`replay archive --from/--to`: the window's ends as on-call writes them (issue 25)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devtools.archive_replay import parse_when
from devtools.stack_target import ReplayError

NOW = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("90m", NOW - timedelta(minutes=90)),
        ("2h", NOW - timedelta(hours=2)),
        ("3D", NOW - timedelta(days=3)),
        ("2026-11-27T14:00Z", datetime(2026, 11, 27, 14, 0, tzinfo=UTC)),
        ("2026-11-27T14:00", datetime(2026, 11, 27, 14, 0, tzinfo=UTC)),  # without a zone: UTC
        ("2026-11-27T15:00+01:00", datetime(2026, 11, 27, 14, 0, tzinfo=UTC)),
    ],
)
def test_a_window_end_is_a_utc_time_now_or_an_age_back_from_now(text: str, expected: datetime):
    assert parse_when(text, flag="--from", now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "2h ago", "-2h", "1.5h", "2w", ""])
def test_anything_else_is_refused_with_the_flag_and_both_forms(text: str):
    with pytest.raises(ReplayError, match=r"--from .*not an ISO 8601 time .* nor an age \(e\.g\. 2h\)"):
        parse_when(text, flag="--from", now=NOW)
