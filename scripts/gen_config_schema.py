"""Writes config/ferry.schema.json, the config's JSON Schema, from the pydantic models.

Usage::

    python scripts/gen_config_schema.py           # regenerate config/ferry.schema.json
    python scripts/gen_config_schema.py --check   # exit 1 if the committed file is stale

The schema itself comes from ``actors.config.render_config_schema()``; this
script only writes or compares it (tests/config/test_schema.py runs ``--check``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "config" / "ferry.schema.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--out", type=Path, default=SCHEMA_PATH, help="schema file path")
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from actors.config import render_config_schema  # after the sys.path fix-up

    text = render_config_schema()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else None
        if current != text:
            print(f"{args.out} is stale; run: python scripts/gen_config_schema.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
