"""Replay events against the local stack or a deployed stage.

    .venv/bin/python -m devtools.replay webhook                # every events/webhook_*.json -> local API
    .venv/bin/python -m devtools.replay webhook events/webhook_order_created.json \\
        --stack-name offergrid-integration-dev \\
        --secret-id offergrid-integration/dev/webhook-secret  # a deployed stage, signed fresh
    .venv/bin/python -m devtools.replay send --body '{"event": {...}, "dedupKey": "..."}'
    .venv/bin/python -m devtools.replay send --from-event events/sqs_order_created.json
    .venv/bin/python -m devtools.replay dlq list | dlq show MESSAGE_ID | dlq redrive [--message-id ID ...]
    .venv/bin/python -m devtools.replay sync --dry-run | sync --sku NET-FIBER-300 --sku SEC-PRO-1
    .venv/bin/python -m devtools.replay reconcile --dry-run     # the drift between Offergrid and work orders
    .venv/bin/python -m devtools.replay archive --from 2026-11-27T14:00Z --to 2026-11-27T16:30Z [--dry-run]
                                                               # re-deliver a window of archived deliveries
    .venv/bin/python -m devtools.replay trace ITEM_ID          # one item's story, in one timeline

Where: the local stack started by `make local` (its endpoints in .local/stack.json; AWS calls go to
its moto server), or, with --stack-name, a deployed stack: URLs and queues come from the
CloudFormation stack's Outputs and AWS calls use your usual credentials (boto3 honours
AWS_ENDPOINT_URL, so the same works against any moto server).

Output: lines for a person (each ends in a one-line summary), or with --json one JSON document on
stdout; problems on stderr. Exit status: 0 everything as expected; 1 something was not (an answer a
sample is not for, a sync not complete, a message not found); 2 nothing was done: a flag or file at
fault, no local stack running, an AWS call refused (one line on stderr says which); 141 stdout closed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devtools import archive_replay, trace
from devtools.cli_output import FileError, quiet_on_closed_pipe, read_json_file
from devtools.local.provision import LocalStack
from devtools.local.runtime import REPO_ROOT, FunctionWorker
from devtools.local.stack import DEFAULT_LOG_DIR, DEFAULT_STACK_FILE, DEFAULT_TEMPLATE, function_environment
from devtools.local.template import TemplateError, load_template
from devtools.offergrid_fake import SIGNATURE_HEADER, compact_json, deliver_webhook
from devtools.report_lines import plan_lines, sync_line
from devtools.stack_target import ReplayError, Target

EVENTS_DIR: Final = REPO_ROOT / "events"
WEBHOOK_URL_OUTPUT: Final = "WebhookUrl"
WEBHOOK_SECRET_OUTPUT: Final = "WebhookSecretArn"  # noqa: S105 - an output name, not a secret
QUEUE_URL_OUTPUT: Final = "OrdersQueueUrl"
DLQ_URL_OUTPUT: Final = "OrdersDeadLetterQueueUrl"
DEFAULT_SYNC_FUNCTION: Final = "OfferSyncFunction"
ORDERS_TABLE: Final = "OrdersTable"  # the order processor's records (logical id)
EXIT_NOT_RUN: Final = 2
_VISIBILITY_WHILE_LISTING: Final = 30


def _say(message: str) -> None:
    print(message, flush=True)


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _secret(args: argparse.Namespace, target: Target) -> str:
    if args.secret_env:
        value = os.environ.get(args.secret_env)
        if not value:
            raise ReplayError(f"environment variable {args.secret_env} is not set")
        return value
    secret_id = args.secret_id or target.output(WEBHOOK_SECRET_OUTPUT)
    try:
        raw = str(target.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    except (ClientError, BotoCoreError) as error:
        raise ReplayError(f"cannot read secret {secret_id!r}: {type(error).__name__}") from None
    return _current_secret(raw.strip())


def _current_secret(raw: str) -> str:
    """The signing secret: the value, or `current` / the first entry during a rotation."""
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    if isinstance(parsed, dict) and isinstance(parsed.get("current"), str):
        return str(parsed["current"])
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], str):
        return str(parsed[0])
    return raw


# ---------------------------------------------------------------------------------------------------
# webhook
# ---------------------------------------------------------------------------------------------------
def webhook_body(document: Any) -> tuple[bytes, dict[str, str]]:
    """The raw body (and original headers) of a stored webhook: an API Gateway event (REST API v1 or
    HTTP API v2) or a bare payload."""
    if _is_api_gateway_event(document):
        body = document.get("body") or ""
        raw = base64.b64decode(body) if document.get("isBase64Encoded") else str(body).encode("utf-8")
        return raw, {str(k): str(v) for k, v in (document.get("headers") or {}).items()}
    return compact_json(document), {}


def _is_api_gateway_event(document: Any) -> bool:
    if not isinstance(document, dict) or "body" not in document:
        return False
    return "httpMethod" in document or document.get("version") == "2.0"


def _named_item(raw: bytes) -> str | None:
    """The itemId an `order.created` or `order.cancelled` payload names (flat or nested), else None."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("event") not in ("order.created", "order.cancelled"):
        return None
    nested = payload.get("data")
    item = (nested if isinstance(nested, dict) else payload).get("itemId")
    return item if isinstance(item, str) else None


def _offergrid_items(fake_url: str) -> dict[str, str]:
    """itemId -> status, from the local Offergrid fake's control plane."""
    with urllib.request.urlopen(f"{fake_url}/_fake/state", timeout=5) as response:  # noqa: S310 - local
        state = json.loads(response.read())
    return {str(item["id"]): str(item["status"]) for item in state.get("orderItems", [])}


def _queue_busy(target: Target) -> bool:
    """Whether the orders queue still holds messages, waiting or being processed."""
    attributes = target.client("sqs").get_queue_attributes(
        QueueUrl=target.output(QUEUE_URL_OUTPUT),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return any(int(value) for value in attributes.values())


def _order_record(target: Target, item_id: str) -> dict[str, Any] | None:
    """The order processor's record of `item_id` (its decision, cancellation, last failure)."""
    assert target.local is not None
    item = (
        target.client("dynamodb")
        .get_item(TableName=target.local.ref(ORDERS_TABLE), Key={"itemId": {"S": item_id}})
        .get("Item")
    )
    if item is None:
        return None
    return {name: next(iter(value.values())) for name, value in item.items() if name != "history"}


def _item_outcome(
    item_id: str, record: dict[str, Any] | None, offergrid_status: str | None
) -> dict[str, Any]:
    """What the order processor made of an item, from its record and the local Offergrid."""
    outcome: dict[str, Any] = {"itemId": item_id, "offergridStatus": offergrid_status}
    if record is not None:
        outcome["decision"] = record.get("decision")
        outcome["cancelled"] = "cancelledAt" in record
        outcome["reason"] = record.get("decisionReason") or record.get("lastFailure")
    return outcome


def _outcome_line(outcome: dict[str, Any]) -> str:
    item, status = outcome["itemId"], outcome["offergridStatus"]
    at_offergrid = f"at the local Offergrid: {status}" if status else "not in the local Offergrid"
    decision = outcome.get("decision")
    if decision is None and not outcome.get("cancelled"):
        failure = f": {outcome['reason']}" if outcome.get("reason") else ""
        return f"{item}: no decision by the order processor{failure} ({at_offergrid})"
    what = str(decision or "cancelled")
    if outcome.get("cancelled") and decision not in (None, "cancelled"):
        what = f"{decision}, then cancelled"
    return f"{item}: {what} ({at_offergrid})"


def _await_outcomes(
    target: Target, item_ids: list[str], wait: float, stack_file: Path
) -> tuple[list[dict[str, Any]], list[str]]:
    """Local stack: wait (up to `wait` s) until the order processor has handled every message on the
    orders queue, then what it made of each item (the last word: an item the cancellation sample
    cancelled is cancelled, whatever the order its webhooks were handled in). Returns the outcomes and
    the lines that say them."""
    fake_url = target.local.urls.get("offergrid") if target.local is not None else None
    if not item_ids or fake_url is None or wait <= 0:
        return [], []
    deadline = time.monotonic() + wait
    idle_polls = 0
    while idle_polls < 2 and time.monotonic() < deadline:  # idle twice: nothing between two polls
        idle_polls = 0 if _queue_busy(target) else idle_polls + 1
        time.sleep(0.2)
    statuses = _offergrid_items(fake_url)
    outcomes = [_item_outcome(i, _order_record(target, i), statuses.get(i)) for i in item_ids]
    lines = [_outcome_line(outcome) for outcome in outcomes]
    if idle_polls < 2:
        log = _log_dir(target.local, stack_file) / "OrderProcessorFunction.log" if target.local else "its log"
        lines.append(
            f"the orders queue still holds messages after {wait:g} s (order processing paused? "
            f"see {log}); --wait SECONDS to wait longer"
        )
    elif any(item_id not in statuses for item_id in item_ids):
        lines.append("an item not in the local Offergrid: seed it (docs/local.md#seeding-order-items)")
    return outcomes, lines


def _log_dir(stack: LocalStack, stack_file: Path) -> Path:
    """Where the local stack's functions log: `make local`'s folder, else one beside the stack file."""
    if stack.log_dir:
        return Path(stack.log_dir)
    return (
        DEFAULT_LOG_DIR
        if stack_file.resolve() == DEFAULT_STACK_FILE.resolve()
        else stack_file.parent / "logs"
    )


def _webhook_files(paths: list[Path]) -> list[Path]:
    if paths:
        return paths
    files = sorted(EVENTS_DIR.glob("webhook_*.json"))
    if not files:
        raise ReplayError(f"no webhook_*.json in {EVENTS_DIR}")
    return files


def cmd_webhook(args: argparse.Namespace) -> int:
    target = Target.from_args(args)
    url = args.url or target.output(WEBHOOK_URL_OUTPUT)
    files = _webhook_files(args.files)
    stored = [(path, webhook_body(read_json_file(path, ""))) for path in files]  # every file readable
    secret = None if args.keep_signature else _secret(args, target)
    failures = 0
    named: list[str] = []
    results: list[dict[str, Any]] = []
    lines: list[str] = []
    for number, (path, (raw, original_headers)) in enumerate(stored, start=1):
        refusal = REFUSAL_SAMPLES.get(path.name)
        keep = args.keep_signature or refusal is not None  # re-signing would defeat a refusal sample
        headers: dict[str, str] = {}
        if keep:
            headers = {k: v for k, v in original_headers.items() if k.lower() == SIGNATURE_HEADER}
        try:
            status, answer = deliver_webhook(
                url,
                {},
                secret or "",
                raw_body=raw,
                sign_body=not keep,
                headers=headers,
                timeout=args.timeout,
            )
        except OSError as error:
            status, answer = 0, str(error).encode()
        expected = refusal is not None and refusal == status
        ok = 200 <= status < 300 if refusal is None else expected
        failures += not ok
        if ok and refusal is None and (item := _named_item(raw)) is not None:
            named.append(item)
        shown = answer.decode("utf-8", errors="replace")[:200]
        results.append({"file": str(path), "status": status or None, "answer": shown, "asExpected": ok})
        note = f"  (refused as this sample should be: {refusal})" if expected else ""
        if refusal is not None and not expected:
            note = f"  (this sample should be refused with {refusal})"
        lines.append(f"[{number}/{len(files)}] {path.name} -> {status or 'no answer'} {shown}{note}")
        if not args.json:
            _say(lines[-1])
    summary = f"{len(files) - failures} as expected, {failures} not ({url})"
    if not args.json:
        _say(summary)
    items, item_lines = _await_outcomes(target, list(dict.fromkeys(named)), args.wait, args.stack_file)
    if args.json:
        _say(
            json.dumps(
                {
                    "url": url,
                    "asExpected": len(files) - failures,
                    "notAsExpected": failures,
                    "webhooks": results,
                    "items": items,
                },
                indent=2,
            )
        )
    else:
        for line in item_lines:
            _say(line)
    return 1 if failures else 0


# Samples that exist to be refused: always sent as stored (a fresh signature would make the bad-
# signature sample valid) and counted as expected when refused with this status.
REFUSAL_SAMPLES: Final = {"webhook_bad_signature.json": 401, "webhook_malformed_body.json": 400}


# ---------------------------------------------------------------------------------------------------
# send
# ---------------------------------------------------------------------------------------------------
def _messages_to_send(args: argparse.Namespace) -> list[tuple[str, dict[str, str]]]:
    attributes = dict(pair.split("=", 1) for pair in args.attribute)
    if args.from_event:
        event = read_json_file(args.from_event, "--from-event")
        records = event.get("Records") if isinstance(event, dict) else None
        if not records or not all(isinstance(r, dict) and "body" in r for r in records):
            raise ReplayError(f"--from-event {args.from_event}: not an SQS event (no Records with a body)")
        return [
            (
                str(record["body"]),
                {
                    **{
                        name: str(v["stringValue"])
                        for name, v in (record.get("messageAttributes") or {}).items()
                        if "stringValue" in v
                    },
                    **attributes,
                },
            )
            for record in records
        ]
    if args.body is None:
        raise ReplayError("give --body JSON, --body @file.json or --from-event events/sqs_*.json")
    if args.body.startswith("@"):
        read_json_file(Path(args.body[1:]), "--body", where=f"--body {args.body}")  # JSON, or named
        body = Path(args.body[1:]).read_text(encoding="utf-8")  # sent as written
    else:
        try:
            json.loads(args.body)  # refuse what the processor could never parse
        except json.JSONDecodeError as error:
            raise ReplayError(f"--body: not JSON ({error.msg} at column {error.colno})") from None
        body = args.body
    return [(body, attributes)]


def cmd_send(args: argparse.Namespace) -> int:
    target = Target.from_args(args)
    messages = _messages_to_send(args)
    queue_url = args.queue_url or target.output(QUEUE_URL_OUTPUT)
    sqs = target.client("sqs")
    sent_ids: list[str] = []
    for number, (body, attributes) in enumerate(messages, start=1):
        sent = sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=body,
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v
            },
        )
        sent_ids.append(sent["MessageId"])
        if not args.json:
            _say(f"[{number}/{len(messages)}] sent {sent['MessageId']} to {queue_url}")
    if args.json:
        _say(json.dumps({"queueUrl": queue_url, "sent": sent_ids}, indent=2))
    return 0


# ---------------------------------------------------------------------------------------------------
# dlq
# ---------------------------------------------------------------------------------------------------
def _receive_all(sqs: Any, queue_url: str, limit: int) -> Iterator[dict[str, Any]]:
    """Every message of the queue (up to `limit`), each hidden while we look at it."""
    seen: set[str] = set()
    while len(seen) < limit:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, limit - len(seen)),
            VisibilityTimeout=_VISIBILITY_WHILE_LISTING,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            return
        for message in fresh:
            seen.add(message["MessageId"])
            yield message


def _release(sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )


def _summary(message: dict[str, Any]) -> str:
    attributes = message.get("MessageAttributes") or {}
    key = attributes.get("dedupKey", {}).get("StringValue")
    body = message["Body"]
    return (
        f"{message['MessageId']}  receives={message['Attributes'].get('ApproximateReceiveCount', '?')}  "
        + (f"dedupKey={key}" if key else f"body={body[:80]}")
    )


def _listed(message: dict[str, Any]) -> dict[str, Any]:
    attributes = message.get("MessageAttributes") or {}
    return {
        "messageId": message["MessageId"],
        "receives": int(message["Attributes"].get("ApproximateReceiveCount", 0)),
        "dedupKey": attributes.get("dedupKey", {}).get("StringValue"),
    }


def _receive_count_note(target: Target, sqs: Any) -> str:
    """Why `receives` grows: SQS has no peek, so looking at a message is a receive, and counts."""
    arrival = "the orders queue's maxReceiveCount"
    # Best effort: without the queue's redrive policy the note names the setting instead of its value.
    with contextlib.suppress(ReplayError, ClientError, BotoCoreError, KeyError, ValueError):
        queue_url = target.output(QUEUE_URL_OUTPUT)
        policy = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
        arrival = f"{json.loads(policy['Attributes']['RedrivePolicy'])['maxReceiveCount']} ({arrival})"
    return (
        "note: `receives` is SQS's ApproximateReceiveCount. A message is moved here after its "
        f"receive count on the orders queue reached {arrival}. SQS has no peek: every `dlq list` "
        "or `dlq show` receives each message once more, so the count grows by one per look "
        "(harmless: the DLQ has no redrive of its own). `dlq redrive` sends a fresh copy, counted "
        "from 0 again."
    )


def cmd_dlq(args: argparse.Namespace) -> int:
    target = Target.from_args(args)
    sqs = target.client("sqs")
    dlq_url = args.dlq_url or target.output(DLQ_URL_OUTPUT)
    messages = list(_receive_all(sqs, dlq_url, args.max))
    try:
        if args.dlq_command == "list":
            if args.json:
                listed = [_listed(message) for message in messages]
                _say(json.dumps({"dlqUrl": dlq_url, "messages": listed}, indent=2))
                return 0
            for message in messages:
                _say(_summary(message))
            _say(f"{len(messages)} message(s) in {dlq_url}")
            if messages:
                _say(_receive_count_note(target, sqs))
            return 0
        if args.dlq_command == "show":
            found = [m for m in messages if m["MessageId"] == args.message_id]
            if not found:
                _say(f"no message {args.message_id} in {dlq_url}")
                return 1
            message = found[0]
            try:
                body: Any = json.loads(message["Body"])
            except json.JSONDecodeError:
                body = message["Body"]
            shown = {
                "messageId": message["MessageId"],
                "attributes": message.get("Attributes"),
                "messageAttributes": {
                    k: v.get("StringValue") for k, v in (message.get("MessageAttributes") or {}).items()
                },
                "body": body,
            }
            _say(json.dumps(shown, indent=2))
            return 0
        return _redrive(args, target, sqs, dlq_url, messages)
    finally:
        _release(sqs, dlq_url, [m for m in messages if not m.get("_moved")])


def _redrive(
    args: argparse.Namespace, target: Target, sqs: Any, dlq_url: str, messages: list[dict[str, Any]]
) -> int:
    queue_url = args.queue_url or target.output(QUEUE_URL_OUTPUT)
    wanted = set(args.message_id or [])
    chosen = [m for m in messages if not wanted or m["MessageId"] in wanted]
    missing = wanted - {m["MessageId"] for m in chosen}
    moved: dict[str, str] = {}
    for number, message in enumerate(chosen, start=1):
        attributes = {
            name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
            for name, value in (message.get("MessageAttributes") or {}).items()
        }
        sent = sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"], MessageAttributes=attributes)
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        message["_moved"] = True
        moved[message["MessageId"]] = sent["MessageId"]
        if not args.json:
            _say(f"[{number}/{len(chosen)}] {message['MessageId']} -> {queue_url} as {sent['MessageId']}")
    if args.json:
        _say(json.dumps({"queueUrl": queue_url, "redriven": moved, "notInTheDlq": sorted(missing)}, indent=2))
        return 1 if missing else 0
    for message_id in sorted(missing):
        _say(f"no message {message_id} in {dlq_url}")
    _say(f"redrove {len(chosen)} message(s)")
    return 1 if missing else 0


# ---------------------------------------------------------------------------------------------------
# sync
# ---------------------------------------------------------------------------------------------------
def cmd_sync(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"dryRun": args.dry_run, "sweep": False, "sync": True}
    if args.sku:
        request["skus"] = args.sku
    return _run_offer_sync(
        args,
        request,
        "sync",
        show=lambda report, where: [f"{sync_line(report, skus=args.sku)} ({where})", *plan_lines(report)],
        problem=lambda result, _: sync_problem(result) or unmatched_skus(result, args.sku),
    )


def _run_offer_sync(
    args: argparse.Namespace,
    request: dict[str, Any],
    key: str,
    *,
    show: Callable[[dict[str, Any], str], list[str]],
    problem: Callable[[Any, Any], str | None],
) -> int:
    """Invoke the offer sync function and print its `key` report with `show` (report, where it ran);
    the exit code: 1 when the function failed or `problem` (result, report) names one."""
    target = Target.from_args(args)
    ok, result, log = _invoke_offer_sync(args, target, request)
    report = result.get(key) if ok and isinstance(result, dict) else None
    # stdout: lines for a person, or with --json the result alone (`| jq` works); stderr: problems.
    if args.json:
        _say(json.dumps(result, indent=2))
    elif isinstance(report, dict):
        for line in show(report, target.where):
            _say(line)
    if not ok:
        _note(f"error: the offer sync function failed: {_function_error(result)}{log}")
        return 1
    found = problem(result, report)
    if found is not None:
        _note(f"error: {found}{log}")
        return 1
    return 0


def _function_error(result: Any) -> str:
    if isinstance(result, dict) and ("errorType" in result or "errorMessage" in result):
        return f"{result.get('errorType')}: {result.get('errorMessage')}"
    return json.dumps(result)[:500]


def _invoke_offer_sync(
    args: argparse.Namespace, target: Target, request: dict[str, Any]
) -> tuple[bool, Any, str]:
    """Invoke the offer sync function with `request` (locally in a worker, its logs to the stack's log
    folder, or the deployed one): whether it succeeded, its result (or its error), and where its log is
    (" (its log: ...)", or "" for a deployed function: CloudWatch)."""
    if target.local is not None:
        stack = target.local
        template = load_template(args.template).with_parameters(
            stack.parameters, region=stack.region, stack_name=stack.stack_name
        )
        spec = template.function(args.function, stack.resolver(template))
        environment, _ = function_environment(spec, stack)
        log_path = _log_dir(stack, args.stack_file) / f"{args.function}.log"
        with FunctionWorker(spec, environment, log_path=log_path, region=stack.region) as worker:
            outcome = worker.invoke(request)
        shown = log_path.relative_to(REPO_ROOT) if log_path.is_relative_to(REPO_ROOT) else log_path
        return outcome.ok, (outcome.result if outcome.ok else outcome.error), f" (its log: {shown})"
    function_name = args.function_name or target.output(f"{args.function}Name")
    # A full sync may run up to the function's 15 minutes: wait that long, and never let boto3
    # re-invoke it on a client timeout (a second run would find the lock, or spend budget twice).
    lambda_client = boto3.client(
        "lambda",
        region_name=target.region,
        config=Config(read_timeout=910, connect_timeout=10, retries={"max_attempts": 1}),
    )
    response = lambda_client.invoke(FunctionName=function_name, Payload=json.dumps(request).encode())
    result = json.loads(response["Payload"].read() or b"null")
    return "FunctionError" not in response, result, ""


# ---------------------------------------------------------------------------------------------------
# reconcile
# ---------------------------------------------------------------------------------------------------
def cmd_reconcile(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"dryRun": args.dry_run, "sweep": False, "sync": False, "reconcile": True}
    return _run_offer_sync(
        args,
        request,
        "reconcile",
        show=lambda report, _: [format_differences(report)],
        problem=lambda _, report: reconcile_problem(report),
    )


def format_differences(report: dict[str, Any]) -> str:
    """The reconciliation report for a person: one line per difference, then the counts."""
    lines = []
    for drift in report.get("differences") or []:
        repair = drift.get("repair") or "report only"
        if report.get("dryRun") and drift.get("repair"):
            repair = f"would queue {repair}"
        status = drift.get("offergridStatus") or "unknown"
        lines.append(
            f"{drift.get('kind')}: item {drift.get('itemId')} is {status} at "
            f"Offergrid; our decision {drift.get('ourDecision') or 'none'}; work order "
            f"{drift.get('workOrder') or 'none'} -> {repair} ({drift.get('detail')})"
        )
    if not lines:
        lines.append("no differences")
    counts = ", ".join(f"{kind} {n}" for kind, n in (report.get("drift") or {}).items())
    listed = sum(int(n) for n in (report.get("listed") or {}).values())
    lines.append(
        f"listed {listed} items, {report.get('openWorkOrders', 0)} open work orders, "
        f"{report.get('calls', '?')} of {report.get('maxCalls', '?')} calls; {counts}; "
        f"repairs queued {report.get('repairsQueued', 0)}"
        + (" (dry run: nothing queued)" if report.get("dryRun") else "")
    )
    return "\n".join(lines)


def reconcile_problem(report: Any) -> str | None:
    """Why the reconciliation did not run to its end (None when it did)."""
    if not isinstance(report, dict):
        return "the answer holds no reconciliation report"
    if report.get("error"):
        return f"reconciliation failed: {report['error']}"
    if report.get("incomplete"):
        return f"reconciliation stopped early: {report['incomplete']}"
    if report.get("failed"):
        return f"{report['failed']} repair(s) could not be queued or items read"
    return None


def unmatched_skus(result: Any, skus: list[str] | None) -> str | None:
    """`--sku` that matched nothing: no catalog row and nothing planned (not even `unchanged`)."""
    sync = result.get("sync") if isinstance(result, dict) else None
    if not skus or not isinstance(sync, dict):
        return None
    rows = int(sync.get("rowsValid") or 0) + int(sync.get("rowsInvalid") or 0)
    planned = sum(int(n) for n in (sync.get("planned") or {}).values())
    if rows == 0 and planned == 0:
        return (
            f"--sku {' '.join(skus)} matched nothing: no such SKU in the catalog ({sync.get('source')}) "
            "nor among Offergrid's offers; nothing was synced"
        )
    if rows < len(set(skus)):
        _note(f"warning: only {rows} of the {len(set(skus))} SKUs given are in the catalog")
    return None


SYNC_OK_STATUSES: Final = frozenset({"complete", "dry_run"})


def sync_problem(result: Any) -> str | None:
    """Why the sync function's answer is not a successful run (None when it is).

    Success is a sync report whose `status` is `complete` or `dry_run` and that lists no failed
    write. `incomplete` (stopped early), `locked` (another run holds the lock) and `failed` (the
    catalog or the offers could not be read) are not: the run did not make the offers equal.
    """
    sync = result.get("sync") if isinstance(result, dict) else None
    if not isinstance(sync, dict):
        return "the answer holds no sync report"
    status = sync.get("status")
    if status not in SYNC_OK_STATUSES:
        reason = sync.get("stopReason")
        return f"offer sync status is {status!r}" + (f": {reason}" if reason else "")
    failed = len(sync.get("failures") or []) or int(sync.get("failed") or 0)
    if failed:
        return f"offer sync {status} with {failed} failed write(s)"
    return None


# ---------------------------------------------------------------------------------------------------
# archive, trace (devtools/archive_replay.py, devtools/trace.py)
# ---------------------------------------------------------------------------------------------------
def cmd_archive(args: argparse.Namespace) -> int:
    target = Target.from_args(args)
    report = archive_replay.run(args, target)
    if args.json:
        _say(json.dumps(report.to_dict(), indent=2))
    else:
        for delivery in report.deliveries:
            _say(delivery.line())
        _say(report.summary())
    if not report.deliveries:
        _note("error: no archived delivery of the window matches (check --from/--to, UTC, and the filters)")
    return 0 if report.ok else 1


def cmd_trace(args: argparse.Namespace) -> int:
    target = Target.from_args(args)
    log_dir = _log_dir(target.local, args.stack_file) if target.local is not None else None
    found = trace.run(args, target, log_dir=log_dir)
    if args.json:
        _say(json.dumps(found.to_dict(), indent=2, default=str))
    else:
        for line in found.lines():
            _say(line)
    if not found.known:
        _note(f"error: nothing in {target.where} knows item {args.item_id} (its id? --from/--to?)")
        return 1
    return 0


# ---------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m devtools.replay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--stack-file",
        type=Path,
        default=DEFAULT_STACK_FILE,
        help="the local stack's endpoints (default .local/stack.json, written by `make local`)",
    )
    where.add_argument("--stack-name", help="a deployed CloudFormation stack: targets come from its Outputs")
    where.add_argument("--region", help="AWS region of --stack-name (default: AWS_REGION)")
    where.add_argument(
        "--json",
        action="store_true",
        help="stdout: one JSON document (for jq) instead of lines for a person; problems on stderr",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    webhook = sub.add_parser(
        "webhook",
        parents=[where],
        help="sign and POST stored webhooks",
        description="Sign (freshly) and POST stored webhooks: API Gateway events (their "
        "body is sent as is) or bare payloads (sent as compact JSON).",
    )
    webhook.add_argument("files", nargs="*", type=Path, help="default: every events/webhook_*.json")
    webhook.add_argument("--url", help="POST here (default: the stack's WebhookUrl output)")
    secret = webhook.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret-id", help="Secrets Manager secret to sign with (default: WebhookSecretArn output)"
    )
    secret.add_argument(
        "--secret-env", metavar="VAR", help="sign with the value of this environment variable"
    )
    secret.add_argument(
        "--keep-signature",
        action="store_true",
        help="send each event's own signature header instead of signing fresh",
    )
    webhook.add_argument("--timeout", type=float, default=30.0)
    webhook.add_argument(
        "--wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="local stack: wait this long for the order processor to handle what was queued, then "
        "print what it made of each item the webhooks name (0 = do not wait; default 30)",
    )
    webhook.set_defaults(handler=cmd_webhook)

    send = sub.add_parser("send", parents=[where], help="send a message straight to the orders queue")
    send.add_argument("--body", help="message body (JSON), or @file.json")
    send.add_argument(
        "--from-event", type=Path, help="send the records (body + attributes) of an SQS event file"
    )
    send.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a String message attribute (repeatable)",
    )
    send.add_argument("--queue-url", help="default: the stack's OrdersQueueUrl output")
    send.set_defaults(handler=cmd_send)

    dlq = sub.add_parser("dlq", help="list, show and redrive dead-lettered messages")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    for name, text in (
        ("list", "list the DLQ's messages"),
        ("show", "print one message"),
        ("redrive", "move messages back to the orders queue"),
    ):
        command = dlq_sub.add_parser(name, parents=[where], help=text, description=text)
        command.add_argument("--dlq-url", help="default: the stack's OrdersDeadLetterQueueUrl output")
        command.add_argument("--max", type=int, default=1000, help="look at this many messages at most")
        if name == "show":
            command.add_argument("message_id")
        if name == "redrive":
            command.add_argument(
                "--message-id", action="append", help="only these (repeatable; default: all)"
            )
            command.add_argument("--queue-url", help="default: the stack's OrdersQueueUrl output")
        command.set_defaults(handler=cmd_dlq)

    sync = sub.add_parser(
        "sync",
        parents=[where],
        help="re-run the offer sync (some SKUs, or a dry run)",
        description="Invoke the offer sync function (locally in a worker, or the deployed one).",
    )
    sync.add_argument(
        "--sku", action="append", help="only these SKUs (repeatable; default: the whole catalog)"
    )
    sync.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    _function_arguments(sync)
    sync.set_defaults(handler=cmd_sync)

    rec = sub.add_parser(
        "reconcile",
        parents=[where],
        help="run the drift reconciliation (--dry-run: print the differences, repair nothing)",
        description="Invoke the offer sync function's reconciliation (docs/runbooks/reconcile.md) and "
        "print each difference between Offergrid and the work orders, and what was (or would be) repaired.",
    )
    rec.add_argument("--dry-run", action="store_true", help="print the differences, queue no repair")
    _function_arguments(rec)
    rec.set_defaults(handler=cmd_reconcile)

    # The commands whose module documents and parses them (its docstring is the command's help).
    for name, module, text, handler in (
        (
            "archive",
            archive_replay,
            "re-deliver a time window of archived webhook deliveries through the orders queue",
            cmd_archive,
        ),
        (
            "trace",
            trace,
            "one order item's story: deliveries, queue messages, decision, work order, Offergrid's view",
            cmd_trace,
        ),
    ):
        command = sub.add_parser(
            name,
            parents=[where],
            help=text,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(handler=handler)
    return parser


def _function_arguments(command: argparse.ArgumentParser) -> None:
    """Which offer sync function a command invokes: the local one of the template, or a deployed one."""
    command.add_argument(
        "--function", default=DEFAULT_SYNC_FUNCTION, help="logical id (default OfferSyncFunction)"
    )
    command.add_argument(
        "--function-name", help="deployed function name (default: the <function>Name output)"
    )
    command.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except BrokenPipeError:
        raise  # the reader went away: quiet_on_closed_pipe
    except (ReplayError, TemplateError, FileError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_NOT_RUN
    except (ClientError, BotoCoreError) as error:
        print(f"error: AWS call failed: {error}", file=sys.stderr)
        return EXIT_NOT_RUN
    return code


if __name__ == "__main__":
    sys.exit(quiet_on_closed_pipe(main))
