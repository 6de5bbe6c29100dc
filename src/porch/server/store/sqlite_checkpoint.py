"""WAL checkpoints off the commit path (issue 10, docs/performance.md "Latency at half rate").

SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past 1,000 pages: that
commit copies the WAL into the database file and, at synchronous=NORMAL, syncs both files
(https://www.sqlite.org/wal.html, "Checkpointing"; https://www.sqlite.org/pragma.html,
"synchronous"). Measured in `porch bench pairs --rate 400`: 0.6% of commits took 3-7 ms
against 0.02 ms for the median one, and every send of that batch and of those queued behind
it waited: the p99 of one-way latency at every rate. So the store's writer turns the
automatic checkpoint off (`wal_autocheckpoint=0`) once this thread runs, and this thread, on a
connection of its own, runs a PASSIVE checkpoint every INTERVAL_S while the database changed:
PASSIVE never waits for the writer or a reader and blocks neither (the writer appends to the
WAL while frames already committed are copied), so the syncs happen here, not in a commit.
After a complete checkpoint the writer's next transaction starts the WAL again from its
beginning, so the file stays about one interval's writes long.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("porch.store")

INTERVAL_S = 0.2


class Checkpointer:
    __slots__ = ("_conn", "_path", "_stop", "_synchronous", "_thread")

    def __init__(self, path: Path, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous  # the writer's: a checkpoint syncs by its connection's
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None

    def start(self) -> bool:
        """Whether checkpoints now run here (False: the database cannot be opened a second
        time, and the writer keeps SQLite's automatic checkpoint)."""
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
        except sqlite3.Error as exc:
            log.warning("WAL checkpoints stay in the commits: %s", type(exc).__name__)
            return False
        self._conn = conn
        self._thread = threading.Thread(target=self._run, name="porch-checkpoint", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        """Before the writer closes its connection: the last close checkpoints what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        conn = self._conn
        assert conn is not None
        seen = None
        failing = ""
        try:
            while not self._stop.wait(INTERVAL_S):
                try:
                    # Changes when another connection commits (pragma.html, "data_version"):
                    # an idle server syncs nothing.
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                    if version == seen:
                        continue
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    seen = version
                    failing = ""
                except sqlite3.Error as exc:
                    # Busy (another process's checkpoint, `porch serve --workers`), or the disk:
                    # tried again next interval, logged once per kind of failure.
                    if type(exc).__name__ != failing:
                        failing = type(exc).__name__
                        log.warning("a WAL checkpoint failed (%s); trying again", failing)
        finally:
            conn.close()
