"""`devtools.offer_sync_cli` as a person and a pipe see it (issue 22): one summary line whose counts say
what they count, one JSON document with --json (reports too), and a closed pipe ends it quietly."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from devtools import offer_sync_cli
from devtools.offergrid_fake import OffergridFake
from offergrid_integration.catalog.state import DynamoDBSyncState
from tests.fixtures.aws import create_table
from tests.fixtures.offergrid_fake import TEST_API_KEY

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "samples" / "catalog.json"
CATALOG_ROWS = len(json.loads(CATALOG.read_text(encoding="utf-8")))


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = offer_sync_cli.main(list(argv), out=out)
    return code, out.getvalue()


def test_plan_of_one_sku_says_rows_read_and_rows_selected(
    offergrid_fake: OffergridFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFERGRID_API_KEY", TEST_API_KEY)
    code, text = _cli(
        "plan", "--catalog", str(CATALOG), "--api-url", offergrid_fake.base_url, "--sku", "NET-FIBER-300"
    )
    assert code == 0, text
    first = text.splitlines()[0]
    # "(1/12 rows valid)" said that 11 of the sample's rows were invalid: they were only not asked for
    assert "valid" not in first, first
    assert f"{CATALOG_ROWS} catalog rows read, 1 selected by --sku (1 SKU asked)" in first
    assert first.startswith("Plan (dry run): would create 1;"), first
    assert "    create     NET-FIBER-300" in text


def test_plan_of_the_whole_catalog_says_rows_read_and_valid(
    offergrid_fake: OffergridFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFERGRID_API_KEY", TEST_API_KEY)
    code, text = _cli("plan", "--catalog", str(CATALOG), "--api-url", offergrid_fake.base_url)
    assert code == 0, text
    assert f"{CATALOG_ROWS} catalog rows read, {CATALOG_ROWS} valid; 0 offers listed" in text.splitlines()[0]


def test_reports_json_is_one_document_and_the_default_one_line_each(aws: None) -> None:
    # Given two stored run reports
    create_table("offer-sync-state", "pk", "sk")
    state = DynamoDBSyncState("offer-sync-state", client=boto3.client("dynamodb"))
    for run, finished in (("run-a", 1_800_000_000.0), ("run-b", 1_800_000_600.0)):
        state.save_report(
            {
                "runId": run,
                "invocation": 1,
                "status": "complete",
                "dryRun": False,
                "source": "s3://catalog/catalog.json",
                "finishedAt": finished,
                "rowsRead": 12,
                "rowsValid": 12,
                "counts": {"create": 2},
                "planned": {"create": 2, "unchanged": 10},
            }
        )

    # When on-call lists them as JSON: one document (`| jq` works), newest first
    code, text = _cli("reports", "--state-table", "offer-sync-state", "--json")
    assert code == 0
    assert [report["runId"] for report in json.loads(text)] == ["run-b", "run-a"]

    # And for a person: one line per report
    code, text = _cli("reports", "--state-table", "offer-sync-state")
    lines = text.splitlines()
    assert len(lines) == 2, text
    assert "run run-b" in lines[0]
    assert "Sync complete: created 2, 10 unchanged; 12 catalog rows read, 12 valid" in lines[0]


@pytest.mark.parametrize("reader", ["head -1", "true"])
def test_a_plan_piped_into_a_reader_that_stops_ends_quietly(
    offergrid_fake: OffergridFake, reader: str
) -> None:
    # `offer_sync_cli plan | head -1`: the reader closes the pipe early (`true` reads nothing at all,
    # so the CLI's write always meets a closed pipe)
    command = f"{sys.executable} -m devtools.offer_sync_cli plan --catalog {CATALOG}"
    command += f" --api-url {offergrid_fake.base_url}"
    done = subprocess.run(  # noqa: S603 - our CLI, through a shell pipe as a user types it
        [shutil.which("bash") or "/bin/bash", "-c", f"set -o pipefail; {command} | {reader}"],
        cwd=REPO,
        env={**os.environ, "OFFERGRID_API_KEY": TEST_API_KEY},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert "BrokenPipeError" not in done.stderr
    assert done.returncode in (0, 141), done.returncode  # 141: stopped by the closed pipe, as `cat` is
    if reader.startswith("head"):
        assert done.stdout.startswith("Plan (dry run)"), done.stdout
