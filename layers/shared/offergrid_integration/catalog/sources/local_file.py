"""The catalog as a local file (the CLI; never in Lambda), its manifest beside it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


class FileCatalogSource:
    def __init__(self, path: str | Path, catalog_format: CatalogFormat = CatalogFormat.AUTO) -> None:
        self._path = Path(path)
        auto = catalog_format is CatalogFormat.AUTO
        self._format = detect_format(self._path.name) if auto else catalog_format

    @property
    def description(self) -> str:
        return str(self._path)

    def rows(
        self, sku_field: str | None = "sku", *, check: CatalogCheck | None = None
    ) -> Iterator[CatalogItem]:
        check = check if check is not None else CatalogCheck()
        manifest = self._path.with_name(self._path.name + MANIFEST_SUFFIX)

        def fetch_manifest() -> bytes | None:
            try:
                with manifest.open("rb") as handle:
                    return bytes(handle.read(MAX_MANIFEST_BYTES + 1))
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise ManifestUnreadable(exc.strerror or type(exc).__name__) from None

        expect_manifest(check, str(manifest), fetch_manifest)
        try:
            handle = self._path.open("rb")
        except OSError as exc:
            raise CatalogReadError(f"cannot read {self._path}: {exc.strerror}") from None
        with handle:
            chunks = chunks_of(handle, MAX_CATALOG_BYTES, str(self._path))
            yield from iter_catalog(chunks, self._format, sku_field, check)
