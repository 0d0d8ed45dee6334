"""The catalog from the provider's CRM over HTTPS, its manifest at the same URL + `.manifest.json`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final
from urllib.parse import urlsplit

import httpx

from offergrid_integration.catalog.sources.check import (
    MANIFEST_SUFFIX,
    MAX_MANIFEST_BYTES,
    CatalogCheck,
    CatalogItem,
    CatalogReadError,
    ManifestUnreadable,
)
from offergrid_integration.catalog.sources.formats import (
    CHUNK_BYTES,
    MAX_CATALOG_BYTES,
    CatalogFormat,
    detect_format,
    iter_catalog,
    limited,
)
from offergrid_integration.config import http_url

HTTPS_TIMEOUT_SECONDS: Final = 30.0


class HttpsCatalogSource:
    def __init__(
        self,
        url: str,
        catalog_format: CatalogFormat = CatalogFormat.AUTO,
        *,
        api_key: Callable[[], str] | None = None,
        api_key_header: str = "x-api-key",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        try:
            self._url = http_url(url, allow_query=True)
        except ValueError as error:
            raise ValueError(f"the catalog URL {error}") from None
        self._format = catalog_format
        self._api_key = api_key
        self._header = api_key_header
        self._transport = transport

    @property
    def description(self) -> str:
        parts = urlsplit(self._url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"  # no query: it might carry a token

    def rows(
        self, sku_field: str | None = "sku", *, check: CatalogCheck | None = None
    ) -> Iterator[CatalogItem]:
        headers = {"accept": "application/json, text/csv, application/x-ndjson"}
        if self._api_key is not None:
            key = self._api_key()
            headers[self._header] = f"Bearer {key}" if self._header.lower() == "authorization" else key
        check = check if check is not None else CatalogCheck()
        try:
            with httpx.Client(transport=self._transport, timeout=HTTPS_TIMEOUT_SECONDS) as client:
                check.read_manifest(
                    self.description + MANIFEST_SUFFIX, lambda: self._manifest(client, headers)
                )
                yield from self._catalog(client, headers, sku_field, check)
        except httpx.HTTPError as exc:
            raise CatalogReadError(f"cannot read {self.description}: {type(exc).__name__}") from None

    def _manifest(self, client: httpx.Client, headers: dict[str, str]) -> bytes | None:
        """The manifest's bytes (the query of the catalog URL kept); None when the CRM answers 404 or
        410 (it has none)."""
        parts = urlsplit(self._url)
        url = parts._replace(path=parts.path + MANIFEST_SUFFIX).geturl()
        try:
            with client.stream("GET", url, headers=headers) as response:
                if response.status_code in (404, 410):
                    return None
                if response.status_code != 200:
                    raise ManifestUnreadable(f"HTTP {response.status_code}")
                data = b""
                for chunk in response.iter_bytes(MAX_MANIFEST_BYTES):
                    data += chunk
                    if len(data) > MAX_MANIFEST_BYTES:
                        break
                return data
        except httpx.HTTPError as exc:
            raise ManifestUnreadable(type(exc).__name__) from None

    def _catalog(
        self, client: httpx.Client, headers: dict[str, str], sku_field: str | None, check: CatalogCheck
    ) -> Iterator[CatalogItem]:
        with client.stream("GET", self._url, headers=headers) as response:
            if response.status_code != 200:
                raise CatalogReadError(f"cannot read {self.description}: HTTP {response.status_code}")
            catalog_format = self._format
            if catalog_format is CatalogFormat.AUTO:
                catalog_format = detect_format(self._url, response.headers.get("content-type"))
            chunks = limited(response.iter_bytes(CHUNK_BYTES), MAX_CATALOG_BYTES, self.description)
            yield from iter_catalog(chunks, catalog_format, sku_field, check)
