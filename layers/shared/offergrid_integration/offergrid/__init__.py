"""The Offergrid Provider API client; its tunables in one place, durations in seconds of the client's
`Clock` (docs/architecture.md#offergrid-client-offergridclientpy).
"""

from typing import Final

DEFAULT_TIMEOUT: Final = 10.0
"""Per attempt: the documented recommendation (never more than the Lambda's remaining time). Real
seconds, as CONNECT_TIMEOUT: a compressed clock does not make a server answer sooner (issue 22)."""
CONNECT_TIMEOUT: Final = 3.0
MAX_RETRIES: Final = 4
"""Retries after the first attempt (the one key re-read after a 401 is not one)."""
INITIAL_RETRY_DELAY: Final = 0.5
MAX_RETRY_DELAY: Final = 8.0
"""Full-jitter backoff before retry n: uniform in [0, min(MAX_RETRY_DELAY, INITIAL_RETRY_DELAY * 2**n)]."""
MAX_RETRY_AFTER: Final = 60.0
"""The longest `Retry-After` honoured."""
MIN_TIME_LEFT_FOR_REQUEST: Final = 1.0
"""No attempt starts, and no retry waits, with less of the remaining time than this left."""
MAX_PAGES: Final = 5_000
"""The page budget of one listing: 50,000 offers at 10 a page (the smallest pages seen hold 20). A
listing that needs more is a server bug, and an error; at 10,000 requests an hour it could not
finish anyway (docs/decisions.md#18)."""
MIN_REPORTED_WAIT: Final = 0.05
"""The shortest rate-budget wait reported as `RateBudgetWait`: a token taken at once, DynamoDB round
trip included, is no wait."""
