"""The archive's record of a delivery and where it is kept (`offergrid_integration.archive`)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from offergrid_integration.archive import (
    ARCHIVE_PREFIX,
    CHECKS_PREFIX,
    ArchivedDelivery,
    delivery_key,
    hour_folder,
    key_received_at,
)
from offergrid_integration.signature import SIGNATURE_HEADER, sign, verify_signature

SECRET = "local-dev-webhook-secret"
RECEIVED = datetime(2026, 11, 27, 14, 41, 0, 123_000, tzinfo=UTC)
BODY = '{"event":"order.created","itemId":"i-1","note":"Müller 🚀"}'


def delivery(body: str | None = BODY, *, is_base64: bool = False, check: bool = False) -> ArchivedDelivery:
    raw = base64.b64decode(body) if is_base64 and body else (body or "").encode()
    return ArchivedDelivery(
        received_at=RECEIVED,
        request_id="c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        body=body,
        is_base64_encoded=is_base64,
        signature=sign(raw, SECRET),
        check=check,
    )


def test_a_delivery_is_kept_under_its_hour_named_by_arrival_and_request_id():
    assert delivery().key == (
        "archive/2026/11/27/14/20261127T144100.123Z-c6af9ac6-7b61-11e6-9a41-93e8deadbeef.json"
    )
    assert delivery(check=True).key.startswith(f"{CHECKS_PREFIX}2026/11/27/14/")
    # a time in another zone is the same UTC instant
    paris = RECEIVED.astimezone(timezone(timedelta(hours=1)))
    assert delivery_key(paris, "r") == delivery_key(RECEIVED, "r")
    with pytest.raises(ValueError, match="time zone"):
        delivery_key(RECEIVED.replace(tzinfo=None), "r")


@pytest.mark.parametrize("request_id", ["../../etc", "a/b", "x y", "é", ""])
def test_any_request_id_is_one_segment_of_the_key(request_id: str):
    key = delivery_key(RECEIVED, request_id)
    assert key.count("/") == ARCHIVE_PREFIX.count("/") + 4
    assert key_received_at(key) == RECEIVED


def test_keys_sort_as_arrival_times_do_and_name_their_time():
    times = [RECEIVED + timedelta(milliseconds=ms) for ms in (0, 1, 999, 1000, 3_600_000, 86_400_000)]
    keys = [delivery_key(moment, "z") for moment in reversed(times)]
    assert [key_received_at(key) for key in sorted(keys)] == times
    assert hour_folder(RECEIVED) == "archive/2026/11/27/14/"
    assert all(key > hour_folder(moment) for key, moment in zip(reversed(keys), times, strict=True))
    assert key_received_at("archive/2026/11/27/14/not-a-delivery.json") is None
    assert key_received_at("orders/2026/11/27/abc.json") is None


@pytest.mark.parametrize(
    ("body", "is_base64"),
    [
        (BODY, False),
        (base64.b64encode(BODY.encode()).decode(), True),
        (base64.b64encode(b"\xff\xfe not utf-8").decode(), True),  # verified bytes of any kind
        (None, False),
    ],
)
def test_it_is_read_back_exactly_as_received_and_verifies_again(body: str | None, is_base64: bool):
    # Given a delivery as API Gateway handed it to the function
    original = delivery(body, is_base64=is_base64)
    # When it is written and read back
    stored = original.to_json()
    again = ArchivedDelivery.from_json(stored)
    # Then it is the same delivery, its bytes the ones the signature covers
    assert again == original
    verify_signature(again.raw_body(), again.signature, [SECRET])
    # and the object holds the body, its flag and the signature header; never the secret
    document = json.loads(stored)
    assert document["headers"] == {SIGNATURE_HEADER: original.signature}
    assert document["isBase64Encoded"] is is_base64
    assert document["body"] == body
    assert SECRET.encode() not in stored


def test_text_is_kept_as_itself_not_escaped():
    assert "Müller 🚀".encode() in delivery().to_json()


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        "[]",
        '{"version": 2}',
        '{"version": 1, "requestId": "r", "headers": {}, "isBase64Encoded": false, "body": "x", '
        '"receivedAt": "2026-11-27T14:41:00Z"}',
        '{"version": 1, "requestId": "r", "headers": {"x-offergrid-signature": "s"}, '
        '"isBase64Encoded": false, "body": "x", "receivedAt": "2026-11-27T14:41:00"}',
        '{"version": 1, "requestId": "r", "headers": {"x-offergrid-signature": "s"}, '
        '"isBase64Encoded": "no", "body": "secret-body-text", "receivedAt": "2026-11-27T14:41:00Z"}',
    ],
)
def test_an_object_that_is_not_a_delivery_is_refused_without_its_content(document: str):
    with pytest.raises(ValueError, match="an archived delivery") as refused:
        ArchivedDelivery.from_json(document)
    assert "secret-body-text" not in str(refused.value)
