"""Figures and file names the docs quote, against what they quote (issue 22).

The README priced 16 alarms when the template had 20, samconfig.toml cited a test file that had been
renamed, docs/local.md said the demo's rate budget ran in real time, and docs/architecture.md gave
the handlers' length. Numbers that add nothing are no longer quoted (the handlers' length); those
that matter (the alarms in the cost table) are checked here, as is every repository file a doc, a
comment or a config names.
"""

from __future__ import annotations

import os
import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from devtools.local.template import Template, load_template

REPO = Path(__file__).resolve().parents[2]
LAYER = REPO / "layers" / "shared" / "offergrid_integration"
README = (REPO / "README.md").read_text(encoding="utf-8")
COST = (REPO / "docs" / "cost.md").read_text(encoding="utf-8")  # the cost table
# A repository path: a top-level folder of ours, then a file name with an extension.
CITED_PATH = re.compile(
    r"(?<![\w./-])((?:tests|docs|devtools|scripts|events|layers|functions|benchmarks|samples)/[\w./-]*\w"
    r"\.(?:py|md|json|jsonl|csv|yaml|yml|toml|txt))\b"
)
# Files a doc names on purpose though they do not exist: the examples of what a reader would add.
HYPOTHETICAL: dict[str, str] = {
    "events/sqs_order_rescheduled.json": "docs/architecture.md, 'Add an event type': the file to add",
}


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(REPO / "template.yaml")


def _project_files(*patterns: str) -> list[Path]:
    """The repository's own files (no hidden folders: venvs, .aws-sam, .local)."""
    found = []
    for folder, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "node_modules"]
        found += [Path(folder, name) for name in files if any(fnmatchcase(name, p) for p in patterns)]
    return sorted(found)


def test_every_file_a_doc_comment_or_config_names_exists():
    missing: dict[str, list[str]] = {}
    named = 0
    for path in _project_files("*.md", "*.py", "*.toml", "*.yaml", "*.yml", "*.txt", "*.cfg", "Makefile"):
        for cited in CITED_PATH.findall(path.read_text(encoding="utf-8", errors="replace")):
            named += 1
            if (REPO / cited).exists() or (LAYER / cited).exists() or cited in HYPOTHETICAL:
                continue
            missing.setdefault(cited, []).append(str(path.relative_to(REPO)))
    assert missing == {}, "files named that do not exist (renamed? moved?)"
    assert named > 200  # the pattern still finds what it is for


def _alarm_metrics(resource: dict[str, Any]) -> int:
    """Alarm metrics CloudWatch bills for one alarm: 1, or each metric a metric-math alarm reads."""
    metrics = (resource.get("Properties") or {}).get("Metrics")
    if metrics is None:
        return 1
    return sum(1 for query in metrics if "MetricStat" in query)


def test_the_cost_table_prices_the_templates_alarms(template: Template):
    alarms = [r for r in template.resources.values() if r.get("Type") == "AWS::CloudWatch::Alarm"]
    metrics = sum(_alarm_metrics(alarm) for alarm in alarms)
    (row,) = [line for line in COST.splitlines() if line.startswith("| CloudWatch alarms |")]
    found = re.search(
        r"(\d+) alarms = (\d+) alarm metrics.*\| \$([\d.]+) / metric-month \| \$([\d.]+) \|", row
    )
    assert found is not None, row
    assert (int(found[1]), int(found[2])) == (len(alarms), metrics), row
    assert float(found[4]) == pytest.approx(metrics * float(found[3])), row


def test_the_cost_tables_total_is_the_sum_of_its_rows():
    section = COST
    costs = [
        float(cost)
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| **Total**")
        for cost in re.findall(r"\| \$([\d.]+) \|$", line)
    ]
    (total,) = re.findall(r"\*\*≈ \$(\d+) / month\*\*", section)
    assert round(sum(costs)) == int(total), f"the rows add up to ${sum(costs):.2f}"
    # and the README's summary quotes that total
    assert f"About **${total} a month**" in README, "the README's cost summary differs from docs/cost.md"


def test_the_handlers_length_is_not_quoted():
    # "about 40 lines" drifted (46-62): the length of a file is not worth a number in prose
    for page in (REPO / "docs").rglob("*.md"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"\b(?:about|~)\s*\d+ lines\b", text), page.relative_to(REPO)


def test_the_demo_docs_say_its_rate_budget_is_on_the_compressed_clock():
    demo_section = (REPO / "docs" / "local.md").read_text(encoding="utf-8").split("## The demo", 1)[1]
    assert not re.search(r"real\s+time", demo_section.split("\n## ", 1)[0])
    assert "compressed clock" in demo_section
    # and it is: the demo puts every function's worker on the fake's clock
    assert "OFFERGRID_DEMO_TIME_SCALE" in (REPO / "devtools" / "demo.py").read_text(encoding="utf-8")
