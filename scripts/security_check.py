"""IaC security scan of template.yaml with checkov (`make security-check`), offline.

Runs checkov (framework cloudformation, which reads SAM resources too) in its own venv
(.venv-checkov) and fails when any check fails, when the template could not be parsed (checkov
itself exits 0 then), when nothing was scanned, or when a suppression carries no reason. Every
suppression lives in the template, next to the resource:

    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_117
            comment: <why this check does not apply or is accepted>

`--skip-download`: no call to the Prisma Cloud API (no network needed, nothing uploaded).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

NO_COMMENT = "No comment provided"  # what checkov records for a skip without a comment


def run_checkov(template: Path) -> dict[str, Any]:
    checkov = Path(sys.executable).parent / "checkov"
    result = subprocess.run(  # noqa: S603 - fixed argv
        [str(checkov), "-f", str(template), "--framework", "cloudformation", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(result.stdout)
    except ValueError:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"checkov did not produce a JSON report (exit {result.returncode})") from None
    if isinstance(report, list):  # one entry per framework when several ran
        report = next(item for item in report if item.get("check_type") == "cloudformation")
    return dict(report)


def main() -> int:
    template = Path(sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
    report = run_checkov(template)
    summary = report["summary"]
    results = report.get("results", {})
    problems: list[str] = []

    for check in results.get("failed_checks", []):
        lines = "-".join(str(n) for n in check.get("file_line_range", []))
        problems.append(
            f"FAILED {check['check_id']} {check['resource']} (lines {lines}): {check['check_name']}"
            + (f"\n       {check['guideline']}" if check.get("guideline") else "")
        )
    skipped = results.get("skipped_checks", [])
    for check in skipped:
        comment = str(check.get("check_result", {}).get("suppress_comment") or "").strip()
        if not comment or comment == NO_COMMENT:
            problems.append(f"SKIPPED WITHOUT A REASON {check['check_id']} {check['resource']}")
    if summary.get("parsing_errors"):
        problems.append(f"checkov could not parse {template}")
    if not summary.get("resource_count"):
        problems.append(f"checkov scanned no resources in {template}")

    by_check = Counter(str(check["check_id"]) for check in skipped)
    if by_check:
        print(
            "skipped in the template, each with its reason: "
            + ", ".join(f"{k} x{n}" for k, n in sorted(by_check.items()))
        )
    print(
        f"checkov {summary.get('checkov_version')} on {template}: {summary['passed']} passed, "
        f"{summary['failed']} failed, {len(skipped)} skipped (with reasons), "
        f"{summary.get('resource_count')} resources"
    )
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
