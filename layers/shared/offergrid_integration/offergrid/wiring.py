"""The one way a function builds its OffergridClient from its settings."""

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
    """`api_key` replaces the key's `Secret` (tools); `budget_wrapper` wraps the shared budget (the
    reconciliation caps its share); `lane` says who draws from it (docs/decisions.md#6).

    The budget is keyed by the secret that holds the key, not its value: across a rotation old and new
    readers must share one budget, or the stack could send twice the limit.
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
