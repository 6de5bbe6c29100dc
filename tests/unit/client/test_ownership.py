"""ProfileLock: one connection owner per profile, freed when its holder exits or dies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from porch.client.ownership import ProfileLock


def test_one_holder_at_a_time_and_release_hands_over(tmp_path: Path) -> None:
    first, second = ProfileLock(tmp_path), ProfileLock(tmp_path)
    assert first.try_acquire() and first.held
    assert first.try_acquire()  # holding it already
    assert not second.try_acquire() and not second.held
    first.release()
    first.release()  # twice is harmless
    assert second.try_acquire()
    second.release()


def test_a_killed_holder_frees_the_profile(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from porch.client.ownership import"
        " ProfileLock; assert ProfileLock(Path(sys.argv[1])).try_acquire();"
        " print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        lock = ProfileLock(tmp_path)
        assert not lock.try_acquire()
        proc.kill()
        proc.wait(10)
        assert lock.try_acquire()  # the kernel released the dead process's lock
        lock.release()
    finally:
        proc.kill()
        proc.wait(10)
