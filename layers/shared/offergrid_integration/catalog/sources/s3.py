"""The catalog as an S3 object (the default source: a CRM export dropped in a bucket), its manifest
beside it (`<key>.manifest.json`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from offergrid_integration import aws
from offergrid_integration.catalog.sources.check import (
    MANIFEST_SUFFIX,
    MAX_MANIFEST_BYTES,
    CatalogCheck,
    CatalogReadError,
    ManifestUnreadable,
    expect_manifest,
)
from offergrid_integration.catalog.sources.formats import (
    MAX_CATALOG_BYTES,
    CatalogFormat,
    chunks_of,
    detect_format,
    iter_catalog,
)
from offergrid_integration.catalog.sources.text import CatalogItem
from offergrid_integration.s3 import S3ReadError, parse_s3_uri
from offergrid_integration.s3 import read_s3_object as _read_s3_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def read_s3_object(uri: str, s3_client: S3Client | None = None, max_bytes: int = MAX_CATALOG_BYTES) -> bytes:
    """The bytes of an S3 object (catalog or mapping document); `CatalogReadError` if unreadable."""
    try:
        return _read_s3_object(uri, s3_client, max_bytes=max_bytes)
    except S3ReadError as exc:
        raise CatalogReadError(str(exc)) from None


class S3CatalogSource:
    def __init__(
        self,
        uri: str,
        catalog_format: CatalogFormat = CatalogFormat.AUTO,
        *,
        s3_client: S3Client | None = None,
        max_bytes: int = MAX_CATALOG_BYTES,
    ) -> None:
        parse_s3_uri(uri)
        self._uri = uri
        self._format = detect_format(uri) if catalog_format is CatalogFormat.AUTO else catalog_format
        self._s3 = s3_client
        self._max_bytes = max_bytes

    @property
    def description(self) -> str:
        return self._uri

    def rows(
        self, sku_field: str | None = "sku", *, check: CatalogCheck | None = None
    ) -> Iterator[CatalogItem]:
        from botocore.exceptions import BotoCoreError, ClientError

        s3 = self._s3 if self._s3 is not None else aws.clients().s3
        bucket, key = parse_s3_uri(self._uri)
        check = check if check is not None else CatalogCheck()
        manifest = self._uri + MANIFEST_SUFFIX

        def fetch_manifest() -> bytes | None:
            try:
                return _read_s3_object(manifest, s3, max_bytes=MAX_MANIFEST_BYTES)
            except S3ReadError as error:
                if error.problem == "NoSuchKey":
                    return None
                raise ManifestUnreadable(error.problem) from None

        expect_manifest(check, manifest, fetch_manifest)
        try:
            response = s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            raise CatalogReadError(f"cannot read {self._uri}: {code}") from None
        except BotoCoreError as exc:
            raise CatalogReadError(f"cannot read {self._uri}: {type(exc).__name__}") from None
        size = response.get("ContentLength", 0)
        if size > self._max_bytes:
            raise CatalogReadError(
                f"cannot read {self._uri}: {size} bytes, over the {self._max_bytes} byte limit"
            )
        body = response["Body"]
        try:
            yield from iter_catalog(
                chunks_of(body, self._max_bytes, self._uri), self._format, sku_field, check
            )
        except (ClientError, BotoCoreError, OSError) as exc:  # the connection dropped mid-object
            raise CatalogReadError(f"cannot read {self._uri}: {type(exc).__name__}") from None
        finally:
            body.close()
