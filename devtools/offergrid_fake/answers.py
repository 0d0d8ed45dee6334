"""How the fake answers where the Offergrid guide is silent: "documented" or "other" (or your own mix).

The guide documents requests, not responses (docs/decisions.md#10). A fake that always answers the
way our client expects hides the client's bugs, so every undocumented choice is a knob here, and
two presets set them all:

- `documented` (`DOCUMENTED`): the reading the guide suggests and the fake always gave: a status
  PATCH answers 200 with the item, POST 201 with the offer, PATCH 200 with the offer, DELETE 204,
  lists are one bare array, a 429 carries `Retry-After`, listed elements are complete.
- `other` (`OTHER`): every choice the other way: a status PATCH answers 204, 200 with no body or
  200 with only a message; POST answers 201 without a body or 200 with a message; PATCH offer 204
  or 200 with a message; DELETE 200 (with no body, a message, or the deleted offer); lists come in
  pages of `page_size` in every envelope of Decisions 5 and 18 (`{data, meta:{page,totalPages},
  links:{next}}`, `{data,total,limit,offset}`, a bare array with an RFC 8288 `Link` header,
  `{data,nextCursor}`, `{items,page,totalPages}`, `{data, meta:{pagination:{total_pages, links}}}`,
  JSON:API `{data, meta:{page:{number,size,total}}}`, Stripe's `{data, has_more}` followed with
  `starting_after`); a 429 has no `Retry-After`; listed elements leave out what is optional.

`list_misbehaviour` is in neither preset: a test sets it to have listings misbehave the ways a
client must survive (`pagination.LIST_MISBEHAVIOURS`: the query ignored, a page repeated, more
announced without a way there).

Where a knob has several "other" values they are used in turn (a round robin per knob, so a test
suite meets each of them; deterministic for a given sequence of requests). Documented rules (auth,
roles, enums, unique SKUs, rate limits, the order lifecycle) hold in every mode.

Choose per fake (`OffergridFake(answers="other")`), per process (`python -m devtools.offergrid_fake
--answers other`, or `$OFFERGRID_FAKE_ANSWERS` for a fake built without the argument, such as the
one `make local` starts), or at run time (`POST /_fake/answers {"answers": "other"}`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

from devtools.offergrid_fake.pagination import LIST_STYLES, check_list_config, check_misbehaviour

ANSWERS_ENV: Final = "OFFERGRID_FAKE_ANSWERS"

# What each write may answer. "item": the resource; "empty": no body; "message": {"message": ...}.
STATUS_PATCH_ANSWERS: Final = ("200-item", "204", "200-empty", "200-message")
OFFER_CREATE_ANSWERS: Final = ("201-item", "200-item", "201-empty", "200-message")
OFFER_UPDATE_ANSWERS: Final = ("200-item", "204", "200-empty", "200-message")
OFFER_DELETE_ANSWERS: Final = ("204", "200-empty", "200-message", "200-item")

# Listed order items keep only these when listings are sparse (what a listing summary would hold).
SPARSE_ORDER_ITEM_FIELDS: Final = ("id", "orderId", "offerId", "status", "createdAt")


@dataclass(frozen=True)
class Answers:
    """One answer per undocumented choice; tuples are used in turn (see the module docstring)."""

    name: str = "custom"
    status_patch: tuple[str, ...] = ("200-item",)
    offer_create: tuple[str, ...] = ("201-item",)
    offer_update: tuple[str, ...] = ("200-item",)
    offer_delete: tuple[str, ...] = ("204",)
    list_styles: tuple[str, ...] = ("array",)
    page_size: int | None = None
    retry_after_on_429: bool = True
    sparse_listings: bool = False
    list_misbehaviour: str | None = None

    def __post_init__(self) -> None:
        for knob, allowed in (
            ("status_patch", STATUS_PATCH_ANSWERS),
            ("offer_create", OFFER_CREATE_ANSWERS),
            ("offer_update", OFFER_UPDATE_ANSWERS),
            ("offer_delete", OFFER_DELETE_ANSWERS),
            ("list_styles", LIST_STYLES),
        ):
            values = getattr(self, knob)
            if not values or any(value not in allowed for value in values):
                raise ValueError(f"{knob} must be one or more of {', '.join(allowed)}")
        for style in self.list_styles:
            check_list_config(style, self.page_size)
        check_misbehaviour(self.list_misbehaviour)

    def with_lists(self, list_style: str | None, page_size: int | None) -> Answers:
        """These answers with lists given explicitly (the fake's `list_style`/`page_size` arguments)."""
        if list_style is None and page_size is None:
            return self
        return replace(
            self,
            list_styles=(list_style,) if list_style is not None else self.list_styles,
            page_size=page_size if page_size is not None else self.page_size,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DOCUMENTED: Final = Answers(name="documented")
OTHER: Final = Answers(
    name="other",
    status_patch=("204", "200-empty", "200-message"),
    offer_create=("201-empty", "200-message"),
    offer_update=("204", "200-message", "200-empty"),
    offer_delete=("200-empty", "200-message", "200-item"),
    list_styles=(
        "meta-links",
        "offset",
        "link-header",
        "envelope-cursor",
        "envelope-page",
        "meta-pagination",
        "jsonapi-page",
        "has-more",
    ),
    page_size=2,
    retry_after_on_429=False,
    sparse_listings=True,
)
PRESETS: Final = {"documented": DOCUMENTED, "other": OTHER}
ANSWER_MODES: Final = tuple(PRESETS)


def resolve_answers(answers: str | Answers | None) -> Answers:
    """A preset by name, an `Answers` as is, or None: `$OFFERGRID_FAKE_ANSWERS`, else documented."""
    if isinstance(answers, Answers):
        return answers
    name = answers if answers is not None else os.environ.get(ANSWERS_ENV, "").strip() or "documented"
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"answers must be one of {', '.join(ANSWER_MODES)} (or an Answers)") from None


def answers_from_dict(data: dict[str, Any]) -> Answers:
    """`{"answers": "other"}`, or a preset with knobs changed: `{"answers": "other", "page_size": 3}`."""
    base = resolve_answers(str(data.get("answers", "documented")))
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key == "answers":
            continue
        if key not in Answers.__dataclass_fields__ or key == "name":
            raise ValueError(f"unknown answers knob {key!r}")
        changes[key] = tuple(value) if isinstance(value, list) else value
    return replace(base, name="custom", **changes) if changes else base
