"""Benchmark scenarios, registered by name (see base.py for the interface)."""

from porch.bench.scenarios import connect, drain, fanout, idle, media, pairs
from porch.bench.scenarios.base import SCENARIOS, Scenario, UsageError, run_scenario

__all__ = [
    "SCENARIOS",
    "Scenario",
    "UsageError",
    "connect",
    "drain",
    "fanout",
    "idle",
    "media",
    "pairs",
    "run_scenario",
]
