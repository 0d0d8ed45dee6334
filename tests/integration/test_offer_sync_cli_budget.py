"""The offer sync CLI draws from the functions' shared rate budget, not from one of its own."""

from __future__ import annotations

import io
import json
import statistics
import threading
from pathlib import Path

import boto3

from devtools import offer_sync_cli
from offergrid_integration.clock import ScaledClock, SkewedClock
from offergrid_integration.offergrid.errors import RateBudgetExhausted
from offergrid_integration.ratelimit import DynamoDBRateBudget, Lane, budget_id_for_api_key
from tests.fixtures.aws import create_table
from tests.fixtures.offergrid_fake import TEST_API_KEY, fake_http_client

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
TABLE = "rate-limit"


def test_cli_with_the_api_key_secret_uses_the_functions_budget_item(aws, offergrid_fake_factory):
    # Given the API key in Secrets Manager and the shared rate-limit table
    fake = offergrid_fake_factory(time_scale=60)
    secret_arn = boto3.client("secretsmanager").create_secret(
        Name="offergrid-integration/dev/api-key", SecretString=TEST_API_KEY
    )["ARN"]
    dynamodb = create_table(TABLE, "pk")

    # When the CLI plans against Offergrid with that secret and table
    code = offer_sync_cli.main(
        [
            "plan",
            "--catalog",
            str(SAMPLES / "catalog.json"),
            "--api-url",
            fake.base_url,
            "--api-key-secret",
            secret_arn,
            "--rate-limit-table",
            TABLE,
        ],
        out=io.StringIO(),
    )

    # Then its calls were counted in the item the functions use (keyed by the secret, as in wiring.py)
    assert code == 0
    items = dynamodb.scan(TableName=TABLE)["Items"]
    assert [item["pk"]["S"] for item in items] == [f"ratelimit#{budget_id_for_api_key(secret_arn)}"]
    assert int(items[0]["version"]["N"]) == len(fake.calls) >= 1


# --- issue 21, case 6: the CLI from an operator's laptop whose clock is 30 s fast ------------------
# A fake minute in 6 real seconds: slow enough that a loaded machine's real delays (a DynamoDB round
# trip of 100 ms is 1 fake second here) do not pass for the budget holding the orders back.
SCALE = 10.0
ORDER_GAP = 2.0  # the order processor's requests: one every 2 fake seconds (30 a minute)
LAPTOP_SKEW = 30.0


def bench_fiber(n: int) -> dict[str, object]:
    return {
        "sku": f"LAPTOP-{n:04d}",
        "productName": f"Fiber {n}",
        "type": "internet",
        "price": 40 + n % 50,
        "isActive": True,
        "description": "Fiber from the operator's import",
        "minBandwidth": 100,
        "maxBandwidth": 100,
        "connectionType": "fiber",
        "dataCap": None,
    }


def test_cli_on_a_laptop_30s_fast_leaves_the_orders_their_pace(
    aws, offergrid_fake_factory, monkeypatch, tmp_path
):
    # Given the functions and Offergrid on one (compressed) true clock, the key's secret and the table
    true = ScaledClock(SCALE)
    fake = offergrid_fake_factory(clock=true, per_minute=100, per_hour=10_000)
    secret_arn = boto3.client("secretsmanager").create_secret(
        Name="offergrid-integration/dev/api-key", SecretString=TEST_API_KEY
    )["ARN"]
    create_table(TABLE, "pk")
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps([bench_fiber(n) for n in range(400)]))
    # And an operator's laptop whose clock is 30 s fast: the CLI reads the true clock through it
    monkeypatch.setattr(offer_sync_cli, "ScaledClock", lambda scale: SkewedClock(true, LAPTOP_SKEW))
    cli_done = threading.Event()

    def run_cli() -> None:
        try:
            offer_sync_cli.main(
                [
                    "apply",
                    "--catalog",
                    str(catalog),
                    "--api-url",
                    fake.base_url,
                    "--api-key-secret",
                    secret_arn,
                    "--rate-limit-table",
                    TABLE,
                    "--max-writes",
                    "80",
                    "--time-scale",
                    str(SCALE),
                ],
                out=io.StringIO(),
            )
        finally:
            cli_done.set()

    # When the CLI imports the catalog while the order processor (the functions' budget, as
    # offergrid/wiring.py builds it, on the true clock) needs a request every 2 s
    orders = DynamoDBRateBudget(TABLE, budget_id_for_api_key(secret_arn), clock=true, lane=Lane.ORDERS)
    waits: list[float] = []
    cli = threading.Thread(target=run_cli, daemon=True)
    cli.start()
    with fake_http_client(fake, timeout=10.0) as http:
        next_order = true.now()
        while not cli_done.is_set() and true.now() < next_order + 15 * 60:
            true.sleep(max(0.0, next_order - true.now()))
            asked = true.now()
            try:
                orders.acquire(remaining_time=60)
            except RateBudgetExhausted:
                waits.append(60.0)
            else:
                waits.append(true.now() - asked)
                http.get("/provider/orders", params={"status": "pending"})
            next_order = max(next_order + ORDER_GAP, true.now())
    cli.join(timeout=60)

    # Then, while the CLI ran, the orders were not held back: each waited about a token at most, so
    # they kept the pace this loop asks (30 a minute; fewer when a loaded machine slows the loop:
    # a fake second is 100 ms here), and Offergrid never answered 429
    # before: 1.8 order requests a minute (waits up to 29 s) while the CLI sent 53 a minute
    sync_calls = fake.calls_matching(path_prefix="/provider/offers")
    started, ended = sync_calls[0].at, sync_calls[-1].at
    order_calls = [c for c in fake.calls_matching("GET", "/provider/orders") if started <= c.at <= ended]
    minutes = (ended - started) / 60
    per_minute = len(order_calls) / minutes
    print(
        f"CLI {len(sync_calls)} requests in {minutes:.1f} min; orders {per_minute:.1f}/min, "
        f"median wait {statistics.median(waits):.1f} s"
    )
    assert minutes >= 1.5
    assert statistics.median(waits) <= 5.0
    assert per_minute >= 10
    assert fake.rate_limited == 0
