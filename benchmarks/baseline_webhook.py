"""The bare baseline the webhook handler's cold start is compared with (benchmarks/bench_webhook.py).

The least a correct webhook Lambda could be: stdlib HMAC and JSON, one boto3 SQS client created at
import, no framework, no validation model, no observability. Not deployed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

import boto3

QUEUE_URL = os.environ["ORDERS_QUEUE_URL"]
SECRET = os.environ.get("BASELINE_WEBHOOK_SECRET", "local-dev-webhook-secret").encode()
sqs = boto3.client("sqs")


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    expected = hmac.new(SECRET, raw, hashlib.sha256).hexdigest()
    header = (event.get("headers") or {}).get("x-offergrid-signature", "")
    if not hmac.compare_digest(expected, header.removeprefix("sha256=")):
        return {"statusCode": 401, "body": '{"message":"Unauthorized"}'}
    payload = json.loads(raw)
    sqs.send_message(QueueUrl=QUEUE_URL, MessageBody=json.dumps(payload))
    return {"statusCode": 200, "body": '{"received":true}'}
