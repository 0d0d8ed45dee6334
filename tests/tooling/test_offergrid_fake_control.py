"""The fake's control plane (/_fake/...) and process mode (`python -m devtools.offergrid_fake`)."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from devtools.offergrid_fake import SIGNATURE_HEADER, OffergridFake
from tests.fixtures.offergrid_fake import TEST_API_KEY, fake_http_client

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def control(offergrid_fake: OffergridFake) -> Iterator[httpx.Client]:
    with fake_http_client(offergrid_fake, key=None) as client:
        yield client


def test_seed_inspect_and_reset_through_the_control_plane(
    offergrid_fake: OffergridFake, control: httpx.Client
):
    # Given an offer and an order item seeded without an API key
    offer = control.post("/_fake/offers", json={"name": "Fiber", "sku": "F-1"}).json()
    item = control.post("/_fake/orders", json={"offerId": offer["id"], "notes": "gate code 42"}).json()
    assert item["offerName"] == "Fiber"
    assert item["status"] == "pending"
    assert control.post("/_fake/offers", json={"sku": "F-1"}).status_code == 400
    # When the API is called
    with fake_http_client(offergrid_fake) as api:
        assert api.get(f"/provider/orders/{item['id']}").json()["notes"] == "gate code 42"
    # Then state and calls show it, and control requests are not recorded
    state = control.get("/_fake/state").json()
    assert [o["id"] for o in state["offers"]] == [offer["id"]]
    assert [i["id"] for i in state["orderItems"]] == [item["id"]]
    assert state["counters"]["calls"] == 1
    calls = control.get("/_fake/calls").json()
    assert [(c["method"], c["status"], c["api_key_valid"]) for c in calls] == [("GET", 200, True)]
    assert control.delete("/_fake/calls").status_code == 204
    assert offergrid_fake.calls == []
    assert control.post("/_fake/reset").status_code == 204
    assert offergrid_fake.offers == {}
    assert offergrid_fake.order_items == {}


def test_faults_keys_and_statuses_through_the_control_plane(
    offergrid_fake: OffergridFake, control: httpx.Client
):
    item = offergrid_fake.add_order_item(status="accepted")
    assert (
        control.post("/_fake/faults", json={"kind": "status", "status": 502, "times": 1}).status_code == 201
    )
    assert control.post("/_fake/faults", json={"kind": "nonsense"}).status_code == 400
    assert control.post("/_fake/api-keys", json={"key": "new-key"}).status_code == 204
    assert control.request("DELETE", "/_fake/api-keys", json={"key": TEST_API_KEY}).status_code == 204
    with fake_http_client(offergrid_fake, "new-key") as api, fake_http_client(offergrid_fake) as old:
        assert api.get("/provider/offers").status_code == 502
        assert api.get("/provider/offers").status_code == 200
        assert old.get("/provider/offers").status_code == 401
    changed = control.post(f"/_fake/orders/{item['id']}/status", json={"status": "cancelled"})
    assert changed.json()["status"] == "cancelled"
    assert control.post("/_fake/orders/item-x/status", json={"status": "cancelled"}).status_code == 404
    assert control.get("/_fake/nothing").status_code == 404


def test_a_listing_view_changes_what_listings_show_never_the_item(
    offergrid_fake: OffergridFake, control: httpx.Client
):
    # Given two pending items, one shown in listings as a summary with an empty address
    shown, other = offergrid_fake.add_order_item(), offergrid_fake.add_order_item()
    view = {"id": shown["id"], "status": "pending", "serviceAddress": {}, "customerInfo": {"fullName": "J"}}
    url = f"/_fake/orders/{shown['id']}/listing-view"
    assert control.put(url, json={"view": view}).status_code == 204
    with fake_http_client(offergrid_fake) as api:
        # Then the listing holds the view verbatim, the GET the full item
        listed = {element["id"]: element for element in api.get("/provider/orders").json()}
        assert listed[shown["id"]] == view
        assert listed[other["id"]] == other
        assert api.get(f"/provider/orders/{shown['id']}").json() == shown
        # A null view leaves the item out of listings; its status still filters them
        assert control.put(url, json={"view": None}).status_code == 204
        assert [e["id"] for e in api.get("/provider/orders").json()] == [other["id"]]
        assert control.delete(url).status_code == 204
        assert len(api.get("/provider/orders").json()) == 2
        offergrid_fake.set_listing_view(shown["id"], view)
        offergrid_fake.set_order_item_status(shown["id"], "cancelled")
        assert [e["id"] for e in api.get("/provider/orders", params={"status": "pending"}).json()] == [
            other["id"]
        ]
    # Bad views and unknown items are refused; a reset forgets the views
    assert control.put(url, json={"view": [1]}).status_code == 400
    assert control.put(url, json={}).status_code == 400
    assert control.put("/_fake/orders/item-x/listing-view", json={"view": {}}).status_code == 404
    assert control.get("/_fake/state").json()["listingViews"] == {shown["id"]: view}
    assert control.post("/_fake/reset").status_code == 204
    assert offergrid_fake.listing_views == {}


def test_webhook_delivery_through_the_control_plane(offergrid_fake: OffergridFake, control: httpx.Client):
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(
                (self.headers[SIGNATURE_HEADER], self.rfile.read(int(self.headers["Content-Length"])))
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        item = offergrid_fake.add_order_item()
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        answer = control.post(
            "/_fake/webhooks",
            json={"url": url, "secret": "s3", "kind": "order.created", "itemId": item["id"]},
        ).json()
        assert answer["status"] == 200
        assert answer["payload"]["itemId"] == item["id"]
        [(signature, body)] = received
        assert signature == hmac.new(b"s3", body, hashlib.sha256).hexdigest()
        server.shutdown()
        server.server_close()
        down = control.post("/_fake/webhooks", json={"url": url, "secret": "s3", "payload": {"event": "x"}})
        assert down.status_code == 502
    finally:
        server.shutdown()
        server.server_close()


def test_process_mode_serves_until_sigterm():
    # Given the fake started as a module on a free port
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.offergrid_fake", "--port", "0", "--api-key", "proc-key",
         "--time-scale", "60", "--list-style", "envelope-page", "--page-size", "5"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        # When it is driven over HTTP
        with httpx.Client(base_url=base_url, timeout=5) as client:
            state = client.get("/_fake/state").json()
            assert state["config"]["timeScale"] == 60
            assert state["config"]["listStyle"] == "envelope-page"
            item = client.post("/_fake/orders", json={}).json()
            listed = client.get("/provider/orders", headers={"x-api-key": "proc-key"}).json()
            assert [i["id"] for i in listed["items"]] == [item["id"]]
            assert client.get("/provider/orders", headers={"x-api-key": TEST_API_KEY}).status_code == 401
        # Then SIGTERM stops it cleanly, and it never printed the key
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "proc-key" not in process.stdout.read() + (process.stderr.read() if process.stderr else "")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_process_mode_rejects_bad_configuration():
    result = subprocess.run(
        [sys.executable, "-m", "devtools.offergrid_fake", "--port", "0", "--page-size", "5"],
        cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "bare array" in result.stderr
