"""`porch bench SCENARIO [options]`: the load generator (docs/performance.md)."""

from __future__ import annotations

import argparse

HELP = "load-test a server started for the run (pairs, idle, drain, connect, fanout, media)"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], full: bool) -> None:
    """With full, the scenarios' own options too; they import the whole bench (and the server),
    so other commands list bench by name only (porch.cli.main, lazy start-up)."""
    p = sub.add_parser(
        "bench",
        help=HELP,
        description="Start Porch (and the baseline relays) on 127.0.0.1, run a scenario's load "
        "from separate processes, and report throughput, latency, server CPU per message and "
        "memory, and the load generator's own CPU.",
    )
    if full:
        from porch.bench import cli as bench_cli

        bench_cli.configure(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from porch.bench import cli as bench_cli

    return bench_cli.run(args)
