"""The scenario interface, the registry, and the driver that runs a scenario on its targets.

A scenario is a class registered with :func:`register`; :func:`run_scenario` starts each target
in turn, calls ``setup`` (register accounts: not measured), ``run`` (start the load processes
and measure, with the server processes sampled by :class:`~porch.bench.stats.ProcessSampler`)
and collects one result dict per target. A new scenario (e.g. a group fan-out) is one module
with one class: options, setup, run, the table columns.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from porch.bench import targets
from porch.bench.stats import ProcessSampler
from porch.bench.targets import RELAYS, Target

SCENARIOS: dict[str, type[Scenario]] = {}

#: Table columns of the CPU figures (cpu.figures), in the scenarios that deliver messages.
CPU_COLUMNS = [
    ("us/msg", "server_cpu_us_per_msg"),
    ("loop us", "server_threads_us_per_msg.event_loop"),
    ("sqlite us", "server_threads_us_per_msg.sqlite_writer"),
    ("load %", "load.cpu_pct"),
    ("client-bound", "load.client_bound"),
]


class UsageError(ValueError):
    """Options that do not make sense together; the message says what to change."""


def register(cls: type[Scenario]) -> type[Scenario]:
    SCENARIOS[cls.name] = cls
    return cls


class Scenario(ABC):
    name: ClassVar[str]
    help: ClassVar[str]
    #: Targets this scenario can run against; the relays only where they mean something.
    supported: ClassVar[tuple[str, ...]] = ("sqlite", "sqlite-websockets", "cluster", *RELAYS)
    default_targets: ClassVar[tuple[str, ...]] = ("sqlite", *RELAYS)
    #: Main figure of a target, compared with each baseline relay's: (result key, label).
    headline: ClassVar[tuple[str, str]] = ("delivered_per_s", "msgs/s")
    #: Defaults of common options that differ for this scenario (e.g. ``{"procs": 2}``).
    option_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.variant: Any = None

    @classmethod  # noqa: B027
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Scenario options (the common ones are added by the CLI)."""

    def check(self) -> None:  # noqa: B027
        """Raise UsageError for options that cannot work."""

    def variants(self) -> list[tuple[str, Any]]:
        """(label, value) of each run on every target, each on a fresh target, with
        ``self.variant`` set to the value before ``setup``; a run's result is keyed
        "TARGET LABEL" (just "TARGET" for the single default variant, label "")."""
        return [("", None)]

    def env(self) -> dict[str, str]:
        """PORCH_* settings this scenario needs on the server (before --server-env)."""
        return {}

    @abstractmethod
    def setup(self, target: Target) -> None:
        """Prepare the target (register accounts...); not measured."""

    @abstractmethod
    def run(self, target: Target, sampler: ProcessSampler) -> dict[str, Any]:
        """Run the load and measure; call ``sampler.mark_start()``/``mark_end()`` around the
        measured phase and put ``mark_end()``'s figures under ``"server"``."""

    @abstractmethod
    def columns(self) -> list[tuple[str, str]]:
        """Table columns: (heading, dotted key into a target's result)."""

    def config(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.args).items()}

    def ok(self, result: dict[str, Any]) -> bool:
        return (
            not result.get("lost")
            and not result.get("errors")
            and not result.get("timed_out")
            and not result.get("left_in_store")
        )


def duplicates_note(count: int) -> str:
    return (
        f"{count} message(s) delivered more than once: allowed (delivery is at-least-once, "
        "clients deduplicate by id) but each is a wasted send and ack"
    )


def lookup(result: dict[str, Any], dotted: str) -> Any:
    value: Any = result
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _ratio(a: Any, b: Any) -> float | None:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not b:
        return None
    if math.isnan(a) or math.isnan(b):
        return None
    return round(a / b, 3)


def ratios(scenario: Scenario, results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{target: {baseline: {figure: ratio}}}`` for each baseline relay that ran: every Porch
    target against both, and the protocol relay against the bare one (what the protocol alone
    costs). Throughput and latency ratios are target / baseline; so is ``cpu_per_msg``."""
    key = scenario.headline[0]
    out: dict[str, dict[str, Any]] = {}
    for base_name in RELAYS:
        base = results.get(base_name)
        if base is None:
            continue
        # Against the protocol relay: the Porch targets; against the bare one: the protocol
        # relay too.
        skip = set(RELAYS) if base_name == "protocol-relay" else {base_name}
        for name, r in results.items():
            if name in skip:
                continue
            out.setdefault(name, {})[base_name] = {
                "throughput": _ratio(lookup(r, key), lookup(base, key)),
                "p50": _ratio(lookup(r, "latency_ms.p50"), lookup(base, "latency_ms.p50")),
                "p99": _ratio(lookup(r, "latency_ms.p99"), lookup(base, "latency_ms.p99")),
                "cpu_per_msg": _ratio(
                    r.get("server_cpu_us_per_msg"), base.get("server_cpu_us_per_msg")
                ),
            }
    return out


def run_scenario(scenario: Scenario, chosen: list[str]) -> dict[str, Any]:
    """Run ``scenario`` on each target in ``chosen``; return the results document."""
    args = scenario.args
    results: dict[str, dict[str, Any]] = {}
    env = scenario.env() | dict(args.server_env or {})
    for kind in chosen:
        for label, value in scenario.variants():
            key = f"{kind} {label}" if label else kind
            scenario.variant = value
            print(f"{scenario.name} on {key}: starting", file=sys.stderr, flush=True)
            started = time.monotonic()
            with (
                tempfile.TemporaryDirectory(prefix=f"porch-bench-{kind}-") as tmp,
                targets.running(kind, Path(tmp), nodes=args.nodes, env=env) as target,
            ):
                scenario.setup(target)
                with ProcessSampler(target.pids, services=target.service_pids) as sampler:
                    result = scenario.run(target, sampler)
                    result["server_series"] = sampler.series_dict()
                result |= target.queue_left() if target.porch else {}
                result["server_log_errors"] = target.log_errors()
                result["target"] = target.describe()
            result["ok"] = scenario.ok(result)
            results[key] = result
            print(
                f"{scenario.name} on {key}: done in {time.monotonic() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    return {"results": results, "ratios": ratios(scenario, results)}
