"""Property P4 of issue 21 (docs/decisions.md#18), against the Offergrid HTTP fake in both answer
modes: any listing envelope or server misbehaviour costs at most pages + 2 requests and never
returns a partial list as complete.

`make test` runs the default profile (`PAGING_PROPERTIES_PROFILE` unset: a bounded, derandomized
run of a few seconds); `make test-deep` runs `PAGING_PROPERTIES_PROFILE=deep` (random, many more
examples, bigger listings).
"""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, replace

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from devtools.offergrid_fake import OffergridFake
from devtools.offergrid_fake.answers import ANSWER_MODES, resolve_answers
from devtools.offergrid_fake.pagination import LIST_MISBEHAVIOURS, LIST_STYLES
from offergrid_integration.offergrid import MAX_PAGES
from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.offergrid.errors import UnexpectedResponseError
from tests.fixtures.offergrid_fake import TEST_API_KEY

PROFILES = {
    "default": {"max_examples": 60, "max_elements": 12},
    "deep": {"max_examples": 1_500, "max_elements": 60},
}
PROFILE_NAME = os.environ.get("PAGING_PROPERTIES_PROFILE", "default")
PROFILE = PROFILES[PROFILE_NAME]
# One TLS context for every example's client (the fake is plain HTTP; httpx would build one each time).
TLS = ssl.create_default_context()
MODE_STYLES = "the mode's own"  # the answer mode's list styles (documented: one array; other: a rotation)


@dataclass(frozen=True)
class Listing:
    """One drawn listing: what the fake holds and how it answers, and the client's page budget."""

    elements: int
    style: str
    page_size: int
    misbehaviour: str | None
    resource: str
    max_pages: int | None
    turn: int  # where a rotation of styles starts (each example's fake starts afresh)

    def styles(self, mode: str) -> tuple[str, ...]:
        if self.style != MODE_STYLES:
            return (self.style,)
        rotation = resolve_answers(mode).list_styles
        start = self.turn % len(rotation)
        return rotation[start:] + rotation[:start]

    def pages(self, mode: str) -> int:
        """How many pages an honest server needs (the bound's `pages`), whichever style answers."""
        if self.styles(mode) == ("array",):
            return 1
        return max(1, math.ceil(self.elements / self.page_size))


listings = st.builds(
    Listing,
    elements=st.integers(0, PROFILE["max_elements"]),
    style=st.sampled_from((MODE_STYLES, *LIST_STYLES)),
    page_size=st.integers(1, 5),
    misbehaviour=st.none() | st.sampled_from(LIST_MISBEHAVIOURS),
    resource=st.sampled_from(("offers", "orders")),
    max_pages=st.none() | st.integers(1, 8),
    turn=st.integers(0, len(LIST_STYLES)),
)


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, OffergridFake]]:
    """One fake per answer mode for every example (reset between them), rate limits out of the way."""
    started = {
        mode: OffergridFake(api_keys=(TEST_API_KEY,), answers=mode, per_minute=10**9, per_hour=10**9).start()
        for mode in ANSWER_MODES
    }
    yield started
    for fake in started.values():
        fake.stop()


@pytest.mark.parametrize("mode", ANSWER_MODES)
@settings(
    max_examples=PROFILE["max_examples"],
    deadline=None,
    database=None,
    derandomize=PROFILE_NAME != "deep",
    suppress_health_check=[HealthCheck.too_slow],
)
@given(listing=listings)
def test_p4_a_listing_costs_at_most_pages_plus_two_and_is_whole_or_an_error(
    fakes: dict[str, OffergridFake], mode: str, listing: Listing
) -> None:
    """P4: any listing envelope or server misbehaviour costs at most pages + 2 requests and never
    returns a partial list as complete (an honest listing within its page budget is read whole)."""
    fake = fakes[mode]
    fake.reset()
    styles = listing.styles(mode)
    paged = styles != ("array",)
    fake.set_answers(
        replace(
            resolve_answers(mode),
            name="p4",
            list_styles=styles,
            page_size=listing.page_size if paged else None,
            list_misbehaviour=listing.misbehaviour,
        )
    )
    if listing.resource == "offers":
        expected = [fake.add_offer(sku=f"P4-{n}")["id"] for n in range(listing.elements)]
    else:
        expected = [fake.add_order_item()["id"] for _ in range(listing.elements)]
    budget = listing.max_pages or MAX_PAGES
    pages = listing.pages(mode)

    with OffergridClient(
        base_url=fake.base_url,
        api_key=lambda *, force_refresh=False: TEST_API_KEY,
        max_pages=budget,
        rng=lambda: 0.0,
        transport=httpx.HTTPTransport(verify=TLS),
    ) as client:
        read = client.list_offers() if listing.resource == "offers" else client.list_orders()
        try:
            listed: list[str] | None = [element.id for element in read]
        except UnexpectedResponseError:
            listed = None
    requests = len(fake.calls)
    event(f"{'read whole' if listed is not None else 'an error'} ({listing.misbehaviour or 'honest'})")

    # The cost: at most pages + 2 requests, and never more than the page budget
    assert requests <= pages + 2
    assert requests <= budget
    assert all(call.status == 200 for call in fake.calls)
    # Whole or an error, never a partial list returned as complete
    if listed is not None:
        assert listed == expected
    # An honest server within the budget is read whole; a misbehaving one that has more than one
    # page to give, or a listing longer than its budget, is an error
    if listing.misbehaviour is None and pages <= budget:
        assert listed == expected
    if (listing.misbehaviour is not None and paged and pages > 1) or pages > budget:
        assert listed is None
