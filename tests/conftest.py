"""Shared fixtures. Plugins live in tests/fixtures/ so each area owns its own."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = [
    "tests.fixtures.aws",
    "tests.fixtures.logs",
    "tests.fixtures.offergrid_fake",
    "tests.fixtures.sqs_limits",
]

# Hypothesis times each example (`deadline`, 200 ms) and the data generation (`too_slow`) on the wall
# clock, which a loaded machine exceeds: a property states an effect, never a speed. Every property
# test starts from this profile (its own settings still apply; `--hypothesis-profile` still wins).
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with a `slow` test first, then the others by their number of tests, most first.

    `make pytest` runs `--dist loadfile --no-loadscope-reorder`: each file goes whole to the next
    free worker, in this order. xdist's own order (by number of tests only) left the slow files of a
    few long tests (the state machine, the rate-budget hammer, the demo) to the end, one worker busy
    with them while the other idled. Only the order of files changes; within a file it is kept.
    """
    slow = {item.path for item in items if item.get_closest_marker("slow") is not None}
    tests_in = Counter(item.path for item in items)
    items.sort(key=lambda item: (item.path not in slow, -tests_in[item.path], str(item.path)))


@pytest.fixture(autouse=True)
def empty_metric_set() -> None:
    """Every test starts with no metric pending. Powertools' metric set is shared by the process: one
    added by a test that never flushed it (outside a handler) was printed by whichever test of that
    worker flushed next, which the load decides (`--dist loadfile`): issue 22."""
    from offergrid_integration.observability import metrics

    metrics.clear_metrics()
