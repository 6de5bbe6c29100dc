"""CPU per message and the client-bound flag (porch.bench.cpu)."""

from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace

import psutil

from porch.bench.cpu import (
    ThreadTimes,
    busy_machine_note,
    client_bound_note,
    figures,
    load_figures,
    machine_busy_seconds,
    others_pct,
    per_message,
    split_threads,
    thread_times,
)
from porch.bench.stats import PhaseFigures


def _phase(cpu_s: float, threads: dict[str, float]) -> PhaseFigures:
    return PhaseFigures(0.0, 0.0, 0.0, 0.0, 1.0, cpu_s=cpu_s, threads_cpu_s=threads)


def test_split_threads_names_the_main_thread_and_the_busiest_other() -> None:
    pid = 100
    names = {100: "python", 101: "python", 102: "python", 103: "libuv-worker"}
    before = ThreadTimes(pid, {100: 1.0, 101: 2.0, 102: 0.5, 103: 0.0}, names)
    # 104 started during the phase: it counts from zero. 103 is uvloop's pool, never "busiest"
    # even when it used the most.
    after = ThreadTimes(
        pid,
        {100: 1.6, 101: 2.3, 102: 0.6, 103: 0.9, 104: 0.05},
        names | {104: "python"},
    )
    split = split_threads(before, after)
    assert abs(split["main"] - 0.6) < 1e-9
    assert abs(split["busiest"] - 0.3) < 1e-9
    assert abs(split["other"] - (0.1 + 0.9 + 0.05)) < 1e-9


def test_split_threads_of_a_single_threaded_process() -> None:
    before = ThreadTimes(7, {7: 0.0}, {7: "python"})
    after = ThreadTimes(7, {7: 0.25}, {7: "python"})
    assert split_threads(before, after) == {"main": 0.25, "busiest": 0.0, "other": 0.0}


def test_thread_times_attributes_a_busy_thread_to_busiest() -> None:
    spun, release = threading.Event(), threading.Event()

    def spin() -> None:
        end = time.thread_time() + 0.2  # 0.2 s of this thread's own CPU
        while time.thread_time() < end:
            pass
        spun.set()
        release.wait(10)

    proc = psutil.Process(os.getpid())
    worker = threading.Thread(target=spin)
    before = thread_times(proc)
    worker.start()
    try:
        assert spun.wait(10)
        after = thread_times(proc)
    finally:
        release.set()
        worker.join(10)
    assert os.getpid() in after.seconds and after.names[os.getpid()]
    split = split_threads(before, after)
    # The spinner started after the first reading: it counts from zero, and it is the busiest.
    assert split["busiest"] >= 0.15, split
    assert split["main"] < split["busiest"]


def test_per_message_splits_sqlite_writer_only_on_sqlite() -> None:
    server = _phase(0.9, {"main": 0.5, "busiest": 0.3, "other": 0.1})
    sqlite = per_message(server, 10_000, "sqlite")
    assert sqlite["server_cpu_us_per_msg"] == 90.0
    assert sqlite["server_threads_us_per_msg"] == {
        "event_loop": 50.0,
        "sqlite_writer": 30.0,
        "other": 10.0,
    }
    cluster = per_message(server, 10_000, "cluster")
    assert cluster["server_threads_us_per_msg"] == {"event_loop": 50.0, "other": 40.0}
    assert per_message(server, 0, "sqlite")["server_cpu_us_per_msg"] is None


def test_load_figures_flags_a_process_at_its_core() -> None:
    # One load process and one server on two cores: the share is a whole core.
    busy = load_figures([0.95], 1.0, 1, cpus=2)
    assert busy["share_pct"] == 100.0 and busy["client_bound"] is True
    assert busy["per_process_cpu_pct"] == [95.0] and busy["cpu_s"] == 0.95
    idle = load_figures([0.5], 1.0, 1, cpus=2)
    assert idle["client_bound"] is False and idle["cpu_pct"] == 50.0
    assert "95%" in client_bound_note(busy) and "--procs" in client_bound_note(busy)


def test_load_figures_uses_the_share_when_processes_outnumber_cores() -> None:
    # Two load processes and a server on two cores: two thirds of a core each.
    fig = load_figures([0.62, 0.3], 1.0, 1, cpus=2)
    assert fig["share_pct"] == 66.7
    assert fig["client_bound"] is True  # 62% > 90% of 66.7%
    assert load_figures([0.55, 0.3], 1.0, 1, cpus=2)["client_bound"] is False


def test_figures_takes_the_node_count_from_the_target() -> None:
    server = _phase(0.2, {"main": 0.2, "busiest": 0.0, "other": 0.0})
    target = SimpleNamespace(kind="cluster", nodes=[object(), object(), object()])
    out = figures(server, [0.5], 1.0, 1000, target)
    assert out["server_cpu_us_per_msg"] == 200.0
    # Four processes on this machine's cores share them.
    cpus = os.cpu_count() or 1
    assert out["load"]["share_pct"] == round(100 * min(1.0, cpus / 4), 1)


def test_others_is_what_the_machine_used_beyond_server_and_load() -> None:
    # Over 2 s the machine was busy 3.1 core-seconds: the server used 1.0, the load 0.8.
    server = PhaseFigures(
        50.0, 0.0, 0.0, 0.0, 2.0, cpu_s=1.0, threads_cpu_s={}, machine_busy_pct=155.0
    )
    assert others_pct(server, [0.5, 0.3]) == 65.0
    assert "65%" in busy_machine_note(65.0)
    # Readings apart by a tick can make "ours" exceed the machine's: never negative.
    quiet = PhaseFigures(50.0, 0.0, 0.0, 0.0, 2.0, cpu_s=1.0, machine_busy_pct=80.0)
    assert others_pct(quiet, [0.7]) == 0.0


def test_machine_busy_seconds_grows_while_this_process_spins() -> None:
    before = machine_busy_seconds()
    end = time.process_time() + 0.1
    while time.process_time() < end:
        pass
    assert machine_busy_seconds() - before >= 0.05


def test_per_message_adds_the_services_of_a_cluster() -> None:
    server = PhaseFigures(
        0.0, 0.0, 0.0, 0.0, 1.0, cpu_s=0.3, threads_cpu_s={"main": 0.3},
        services_cpu_s={"postgresql": 0.12, "redis": 0.01},
    )  # fmt: skip
    out = per_message(server, 1000, "cluster")
    assert out["services_us_per_msg"] == {"postgresql": 120.0, "redis": 10.0}
    # Their CPU is the target's, not the machine's "others".
    server.machine_busy_pct = 43.0
    assert others_pct(server, []) == 0.0
    assert "services_us_per_msg" not in per_message(_phase(0.3, {"main": 0.3}), 1000, "sqlite")
