"""Webhook delivery by the fake: exact bytes, HMAC-SHA256 signature, payload shapes."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devtools.offergrid_fake import SIGNATURE_HEADER, OffergridFake, deliver_webhook, sign, webhook_payload

SECRET = "local-dev-webhook-secret"


@dataclass
class Receiver:
    url: str
    answer_status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A tiny webhook endpoint on 127.0.0.1 that records what it gets."""
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            answer = b'{"ok":true}' if state.answer_status == 200 else b'{"message":"invalid signature"}'
            self.send_response(state.answer_status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/offergrid"
    yield state
    server.shutdown()
    server.server_close()


def expected_signature(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_sign_matches_a_known_hmac_sha256_vector():
    # RFC 4231-style well-known vector
    assert sign(b"The quick brown fox jumps over the lazy dog", "key") == (
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )
    assert sign(b"x", "key", prefix=True).startswith("sha256=")


def test_delivery_sends_compact_utf8_json_signed_over_the_exact_bytes(receiver: Receiver):
    payload = {
        "event": "order.cancelled",
        "orderId": "ord-1",
        "reason": "Umzug \u2013 K\u00fcndigung",
        "n": [1, 2.5],
    }
    status, body = deliver_webhook(receiver.url, payload, SECRET)
    assert (status, body) == (200, b'{"ok":true}')
    [(headers, raw)] = receiver.received
    expected = (
        '{"event":"order.cancelled","orderId":"ord-1","reason":"Umzug \u2013 K\u00fcndigung","n":[1,2.5]}'
    )
    assert raw == expected.encode("utf-8")  # compact, and non-ASCII as UTF-8 bytes (no \\u escapes)
    assert headers[SIGNATURE_HEADER] == expected_signature(raw)
    assert headers[SIGNATURE_HEADER] == headers[SIGNATURE_HEADER].lower()
    assert headers["content-type"] == "application/json"


def test_prefix_raw_body_and_receiver_errors(receiver: Receiver):
    raw = b'{\n  "event": "order.created",\n  "itemId": "item-1"\n}'
    receiver.answer_status = 401
    status, body = deliver_webhook(receiver.url, {"ignored": True}, SECRET, prefix=True, raw_body=raw)
    assert (status, json.loads(body)) == (401, {"message": "invalid signature"})
    [(headers, received)] = receiver.received
    assert received == raw
    assert headers[SIGNATURE_HEADER] == "sha256=" + expected_signature(raw)


def test_unsigned_and_overridden_signatures(receiver: Receiver):
    deliver_webhook(receiver.url, {"event": "order.created"}, SECRET, sign_body=False)
    deliver_webhook(receiver.url, {"event": "order.created"}, SECRET, headers={SIGNATURE_HEADER: "bad"})
    (unsigned, _), (overridden, _) = receiver.received
    assert SIGNATURE_HEADER not in unsigned
    assert overridden[SIGNATURE_HEADER] == "bad"


def test_only_http_urls_are_delivered_to():
    with pytest.raises(ValueError, match="http"):
        deliver_webhook("file:///etc/passwd", {}, SECRET)


def test_payload_shapes_for_an_item(offergrid_fake: OffergridFake):
    item = offergrid_fake.add_order_item()
    created = offergrid_fake.webhook_payload("order.created", item["id"])
    assert list(created) == ["event", "orderId", "itemId", "offerId", "timestamp"]
    assert (created["orderId"], created["itemId"], created["offerId"]) == (
        item["orderId"],
        item["id"],
        item["offerId"],
    )
    assert created["timestamp"].endswith("Z")
    nested = offergrid_fake.webhook_payload("order.created", item, shape="nested")
    assert nested["data"] == {"orderId": item["orderId"], "itemId": item["id"], "offerId": item["offerId"]}
    cancelled = offergrid_fake.webhook_payload("order.cancelled", item, reason="moved", include_item_id=False)
    assert cancelled["event"] == "order.cancelled"
    assert cancelled["reason"] == "moved"
    assert "itemId" not in cancelled
    assert webhook_payload("order.created", item)["timestamp"].endswith("Z")
    with pytest.raises(ValueError, match="kind"):
        webhook_payload("offer.ordered", item, timestamp="t")  # type: ignore[arg-type]


def test_fake_delivers_and_logs_its_deliveries(offergrid_fake: OffergridFake, receiver: Receiver):
    item = offergrid_fake.add_order_item()
    payload = offergrid_fake.webhook_payload("order.created", item)
    status, _ = offergrid_fake.deliver_webhook(receiver.url, payload, SECRET, shape="nested")
    assert status == 200
    [(headers, raw)] = receiver.received
    assert json.loads(raw)["data"]["itemId"] == item["id"]
    assert headers[SIGNATURE_HEADER] == expected_signature(raw)
    assert offergrid_fake.webhook_deliveries[0]["status"] == 200
    assert offergrid_fake.webhook_deliveries[0]["event"] == "order.created"
