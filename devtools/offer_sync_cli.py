"""Offer sync from a terminal: plan (dry run) or apply a catalog against an Offergrid API.

    python -m devtools.offer_sync_cli plan  --catalog samples/catalog.json --api-url http://127.0.0.1:8900
    python -m devtools.offer_sync_cli apply --catalog s3://provider-catalog/catalog.csv \\
        --api-key-secret offergrid-integration/dev/api-key --state-table offer-sync-state
    python -m devtools.offer_sync_cli reports --state-table offer-sync-state

Removal guard (docs/decisions.md#13): a run that would take more than max(5, 10 %) of the live offers
off sale, or that met catalog rows naming no SKU, removes nothing and lists the refused removals
with a confirmation code. After checking that list (`plan`), `apply ... --allow-removals CODE` makes
exactly those removals in that one run; if the catalog or the offers changed since, the code no
longer matches and the removals are refused again.

The API key comes from an environment variable (`--api-key-env`, default OFFERGRID_API_KEY) or a
Secrets Manager secret (`--api-key-secret`); never from the command line, where `ps` would show it.
Without `--state-table` the lock, checkpoint and report live in this process only.
Output: a summary line, then the plan (a dry run) and the problems, or with --json the report as one
JSON document (`reports --json`: one array). Exit status: 0 when the plan/apply completed without
failures, 1 when some writes or rows failed or the run is incomplete, 2 on a usage or configuration
error or when an AWS call failed (no region, no credentials, no such table/bucket/secret, access
denied): one line on stderr, no traceback; 141 when stdout was closed (`| head`), quietly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from botocore.exceptions import BotoCoreError, ClientError

from devtools.cli_output import quiet_on_closed_pipe
from devtools.report_lines import plan_lines, report_line, sync_line
from offergrid_integration.catalog.apply import SyncDependencies, SyncOptions, run_offer_sync
from offergrid_integration.catalog.guard import DEFAULT_REMOVAL_PERCENT, RemovalGuard
from offergrid_integration.catalog.mapping import (
    CatalogMapping,
    MappingError,
    default_mapping,
    load_mapping,
)
from offergrid_integration.catalog.plan import MissingOfferPolicy
from offergrid_integration.catalog.report import RunStatus, SyncReport
from offergrid_integration.catalog.sources import (
    CatalogFormat,
    CatalogReadError,
    CatalogSource,
    open_catalog_source,
    read_s3_object,
)
from offergrid_integration.catalog.state import DynamoDBSyncState, InMemorySyncState, SyncStateStore
from offergrid_integration.clock import SYSTEM_CLOCK, Clock, ScaledClock
from offergrid_integration.config import DEFAULT_OFFERGRID_API_URL, ConfigurationError
from offergrid_integration.observability import logger
from offergrid_integration.offergrid.client import ApiKeyProvider, OffergridClient
from offergrid_integration.ratelimit import Lane, budget_id_for_api_key, build_rate_budget
from offergrid_integration.secrets import Secret, SecretUnavailableError, parse_api_key

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A command line that cannot be run as given: said on stderr, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.offer_sync_cli",
        description="Plan (dry run) or apply the provider catalog to Offergrid offers.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("plan", "print the writes a sync would make, without writing"),
        ("apply", "make Offergrid's offers equal to the catalog"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--catalog", required=True, help="local file, s3://bucket/key or https:// URL")
        command.add_argument(
            "--format", choices=[f.value for f in CatalogFormat], default="auto", help="catalog format"
        )
        command.add_argument(
            "--mapping", help="mapping document (local JSON file or s3:// URI); default: Decision 8"
        )
        command.add_argument("--api-url", default=DEFAULT_OFFERGRID_API_URL, help="Offergrid API base URL")
        command.add_argument(
            "--api-key-env", default="OFFERGRID_API_KEY", help="environment variable holding the API key"
        )
        command.add_argument(
            "--api-key-secret", help="Secrets Manager secret id of the API key (wins over env)"
        )
        command.add_argument(
            "--missing-policy",
            choices=[p.value for p in MissingOfferPolicy],
            default=MissingOfferPolicy.INACTIVE.value,
            help="what to do with offers whose SKU is not in the catalog (default: inactive)",
        )
        command.add_argument(
            "--sku", action="append", dest="skus", help="limit the run to this SKU (repeatable)"
        )
        command.add_argument("--state-table", help="DynamoDB sync state table (lock, checkpoint, reports)")
        command.add_argument("--rate-limit-table", help="DynamoDB rate-limit table (shared budget)")
        command.add_argument("--max-writes", type=int, help="stop after this many writes (resume later)")
        command.add_argument(
            "--removal-guard-percent",
            type=float,
            default=DEFAULT_REMOVAL_PERCENT,
            help="removal guard: at most max(5, this %% of the live offers) removals per run (default 10)",
        )
        if name == "apply":
            command.add_argument(
                "--allow-removals",
                metavar="CODE",
                help="make the removals a dry run refused and listed with this code (this run only)",
            )
        command.add_argument("--json", action="store_true", help="print the report as JSON")
        command.add_argument("--verbose", action="store_true", help="also print the JSON log lines")
        command.add_argument(
            "--time-scale",
            type=float,
            default=1.0,
            help="clock speed-up, only against a local fake started with the same --time-scale",
        )
    reports = commands.add_parser("reports", help="print the latest stored run reports")
    reports.add_argument("--state-table", required=True)
    reports.add_argument("--limit", type=int, default=5)
    reports.add_argument("--json", action="store_true", help="print the reports as one JSON array")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        if args.command == "reports":
            reports = DynamoDBSyncState(args.state_table).latest_reports(args.limit)
            if args.json:  # one document: an array, newest first
                print(json.dumps(reports, indent=2, sort_keys=True), file=out)
            else:
                print("\n".join(report_line(report) for report in reports) or "no reports stored", file=out)
            return EXIT_OK
        # The report is printed by the CLI; the JSON log lines (stdout) would only repeat it. The
        # logger is the process-wide one: put its level back afterwards.
        previous_level = logger.log_level
        logger.setLevel("DEBUG" if args.verbose else "ERROR")
        try:
            return _sync(args, out)
        finally:
            logger.setLevel(previous_level)
    except (UsageError, MappingError, CatalogReadError, ConfigurationError, ValueError) as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except SecretUnavailableError as error:  # names the secret, never its value
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except (ClientError, BotoCoreError) as error:
        print(f"error: AWS call failed: {_aws_error(error)}", file=sys.stderr)
        return EXIT_USAGE


def _one_line(error: BaseException | str) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _aws_error(error: ClientError | BotoCoreError) -> str:
    """`NoRegionError: You must specify a region.`, `ResourceNotFoundException: ...` (one line)."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code") or "ClientError"
        operation = getattr(error, "operation_name", "") or "the call"
        message = details.get("Message") or ""
        return _one_line(f"{code} on {operation}" + (f": {message}" if message else ""))
    return f"{type(error).__name__}: {_one_line(error)}"


def _sync(args: argparse.Namespace, out: TextIO) -> int:
    clock: Clock = ScaledClock(args.time_scale) if args.time_scale != 1.0 else SYSTEM_CLOCK
    api_key = _api_key(args)
    state: SyncStateStore = (
        DynamoDBSyncState(args.state_table, clock=clock) if args.state_table else (InMemorySyncState(clock))
    )
    # The functions key the shared budget by the API key's secret (offergrid/wiring.py): do the same,
    # so `--rate-limit-table` really draws from their budget.
    budget_owner = args.api_key_secret or api_key()
    client = OffergridClient(
        base_url=args.api_url,
        api_key=api_key,
        # On the functions' budget it is a background job like the scheduled sync (orders first); alone
        # in this process there is nobody to leave a reserve to.
        rate_budget=build_rate_budget(
            args.rate_limit_table,
            budget_id_for_api_key(budget_owner),
            clock,
            lane=Lane.BACKGROUND if args.rate_limit_table else Lane.ORDERS,
        ),
        clock=clock,
    )
    with client:
        deps = SyncDependencies(
            source=_source(args.catalog, CatalogFormat(args.format)),
            mapping=_mapping(args.mapping),
            client=client,
            state=state,
            clock=clock,
        )
        options = SyncOptions(
            dry_run=args.command == "plan",
            skus=args.skus,
            missing_policy=MissingOfferPolicy(args.missing_policy),
            max_writes=args.max_writes,
            removal_guard=RemovalGuard(
                percent=args.removal_guard_percent, confirm=getattr(args, "allow_removals", None)
            ),
        )
        report = run_offer_sync(deps, options)
    text = json.dumps(report.to_dict(), indent=2) if args.json else render(report, _rerun(args), args.skus)
    print(text, file=out)
    ok = (
        report.status in (RunStatus.COMPLETE, RunStatus.DRY_RUN)
        and not report.failures
        and not report.row_errors
        and not report.refused
        and not report.catalog_problems
    )
    return EXIT_OK if ok else EXIT_INCOMPLETE


def _rerun(args: argparse.Namespace) -> str:
    """The `apply` command line that repeats this one (the override hint)."""
    words = ["python -m devtools.offer_sync_cli apply", "--catalog", args.catalog]
    for flag, value in (
        ("--format", args.format if args.format != "auto" else None),
        ("--mapping", args.mapping),
        ("--api-url", args.api_url if args.api_url != DEFAULT_OFFERGRID_API_URL else None),
        ("--api-key-secret", args.api_key_secret),
        ("--missing-policy", args.missing_policy if args.missing_policy != "inactive" else None),
        ("--state-table", args.state_table),
        ("--rate-limit-table", args.rate_limit_table),
    ):
        if value:
            words += [flag, value]
    for sku in args.skus or ():
        words += ["--sku", sku]
    return " ".join(words)


def render(
    report: SyncReport,
    rerun: str = "python -m devtools.offer_sync_cli apply ...",
    skus: Sequence[str] | None = None,
) -> str:
    """The report as text a person reads: one summary line, the plan (dry run), then the problems."""
    document = report.to_dict()
    lines = [sync_line(document, skus=skus), f"  catalog {report.source or '?'}, run {report.run_id}"]
    lines += plan_lines(document) if report.dry_run else []
    if report.pending:
        lines.append(f"  pending: {report.pending} writes (stopped: {report.stop_reason})")
    elif report.stop_reason:
        lines.append(f"  stopped: {report.stop_reason}")
    for failure in report.failures:
        lines.append(f"  FAILED {failure.action} {failure.sku}: {failure.reason}")
    for error in report.row_errors:
        sku = error["sku"] or " or ".join(error.get("candidates", ())) or "?"
        lines.append(f"  INVALID row {error['row']} (sku {sku}): {error['reason']}")
    if report.rows_invalid > len(report.row_errors):
        lines.append(f"  ... and {report.rows_invalid - len(report.row_errors)} more invalid rows")
    lines.extend(
        f"  CATALOG NOT TRUSTED, nothing leaves sale: {problem}" for problem in report.catalog_problems
    )
    lines.extend(_render_guard(report, rerun))
    return "\n".join(lines)


def _render_guard(report: SyncReport, rerun: str) -> list[str]:
    guard = report.removal_guard
    if guard.get("confirmed"):
        code = guard.get("confirmation")
        return [f"  removals confirmed by --allow-removals {code}: the guard is lifted for this run only"]
    if not report.refused:
        return []
    lines = [f"  REFUSED {report.refused} removals: {guard.get('reason')}"]
    lines += [
        f"    {change['kind']:<10} {change['sku']}  (offer {change['offerId']})"
        for change in report.removals_refused
    ]
    lines += [
        "  Nothing was taken off sale. If these products really are discontinued, check the list above, then",
        "  make exactly these removals in one run (refused again if the catalog or offers change meanwhile):",
        f"    {rerun} --allow-removals {guard.get('confirmation')}",
    ]
    return lines


def _api_key(args: argparse.Namespace) -> ApiKeyProvider:
    if args.api_key_secret:
        return Secret(args.api_key_secret, parse_api_key)
    value = os.environ.get(args.api_key_env, "").strip()
    if not value:
        raise UsageError(f"no API key: set {args.api_key_env} or pass --api-key-secret")

    def from_env(*, force_refresh: bool = False) -> str:
        return value

    return from_env


def _source(location: str, catalog_format: CatalogFormat) -> CatalogSource:
    return open_catalog_source(location, catalog_format, allow_files=True)


def _mapping(location: str | None) -> CatalogMapping:
    if location is None:
        return default_mapping()
    if location.startswith("s3://"):
        return load_mapping(read_s3_object(location))
    try:
        with open(location, encoding="utf-8") as handle:
            return load_mapping(handle.read())
    except OSError as error:
        raise UsageError(f"cannot read the mapping {location}: {error.strerror}") from None


if __name__ == "__main__":
    raise SystemExit(quiet_on_closed_pipe(main))
