"""`python -m slipway.api.crdgen DIR` writes the CRDs generated from the pydantic models into DIR."""

from __future__ import annotations

import sys
from pathlib import Path

from slipway.api.crd import rendered_files
from slipway.generated import write_files


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m slipway.api.crdgen DIR", file=sys.stderr)
        return 2
    write_files(Path(argv[0]), rendered_files())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
