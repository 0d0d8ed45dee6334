"""What the offer sync's init builds (issue 12: its cold start), in a fresh interpreter, as Lambda runs
it (the runtime built at import): not the reconciliation's modules, nor the orders queue's message
model, nor the order records' validators, nor an SQS client or the DynamoDB resource; a scheduled run
that needs them makes them then (tests/integration/test_offer_sync_handler.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
import app
from offergrid_integration import aws
from offergrid_integration.orders.ports import OrderRecord

made = aws.clients().__dict__  # the cached properties made so far
services = ("dynamodb", "tables", "s3", "secretsmanager", "events", "ssm")
print(json.dumps({
    "modules": sorted(m for m in sys.modules if m.startswith("offergrid_integration")),
    "runtime": type(app.get_runtime()).__name__,
    "order_record_built": OrderRecord.__pydantic_complete__,
    "clients": sorted(name for name in services if name in made),
}))
"""


def test_the_sync_init_leaves_what_a_run_may_not_need_to_that_run() -> None:
    environ = {
        **os.environ,
        "AWS_LAMBDA_FUNCTION_NAME": "offer-sync",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "OFFERGRID_API_KEY_SECRET": "offergrid/api-key",
        "OFFERGRID_API_URL": "https://api.offergrid.example",
        "CATALOG_SOURCE_URI": "s3://provider-catalog/catalog.json",
        "SYNC_STATE_TABLE": "offer-sync-state",
        "RATE_LIMIT_TABLE": "offergrid-rate-limit",
        "ORDERS_QUEUE_URL": "http://127.0.0.1:5000/123456789012/orders",
        "ORDERS_TABLE": "orders",
        "WORK_ORDERS_TABLE": "work-orders",
        "PYTHONPATH": os.pathsep.join(
            [str(REPO / "functions" / "offer_sync"), str(REPO / "layers" / "shared")]
        ),
    }

    done = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", SCRIPT], env=environ, capture_output=True, text=True, timeout=120, check=True
    )

    found = json.loads(done.stdout.strip().splitlines()[-1])
    # The runtime was built at init (so what follows is what the init left out, not a lazy module)
    assert found["runtime"] == "SyncRuntime"
    assert "offergrid_integration.catalog.apply" in found["modules"]
    # Neither the reconciliation (its own schedule) nor the processor's message parsing (the queue's
    # contract is stdlib: offergrid_integration.contract, no model to build)
    assert not {
        "offergrid_integration.orders.reconcile",
        "offergrid_integration.orders.repairs",
        "offergrid_integration.orders.messages",
        "offergrid_integration.webhooks",
    } & set(found["modules"])
    # The order records' validators wait for the first record read
    assert found["order_record_built"] is False
    # One DynamoDB client (the rate budget, the sync state); no resource for the order tables yet
    assert found["clients"] == ["dynamodb"]
