"""Bare offer sync for `bench_cold.py`: the same AWS and HTTP calls as the project's sync in a dry run
(sweep, then plan), stdlib + boto3 only. Not deployed.

The API key from Secrets Manager, a rate-budget write before each Offergrid call,
`GET /provider/orders?status=pending` (the sweep), the catalog object from S3, `GET /provider/offers`,
and a plan by SKU (create / update / unchanged) without writing. Three boto3 clients (DynamoDB,
Secrets Manager, S3) created at import, `urllib.request` for HTTP.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import boto3

endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
API_URL = os.environ["OFFERGRID_API_URL"].rstrip("/")
dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
secretsmanager = boto3.client("secretsmanager", endpoint_url=endpoint)
s3 = boto3.client("s3", endpoint_url=endpoint)
_cache: dict[str, str] = {}


def _api_key() -> str:
    if "key" not in _cache:
        raw = secretsmanager.get_secret_value(SecretId=os.environ["OFFERGRID_API_KEY_SECRET"])["SecretString"]
        try:
            document = json.loads(raw)
        except ValueError:
            document = raw
        _cache["key"] = document.get("apiKey", "") if isinstance(document, dict) else str(document).strip()
    return _cache["key"]


def _offergrid(path: str) -> Any:
    dynamodb.update_item(
        TableName=os.environ["RATE_LIMIT_TABLE"],
        Key={"pk": {"S": "bare-budget"}},
        UpdateExpression="ADD used :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    request = urllib.request.Request(API_URL + path, headers={"x-api-key": _api_key()})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def _items(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, dict):
        for name in ("items", "data", "offers", "orders"):
            if isinstance(document.get(name), list):
                return list(document[name])
        return []
    return list(document)


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    pending = _items(_offergrid("/provider/orders?status=pending"))
    location = urlsplit(os.environ["CATALOG_SOURCE_URI"])
    body = s3.get_object(Bucket=location.netloc, Key=location.path.lstrip("/"))["Body"].read()
    catalog = _items(json.loads(body))
    existing = {offer.get("sku"): offer for offer in _items(_offergrid("/provider/offers"))}
    plan = {"create": 0, "update": 0, "unchanged": 0}
    for entry in catalog:
        offer = existing.get(entry.get("sku"))
        if offer is None:
            plan["create"] += 1
        elif any(offer.get(name) != value for name, value in entry.items() if name in offer):
            plan["update"] += 1
        else:
            plan["unchanged"] += 1
    return {"dryRun": True, "sweep": {"pending": len(pending)}, "sync": plan}
