"""CPU of a cluster's services between two readings (porch.bench.services)."""

from __future__ import annotations

import os

from porch.bench.services import cpu_seconds, service_pids, used


def test_used_counts_survivors_and_processes_started_in_the_phase() -> None:
    since = 1000.0
    before = {1: (5.0, 900.0), 2: (1.0, 900.0)}
    after = {
        1: (5.4, 900.0),  # there throughout: the difference
        # 2 ended in between: left out
        3: (0.3, 1000.5),  # a backend opened during the phase: all of it
        4: (9.0, 950.0),  # there before, not seen at the first reading: left out, not 9 s
    }
    assert abs(used(before, after, since) - 0.7) < 1e-9
    assert used({}, {}, since) == 0.0


def test_cpu_seconds_reads_live_processes_and_skips_gone_ones() -> None:
    me = os.getpid()
    out = cpu_seconds([me, 2**22 + 12345])  # the second pid is beyond Linux's pid_max default
    assert set(out) == {me}
    seconds, created = out[me]
    assert seconds > 0 and created > 0


def test_service_pids_does_not_take_other_processes_for_a_database() -> None:
    found = service_pids("porch_bench_no_such_database", 1)
    assert found["postgresql"] == [] and found["redis"] == []
    assert os.getpid() not in found["postgresql_background"]
