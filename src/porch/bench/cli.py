"""`porch bench SCENARIO [options]`: the options every scenario shares, and running one."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from porch.bench import report
from porch.bench.driver import LoadError
from porch.bench.scenarios import SCENARIOS, Scenario, UsageError, run_scenario
from porch.bench.targets import ALIASES, TARGETS, TargetError

DEFAULT_OUT = Path("bench-results")


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("PORCH_"):
        raise argparse.ArgumentTypeError(f"expected PORCH_NAME=VALUE, got {text!r}")
    return name, value


def add_common(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("targets and output")
    g.add_argument(
        "--target",
        default=None,
        help=f"comma-separated: {', '.join(TARGETS)} or all (default: the scenario's usual set);"
        + "".join(f" {old} is the old name of {new}" for old, new in ALIASES.items()),
    )
    g.add_argument(
        "--nodes", type=int, default=2, help="Porch nodes of --target cluster (default 2)"
    )
    g.add_argument("--procs", type=int, default=1, help="load-generator processes (default 1)")
    g.add_argument("--timeout", type=float, default=120, help="seconds allowed per phase")
    g.add_argument(
        "--server-env",
        type=_env_pair,
        action="append",
        metavar="PORCH_X=V",
        help="extra server setting, e.g. PORCH_DELIVERY_WINDOW=512 (repeatable)",
    )
    g.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="results directory (./bench-results)"
    )
    g.add_argument("--json", type=Path, help="also write the results JSON to this file")
    g.add_argument("--no-plot", action="store_true", help="skip the PNG")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add one sub-command per registered scenario to ``parser``."""
    sub = parser.add_subparsers(dest="scenario", metavar="SCENARIO", required=True)
    for name, cls in SCENARIOS.items():
        p = sub.add_parser(name, help=cls.help, description=(cls.__doc__ or cls.help))
        cls.add_arguments(p)
        add_common(p)
        p.set_defaults(**cls.option_defaults)


def choose_targets(scenario: Scenario, spec: str | None) -> list[str]:
    if spec is None:
        return list(scenario.default_targets)
    chosen: list[str] = []
    for part in (ALIASES.get(p.strip(), p.strip()) for p in spec.split(",") if p.strip()):
        if part == "all":
            chosen.extend(t for t in scenario.supported if t not in chosen)
        elif part not in TARGETS:
            raise UsageError(f"unknown target {part!r}; choose from {', '.join(TARGETS)} or all")
        elif part not in scenario.supported:
            raise UsageError(
                f"{scenario.name} does not run against {part} "
                f"(it supports {', '.join(scenario.supported)})"
            )
        elif part not in chosen:
            chosen.append(part)
    if not chosen:
        raise UsageError("--target is empty")
    return chosen


def run(args: argparse.Namespace) -> int:
    scenario = SCENARIOS[args.scenario](args)
    try:
        if args.nodes < 1 or args.procs < 1 or args.timeout <= 0:
            raise UsageError("--nodes, --procs and --timeout must be positive")
        scenario.check()
        chosen = choose_targets(scenario, args.target)
        outcome = run_scenario(scenario, chosen)
    except UsageError as exc:
        print(f"porch bench {args.scenario}: {exc}", file=sys.stderr)
        return 2
    except (TargetError, LoadError) as exc:
        print(f"porch bench {args.scenario}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"porch bench {args.scenario}: interrupted", file=sys.stderr)
        return 130
    doc = report.document(scenario, outcome)
    print(_headline(scenario, chosen))
    print(report.table(scenario, doc))
    stem = f"{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out: Path = args.out
    report.write_json(doc, out / f"{stem}.json")
    written = [out / f"{stem}.json"]
    if args.json:
        report.write_json(doc, args.json)
        written.append(args.json)
    if not args.no_plot and report.plot(doc, out / f"{stem}.png"):
        written.append(out / f"{stem}.png")
    print(f"results: {', '.join(str(p) for p in written)}", file=sys.stderr)
    ok = all(r.get("ok") for r in doc["results"].values())
    return 0 if ok else 1


def _headline(scenario: Scenario, chosen: list[str]) -> str:
    skip = {"target", "out", "json", "no_plot", "scenario", "func", "server_env"}
    if "cluster" not in chosen:
        skip.add("nodes")
    opts: dict[str, Any] = {k: v for k, v in vars(scenario.args).items() if k not in skip}
    shown = " ".join(f"{k}={v}" for k, v in opts.items() if v not in (None, False))
    return f"\n{scenario.name}: targets={','.join(chosen)} {shown}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="porch bench", description="Load generator for Porch (docs/performance.md)."
    )
    configure(parser)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
