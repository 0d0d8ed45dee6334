"""The Offergrid request budget (100/min and 10,000/h per API key) shared by every function and every
Lambda instance, computed on AWS's clock, orders first (docs/decisions.md#6).

buckets.py    the arithmetic: windows, token buckets, the two lanes, `RateBudget`, `RateBudgetExhausted`
reference.py  the shared time line: AWS's clock from the `Date` of DynamoDB's answers
budgets.py    `DynamoDBRateBudget` (shared), `InProcessRateBudget` (one process), `build_rate_budget`

How it works and why: docs/architecture.md#rate-budget-ratelimit.
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
