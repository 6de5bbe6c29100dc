"""Which process on a profile owns its connection.

docs/design.md, "Several processes on one profile".

A device has one WebSocket and one set of Olm sessions. The server keeps one connection per
device (a second one replaces the first, close code 4409), and the Olm state is cached in memory
by whoever decrypts and encrypts, so two writers would fork the ratchets. So exactly one process
per profile, the *owner*, connects and touches Olm state: the one holding an exclusive
`flock` on PROFILE/connection.lock. The kernel drops the lock when the process exits or dies, so
a crash never leaves a profile stuck. Every other process is a *relay*: it writes its messages
into the shared outbox in client.db, the owner sends them, and the relay reads the outcome back.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "connection.lock"


class ProfileLock:
    """A non-blocking exclusive lock on one profile; release() or process exit frees it.

    flock locks belong to an open file description, so two ProfileLocks in one process exclude
    each other just as two processes do (what the tests rely on)."""

    def __init__(self, profile_dir: Path) -> None:
        self.path = Path(profile_dir) / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this object holds it (now or before)."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
