"""End to end: the `make demo` scenario, through the real handlers, on the local stack (CI's e2e test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.demo import print_report, run_demo
from devtools.local.stack import DEFAULT_TEMPLATE
from devtools.local.template import load_template

MAX_SECONDS = 120  # `make demo` must finish in under two minutes on a 2-core machine


def _missing_functions() -> list[str]:
    template = load_template(DEFAULT_TEMPLATE)
    kinds = {"Api": "webhook function", "SQS": "order processor", "ScheduleV2": "offer sync"}
    present: set[str] = set()
    for function_id in template.function_ids():
        events = (template.resources[function_id].get("Properties") or {}).get("Events") or {}
        present.update(str(event.get("Type")) for event in events.values())
    if "Schedule" in present:
        present.add("ScheduleV2")
    return [name for kind, name in kinds.items() if kind not in present]


@pytest.mark.slow
def test_demo_scenario_goes_as_expected(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    missing = _missing_functions()
    if missing:
        pytest.skip(f"template.yaml has no {', '.join(missing)} yet: the demo cannot run end to end")
    # When the demo runs
    report = run_demo(log_dir=tmp_path / "logs")
    print_report(report)
    # Then every expectation of the scenario holds, in time
    failed = [f"{check.name}: {check.detail}" for check in report.checks if not check.ok]
    assert report.ok, "\n".join(failed) + "\n" + capsys.readouterr().out
    assert report.seconds < MAX_SECONDS
    names = " ".join(check.name for check in report.checks)
    steps = (
        "sync",
        "accepted",
        "rejected",
        "cancelled",
        "status updates",
        "reconciliation",
        "DLQ",
        "archive",
        "story",
    )
    for step in steps:
        assert step in names, f"the scenario lost its {step!r} step"
