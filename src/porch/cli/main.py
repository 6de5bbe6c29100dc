"""Entry point of the `porch` command."""

from __future__ import annotations

import argparse
import sys

from porch import __version__
from porch.cli import bench, chat, commands, serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="porch", description="Porch: end-to-end encrypted messaging you can host yourself."
    )
    parser.add_argument("--version", action="version", version=f"porch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve.add_parser(sub)
    commands.add_parsers(sub)
    chat.add_parser(sub)
    bench.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
