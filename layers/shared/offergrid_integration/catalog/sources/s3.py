"""The catalog as an S3 object (the default source: a CRM export dropped in a bucket), its manifest
beside it (`<key>.manifest.json`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from offergrid_integration import aws
from offergrid_integration.catalog.sources.check import (
    MANIFEST_SUFFIX,
    MAX_MANIFEST_BYTES,
    CatalogReadError,
    ManifestUnreadable,
)
from offergrid_integration.catalog.sources.formats import MAX_CATALOG_BYTES, CatalogFormat, StoredCatalog
from offergrid_integration.s3 import S3ReadError, parse_s3_uri
from offergrid_integration.s3 import read_s3_object as _read_s3_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def read_s3_object(uri: str, s3_client: S3Client | None = None) -> bytes:
    """The bytes of an S3 object (catalog or mapping document); `CatalogReadError` if unreadable."""
    try:
        return _read_s3_object(uri, s3_client, max_bytes=MAX_CATALOG_BYTES)
    except S3ReadError as exc:
        raise CatalogReadError(str(exc)) from None


class S3CatalogSource(StoredCatalog):
    def __init__(
        self,
        uri: str,
        catalog_format: CatalogFormat = CatalogFormat.AUTO,
        *,
        s3_client: S3Client | None = None,
    ) -> None:
        parse_s3_uri(uri)
        super().__init__(uri, catalog_format)
        self._s3 = s3_client

    @property
    def s3(self) -> S3Client:
        return self._s3 if self._s3 is not None else aws.clients().s3

    def _manifest(self) -> bytes | None:
        try:
            return _read_s3_object(self.description + MANIFEST_SUFFIX, self.s3, max_bytes=MAX_MANIFEST_BYTES)
        except S3ReadError as error:
            if error.problem == "NoSuchKey":
                return None
            raise ManifestUnreadable(error.problem) from None

    @contextmanager
    def _open(self) -> Iterator[Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = parse_s3_uri(self.description)
        try:
            response = self.s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            raise CatalogReadError(f"cannot read {self.description}: {code}") from None
        except BotoCoreError as exc:
            raise CatalogReadError(f"cannot read {self.description}: {type(exc).__name__}") from None
        size = response.get("ContentLength", 0)
        if size > MAX_CATALOG_BYTES:
            raise CatalogReadError(
                f"cannot read {self.description}: {size} bytes, over the {MAX_CATALOG_BYTES} byte limit"
            )
        body = response["Body"]
        try:
            yield body
        except (ClientError, BotoCoreError, OSError) as exc:  # the connection dropped mid-object
            raise CatalogReadError(f"cannot read {self.description}: {type(exc).__name__}") from None
        finally:
            body.close()
