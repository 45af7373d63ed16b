"""Writing generated files (CRDs, monitoring manifests) into a directory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def write_files(out: Path, files: Mapping[str, str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
        print(f"wrote {out / name}")
