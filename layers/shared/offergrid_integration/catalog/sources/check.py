"""Whether a catalog read is whole (docs/decisions.md#15): where it looks cut short, and its manifest
(docs/runbooks/offer-sync.md#catalog-manifest).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

MANIFEST_SUFFIX: Final = ".manifest.json"
MAX_MANIFEST_BYTES: Final = 64 * 1024
MANIFEST_HELP: Final = "docs/runbooks/offer-sync.md#catalog-manifest"
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")


class CatalogReadError(Exception):
    """The catalog cannot be read at all (no row can be trusted): the run stops before planning."""


class ManifestUnreadable(Exception):
    """A manifest may be there but cannot be read (no access, a server error, too big)."""


class ManifestStatus(StrEnum):
    ABSENT = "absent"
    MATCHED = "matched"
    MISMATCH = "mismatch"  # incomplete, changed, or still being written
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class CatalogManifest:
    """`{"rows": <products>, "sha256": "<hex of the catalog bytes>"}` (other keys ignored). Rows are
    what the sync reads as rows: CSV records after the header, JSON Lines lines, array elements."""

    rows: int
    sha256: str

    @classmethod
    def parse(cls, data: bytes) -> CatalogManifest:
        """The manifest in `data`; `ValueError` saying what is wrong."""
        try:
            document = json.loads(data)
        except ValueError:
            raise ValueError("not JSON") from None
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        rows, sha256 = document.get("rows"), document.get("sha256")
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise ValueError('"rows" must be the number of rows, an integer >= 0')
        if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256.strip().lower()):
            raise ValueError('"sha256" must be the 64 hex digits of the SHA-256 of the catalog bytes')
        return cls(rows, sha256.strip().lower())


@dataclass(slots=True)
class CatalogCheck:
    """What one read found about the catalog as a whole, final once its rows are exhausted.
    `problems`: why it cannot be trusted to take any offer off sale this run (empty: nothing)."""

    rows: int = 0
    sha256: str | None = None
    truncated: str | None = None
    manifest: ManifestStatus = ManifestStatus.ABSENT
    manifest_problem: str | None = None
    expected: CatalogManifest | None = None
    manifest_location: str | None = None
    _digest: Any = field(default=None, repr=False)

    @property
    def problems(self) -> list[str]:
        return [problem for problem in (self.truncated, self.manifest_problem) if problem]

    def expect(self, manifest: CatalogManifest | None, where: str) -> None:
        self.expected = manifest
        self.manifest_location = where if manifest is not None else None

    def unreadable_manifest(self, where: str, problem: str) -> None:
        self.manifest = ManifestStatus.UNREADABLE
        self.manifest_location = where
        self.manifest_problem = (
            f"the manifest {where} cannot be read ({problem}): nothing is taken off sale until it can "
            f"(fix or remove it; {MANIFEST_HELP})"
        )

    def cut(self, where: str, *, lines: bool = True) -> None:
        """The catalog ends where it should not; `lines`: a format of lines (CSV, JSON Lines), whose
        exporter may simply not end its last line."""
        if self.truncated is not None:
            return
        advice = "Have the export written again or put the previous version back"
        if lines:
            advice += (
                "; an exporter that never ends its last line with a line break (or leaves out empty "
                "trailing cells) must write them, or write a manifest"
            )
        self.truncated = (
            f"the catalog looks cut short ({where}): nothing is taken off sale. {advice} ({MANIFEST_HELP})"
        )

    def vouches_for_the_end(self) -> bool:
        """Whether a manifest vouches for every byte read (asked once the last byte is read)."""
        if self.expected is None or self._digest is None:
            return False
        return bool(self._digest.hexdigest() == self.expected.sha256)

    def hashed(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        self._digest = digest = hashlib.sha256()
        for chunk in chunks:
            digest.update(chunk)
            yield chunk

    def settle(self) -> None:
        """Compare what was read with the manifest (the rows are exhausted)."""
        self.sha256 = self._digest.hexdigest() if self._digest is not None else None
        expected = self.expected
        if expected is None or self.manifest is ManifestStatus.UNREADABLE:
            return
        if (self.rows, self.sha256) == (expected.rows, expected.sha256):
            self.manifest = ManifestStatus.MATCHED
            return
        self.manifest = ManifestStatus.MISMATCH
        self.manifest_problem = (
            f"the catalog does not match its manifest {self.manifest_location}: the manifest says "
            f"{expected.rows} rows, SHA-256 {expected.sha256[:12]}..., the catalog read has {self.rows} "
            f"rows, SHA-256 {(self.sha256 or '')[:12]}...: it is incomplete, was changed after the "
            f"manifest, or is still being written. Nothing is taken off sale ({MANIFEST_HELP})"
        )


def expect_manifest(check: CatalogCheck, where: str, fetch: Callable[[], bytes | None]) -> None:
    """Read the manifest beside the catalog (`fetch`: its bytes, None when there is none) into `check`."""
    try:
        data = fetch()
    except ManifestUnreadable as error:
        check.unreadable_manifest(where, str(error))
        return
    if data is None:
        check.expect(None, where)
        return
    if len(data) > MAX_MANIFEST_BYTES:
        check.unreadable_manifest(where, f"over {MAX_MANIFEST_BYTES} bytes")
        return
    try:
        check.expect(CatalogManifest.parse(data), where)
    except ValueError as error:
        check.unreadable_manifest(where, str(error))
