"""Writes docs/diagrams/account.md: the billing account life cycle drawn from the transitions
machine in lifecycle.py (`python -m provider.billing.diagram`, or `--check` to fail if stale)."""

from __future__ import annotations

import sys
from pathlib import Path

from .lifecycle import diagram_markdown

TARGET = Path(__file__).resolve().parents[2] / "docs" / "diagrams" / "account.md"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = diagram_markdown()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET}: stale; run `python -m provider.billing.diagram`", file=sys.stderr)
            return 1
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
