"""`make smoke ENV=dev|prod|local`: check a deployed stack end to end without touching a real order.

    .venv/bin/python -m devtools.smoke --env dev                  # the stack of samconfig.toml's [dev]
    .venv/bin/python -m devtools.smoke --env local                # the stack `make local` runs
    .venv/bin/python -m devtools.smoke --env prod --draft-offer   # and a draft offer, created and deleted

Checks, in order (each one line, `ok` / `FAIL` / `skip`; exit 1 when one failed):

1. **outputs**: every output of template.yaml is on the stack.
2. **alarms**: every alarm of template.yaml exists (those in ALARM are named).
3. **webhook**: a delivery signed with the stack's webhook secret, of the deploy-check event type the
   processor keeps but does not act on (functions/deploy_hook/app.py, docs/decisions.md#2), is
   answered 200 at the `WebhookUrl`...
4. **queue**: ...and reaches the queue: the order processor took it from there and kept it (its
   idempotency record for the delivery's dedup key is COMPLETED) -- unless processing is paused.
5. **processor**: the order processor's invocations of the last 30 minutes had no errors (AWS/Lambda).
6. **offergrid**: the API key works: one page of pending order items (one GET).
7. **offer sync**: a dry run of the offer sync plans (it writes nothing).
8. **draft offer** (`--draft-offer`, make's `DRAFT_OFFER=1`): an offer in status `draft` (resellers
   never see one) is created, read back and deleted, as the Offergrid guide advises for tests.

Against a deployed stack the calls are made with this shell's AWS credentials (none: one line saying how
to check); against `make local` the same calls go to its moto server and its local Lambda API.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import boto3
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemNotFoundError
from aws_lambda_powertools.utilities.idempotency.persistence.dynamodb import DynamoDBPersistenceLayer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devtools.credentials import CredentialsProblem, caller_identity
from devtools.local.provision import LocalStack, LocalStackNotRunning, aws_client
from devtools.local.runtime import REPO_ROOT
from devtools.local.stack import DEFAULT_STACK_FILE, DEFAULT_TEMPLATE, LAMBDA_URL
from devtools.local.template import Template, TemplateError, load_template
from devtools.replay import sync_problem
from functions.deploy_hook.app import deploy_check_payload, signed_delivery
from offergrid_integration.contract import DEPLOY_CHECK_EVENT, dedup_key_for, normalise_payload
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.offergrid.errors import OffergridError
from offergrid_integration.offergrid.models import (
    OfferCategory,
    OfferCreate,
    OfferStatus,
    OrderItemStatus,
    PricingType,
)
from offergrid_integration.orders.processor import IDEMPOTENCY_KEY_PREFIX
from offergrid_integration.secrets import parse_api_key, parse_webhook_secrets

SAMCONFIG: Final = REPO_ROOT / "samconfig.toml"
LOCAL_ENV: Final = "local"
PROCESSED_WAIT_SECONDS: Final = 60.0
ERROR_WINDOW: Final = timedelta(minutes=30)
# A dry run of a large catalog may take the function's whole 15 minutes: wait that long, never retry.
SYNC_READ_TIMEOUT_SECONDS: Final = 910


class SmokeError(Exception):
    """The stack cannot be examined at all (no stack, no credentials): one `error:` line, exit 2."""


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | FAIL | skip
    detail: str

    def line(self) -> str:
        return f"  {self.status:<5} {self.name}: {self.detail}"


# ---------------------------------------------------------------------------------------------------
# What is examined: a deployed stack (samconfig.toml's environment) or the local stack
# ---------------------------------------------------------------------------------------------------
@dataclass
class Stack:
    name: str
    region: str
    outputs: dict[str, str]
    parameters: dict[str, str]
    client: Callable[[str], Any]
    who: str
    _clients: dict[str, Any] = field(default_factory=dict)

    def aws(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.client(service)
        return self._clients[service]

    def output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            raise SmokeError(
                f"stack {self.name} has no output {name} (deployed from an older template?)"
            ) from None


def deployed_stack(env: str) -> Stack:
    config = tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))
    section = config.get(env) if env != "default" else None
    if not isinstance(section, dict) or "deploy" not in section:
        known = [name for name, value in config.items() if isinstance(value, dict) and name != "default"]
        raise SmokeError(f"usage: make smoke ENV={'|'.join([*known, LOCAL_ENV])} (got ENV='{env}')")
    settings = {**section.get("global", {}).get("parameters", {}), **section["deploy"]["parameters"]}
    name, region = str(settings["stack_name"]), str(settings.get("region", ""))
    who = caller_identity(region, purpose=f"make smoke ENV={env}")
    session = boto3.session.Session(region_name=region)
    try:
        described = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    except (ClientError, BotoCoreError) as error:
        raise SmokeError(f"cannot read stack {name} in {region}: {error}") from None

    def client(service: str) -> Any:
        if service == "lambda":  # a dry run may take minutes; never invoke twice on a timeout
            config = Config(read_timeout=SYNC_READ_TIMEOUT_SECONDS, retries={"max_attempts": 1})
            return session.client("lambda", config=config)
        return session.client(service)  # type: ignore[call-overload]

    return Stack(
        name=name,
        region=region,
        outputs={o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])},
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])},
        client=client,
        who=f"as {who.arn}",
    )


def local_stack(stack_file: Path) -> Stack:
    try:
        local = LocalStack.load(stack_file)
    except LocalStackNotRunning as error:
        raise SmokeError(str(error)) from None

    def client(service: str) -> Any:
        if service == "lambda":
            return aws_client("lambda", local.urls[LAMBDA_URL], local.region)
        return local.client(service)

    if LAMBDA_URL not in local.urls:
        raise SmokeError(f"the local stack in {stack_file} serves no Lambda API: restart it with make local")
    return Stack(
        name=local.stack_name,
        region=local.region,
        outputs=dict(local.outputs),
        parameters=dict(local.parameters),
        client=client,
        who=f"local ({local.endpoint_url})",
    )


# ---------------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------------
def check_outputs(stack: Stack, template: Template) -> Check:
    expected = [
        name
        for name, output in template.outputs.items()
        if output.get("Condition") is None or template.condition(str(output["Condition"]))
    ]
    missing = [name for name in expected if name not in stack.outputs]
    if missing:
        return Check("outputs", "FAIL", f"missing {', '.join(missing)} (deployed from another template?)")
    return Check("outputs", "ok", f"{len(expected)} of {len(expected)} present")


class _ParametersOnly:
    def ref(self, logical_id: str) -> Any:
        raise TemplateError(f"an alarm name refers to resource {logical_id}")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        raise TemplateError(f"an alarm name refers to resource {logical_id}")


def expected_alarm_names(template: Template) -> list[str]:
    return [
        str(template.resolve(resource["Properties"]["AlarmName"], _ParametersOnly()))
        for logical_id, resource in template.active_resources()
        if resource.get("Type") == "AWS::CloudWatch::Alarm"
    ]


def check_alarms(stack: Stack, template: Template) -> Check:
    expected = expected_alarm_names(template)
    cloudwatch = stack.aws("cloudwatch")
    found: dict[str, str] = {}
    for start in range(0, len(expected), 100):
        answer = cloudwatch.describe_alarms(AlarmNames=expected[start : start + 100], MaxRecords=100)
        for alarm in [*answer.get("MetricAlarms", []), *answer.get("CompositeAlarms", [])]:
            found[alarm["AlarmName"]] = alarm.get("StateValue", "")
    missing = [name for name in expected if name not in found]
    if missing:
        return Check("alarms", "FAIL", f"missing {', '.join(missing)}")
    firing = sorted(name for name, state in found.items() if state == "ALARM")
    state = f"in ALARM: {', '.join(firing)} (see docs/runbooks/README.md)" if firing else "none in ALARM"
    return Check("alarms", "ok", f"{len(expected)} of {len(expected)} present, {state}")


def _webhook_secret(stack: Stack) -> str:
    secret_id = stack.output("WebhookSecretArn")
    raw = str(stack.aws("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    return parse_webhook_secrets(raw, secret_id=secret_id)[0]


def deliver(url: str, body: bytes, headers: dict[str, str], *, timeout: float = 30.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - the stack's URL
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def check_webhook(stack: Stack, payload: dict[str, Any]) -> Check:
    body, headers = signed_delivery(payload, _webhook_secret(stack))
    url = stack.output("WebhookUrl")
    try:
        status, answer = deliver(url, body, headers)
    except OSError as error:
        return Check("webhook", "FAIL", f"no answer from {url}: {error}")
    if status != 200:
        shown = answer.decode("utf-8", errors="replace")[:120]
        return Check("webhook", "FAIL", f"answered {status} {shown}, expected 200 ({url})")
    return Check("webhook", "ok", f"a signed {DEPLOY_CHECK_EVENT} delivery answered 200 ({url})")


def check_queue(stack: Stack, payload: dict[str, Any], *, wait: float) -> Check:
    """The processor kept the delivery's message: its idempotency record for the dedup key is COMPLETED."""
    if stack.parameters.get("OrderProcessingEnabled", "true").lower() == "false":
        return Check(
            "queue", "skip", "order processing is paused (OrderProcessingEnabled=false): the message waits"
        )
    dedup_key = dedup_key_for(normalise_payload(payload))
    persistence = DynamoDBPersistenceLayer(
        table_name=stack.output("IdempotencyTableName"), boto3_client=stack.aws("dynamodb")
    )
    # The processor's idempotency: keyed on the message's dedup key (orders/processor.py).
    persistence.configure(IdempotencyConfig(event_key_jmespath="dedupKey"), key_prefix=IDEMPOTENCY_KEY_PREFIX)
    started = time.monotonic()
    while True:
        try:
            record = persistence.get_record({"dedupKey": dedup_key})
        except IdempotencyItemNotFoundError:
            record = None
        if record is not None and record.status == "COMPLETED":
            outcome = json.loads(record.response_data or "{}").get("decision")
            took = time.monotonic() - started
            return Check(
                "queue", "ok", f"queued, then kept by the order processor ({outcome}) in {took:.1f} s"
            )
        if time.monotonic() - started >= wait:
            state = record.status if record is not None else "no record"
            return Check(
                "queue",
                "FAIL",
                f"the order processor had not kept {dedup_key} after {wait:g} s ({state}): see its logs",
            )
        time.sleep(0.5)


def check_processor_errors(stack: Stack, *, now: datetime | None = None) -> Check:
    function = stack.output("OrderProcessorFunctionName")
    end = (now or datetime.now(UTC)) + timedelta(minutes=1)
    queries = [
        {
            "Id": metric.lower(),
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/Lambda",
                    "MetricName": metric,
                    "Dimensions": [{"Name": "FunctionName", "Value": function}],
                },
                "Period": int(ERROR_WINDOW.total_seconds()) + 60,
                "Stat": "Sum",
            },
        }
        for metric in ("Invocations", "Errors")
    ]
    answer = stack.aws("cloudwatch").get_metric_data(
        MetricDataQueries=queries, StartTime=end - ERROR_WINDOW - timedelta(minutes=1), EndTime=end
    )
    sums = {result["Id"]: sum(result.get("Values", [])) for result in answer["MetricDataResults"]}
    invocations, errors = int(sums.get("invocations", 0)), int(sums.get("errors", 0))
    window = f"{int(ERROR_WINDOW.total_seconds() // 60)} min"
    if errors:
        return Check(
            "processor", "FAIL", f"{errors} of {invocations} invocations in the last {window} failed"
        )
    return Check("processor", "ok", f"{invocations} invocations in the last {window}, no error")


def offergrid_client(stack: Stack) -> OffergridClient:
    secret_id = stack.output("ApiKeySecretArn")
    raw = str(stack.aws("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    key = parse_api_key(raw, secret_id=secret_id)
    return OffergridClient(
        base_url=stack.parameters.get("OffergridApiUrl") or "https://api.offergrid.io",
        api_key=lambda *, force_refresh=False: key,
        max_retries=1,
    )


def check_offergrid(client: OffergridClient) -> Check:
    try:
        page = next(iter(client.list_order_pages(OrderItemStatus.PENDING)), [])
    except OffergridError as error:
        return Check("offergrid", "FAIL", f"{type(error).__name__}: {error} (the key in ApiKeySecretArn?)")
    return Check("offergrid", "ok", f"the API key read a page of pending order items ({len(page)} on it)")


def check_offer_sync(stack: Stack) -> Check:
    request = {"dryRun": True, "sweep": False, "sync": True}
    response = stack.aws("lambda").invoke(
        FunctionName=stack.output("OfferSyncFunctionName"),
        Qualifier="live",
        Payload=json.dumps(request).encode("utf-8"),
    )
    raw = response["Payload"].read()
    result: Any = json.loads(raw) if raw else None
    if "FunctionError" in response:
        error = result.get("errorType") if isinstance(result, dict) else response["FunctionError"]
        return Check("offer sync", "FAIL", f"the dry run failed: {error}")
    problem = sync_problem(result)
    if problem is not None:
        return Check("offer sync", "FAIL", problem)
    planned = result["sync"].get("planned") or {}
    shown = ", ".join(f"{kind} {count}" for kind, count in planned.items() if count) or "nothing to change"
    return Check("offer sync", "ok", f"a dry run planned: {shown} (rows {result['sync'].get('rowsValid')})")


def check_draft_offer(client: OffergridClient) -> Check:
    sku = f"SMOKE-{uuid.uuid4().hex[:12].upper()}"
    draft = OfferCreate(
        name=f"offergrid-integration smoke test {sku}",
        category=OfferCategory.OTHER,
        sku=sku,
        status=OfferStatus.DRAFT,
        pricing_type=PricingType.FIXED,
        monthly_price=0.0,
        description="Created and deleted by make smoke DRAFT_OFFER=1; resellers never see a draft.",
    )
    offer_id: str | None = None
    try:
        created = client.create_offer(draft)
        offer_id = created.id if created is not None else _offer_id_by_sku(client, sku)
        if offer_id is None:
            return Check("draft offer", "FAIL", f"created {sku}, but no offer has that SKU")
        read = client.get_offer(offer_id)
        if read.sku != sku or read.status != OfferStatus.DRAFT:
            return Check("draft offer", "FAIL", f"read back {offer_id}: sku {read.sku}, status {read.status}")
        client.delete_offer(offer_id)
        offer_id = None
        return Check("draft offer", "ok", f"{sku} created as a draft, read back and deleted")
    except OffergridError as error:
        return Check("draft offer", "FAIL", f"{type(error).__name__}: {error}")
    finally:
        if offer_id is not None:  # never leave the draft behind when a step after its creation failed
            try:
                client.delete_offer(offer_id)
            except OffergridError:
                print(f"warning: could not delete the draft offer {offer_id} ({sku}): delete it by hand")


def _offer_id_by_sku(client: OffergridClient, sku: str) -> str | None:
    return next((offer.id for offer in client.list_offers() if offer.sku == sku), None)


# ---------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------
def run(stack: Stack, template: Template, *, draft_offer: bool, wait: float) -> Iterator[Check]:
    yield check_outputs(stack, template)
    yield check_alarms(stack, template)
    payload = deploy_check_payload(str(uuid.uuid4()))
    webhook = check_webhook(stack, payload)
    yield webhook
    if webhook.status == "ok":
        yield check_queue(stack, payload, wait=wait)
    else:
        yield Check("queue", "skip", "the delivery was not answered 200")
    yield check_processor_errors(stack)
    client = offergrid_client(stack)
    yield check_offergrid(client)
    yield check_offer_sync(stack)
    if draft_offer:
        yield check_draft_offer(client)
    else:
        yield Check(
            "draft offer", "skip", "DRAFT_OFFER=1 creates a draft offer, reads it back and deletes it"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m devtools.smoke",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env", default="", help="an environment of samconfig.toml, or local (make local)")
    parser.add_argument(
        "--draft-offer", action="store_true", help="also create, read back and delete a draft"
    )
    parser.add_argument(
        "--stack-file", type=Path, default=DEFAULT_STACK_FILE, help="--env local: its stack file"
    )
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument(
        "--wait",
        type=float,
        default=PROCESSED_WAIT_SECONDS,
        metavar="SECONDS",
        help="how long the order processor may take to keep the test delivery (default 60)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        stack = local_stack(args.stack_file) if args.env == LOCAL_ENV else deployed_stack(args.env)
        base = load_template(args.template)
        declared = base.document.get("Parameters") or {}
        values = {name: value for name, value in stack.parameters.items() if name in declared}
        template = base.with_parameters(values, region=stack.region, stack_name=stack.name)
        print(f"smoke test of {stack.name} ({stack.region}), {stack.who}", flush=True)
        checks = []
        for check in run(stack, template, draft_offer=args.draft_offer, wait=args.wait):
            print(check.line(), flush=True)
            checks.append(check)
    except (SmokeError, CredentialsProblem, TemplateError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"error: AWS call failed: {error}", file=sys.stderr)
        return 2
    failed = [check.name for check in checks if check.status == "FAIL"]
    passed = sum(check.status == "ok" for check in checks)
    print(
        f"smoke {stack.name}: {passed} ok, {len(failed)} failed"
        + (f" ({', '.join(failed)})" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
