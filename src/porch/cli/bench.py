"""`porch bench SCENARIO [options]`: the load generator (docs/performance.md)."""

from __future__ import annotations

import argparse

from porch.bench import cli as bench_cli


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="load-test a server started for the run (pairs, idle, drain, connect)",
        description="Start Porch (and the bare relay) on 127.0.0.1, run a scenario's load from "
        "separate processes, and report throughput, latency, server CPU and memory.",
    )
    bench_cli.configure(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return bench_cli.run(args)
