"""`text`: text we did not write, made valid for every encoder that stores, queues or sends it
(docs/decisions.md#17)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from offergrid_integration.text import ELLIPSIS, MAX_STORED_TEXT, json_text, valid_text, valid_texts

# Any code point, lone surrogates included (hypothesis leaves them out of text by default).
any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)
json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=20,
)


def test_each_lone_surrogate_becomes_one_replacement_character_and_nothing_else_changes() -> None:
    assert valid_text("Moving abroad \ud83d") == "Moving abroad \ufffd"
    assert valid_text("\udc00x\ud800\udfff") == "\ufffdx\ufffd\ufffd"
    assert valid_text("Жанна 😀 \ufffe \x00") == "Жанна 😀 \ufffe \x00"


def test_valid_text_is_the_same_object_when_there_is_nothing_to_repair() -> None:
    for text in ("ascii", "Жанна 😀"):
        assert valid_text(text) is text


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(text=any_text)
def test_valid_text_always_encodes_and_keeps_every_other_character(text: str) -> None:
    repaired = valid_text(text)
    repaired.encode("utf-8")
    assert len(repaired) == len(text)
    assert all(
        after == before or (0xD800 <= ord(before) <= 0xDFFF and after == "\ufffd")
        for before, after in zip(text, repaired, strict=True)
    )


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(value=json_like)
def test_json_text_is_compact_utf8_json_of_the_repaired_value(value: Any) -> None:
    text = json_text(value)
    text.encode("utf-8")
    assert json.loads(text) == valid_texts(value)
    assert json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":")) == text


def test_valid_texts_repairs_keys_and_values_through_dicts_lists_and_tuples() -> None:
    value = {"reason\ud800": ["a\udfff", ("b", 1, None)], "n": 2.5}
    assert valid_texts(value) == {"reason\ufffd": ["a\ufffd", ("b", 1, None)], "n": 2.5}


def test_stored_text_is_bounded_with_an_ellipsis() -> None:
    long = "Ж" * (MAX_STORED_TEXT + 10)
    stored = valid_texts({"cancelReason": long, "short": "ok"}, max_length=MAX_STORED_TEXT)
    assert len(stored["cancelReason"]) == MAX_STORED_TEXT
    assert stored["cancelReason"].endswith(ELLIPSIS)
    assert stored["short"] == "ok"
    assert valid_texts("x" * MAX_STORED_TEXT, max_length=MAX_STORED_TEXT) == "x" * MAX_STORED_TEXT
