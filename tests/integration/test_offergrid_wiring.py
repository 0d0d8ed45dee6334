"""client_from_settings: one shared rate budget per API-key secret, across a key rotation."""

from __future__ import annotations

import boto3
from aws_lambda_powertools.utilities import parameters

from offergrid_integration.config import CommonSettings, load_settings
from offergrid_integration.offergrid.wiring import client_from_settings
from offergrid_integration.ratelimit import InProcessRateBudget, Lane, budget_id_for_api_key
from tests.fixtures.aws import create_table

SECRET_NAME = "offergrid/test/api-key"
TABLE = "rate-limit"


def test_instances_before_and_after_a_key_rotation_share_one_budget(aws, offergrid_fake_factory):
    # Given a fake accepting the old and the new key, the key in Secrets Manager, a rate-limit table
    fake = offergrid_fake_factory(api_keys=("old-api-key-0001", "new-api-key-0002"))
    secrets = boto3.client("secretsmanager")
    secret_arn = secrets.create_secret(Name=SECRET_NAME, SecretString="old-api-key-0001")["ARN"]
    dynamodb = create_table(TABLE, "pk")
    settings = load_settings(
        CommonSettings,
        {
            "OFFERGRID_API_URL": fake.base_url,
            "OFFERGRID_API_KEY_SECRET": secret_arn,
            "RATE_LIMIT_TABLE": TABLE,
        },
    )

    # When one instance calls with the old key, the key is rotated, and a new instance calls with the new
    before = client_from_settings(settings, remaining_time=lambda: 30.0)
    list(before.list_offers())
    secrets.put_secret_value(SecretId=secret_arn, SecretString="new-api-key-0002")
    parameters.clear_caches()
    after = client_from_settings(settings, remaining_time=lambda: 30.0)
    list(after.list_offers())

    # Then both requests were drawn from one budget item, keyed by the secret and not by a key value
    items = dynamodb.scan(TableName=TABLE)["Items"]
    assert [item["pk"]["S"] for item in items] == [f"ratelimit#{budget_id_for_api_key(secret_arn)}"]
    assert items[0]["version"]["N"] == "2"
    assert [call.api_key_valid for call in fake.calls] == [True, True]
    before.close()
    after.close()


def test_the_lane_and_the_order_reserve_reach_the_budget():
    # Given settings with a 25 % order reserve and no table (an in-process budget)
    settings = load_settings(
        CommonSettings,
        {"OFFERGRID_API_KEY_SECRET": "offergrid/test/api-key", "ORDER_RESERVE_PERCENT": "25"},
    )

    def key(*, force_refresh: bool = False) -> str:
        return "test-api-key"

    # When a client is built for the order processor (the default) and one for a background job
    orders = client_from_settings(settings, remaining_time=lambda: 30.0, api_key=key)
    background = client_from_settings(
        settings, remaining_time=lambda: 30.0, api_key=key, lane=Lane.BACKGROUND
    )

    # Then each budget belongs to its lane, with the configured reserve
    assert isinstance(orders._rate_budget, InProcessRateBudget)
    assert isinstance(background._rate_budget, InProcessRateBudget)
    assert (orders._rate_budget.lane, orders._rate_budget.reserve) == (Lane.ORDERS, 0.25)
    assert (background._rate_budget.lane, background._rate_budget.reserve) == (Lane.BACKGROUND, 0.25)
