"""A connection's delivery window over its device's queue (sans-IO: no socket, no store).

The window says which envelopes to hand over next and where the next store read starts, so
that every step costs in proportion to the envelopes it moves (issue 10):

- `inflight` holds the ids handed over and not yet acknowledged, at most `size`.
- The **cursor** is the highest id read from the store or handed over on this connection:
  the next read asks only for ids above it, at most the room left, instead of re-reading the
  whole window on every ack. Ids are given in commit order on SQLite (one writer); on
  PostgreSQL two nodes may commit ids out of order, so an envelope can become visible below
  the cursor. Its bus event (published after its commit) then moves the cursor back below it
  (`rewind`), and a resync moves it back to 0: a wake-up lost with Redis costs what it cost
  before, a resync, never a message.
- Ids acknowledged lately (`acked`, bounded to 4 windows) are skipped: a read that raced with
  their delete (PostgreSQL) or a late wake-up (Redis) must not send them a second time.
"""

from __future__ import annotations

import itertools

from porch.server.domain import Envelope

ACKED_WINDOWS = 4  # how many windows of acknowledged ids are remembered


class DeliveryWindow:
    def __init__(self, size: int) -> None:
        self.size = size
        self.inflight: dict[int, None] = {}
        self._acked: dict[int, None] = {}
        self.caught_up = False
        # An envelope may have arrived since the last read began: the read cannot prove that
        # the device is caught up.
        self._dirty = False
        self._cursor = 0
        self._rewind: int | None = None

    @property
    def room(self) -> int:
        return self.size - len(self.inflight)

    def known(self, envelope_id: int) -> bool:
        return envelope_id in self.inflight or envelope_id in self._acked

    # Bus events ----------------------------------------------------------------------------

    def can_hand_over(self, e: Envelope) -> bool:
        """Whether a stored envelope just announced may go out at once, without a read."""
        return self.caught_up and self.room > 0 and not self.known(e.id)

    def handed_over(self, e: Envelope) -> None:
        self.inflight[e.id] = None
        self._cursor = max(self._cursor, e.id)

    def missed(self, e: Envelope) -> None:
        """A stored envelope that could not go out at once: the next read must find it."""
        self.caught_up = False
        self._dirty = True
        self._rewind_to(e.id - 1)

    def resync(self) -> None:
        """Wake-ups may have been lost: re-read the whole queue."""
        self.caught_up = False
        self._dirty = True
        self._rewind_to(0)

    def _rewind_to(self, cursor: int) -> None:
        self._rewind = cursor if self._rewind is None else min(self._rewind, cursor)

    # Store reads ---------------------------------------------------------------------------

    def next_read(self) -> tuple[int, int]:
        """(after, limit) of the next read: ids above `after`, at most `limit` of them."""
        if self._rewind is not None:
            self._cursor = min(self._cursor, self._rewind)
            self._rewind = None
        self._dirty = False
        return self._cursor, self.room

    def read(self, batch: list[Envelope], limit: int) -> tuple[list[Envelope], bool]:
        """Take a read's envelopes: those to hand over now (now in flight), and whether the
        read was the last one needed (there may be more if it came back full)."""
        if batch:
            self._cursor = max(self._cursor, batch[-1].id)
        chosen = [e for e in batch if not self.known(e.id)][: self.room]
        for e in chosen:
            self.inflight[e.id] = None
        full = len(batch) >= limit
        if not full and not self._dirty and self._rewind is None:
            self.caught_up = True
        return chosen, full

    # Acknowledgements ----------------------------------------------------------------------

    def acknowledged(self, ids: list[int]) -> None:
        """Ids whose delete has committed: out of the window, remembered for a while."""
        acked = self._acked
        for i in ids:
            self.inflight.pop(i, None)
            acked[i] = None
        excess = len(acked) - ACKED_WINDOWS * self.size
        if excess > 0:
            for i in list(itertools.islice(acked, excess)):
                del acked[i]
