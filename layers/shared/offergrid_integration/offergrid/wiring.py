"""The one way a function builds its OffergridClient from its settings.

API key from Secrets Manager (TTL cache, refreshed on 401), the shared rate budget (DynamoDB when
`RATE_LIMIT_TABLE` is set, else in-process) keyed by a fingerprint of the key, the configured
timeout, and the caller's remaining time so no wait outlives the invocation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.config import CommonSettings
from offergrid_integration.offergrid.client import ApiKeyProvider, OffergridClient
from offergrid_integration.ratelimit import Lane, RateBudget, budget_id_for_api_key, build_rate_budget
from offergrid_integration.secrets import Secret, parse_api_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_secretsmanager.client import SecretsManagerClient


def client_from_settings(
    settings: CommonSettings,
    *,
    remaining_time: Callable[[], float],
    clock: Clock = SYSTEM_CLOCK,
    api_key: ApiKeyProvider | None = None,
    secrets_client: SecretsManagerClient | None = None,
    dynamodb_client: DynamoDBClient | None = None,
    budget_wrapper: Callable[[RateBudget], RateBudget] | None = None,
    lane: Lane = Lane.ORDERS,
) -> OffergridClient:
    """`api_key` replaces the key's `Secret` (tests and tools). `secrets_client` and
    `dynamodb_client`: the function's own clients, for the key and the budget (default: the
    container's, `aws.clients()`). `budget_wrapper` wraps the shared budget (the reconciliation
    caps its share of it: `orders.reconcile.CappedRateBudget`). `lane`: who draws from the budget;
    the order processor's lane may use all of it, `Lane.BACKGROUND` (sync, sweep, reconciliation)
    all of it while orders are idle and only what is above the orders' reserve
    (`ORDER_RESERVE_PERCENT`) while they are active. On the system clock the DynamoDB budget runs on
    AWS's time (the `Date` of its answers), so hosts whose clocks disagree share it safely.

    The budget is keyed by the secret that holds the key, not by the key's value: across a key
    rotation, instances that read the old value and instances that read the new one must keep
    drawing from one budget (two budgets would let the stack send twice the limit with the new key).
    """
    budget_owner = settings.offergrid_api_key_secret
    if api_key is None:
        api_key = Secret(
            settings.offergrid_api_key_secret,
            parse_api_key,
            max_age_seconds=settings.secrets_cache_seconds,
            client=secrets_client,
        )
    else:
        budget_owner = api_key()
    budget = build_rate_budget(
        settings.rate_limit_table,
        budget_id_for_api_key(budget_owner),
        clock,
        client=dynamodb_client,
        lane=lane,
        reserve=settings.order_reserve_percent / 100,
    )
    return OffergridClient(
        base_url=settings.offergrid_api_url,
        api_key=api_key,
        rate_budget=budget if budget_wrapper is None else budget_wrapper(budget),
        timeout=settings.offergrid_timeout_seconds,
        clock=clock,
        remaining_time=remaining_time,
    )
