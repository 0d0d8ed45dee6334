"""S3 documents: `s3://bucket/key` URIs and bounded reads. Errors name the URI and the code, never the
content.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_MAX_BYTES: Final = 200 * 1024 * 1024


class S3ReadError(Exception):
    """The object cannot be read: missing, no access, unreachable, or over the size limit."""

    def __init__(self, uri: str, problem: str) -> None:
        super().__init__(f"cannot read {uri}: {problem}")
        self.uri = uri
        self.problem = problem


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key); ValueError when it is not one (no query or fragment)."""
    parts = urlsplit(uri.strip())
    key = parts.path.lstrip("/")
    if parts.scheme != "s3" or not parts.netloc or not key or parts.query or parts.fragment:
        raise ValueError("must be an S3 URI: s3://bucket/key")
    return parts.netloc, key


def read_s3_object(uri: str, client: S3Client | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of the object at `uri` (at most `max_bytes`); `S3ReadError` if it cannot be read."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_s3_uri(uri)
    if client is None:
        from offergrid_integration import aws

        client = aws.clients().s3
    try:
        response = client.get_object(Bucket=bucket, Key=key)
        size = response.get("ContentLength", 0)
        if size > max_bytes:
            raise S3ReadError(uri, f"{size} bytes, over the {max_bytes} byte limit")
        body = response["Body"].read(max_bytes + 1)
    except ClientError as exc:
        raise S3ReadError(uri, exc.response.get("Error", {}).get("Code", "ClientError")) from None
    except BotoCoreError as exc:
        raise S3ReadError(uri, type(exc).__name__) from None
    if len(body) > max_bytes:
        raise S3ReadError(uri, f"over the {max_bytes} byte limit")
    return body
