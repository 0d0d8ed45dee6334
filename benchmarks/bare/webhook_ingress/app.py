"""Bare webhook handler for `bench_cold.py`: the same work as the project's ingress, stdlib + boto3 only.

Reads the webhook secret from Secrets Manager on the first request (JSON `{"current", "previous"}` or
a plain string), verifies the HMAC-SHA256 signature, checks the body is a JSON object with an `event`,
and sends it to the orders queue; with `DELIVERY_ARCHIVE_BUCKET` set (as the template sets it) it
first puts the body and its signature in S3, as the archive of verified deliveries does (one S3 client,
made on the first delivery). One SQS and one Secrets Manager client created at import. No validation
model, no logging or metrics framework. Not deployed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from typing import Any

import boto3

QUEUE_URL = os.environ["ORDERS_QUEUE_URL"]
SECRET_ID = os.environ["OFFERGRID_WEBHOOK_SECRET"]
endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
sqs = boto3.client("sqs", endpoint_url=endpoint)
secretsmanager = boto3.client("secretsmanager", endpoint_url=endpoint)
ARCHIVE_BUCKET = os.environ.get("DELIVERY_ARCHIVE_BUCKET") or None
_secrets: list[str] = []
_s3: list[Any] = []


def _webhook_secrets() -> list[str]:
    if not _secrets:
        raw = secretsmanager.get_secret_value(SecretId=SECRET_ID)["SecretString"]
        try:
            document = json.loads(raw)
        except ValueError:
            document = raw
        if isinstance(document, dict):
            previous = document.get("previous") or []
            _secrets.extend([document["current"], *([previous] if isinstance(previous, str) else previous)])
        else:
            _secrets.append(str(document).strip())
    return _secrets


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    signature = str(headers.get("x-offergrid-signature", "")).removeprefix("sha256=")
    if not any(
        hmac.compare_digest(hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest(), signature)
        for secret in _webhook_secrets()
    ):
        return {"statusCode": 401, "body": '{"message":"Unauthorized"}'}
    if ARCHIVE_BUCKET:
        if not _s3:
            _s3.append(boto3.client("s3", endpoint_url=endpoint))
        key = f"archive/bare/{time.strftime('%Y/%m/%d/%H', time.gmtime())}/{uuid.uuid4()}.json"
        record = {"headers": {"x-offergrid-signature": signature}, "isBase64Encoded": False, "body": body}
        _s3[0].put_object(Bucket=ARCHIVE_BUCKET, Key=key, Body=json.dumps(record).encode())
    payload = json.loads(raw)
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
        return {"statusCode": 400, "body": '{"message":"Bad Request"}'}
    sqs.send_message(QueueUrl=QUEUE_URL, MessageBody=json.dumps(payload))
    return {"statusCode": 200, "body": '{"received":true}'}
