"""Pairs benchmark, the original command line: now `porch bench pairs` (docs/performance.md).

    python bench/pairs.py --pairs 4 --messages 5000 --max --json out.json
    python bench/pairs.py --pairs 4 --messages 5000 --rate 1500 --porch-only

Options as before (--pairs --messages --rate/--max --payload-bytes --window --warmup --procs
--timeout --json); --porch-only runs the single SQLite node, --relay-only the two baseline
relays (protocol and bare), the default all three. Everything else `porch bench pairs` accepts
is passed through (e.g. --out, --target cluster).
"""

from __future__ import annotations

import sys

from porch.bench.cli import main


def translate(argv: list[str]) -> list[str]:
    out = ["pairs"]
    for arg in argv:
        if arg == "--porch-only":
            out += ["--target", "sqlite"]
        elif arg == "--relay-only":
            out += ["--target", "protocol-relay,bare-relay"]
        else:
            out.append(arg)
    return out


if __name__ == "__main__":
    sys.exit(main(translate(sys.argv[1:])))
