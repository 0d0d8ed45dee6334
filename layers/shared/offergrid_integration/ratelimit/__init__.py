"""The Offergrid request budget shared by every function and instance, on AWS's clock, orders first
(docs/decisions.md#6; docs/architecture.md#rate-budget-ratelimit).
"""

from offergrid_integration.ratelimit.buckets import (
    DEFAULT_WINDOWS,
    Lane,
    RateBudget,
    RateBudgetExhausted,
    RateWindow,
)
from offergrid_integration.ratelimit.budgets import (
    DynamoDBRateBudget,
    InProcessRateBudget,
    budget_id_for_api_key,
    build_rate_budget,
)

__all__ = [
    "DEFAULT_WINDOWS",
    "DynamoDBRateBudget",
    "InProcessRateBudget",
    "Lane",
    "RateBudget",
    "RateBudgetExhausted",
    "RateWindow",
    "budget_id_for_api_key",
    "build_rate_budget",
]
