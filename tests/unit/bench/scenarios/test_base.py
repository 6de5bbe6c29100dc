"""Ratios against the two baseline relays (porch.bench.scenarios.base.ratios)."""

from __future__ import annotations

import argparse
from typing import Any

from porch.bench.report import table
from porch.bench.scenarios import SCENARIOS
from porch.bench.scenarios.base import ratios


def _result(rate: float, us: float, p50: float) -> dict[str, Any]:
    return {
        "delivered_per_s": rate,
        "server_cpu_us_per_msg": us,
        "latency_ms": {"p50": p50, "p99": 2 * p50},
    }


def _pairs() -> Any:
    parser = argparse.ArgumentParser()
    cls = SCENARIOS["pairs"]
    cls.add_arguments(parser)
    args = parser.parse_args([])
    args.timeout = 10.0
    return cls(args)


def test_each_porch_target_against_both_relays_and_protocol_against_bare() -> None:
    results = {
        "sqlite": _result(9_000, 90.0, 10.0),
        "protocol-relay": _result(18_000, 22.5, 5.0),
        "bare-relay": _result(90_000, 9.0, 1.0),
    }
    out = ratios(_pairs(), results)
    assert set(out) == {"sqlite", "protocol-relay"}
    assert set(out["sqlite"]) == {"protocol-relay", "bare-relay"}
    assert set(out["protocol-relay"]) == {"bare-relay"}  # not against itself
    assert out["sqlite"]["bare-relay"] == {
        "throughput": 0.1,
        "p50": 10.0,
        "p99": 10.0,
        "cpu_per_msg": 10.0,
    }
    assert out["sqlite"]["protocol-relay"]["throughput"] == 0.5
    assert out["sqlite"]["protocol-relay"]["cpu_per_msg"] == 4.0
    assert out["protocol-relay"]["bare-relay"]["throughput"] == 0.2


def test_without_relays_there_are_no_ratios_and_a_missing_figure_is_none() -> None:
    assert ratios(_pairs(), {"sqlite": _result(1.0, 1.0, 1.0)}) == {}
    partial = {"sqlite": _result(9_000, 90.0, 10.0), "bare-relay": _result(90_000, 0.0, 1.0)}
    # A relay whose CPU read zero (inside one clock tick) gives no CPU ratio, not a division.
    assert ratios(_pairs(), partial)["sqlite"]["bare-relay"]["cpu_per_msg"] is None


def test_table_shows_the_ratios_as_columns_and_lines_and_warns_when_client_bound() -> None:
    scenario = _pairs()
    results = {
        "sqlite": _result(9_000, 90.0, 10.0),
        "protocol-relay": _result(18_000, 22.5, 5.0),
        "bare-relay": _result(90_000, 9.0, 1.0)
        | {"load": {"client_bound": True, "per_process_cpu_pct": [99.0], "share_pct": 100.0,
                    "processes": 1}},
    }  # fmt: skip
    text = table(scenario, {"results": results, "ratios": ratios(scenario, results)})
    header, sqlite_row = text.splitlines()[:2]
    assert header.split()[-2:] == ["/protocol", "/bare"]
    assert sqlite_row.split()[-2:] == ["0.50", "0.10"]
    assert "sqlite / bare-relay: msgs/s x0.100, p50 x10.0, p99 x10.0, cpu/msg x10.0" in text
    assert "protocol-relay / bare-relay: msgs/s x0.200" in text
    assert "bare-relay: WARNING client-bound: the busiest load process used 99%" in text
