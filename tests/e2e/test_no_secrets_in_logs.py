"""No secret, API key or webhook signature ever reaches a log, a recorded call or a tool's output.

One flow through the local stack (moto server + the Offergrid fake + the real handlers in their
workers, each writing its stdout/stderr to a log file) with distinctive, known secret values:

- an offer sync (API key in use);
- signed `order.created` webhooks over HTTP, one signed with a wrong secret (401), the queue drained;
- the API key rotated at Offergrid and in Secrets Manager while the processor still caches the old
  one (a 401, the forced refresh, the retry), then a provider status update pushed;
- the webhook secret rotated to `{"current", "previous"}` and a cancellation signed with the new one;
- the replay CLI (webhook, sync dry run, DLQ list) printing to stdout.

Then every captured text is searched for every secret value and every signature sent. The sanity
checks (the logs mention the item ids, each function logged) make an empty log dir fail the test.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from devtools import replay
from devtools.local.stack import LocalEnvironment
from devtools.offergrid_fake import SIGNATURE_HEADER, OffergridFake, compact_json, deliver_webhook, sign

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = ("WebhookIngressFunction", "OrderProcessorFunction", "OfferSyncFunction")

# Distinctive values: a hit can only be a leak, never a coincidence.
OLD_API_KEY = "zq-old-apikey-7f3c9e1b5d2a"
NEW_API_KEY = "zq-new-apikey-4a8b2c6d0e1f"
WEBHOOK_SECRET = "zq-whsec-current-9d1e7a3f5b"
NEW_WEBHOOK_SECRET = "zq-whsec-rotated-1b3d5f7a9c"
WRONG_WEBHOOK_SECRET = "zq-whsec-wrong-2c4e6a8b0d"
SECRETS = (OLD_API_KEY, NEW_API_KEY, WEBHOOK_SECRET, NEW_WEBHOOK_SECRET, WRONG_WEBHOOK_SECRET)
US_ADDRESS = {
    "street": "1 Market St",
    "city": "San Francisco",
    "state": "CA",
    "zipCode": "94105",
    "country": "US",
}


@dataclass
class Flow:
    env: LocalEnvironment
    log_dir: Path
    signatures: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)

    @property
    def fake(self) -> OffergridFake:
        assert self.env.fake is not None
        return self.env.fake

    def client(self, service: str) -> Any:
        assert self.env.stack is not None
        return self.env.stack.client(service)

    def output(self, name: str) -> str:
        assert self.env.stack is not None
        return self.env.stack.outputs[name]

    def deliver(self, payload: dict[str, Any], secret: str) -> int:
        """POST a webhook signed like Offergrid does; the signature sent is remembered."""
        body = compact_json(payload)
        signature = sign(body, secret)
        self.signatures.append(signature)
        status, _ = deliver_webhook(
            self.env.api_url("WebhookIngressFunction"),
            {},
            "",
            raw_body=body,
            sign_body=False,
            headers={SIGNATURE_HEADER: signature},
        )
        return status

    def cli(self, *argv: str) -> int:
        """Run the replay CLI in this process, keeping what it printed."""
        assert self.env.stack_file is not None
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            command, *rest = argv
            if command == "dlq":
                sub, *rest = rest
                code = replay.main([command, sub, "--stack-file", str(self.env.stack_file), *rest])
            else:
                code = replay.main([command, "--stack-file", str(self.env.stack_file), *rest])
        self.outputs += [out.getvalue(), err.getvalue()]
        return code

    def captured(self) -> dict[str, str]:
        """Every text the flow produced: function logs, the fake's records, the CLI's output."""
        texts = {
            str(path.relative_to(self.log_dir)): path.read_text()
            for path in self.log_dir.rglob("*")
            if path.is_file()
        }
        texts["fake calls"] = json.dumps([call.to_dict() for call in self.fake.calls], default=str)
        texts["fake state"] = json.dumps(self.fake.state(), default=str)
        texts["fake deliveries"] = json.dumps(self.fake.webhook_deliveries, default=str)
        texts["cli output"] = "\n".join(self.outputs)
        return texts


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    root = tmp_path_factory.mktemp("no-secrets")
    fake = OffergridFake(api_keys=(OLD_API_KEY,), time_scale=60)
    env = LocalEnvironment(
        fake=fake, log_dir=root / "logs", stack_file=root / "stack.json", retry_delay=0.0, time_scale=60
    )
    env.start(warm=False)
    flow = Flow(env, root / "logs")
    try:
        run_flow(flow)
    finally:
        env.stop()  # flush and close every worker's log before the assertions read them
        fake.stop()
    return flow


def run_flow(flow: Flow) -> None:
    secrets = flow.client("secretsmanager")
    # Given the stack's secrets hold the known values (before any worker has read them)
    secrets.put_secret_value(SecretId=flow.output("ApiKeySecretArn"), SecretString=OLD_API_KEY)
    secrets.put_secret_value(SecretId=flow.output("WebhookSecretArn"), SecretString=WEBHOOK_SECRET)
    catalog = urlsplit(f"s3://{flow.output('CatalogBucketName')}/catalog.json")
    flow.client("s3").put_object(
        Bucket=catalog.netloc,
        Key=catalog.path.lstrip("/"),
        Body=(REPO / "samples" / "catalog.json").read_bytes(),
    )

    # An offer sync (one SKU: the rate budget runs in real time)
    run = flow.env.invoke(
        "OfferSyncFunction", {"dryRun": False, "sync": True, "sweep": False, "skus": ["NET-FIBER-300"]}
    )
    assert run.ok, run.error

    # Signed order.created webhooks; the queue drained
    for _ in range(2):
        flow.items.append(flow.fake.add_order_item(status="pending", serviceAddress=US_ADDRESS)["id"])
    statuses = [
        flow.deliver(flow.fake.webhook_payload("order.created", item), WEBHOOK_SECRET) for item in flow.items
    ]
    assert all(200 <= status < 300 for status in statuses), statuses
    flow.env.drain(timeout=60)
    assert [flow.fake.order_items[i]["status"] for i in flow.items] == ["accepted", "accepted"]

    # The API key rotated at Offergrid while the processor caches the old one: 401, refresh, retry
    flow.fake.add_api_key(NEW_API_KEY)
    secrets.put_secret_value(
        SecretId=flow.output("ApiKeySecretArn"), SecretString=json.dumps({"apiKey": NEW_API_KEY})
    )
    flow.fake.revoke_api_key(OLD_API_KEY)
    appointment = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()
    flow.client("events").put_events(
        Entries=[
            {
                "EventBusName": flow.output("ProviderEventBusName"),
                "Source": "acme.fulfilment",
                "DetailType": "workorder.status_changed",
                "Detail": json.dumps(
                    {
                        "offergridItemId": flow.items[0],
                        "status": "scheduled",
                        "appointmentDate": appointment,
                        "id": "WO-1",
                    }
                ),
            }
        ]
    )
    flow.env.drain(timeout=60)
    assert flow.fake.order_items[flow.items[0]]["status"] == "scheduled"
    assert any(not call.api_key_valid for call in flow.fake.calls), "the rotation caused no 401"

    # The webhook secret rotated: {"current", "previous"}; a cancellation signed with the new one
    secrets.put_secret_value(
        SecretId=flow.output("WebhookSecretArn"),
        SecretString=json.dumps({"current": NEW_WEBHOOK_SECRET, "previous": WEBHOOK_SECRET}),
    )
    payload = flow.fake.webhook_payload("order.cancelled", flow.items[1], reason="Customer moved")
    assert 200 <= flow.deliver(payload, NEW_WEBHOOK_SECRET) < 300
    flow.env.drain(timeout=60)
    assert flow.fake.order_items[flow.items[1]]["status"] == "cancelled"

    # A webhook signed with a wrong secret. After the rotation on purpose: on a mismatch the ingress
    # re-reads the secret at most once a minute, and that re-read is what picked up the rotation.
    rejected = flow.fake.webhook_payload("order.created", flow.items[0])
    assert flow.deliver(rejected, WRONG_WEBHOOK_SECRET) == 401

    # The operator's tools (the replay signs with the current secret from Secrets Manager)
    stored = REPO / "events" / "webhook_order_created.json"
    flow.signatures.append(sign(replay.webhook_body(json.loads(stored.read_text()))[0], NEW_WEBHOOK_SECRET))
    assert flow.cli("webhook", str(stored)) == 0
    assert flow.cli("sync", "--dry-run", "--sku", "NET-FIBER-300", "--json") == 0  # the whole report
    assert flow.cli("dlq", "list") == 0


@pytest.mark.slow
def test_the_flow_left_logs_to_search(flow: Flow):
    # Sanity: the search below is meaningful only if the functions did log what they did
    captured = flow.captured()
    for function_id in FUNCTIONS:
        assert captured.get(f"{function_id}.log", "").strip(), f"{function_id} logged nothing"
    logs = "\n".join(text for name, text in captured.items() if name.endswith(".log"))
    for item in flow.items:
        assert item in logs, f"the logs never mention {item}"
    assert '"status": "dry_run"' in captured["cli output"]  # the sync's whole report was printed
    assert len(flow.signatures) == 5


def needles(flow: Flow) -> dict[str, str]:
    """What must never appear: every secret value and every signature sent (hex, without prefix)."""
    found = {f"secret {value}": value for value in SECRETS}
    for signature in flow.signatures:
        found[f"signature {signature[:12]}..."] = signature.removeprefix("sha256=")
    return found


def find_leaks(captured: dict[str, str], searched: dict[str, str]) -> list[str]:
    return [
        f"{what} in {where}"
        for where, text in captured.items()
        for what, needle in searched.items()
        if needle in text
    ]


@pytest.mark.slow
def test_no_secret_or_signature_appears_anywhere(flow: Flow):
    assert find_leaks(flow.captured(), needles(flow)) == []


@pytest.mark.slow
def test_the_search_would_see_a_leak(flow: Flow):
    # A log line carrying the signature header as sent, and one carrying the API key in JSON
    captured = flow.captured()
    signature = flow.signatures[0]
    captured["OrderProcessorFunction.log"] += json.dumps({"headers": {SIGNATURE_HEADER: signature}})
    captured["cli output"] += json.dumps({"x-api-key": NEW_API_KEY})
    leaks = find_leaks(captured, needles(flow))
    assert len(leaks) == 2, leaks
