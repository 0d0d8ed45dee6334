"""Small SAM projects on disk for testing the local runtime itself (not the project's functions)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path


def write_project(root: Path, template: str, functions: Mapping[str, str]) -> Path:
    """Write `template.yaml` and `<folder>/app.py` for each function folder; returns the template path."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "template.yaml"
    path.write_text(textwrap.dedent(template).lstrip(), encoding="utf-8")
    for folder, code in functions.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "app.py").write_text(textwrap.dedent(code).lstrip(), encoding="utf-8")
    return path
