"""P2 (issue 21, docs/decisions.md#16): a decision made from a listing element is the decision a GET
of the same item gives, whatever shape the listing gives the element.

The real processor path: the order processor's handler (`functions/order_processor/app.py`: its
batch processor, `RecordPipeline.begin_batch`, `BatchItemReads.prefetch`, the `order.created` use
case) against moto (orders, work orders, idempotency, the provider's bus, the coverage rules in SSM)
and the Offergrid fake in both answer modes. Each example seeds pairs of items with the same content
(its GET): item A, which listings show in a generated shape (`OffergridFake.set_listing_view`), and
item B, which listings leave out, so B is decided from its GET. One batch holds both of every pair;
then, pair by pair, the decision (Offergrid's status, our record's decision and reason) and the work
order (what fulfilment hears) of A must equal B's.

Shapes: `serviceAddress`, `customerInfo` and `metadata` missing, null, `{}`, of another JSON type,
or partial, their fields missing, null, blank, of another type (a ZIP code as a number included), or
extra; the top-level fields a work order copies degraded the same ways; extra top-level fields.
The GETs vary too (covered, denied and uncovered addresses; a GET itself without a phone, a state or
a whole address), so decisions and their reasons vary.

Profiles: `ORDER_READS_PROFILE=default` (what `make test` runs: a few seconds per answer mode) or
`deep` (`make test-deep`).
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import boto3
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from devtools.offergrid_fake import OffergridFake
from functions.order_processor import app
from offergrid_integration.orders.ports import work_order_id_for
from tests.fixtures.offergrid_fake import OffergridFakeFactory
from tests.integration.test_order_batched_reads import Harness, created
from tests.integration.test_order_processor import RULES_PARAMETER, create_stack

PROFILES: Final = {"default": {"max_examples": 12}, "deep": {"max_examples": 400}}
PROFILE_NAME: Final = os.environ.get("ORDER_READS_PROFILE", "default")
PROFILE: Final = PROFILES[PROFILE_NAME]

# Coverage rules reading every field they can: country, state, ZIP code and ZIP prefix, with a deny.
RULES: Final = {
    "version": 1,
    "defaultCountry": "US",
    "allow": [{"countries": ["US"], "states": ["IL", "CA"]}, {"zipPrefixes": ["021"]}],
    "deny": [{"zipCodes": ["62799"]}],
}

# --- the item as its GET holds it -------------------------------------------------------------------
NAMES = st.sampled_from(["Jane Doe", "Ana María Pérez", "李雷"])
EMAILS = st.sampled_from(["jane@example.com", "ana+home@example.org"])
PHONES = st.sampled_from(["+1-555-123-4567", "(617) 555-0199"])
STREETS = st.sampled_from(["123 Main St", "9 Elm Ave, Apt 4B"])
CITIES = st.sampled_from(["Springfield", "Boston", "Reno", "London"])
STATES = st.sampled_from(["IL", "CA", "NV", "ma", " il "])
ZIPS = st.sampled_from(["62701", "62799", "02134", "94105-1234", "89501", "SW1A 1AA"])
COUNTRIES = st.sampled_from(["US", "USA", "GB", "us"])


def _maybe(values: st.SearchStrategy[Any], gaps: bool) -> st.SearchStrategy[Any]:
    """`values`, or, with `gaps`, maybe a GET without it: null, blank or the key left out (`MISSING`)."""
    return st.one_of(values, values, st.sampled_from([None, "", MISSING])) if gaps else values


MISSING: Final = object()


def _object(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not MISSING}


@st.composite
def get_items(draw: st.DrawFn) -> dict[str, Any]:
    """The content of an item as its GET answers it (without id, orderId, status): complete, or
    (one in four) a GET that itself lacks some of what a decision reads."""
    gaps = draw(st.integers(0, 3)) == 0
    customer = _object(
        fullName=draw(_maybe(NAMES, gaps)), email=draw(_maybe(EMAILS, gaps)), phone=draw(_maybe(PHONES, gaps))
    )
    address = _object(
        street=draw(_maybe(STREETS, gaps)),
        city=draw(_maybe(CITIES, gaps)),
        state=draw(_maybe(STATES, gaps)),
        zipCode=draw(_maybe(ZIPS, gaps)),
        country=draw(_maybe(COUNTRIES, gaps)),
    )
    if draw(st.booleans()):
        address["unit"] = "4B"  # a field Offergrid may add: the work order carries what is read only
    return _object(
        offerId="offer-p2",
        offerName="Fiber 1000",
        customerInfo=draw(st.sampled_from([customer, MISSING] if gaps else [customer])),
        serviceAddress=draw(st.sampled_from([address, MISSING, {}] if gaps else [address])),
        notes=draw(st.sampled_from([None, "Gate code 1234", "Call after 5pm"])),
        metadata={"unitNumber": "4B", "moveInDate": "2026-03-01"},
    )


# --- the element a listing shows for it ---------------------------------------------------------------
OBJECTS: Final = ("serviceAddress", "customerInfo", "metadata")
# Fields a listing may add to an object that its GET does not have (another object's included).
EXTRA_FIELDS: Final = {
    "serviceAddress": ("geo", "line2", "fullName"),
    "customerInfo": ("preferredLanguage", "street", "vip"),
    "metadata": ("source", "unitNumber"),
}
WRONG_TYPES = st.sampled_from([0, 12.5, True, ["x"], {"value": "x"}])


@st.composite
def changed_value(draw: st.DrawFn, value: Any) -> Any:
    """`value` as a listing may show it instead: null, blank, of another type (`MISSING`: left out)."""
    choice = draw(st.sampled_from(["missing", "null", "empty", "blank", "wrong"]))
    if choice == "wrong":
        if isinstance(value, str) and value.isdigit():
            return draw(st.sampled_from([int(value), float(value)]))  # a ZIP code as a number
        return draw(WRONG_TYPES)
    return {"missing": MISSING, "null": None, "empty": "", "blank": "  "}[choice]


@st.composite
def changed_object(draw: st.DrawFn, value: Any) -> Any:
    """An object (`serviceAddress`, `customerInfo`, `metadata`) as a listing may show it instead."""
    choice = draw(st.sampled_from(["missing", "null", "empty", "wrong"]))
    if choice == "wrong":  # (a GET without it: the listing neither)
        return draw(st.sampled_from(["", "1 Main St, Springfield", 7, [] if value is MISSING else [value]]))
    return {"missing": MISSING, "null": None, "empty": {}}[choice]


@st.composite
def listing_views(draw: st.DrawFn, item: dict[str, Any]) -> dict[str, Any]:
    """The element a listing shows for `item`: the item itself, with a few of its fields changed
    (one or two: the cases next to a full read), or with many changed; extra fields or not."""
    paths = [key for key in item if key not in ("id", "status")] + [
        f"{name}.{field}" for name in OBJECTS if isinstance(item.get(name), dict) for field in item[name]
    ]
    how = draw(st.sampled_from(["as is", "a few changes", "many changes"]))
    if how == "as is":
        changed: set[str] = set()  # a full element when the GET is full: the fast path
    elif how == "a few changes":
        changed = draw(st.sets(st.sampled_from(paths), min_size=1, max_size=2))
    else:
        changed = {path for path in paths if draw(st.booleans())}
    view = copy.deepcopy(item)
    for path in sorted(changed):  # an object before its fields
        name, _, field = path.partition(".")
        if not field:
            view[name] = draw(changed_object(view[name]) if name in OBJECTS else changed_value(view[name]))
        elif isinstance(view.get(name), dict) and field in view[name]:  # (not when the object went)
            view[name][field] = draw(changed_value(view[name][field]))
    for name, extras in EXTRA_FIELDS.items():
        extra = draw(st.sampled_from(extras))
        if isinstance(view.get(name), dict) and extra not in view[name] and draw(st.booleans()):
            view[name][extra] = draw(st.sampled_from(["x", None, 1, {"lat": 1}]))
    if draw(st.booleans()):
        view[draw(st.sampled_from(["summary", "_links", "customerInfo2"]))] = draw(
            st.sampled_from([True, {"self": "/x"}, None])
        )
    return _without_missing(view)


def _without_missing(view: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _without_missing(value) if isinstance(value, dict) else value
        for key, value in view.items()
        if value is not MISSING
    }


# --- the harness ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    listed: str  # decided from the batch's listing if its element is a full read
    got: str  # left out of listings: decided from its GET


@pytest.fixture
def p2(aws: None, offergrid_fake_factory: OffergridFakeFactory) -> Iterator[Harness]:
    """The processor's handler over moto and a fake (this test's answer mode) without rate limits:
    the documented limits are tested elsewhere, here each example makes a dozen calls at once."""
    fake = offergrid_fake_factory(per_minute=10**6, per_hour=10**8, time_scale=1.0)
    stack = create_stack(fake.base_url)
    boto3.client("ssm").put_parameter(
        Name=RULES_PARAMETER, Type="String", Value=json.dumps(RULES), Overwrite=True
    )
    stack.env["SERVICEABILITY_CACHE_SECONDS"] = "3600"  # the rules above, read once
    yield Harness(fake, stack)
    app.reset()


def seed_pairs(fake: OffergridFake, contents: list[dict[str, Any]], draw: st.DrawFn) -> list[Pair]:
    """A pair of items per content, both with that content as their GET; the listed one shown in a
    generated shape, the other left out of listings."""
    pairs = []
    for n, content in enumerate(contents):
        ids = [fake.add_order_item(**content, orderId=f"order-p2-{n}")["id"] for _ in range(2)]
        for item_id in ids:  # the fake seeds a customer and an address: a GET without them has none
            for key in ("customerInfo", "serviceAddress"):
                if key not in content:
                    del fake.order_items[item_id][key]
        listed, got = ids
        fake.set_listing_view(listed, draw(listing_views(fake.order_items[listed])))
        fake.set_listing_view(got, None)
        pairs.append(Pair(listed, got))
    return pairs


def decision_of(h: Harness, item_id: str) -> tuple[Any, ...]:
    """Offergrid's status and notes, our decision and reason, and the work order, with this item's
    own identifiers (work order id, item id) and times taken out."""
    item, record = h.fake.order_items[item_id], h.stack.record(item_id)
    work_order = h.stack.work_order(work_order_id_for(item_id))
    if work_order is not None:
        work_order = {
            key: value
            for key, value in work_order.items()
            if key not in ("workOrderId", "itemId", "createdAt", "contactBy")
        }
    own = re.escape(work_order_id_for(item_id))
    reason = re.sub(own, "WO", record.decision_reason or "")
    notes = item.get("providerNotes") if item["status"] == "rejected" else None
    return item["status"], record.decision, reason, notes, work_order


@pytest.mark.slow
def test_a_decision_from_any_listing_element_equals_the_decision_from_its_get(p2: Harness) -> None:
    """Effect guarded: an item is decided, and its work order written, only from a read holding
    everything the decision needs (docs/decisions.md#16); so whatever the listing shows, the batch's
    fast path decides as the item's GET does."""
    h = p2
    fast = [0, 0]  # pairs whose listed item was decided from the listing, pairs in all

    @settings(
        max_examples=PROFILE["max_examples"],
        deadline=None,
        database=None,
        derandomize=PROFILE_NAME != "deep",
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(contents=st.lists(get_items(), min_size=1, max_size=3), data=st.data())
    def check(contents: list[dict[str, Any]], data: st.DataObject) -> None:
        h.fake.reset()
        pairs = seed_pairs(h.fake, contents, data.draw)

        assert h.invoke(*(created(item_id) for pair in pairs for item_id in (pair.listed, pair.got))) == []

        gets = h.item_gets()
        for pair in pairs:
            assert decision_of(h, pair.listed) == decision_of(h, pair.got)
            from_listing = pair.listed not in gets
            fast[0] += from_listing
            fast[1] += 1
            event(f"listed item decided from the listing: {from_listing}")
            event(f"decision: {h.fake.order_items[pair.got]['status']}")

    check()
    print(f"P2 ({PROFILE_NAME}): {fast[1]} pairs, {fast[0]} decided from the listing")
    assert fast[0] > 0  # the fast path was taken ...
    assert fast[0] < fast[1]  # ... and refused
