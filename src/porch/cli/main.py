"""Entry point of the `porch` command, and its one error boundary.

Start-up is lazy: the sub-command modules import only argparse at the top and load what they
run (the SDK, uvicorn and the server, Textual, the bench) inside their `run`, so
`porch --version` and `porch --help` start in a fraction of the time an eager import takes and
`porch send` never loads the server or the TUI (docs/design.md, "CLI start-up").
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from porch import __version__
from porch.cli import bench, chat, commands, serve


def _command(argv: list[str]) -> str | None:
    """The sub-command named in argv (the first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="porch",
        description="Porch: end-to-end encrypted messaging you can host yourself.",
        epilog="Exit codes: 0 ok, 1 failed, 2 usage, 3 network, 4 refused by the server, "
        "5 local profile, 75 queued for retry, 130 interrupted (README.md, 'Exit codes').",
    )
    parser.add_argument("--version", action="version", version=f"porch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve.add_parser(sub)
    commands.add_parsers(sub)
    chat.add_parser(sub)
    # The bench's options come from its scenario classes: load them only when asked for.
    bench.add_parser(sub, full=_command(sys.argv[1:] if argv is None else argv) == "bench")
    _inherit_options(parser)
    return parser


def _inherit_options(parser: argparse.ArgumentParser, depth: int = 0) -> None:
    """`porch devices --profile DIR remove 2`: an option given before an action must hold.

    argparse copies every default of a sub-parser over what its parent parsed, so the
    action's own `--profile` default (None) would silently replace the DIR given to
    `devices` (and the command would use the default profile). Below the first level of
    commands the defaults are suppressed instead: an option not given there keeps the
    parent's value.
    """
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in set(action.choices.values()):
            if depth >= 1:
                for option in child._actions:
                    if option.option_strings and option.dest != "help":
                        parent = next((a for a in parser._actions if a.dest == option.dest), None)
                        if parent is not None and parent.option_strings:
                            option.default = argparse.SUPPRESS
            _inherit_options(child, depth + 1)


def _run(argv: list[str] | None) -> int:
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    # `porch outbox retry --profile DIR ID`: argparse ends a positional list at the first
    # option, so ids after an option come back here; they are ids all the same.
    if extra and args.command == "outbox" and not any(e.startswith("-") for e in extra):
        args.ids.extend(extra)
        extra = []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    code: int = args.func(args)
    sys.stdout.flush()  # a closed pipe surfaces here, inside the boundary, not at exit
    return code


def _quiet_stdout() -> None:
    """After EPIPE: point stdout at /dev/null so the interpreter's final flush is silent (the
    recipe in the Python docs, "Note on SIGPIPE")."""
    with contextlib.suppress(OSError, ValueError):  # stdout may not be a file (a test's)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    from porch.cli.exits import Exit, report

    try:
        return _run(argv)
    except SystemExit:
        raise  # argparse: --help, --version and usage errors (exit 2) are already printed
    except BrokenPipeError:
        _quiet_stdout()
        return int(Exit.BROKEN_PIPE)
    except BaseException as exc:  # the boundary: every error becomes a sentence
        if isinstance(exc, BaseExceptionGroup) and exc.subgroup(BrokenPipeError):
            _quiet_stdout()
            return int(Exit.BROKEN_PIPE)
        return report(exc)


if __name__ == "__main__":
    sys.exit(main())
