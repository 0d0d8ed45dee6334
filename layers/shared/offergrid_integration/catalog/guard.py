"""The one guard of an offer leaving sale, whatever the road (docs/decisions.md#13 and #15).

Refuses every such change when the catalog cannot be trusted, a row error names no SKU, or more than
max(5, 10 %) of the live offers would go; docs/runbooks/offer-sync.md#removals-refused.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from offergrid_integration.catalog.plan import OfferChange

DEFAULT_REMOVAL_PERCENT: Final = 10.0
DEFAULT_REMOVAL_MINIMUM: Final = 5


@dataclass(frozen=True, slots=True)
class RemovalGuard:
    """One run takes at most max(`minimum`, `percent` % of the team's live offers) off sale.
    `confirm`: the `removal_token` a dry run printed for its refused list (a one-run override)."""

    percent: float = DEFAULT_REMOVAL_PERCENT
    minimum: int = DEFAULT_REMOVAL_MINIMUM
    confirm: str | None = None

    def allowance(self, live: int) -> int:
        return max(self.minimum, math.floor(live * self.percent / 100 + 1e-9))


@dataclass(frozen=True, slots=True)
class Verdict:
    """`reason` None: the changes may go. Else they are refused for `reason`, unless `confirmed`
    (the guard's `confirm` was `token`)."""

    reason: str | None = None
    token: str | None = None
    confirmed: bool = False

    @property
    def refused(self) -> bool:
        return self.reason is not None and not self.confirmed


def judge(
    leaving: Sequence[OfferChange],
    guard: RemovalGuard | None,
    *,
    live: int,
    problems: Iterable[str],
    unattributable: int,
) -> Verdict:
    """Whether `leaving` (every change of the run that takes an offer off sale) may be made."""
    if not leaving:
        return Verdict()
    problems = list(problems)
    if problems:
        reason = "the catalog cannot be trusted to take offers off sale: " + "; ".join(problems)
    elif unattributable:
        reason = (
            f"{unattributable} catalog rows could not be read and name no SKU: "
            "any offer may be theirs, so nothing is taken off sale"
        )
    elif guard is not None and len(leaving) > guard.allowance(live):
        reason = (
            f"{len(leaving)} offers would leave sale, more than the removal guard allows in one run: "
            f"max({guard.minimum}, {guard.percent:g} % of {live} live offers) = {guard.allowance(live)}"
        )
    else:
        return Verdict()
    token = removal_token(leaving)
    return Verdict(reason, token, confirmed=guard is not None and guard.confirm == token)


def removal_token(changes: Iterable[OfferChange]) -> str:
    """A short digest of the changes (kind, SKU, offer id, the status set): what an override confirms."""
    digest = hashlib.sha256()
    for change in sorted(changes, key=lambda c: (c.sku, c.kind.value, c.offer_id or "")):
        status = change.body.get("status", "")
        digest.update(f"{change.kind.value}\t{change.sku}\t{change.offer_id}\t{status}\n".encode())
    return digest.hexdigest()[:16]
