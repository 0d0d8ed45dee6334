"""The offer sync CLI draws from the functions' shared rate budget, not from one of its own."""

from __future__ import annotations

import io
from pathlib import Path

import boto3

from devtools import offer_sync_cli
from offergrid_integration.ratelimit import budget_id_for_api_key
from tests.fixtures.offergrid_fake import TEST_API_KEY

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
TABLE = "rate-limit"


def test_cli_with_the_api_key_secret_uses_the_functions_budget_item(aws, offergrid_fake_factory):
    # Given the API key in Secrets Manager and the shared rate-limit table
    fake = offergrid_fake_factory(time_scale=60)
    secret_arn = boto3.client("secretsmanager").create_secret(
        Name="offergrid-integration/dev/api-key", SecretString=TEST_API_KEY
    )["ARN"]
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )

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
