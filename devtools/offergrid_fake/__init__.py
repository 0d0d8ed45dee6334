"""A faithful HTTP fake of the Offergrid Provider API, for tests and the local stack (`make demo`).

    with OffergridFake(api_keys=("test-api-key",), time_scale=60) as fake:
        httpx.get(f"{fake.base_url}/provider/orders", headers={"x-api-key": "test-api-key"})

Also runnable as a process: `python -m devtools.offergrid_fake --port 8900 --api-key KEY`.
`answers="other"` (`--answers other`) answers every choice the docs leave open the other way
(see `devtools.offergrid_fake.answers`).
"""

from devtools.offergrid_fake.answers import ANSWER_MODES, DOCUMENTED, OTHER, Answers
from devtools.offergrid_fake.clocks import NowClock, ScaledTime, iso_timestamp
from devtools.offergrid_fake.faults import Fault
from devtools.offergrid_fake.server import (
    FORBIDDEN_BODY,
    TOO_MANY_REQUESTS_BODY,
    UNAUTHORIZED_BODY,
    OffergridFake,
    RecordedCall,
    format_retry_after,
)
from devtools.offergrid_fake.webhooks import (
    SIGNATURE_HEADER,
    compact_json,
    deliver_webhook,
    sign,
    webhook_payload,
)

__all__ = [
    "ANSWER_MODES",
    "DOCUMENTED",
    "FORBIDDEN_BODY",
    "OTHER",
    "SIGNATURE_HEADER",
    "TOO_MANY_REQUESTS_BODY",
    "UNAUTHORIZED_BODY",
    "Answers",
    "Fault",
    "NowClock",
    "OffergridFake",
    "RecordedCall",
    "ScaledTime",
    "compact_json",
    "deliver_webhook",
    "format_retry_after",
    "iso_timestamp",
    "sign",
    "webhook_payload",
]
