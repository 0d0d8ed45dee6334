"""Write the generated sample events in `events/`, webhooks signed with the local development secret.

    .venv/bin/python scripts/make_sample_events.py           # rewrite them
    .venv/bin/python scripts/make_sample_events.py --check   # exit 1 if a committed file differs

`webhook_*.json` are API Gateway REST proxy events for `POST /webhooks/offergrid`,
as `sam local invoke WebhookIngressFunction -e events/<file>` and the tests feed it to the handler.
The secret is the documented dev-only value `local-dev-webhook-secret` (events/README.md).

`sam_*.json` are what `sam local generate-event` prints for each trigger of each function, unchanged;
the other AWS-shaped events (`http_api_webhook_*.json`, `scheduled_event_*.json`) are sam's output with
our body, method or options put in. They are made by running `.venv-sam/bin/sam` (`make dev`).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "shared"))

from offergrid_integration.signature import (  # noqa: E402
    SIGNATURE_HEADER,
    compact_json,
    sign,
)

# Dev-only, documented in events/README.md; never a deployed secret.
LOCAL_DEV_WEBHOOK_SECRET = "local-dev-webhook-secret"  # noqa: S105
WRONG_SECRET = "not-the-webhook-secret"  # noqa: S105
EVENTS_DIR = ROOT / "events"
REQUEST_TIME = "27/Nov/2026:14:30:00 +0000"
REQUEST_TIME_EPOCH = 1_795_789_800_000

ORDER_CREATED = {
    "event": "order.created",
    "orderId": "order-123-abc",
    "itemId": "item-456-def",
    "offerId": "offer-789-ghi",
    "timestamp": "2026-11-27T14:30:00.000Z",
}
ORDER_CANCELLED_NESTED = {
    "event": "order.cancelled",
    "data": {
        "orderId": "order-123-abc",
        "itemId": "item-456-def",
        "reason": "Customer cancelled before installation",
        "timestamp": "2026-11-28T09:15:00.000Z",
    },
}
ORDER_CREATED_BASE64 = {**ORDER_CREATED, "itemId": "item-457-xyz", "timestamp": "2026-11-27T14:31:00.000Z"}
OFFER_ORDERED = {
    "event": "offer.ordered",
    "offerId": "offer-789-ghi",
    "timestamp": "2026-11-27T14:32:00.000Z",
}


def api_gateway_event(
    body: str, signature: str | None, *, request_id: str, is_base64_encoded: bool = False
) -> dict[str, Any]:
    """A REST API (v1) proxy event as API Gateway delivers it to the function."""
    headers = {
        "Content-Type": "application/json",
        "Host": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
        "User-Agent": "Offergrid-Webhooks/1.0",
        "X-Forwarded-For": "203.0.113.10",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if signature is not None:
        # Title case as many HTTP clients send it: the lookup must be case-insensitive.
        headers[SIGNATURE_HEADER.title()] = signature
    return {
        "resource": "/webhooks/offergrid",
        "path": "/webhooks/offergrid",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "a1b2c3",
            "resourcePath": "/webhooks/offergrid",
            "httpMethod": "POST",
            "extendedRequestId": request_id[:8] + "=",
            "requestTime": REQUEST_TIME,
            "path": "/Prod/webhooks/offergrid",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "Prod",
            "domainPrefix": "abcdef1234",
            "requestTimeEpoch": REQUEST_TIME_EPOCH,
            "requestId": request_id,
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "Offergrid-Webhooks/1.0"},
            "domainName": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
            "apiId": "abcdef1234",
        },
        "body": body,
        "isBase64Encoded": is_base64_encoded,
    }


def sample_events() -> dict[str, dict[str, Any]]:
    created = compact_json(ORDER_CREATED).decode()
    # Pretty-printed on the wire, signed over the compact form (what Offergrid's docs compute), with
    # the optional prefix: exercises the re-serialisation fallback.
    cancelled = json.dumps(ORDER_CANCELLED_NESTED, indent=2)
    created_b64 = compact_json(ORDER_CREATED_BASE64)
    unknown = compact_json(OFFER_ORDERED).decode()
    malformed = '{"event":"order.created","itemId":"item-456-def"'  # truncated: not JSON
    secret = LOCAL_DEV_WEBHOOK_SECRET
    return {
        "webhook_order_created.json": api_gateway_event(
            created, sign(created, secret), request_id="3f1c6a2e-0b7d-4c1e-9a55-0c0ffee00001"
        ),
        "webhook_order_cancelled.json": api_gateway_event(
            cancelled,
            sign(compact_json(ORDER_CANCELLED_NESTED), secret, prefix=True),
            request_id="3f1c6a2e-0b7d-4c1e-9a55-0c0ffee00002",
        ),
        "webhook_order_created_base64.json": api_gateway_event(
            base64.b64encode(created_b64).decode(),
            sign(created_b64, secret),
            request_id="3f1c6a2e-0b7d-4c1e-9a55-0c0ffee00003",
            is_base64_encoded=True,
        ),
        "webhook_unknown_event.json": api_gateway_event(
            unknown, sign(unknown, secret), request_id="3f1c6a2e-0b7d-4c1e-9a55-0c0ffee00004"
        ),
        "webhook_bad_signature.json": api_gateway_event(
            created, sign(created, WRONG_SECRET), request_id="3f1c6a2e-0b7d-4c1e-9a55-0c0ffee00005"
        ),
        "webhook_malformed_body.json": api_gateway_event(
            malformed, sign(malformed, secret), request_id="3f1c6a2e-0b7d-4c1e-9a55-0c0ffee00006"
        ),
    }


SAM = ROOT / ".venv-sam" / "bin" / "sam"


class SamUnavailable(RuntimeError):
    """`.venv-sam/bin/sam` is missing or failed: the AWS-generated events cannot be made."""


def sam_generate_event(service: str, event_type: str, *options: str) -> dict[str, Any]:
    """`sam local generate-event SERVICE TYPE [OPTIONS]`: offline, deterministic."""
    if not SAM.exists():
        raise SamUnavailable(f"{SAM.relative_to(ROOT)} not found: run `make dev` first")
    done = subprocess.run(  # noqa: S603 - our own venv's sam, fixed arguments
        [str(SAM), "local", "generate-event", service, event_type, *options],
        capture_output=True,
        text=True,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        check=False,
    )
    if done.returncode != 0:
        raise SamUnavailable(f"sam local generate-event {service} {event_type}: {done.stderr.strip()}")
    event: dict[str, Any] = json.loads(done.stdout)
    return event


def http_api_event(body: str, signature: str | None, *, method: str = "POST") -> dict[str, Any]:
    """An HTTP API (payload v2) event as sam generates it, for `METHOD /webhooks/offergrid`, signed."""
    event = sam_generate_event(
        "apigateway", "http-api-proxy", "--method", method, "--path", "webhooks/offergrid", "--body", body
    )
    if signature is not None:
        event["headers"][SIGNATURE_HEADER] = signature  # HTTP API lower-cases header names
    return event


def aws_generated_events() -> dict[str, dict[str, Any]]:
    """Every trigger's event as `sam local generate-event` makes it, and the variants we test."""
    created = compact_json(ORDER_CREATED).decode()
    signature = sign(created, LOCAL_DEV_WEBHOOK_SECRET)
    scheduled_dry_run = sam_generate_event("cloudwatch", "scheduled-event")
    scheduled_dry_run["detail"] = {"dryRun": True, "sweep": False}
    return {
        # WebhookIngressFunction (Api): REST API v1, and HTTP API v2 (a user may front it with one)
        "sam_apigateway_aws_proxy.json": sam_generate_event("apigateway", "aws-proxy"),
        "sam_apigateway_http_api_proxy.json": sam_generate_event("apigateway", "http-api-proxy"),
        "http_api_webhook_order_created.json": http_api_event(created, signature),
        "http_api_webhook_get.json": http_api_event(created, signature, method="GET"),
        # OrderProcessorFunction (SQS)
        "sam_sqs_receive_message.json": sam_generate_event("sqs", "receive-message"),
        # OfferSyncFunction (ScheduleV2; a classic EventBridge rule delivers this envelope)
        "sam_cloudwatch_scheduled_event.json": sam_generate_event("cloudwatch", "scheduled-event"),
        "scheduled_event_dry_run.json": scheduled_dry_run,
    }


def render(event: dict[str, Any]) -> str:
    return json.dumps(event, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed files, write nothing"
    )
    args = parser.parse_args(argv)
    stale: list[str] = []
    try:
        events = {**sample_events(), **aws_generated_events()}
    except SamUnavailable as exc:
        print(f"make_sample_events: {exc}", file=sys.stderr)
        return 2
    for name, event in events.items():
        path = EVENTS_DIR / name
        text = render(event)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("out of date (run scripts/make_sample_events.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
