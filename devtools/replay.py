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

Where: the local stack started by `make local` (its endpoints in .local/stack.json; AWS calls go to
its moto server), or, with --stack-name, a deployed stack: URLs and queues come from the
CloudFormation stack's Outputs and AWS calls use your usual credentials (boto3 honours
AWS_ENDPOINT_URL, so the same works against any moto server). Every command exits non-zero when
something failed.
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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devtools.local.provision import LocalStack, LocalStackNotRunning
from devtools.local.runtime import REPO_ROOT, FunctionWorker
from devtools.local.stack import DEFAULT_STACK_FILE, DEFAULT_TEMPLATE, function_environment
from devtools.local.template import TemplateError, load_template
from devtools.offergrid_fake import SIGNATURE_HEADER, compact_json, deliver_webhook

EVENTS_DIR: Final = REPO_ROOT / "events"
WEBHOOK_URL_OUTPUT: Final = "WebhookUrl"
WEBHOOK_SECRET_OUTPUT: Final = "WebhookSecretArn"  # noqa: S105 - an output name, not a secret
QUEUE_URL_OUTPUT: Final = "OrdersQueueUrl"
DLQ_URL_OUTPUT: Final = "OrdersDeadLetterQueueUrl"
DEFAULT_SYNC_FUNCTION: Final = "OfferSyncFunction"
_VISIBILITY_WHILE_LISTING: Final = 30


class ReplayError(Exception):
    """A problem the user can fix (missing stack, output, secret, file); printed without a traceback."""


def _say(message: str) -> None:
    print(message, flush=True)


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------
# Where to replay: the local stack or a deployed one
# ---------------------------------------------------------------------------------------------------
@dataclass
class Target:
    outputs: dict[str, str]
    local: LocalStack | None = None
    stack_name: str | None = None
    region: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Target:
        if args.stack_name:
            region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            cloudformation = boto3.client("cloudformation", region_name=region)
            try:
                stack = cloudformation.describe_stacks(StackName=args.stack_name)["Stacks"][0]
            except (ClientError, BotoCoreError) as error:
                raise ReplayError(f"cannot read stack {args.stack_name}: {error}") from None
            outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
            return cls(outputs=outputs, stack_name=args.stack_name, region=region)
        try:
            local = LocalStack.load(args.stack_file)
        except LocalStackNotRunning as error:
            raise ReplayError(str(error)) from None
        return cls(outputs=dict(local.outputs), local=local, region=local.region)

    @property
    def where(self) -> str:
        return f"stack {self.stack_name}" if self.stack_name else "the local stack"

    def output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            raise ReplayError(
                f"{self.where} has no output {name!r} (outputs: {', '.join(self.outputs)})"
            ) from None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            if self.local is not None:
                self._clients[service] = self.local.client(service)
            else:
                self._clients[service] = boto3.client(service, region_name=self.region)  # type: ignore[call-overload]
        return self._clients[service]


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


def _created_item(raw: bytes) -> str | None:
    """The itemId of an `order.created` payload (flat or nested), else None."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("event") != "order.created":
        return None
    nested = payload.get("data")
    item = (nested if isinstance(nested, dict) else payload).get("itemId")
    return item if isinstance(item, str) else None


def _offergrid_items(fake_url: str) -> dict[str, str]:
    """itemId -> status, from the local Offergrid fake's control plane."""
    with urllib.request.urlopen(f"{fake_url}/_fake/state", timeout=5) as response:  # noqa: S310 - local
        state = json.loads(response.read())
    return {str(item["id"]): str(item["status"]) for item in state.get("orderItems", [])}


def _await_decisions(target: Target, item_ids: list[str], wait: float) -> None:
    """Local stack: wait (up to `wait` s) until the order processor decided each item, and say how."""
    fake_url = target.local.urls.get("offergrid") if target.local is not None else None
    if not item_ids or fake_url is None or wait <= 0:
        return
    deadline = time.monotonic() + wait
    undecided = set(item_ids)
    while True:
        statuses = _offergrid_items(fake_url)
        for item_id in sorted(undecided):
            status = statuses.get(item_id)
            if status is None:
                _say(f"{item_id}: not in the local Offergrid (seed it: docs/local.md#seeding-order-items)")
                undecided.discard(item_id)
            elif status not in UNDECIDED_STATUSES:
                _say(f"{item_id}: {status} (the order processor's decision, at the local Offergrid)")
                undecided.discard(item_id)
        if not undecided or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    for item_id in sorted(undecided):
        _say(
            f"{item_id}: still {statuses.get(item_id)} after {wait:g} s (order processing paused? "
            "see .local/logs/OrderProcessorFunction.log)"
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
    secret = None if args.keep_signature else _secret(args, target)
    files = _webhook_files(args.files)
    failures = 0
    created: list[str] = []
    for number, path in enumerate(files, start=1):
        raw, original_headers = webhook_body(json.loads(path.read_text(encoding="utf-8")))
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
        if ok and refusal is None and (item := _created_item(raw)) is not None:
            created.append(item)
        shown = answer.decode("utf-8", errors="replace")[:200]
        note = f"  (refused as this sample should be: {refusal})" if expected else ""
        if refusal is not None and not expected:
            note = f"  (this sample should be refused with {refusal})"
        _say(f"[{number}/{len(files)}] {path.name} -> {status or 'no answer'} {shown}{note}")
    _say(f"{len(files) - failures} as expected, {failures} not ({url})")
    _await_decisions(target, list(dict.fromkeys(created)), args.wait)
    return 1 if failures else 0


# Samples that exist to be refused: always sent as stored (a fresh signature would make the bad-
# signature sample valid) and counted as expected when refused with this status.
REFUSAL_SAMPLES: Final = {"webhook_bad_signature.json": 401, "webhook_malformed_body.json": 400}
UNDECIDED_STATUSES: Final = frozenset({"pending", "submitted_to_provider"})


# ---------------------------------------------------------------------------------------------------
# send
# ---------------------------------------------------------------------------------------------------
def _messages_to_send(args: argparse.Namespace) -> list[tuple[str, dict[str, str]]]:
    attributes = dict(pair.split("=", 1) for pair in args.attribute)
    if args.from_event:
        event = json.loads(args.from_event.read_text(encoding="utf-8"))
        records = event.get("Records") if isinstance(event, dict) else None
        if not records:
            raise ReplayError(f"{args.from_event}: not an SQS event (no Records)")
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
    body = Path(args.body[1:]).read_text(encoding="utf-8") if args.body.startswith("@") else args.body
    json.loads(body)  # refuse what the processor could never parse
    return [(body, attributes)]


def cmd_send(args: argparse.Namespace) -> int:
    target = Target.from_args(args)
    queue_url = args.queue_url or target.output(QUEUE_URL_OUTPUT)
    sqs = target.client("sqs")
    messages = _messages_to_send(args)
    for number, (body, attributes) in enumerate(messages, start=1):
        sent = sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=body,
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v
            },
        )
        _say(f"[{number}/{len(messages)}] sent {sent['MessageId']} to {queue_url}")
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
    for number, message in enumerate(chosen, start=1):
        attributes = {
            name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
            for name, value in (message.get("MessageAttributes") or {}).items()
        }
        sent = sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"], MessageAttributes=attributes)
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        message["_moved"] = True
        _say(f"[{number}/{len(chosen)}] {message['MessageId']} -> {queue_url} as {sent['MessageId']}")
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
    target = Target.from_args(args)
    # With --json, stdout carries the result's JSON only (`| jq` works); everything else is stderr.
    say = _note if args.json else _say
    say(f"offer sync on {target.where}: {json.dumps(request)}")
    ok, result = _invoke_offer_sync(args, target, request)
    print(json.dumps(result, indent=2), flush=True)
    if not ok:
        print("error: the offer sync function failed (see its error above)", file=sys.stderr)
        return 1
    problem = sync_problem(result) or unmatched_skus(result, args.sku)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


def _invoke_offer_sync(args: argparse.Namespace, target: Target, request: dict[str, Any]) -> tuple[bool, Any]:
    """Invoke the offer sync function with `request` (locally in a worker, or the deployed one):
    whether it succeeded, and its result (or its error)."""
    if target.local is not None:
        stack = target.local
        template = load_template(args.template).with_parameters(
            stack.parameters, region=stack.region, stack_name=stack.stack_name
        )
        spec = template.function(args.function, stack.resolver(template))
        environment, _ = function_environment(spec, stack)
        with FunctionWorker(spec, environment, log_path=None, region=stack.region) as worker:
            outcome = worker.invoke(request)
        ok, result = outcome.ok, (outcome.result if outcome.ok else outcome.error)
    else:
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
        ok = "FunctionError" not in response
    return ok, result


# ---------------------------------------------------------------------------------------------------
# reconcile
# ---------------------------------------------------------------------------------------------------
def cmd_reconcile(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"dryRun": args.dry_run, "sweep": False, "sync": False, "reconcile": True}
    target = Target.from_args(args)
    say = _note if args.json else _say
    say(f"reconciliation on {target.where}: {json.dumps(request)}")
    ok, result = _invoke_offer_sync(args, target, request)
    report = result.get("reconcile") if ok and isinstance(result, dict) else None
    if args.json or not isinstance(report, dict):
        print(json.dumps(result, indent=2), flush=True)
    else:
        print(format_differences(report), flush=True)
    if not ok:
        print("error: the offer sync function failed (see its error above)", file=sys.stderr)
        return 1
    problem = reconcile_problem(report)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


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
        help="local stack: wait this long for the order processor's decision on each order.created "
        "accepted, and print it (0 = do not wait; default 30)",
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
    sync.add_argument(
        "--function", default=DEFAULT_SYNC_FUNCTION, help="logical id (default OfferSyncFunction)"
    )
    sync.add_argument("--function-name", help="deployed function name (default: the <function>Name output)")
    sync.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    sync.add_argument(
        "--json", action="store_true", help="stdout: the result's JSON only (for jq); the rest on stderr"
    )
    sync.set_defaults(handler=cmd_sync)

    rec = sub.add_parser(
        "reconcile",
        parents=[where],
        help="run the drift reconciliation (--dry-run: print the differences, repair nothing)",
        description="Invoke the offer sync function's reconciliation (docs/runbooks/reconcile.md) and "
        "print each difference between Offergrid and the work orders, and what was (or would be) repaired.",
    )
    rec.add_argument("--dry-run", action="store_true", help="print the differences, queue no repair")
    rec.add_argument(
        "--function", default=DEFAULT_SYNC_FUNCTION, help="logical id (default OfferSyncFunction)"
    )
    rec.add_argument("--function-name", help="deployed function name (default: the <function>Name output)")
    rec.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    rec.add_argument("--json", action="store_true", help="stdout: the result's JSON only (for jq)")
    rec.set_defaults(handler=cmd_reconcile)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except (ReplayError, TemplateError, OSError, json.JSONDecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"error: AWS call failed: {error}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
