"""The catalog as a local file (the CLI; never in Lambda), its manifest beside it."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from offergrid_integration.catalog.sources.check import (
    MANIFEST_SUFFIX,
    MAX_MANIFEST_BYTES,
    CatalogReadError,
    ManifestUnreadable,
)
from offergrid_integration.catalog.sources.formats import CatalogFormat, StoredCatalog


class FileCatalogSource(StoredCatalog):
    def __init__(self, path: str | Path, catalog_format: CatalogFormat = CatalogFormat.AUTO) -> None:
        super().__init__(str(Path(path)), catalog_format)

    def _manifest(self) -> bytes | None:
        try:
            with Path(self.description + MANIFEST_SUFFIX).open("rb") as handle:
                return bytes(handle.read(MAX_MANIFEST_BYTES + 1))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ManifestUnreadable(exc.strerror or type(exc).__name__) from None

    def _open(self) -> BinaryIO:
        try:
            return Path(self.description).open("rb")
        except OSError as exc:
            raise CatalogReadError(f"cannot read {self.description}: {exc.strerror}") from None
