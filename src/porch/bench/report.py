"""Results: the JSON document, the table on stdout, and a PNG of the run over time."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

from porch.bench.cpu import BUSY_MACHINE_PCT, busy_machine_note, client_bound_note
from porch.bench.scenarios.base import Scenario, lookup
from porch.bench.targets import RELAYS


def document(scenario: Scenario, outcome: dict[str, Any]) -> dict[str, Any]:
    return {
        "scenario": scenario.name,
        "config": scenario.config(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": list(os.getloadavg()),
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **outcome,
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 100:
            return f"{value:.0f}"
        return f"{value:.2f}"
    return str(value)


def table(scenario: Scenario, doc: dict[str, Any]) -> str:
    cols = scenario.columns()
    results: dict[str, dict[str, Any]] = doc["results"]
    ratios: dict[str, dict[str, Any]] = doc.get("ratios", {})
    # The headline figure against each baseline that ran, as the rightmost columns.
    bases = [b for b in RELAYS if b in results]
    rows = [["target", *(c[0] for c in cols), *(f"/{b.split('-')[0]}" for b in bases)]]
    for name, r in results.items():
        against = [lookup(ratios.get(name, {}), f"{b}.throughput") for b in bases]
        rows.append([name, *(_cell(lookup(r, key)) for _, key in cols), *map(_cell, against)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    for name, r in results.items():
        for s in r.get("error_samples") or []:
            lines.append(f"  {name} error: {s}")
        for s in r.get("server_log_errors") or []:
            lines.append(f"  {name} server log: {s}")
        for s in r.get("behind") or []:
            lines.append(f"  {name}: {s}")
        if r.get("left_in_store"):
            lines.append(f"  {name}: {r['left_in_store']} envelopes still queued after the run")
        if r.get("timed_out"):
            lines.append(f"  {name}: timed out (--timeout {scenario.args.timeout:g} s)")
        if lookup(r, "load.client_bound"):
            lines.append(f"  {name}: WARNING {client_bound_note(r['load'])}")
        if r.get("services_us_per_msg"):
            shares = ", ".join(f"{k} {v:g} us" for k, v in r["services_us_per_msg"].items())
            lines.append(
                f"  {name}: CPU per message: nodes {r['server_cpu_us_per_msg']:g} us, {shares} "
                "(PostgreSQL's background and Redis serve the whole machine: upper bounds)"
            )
        if (r.get("machine_others_pct") or 0) > BUSY_MACHINE_PCT:
            lines.append(f"  {name}: WARNING {busy_machine_note(r['machine_others_pct'])}")
    label = scenario.headline[1]
    for name, versus in ratios.items():
        for base, ratio in versus.items():
            parts = [
                f"{text} x{ratio[key]:.{digits}f}"
                for key, text, digits in (
                    ("throughput", label, 3),
                    ("p50", "p50", 1),
                    ("p99", "p99", 1),
                    ("cpu_per_msg", "cpu/msg", 1),
                )
                if ratio.get(key) is not None
            ]
            lines.append(f"{name} / {base}: {', '.join(parts) or '-'}")
    return "\n".join(lines)


def write_json(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # default=repr: the recorded command line may hold callables (argparse's func), which
    # belong in the record as names, not as a reason to lose the results.
    path.write_text(json.dumps(doc, indent=2, allow_nan=True, default=repr) + "\n")


def plot(doc: dict[str, Any], path: Path) -> bool:
    """Throughput, latency and server CPU / RSS over time, one line per target.

    Returns False (and writes nothing) when there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results: dict[str, dict[str, Any]] = doc["results"]
    has_series = any(r.get("series", {}).get("t_s") for r in results.values())
    has_server = any(r.get("server_series", {}).get("t_s") for r in results.values())
    if not (has_series or has_server):
        return False
    panels = (2 if has_series else 0) + (2 if has_server else 0)
    fig, axes = plt.subplots(panels, 1, figsize=(9, 2.6 * panels), squeeze=False)
    ax = [a[0] for a in axes]
    i = 0
    colors = {name: f"C{k}" for k, name in enumerate(results)}
    if has_series:
        for name, r in results.items():
            s = r.get("series") or {}
            if s.get("t_s"):
                c = colors[name]
                ax[i].plot(s["t_s"], s["msgs_per_s"], marker=".", color=c, label=name)
                ax[i + 1].plot(s["t_s"], s["p50_ms"], marker=".", color=c, label=f"{name} p50")
                ax[i + 1].plot(
                    s["t_s"], s["p99_ms"], marker=".", color=c, linestyle="--", label=f"{name} p99"
                )
        ax[i].set_ylabel("per second")
        ax[i].set_title(f"{doc['scenario']}: completed per second (measured phase)")
        ax[i + 1].set_ylabel("ms")
        ax[i + 1].set_yscale("log")
        ax[i + 1].set_title("latency per time bucket")
        ax[i + 1].set_xlabel("s since the start of the measured phase")
        i += 2
    if has_server:
        for name, r in results.items():
            s = r.get("server_series") or {}
            if s.get("t_s"):
                ax[i].plot(s["t_s"], s["cpu_pct"], color=colors[name], label=name)
                ax[i + 1].plot(s["t_s"], s["rss_mb"], color=colors[name], label=name)
        ax[i].set_ylabel("% of one core")
        ax[i].set_title("server CPU (all server processes)")
        ax[i + 1].set_ylabel("MB")
        ax[i + 1].set_title("server RSS")
        ax[i + 1].set_xlabel("s since the target started being sampled")
    for a in ax:
        a.grid(True, alpha=0.3)
        a.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
