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
- While the device is caught up, a stored envelope announced on the bus is **held** here, in
  memory, until the connection's pump hands it over with the others of the same event-loop
  tick (one `envelopes` frame for a batching client) or, if the window is full, when acks make
  room: it is never read back from the store. Held envelopes are bounded by the window's size
  and by HELD_BYTES; past either, the connection falls back to reading the store.
- Ids acknowledged lately (`acked`, bounded to 4 windows) are skipped: a read that raced with
  their delete (the delete is still running, or PostgreSQL) or a late wake-up (Redis) must not
  send them a second time. They leave the window when their ack arrives, not when the delete
  commits: the next read overlaps the delete instead of waiting for it.
"""

from __future__ import annotations

import itertools

from porch.server.domain import Envelope

ACKED_WINDOWS = 4  # how many windows of acknowledged ids are remembered
HELD_BYTES = 1 << 20  # bodies held in memory per connection, beyond which the store is read


class DeliveryWindow:
    # Slots: one per connection, and an idle connection should cost as little as possible.
    __slots__ = (
        "_acked",
        "_cursor",
        "_dirty",
        "_held",
        "_held_bytes",
        "_rewind",
        "caught_up",
        "inflight",
        "size",
    )

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
        # A list, not a deque: an idle connection's empty list costs a tenth of the memory.
        self._held: list[Envelope] = []
        self._held_bytes = 0

    @property
    def room(self) -> int:
        return self.size - len(self.inflight)

    def known(self, envelope_id: int) -> bool:
        return envelope_id in self.inflight or envelope_id in self._acked

    # Bus events ----------------------------------------------------------------------------

    def offer(self, e: Envelope) -> bool:
        """A stored envelope announced on the bus: held for the pump, or left for the next
        read. Whether the pump has something to do."""
        if self.known(e.id):
            return False  # a late or repeated wake-up (Redis)
        size = len(e.body)
        if self.caught_up and len(self._held) < self.size and self._held_bytes + size <= HELD_BYTES:
            self._held.append(e)
            self._held_bytes += size
        else:
            self._fall_behind(e.id - 1)
        return True

    def take(self, now: int) -> list[Envelope]:
        """The held envelopes that fit in the window, now in flight, oldest first. One whose
        ttl ran out while held is never delivered (spec §7): its stored copy goes with the
        sweep."""
        if not self._held or self.room <= 0:
            return []
        taken, self._held = self._held[: self.room], self._held[self.room :]
        self._held_bytes -= sum(len(e.body) for e in taken)
        self._cursor = max(self._cursor, taken[-1].id)
        chosen = [e for e in taken if e.expires is None or e.expires > now]
        for e in chosen:
            self.inflight[e.id] = None
        return chosen

    def resync(self) -> None:
        """Wake-ups may have been lost: re-read the whole queue."""
        self._fall_behind(0)

    def _fall_behind(self, cursor: int) -> None:
        """The store, not memory, now has what comes next: held envelopes are read again."""
        if self._held:
            cursor = min(cursor, min(e.id for e in self._held) - 1)
            self._held = []
            self._held_bytes = 0
        self.caught_up = False
        self._dirty = True
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

    def acknowledged(self, ids: list[int]) -> bool:
        """Ids the device acknowledged (or rejected), as their frame arrives: out of the window
        at once, so that the pump refills it while their delete runs (the read and the delete
        then share one store batch, issue 10), and remembered for a while so that no read hands
        them over again (a delete fails alone and is reported; the envelopes come again on a
        later connection). Whether the pump has something to do now: room, and a read or held
        envelopes to fill it with (a caught-up window with nothing held waits for the bus)."""
        inflight, acked = self.inflight, self._acked
        for i in ids:
            inflight.pop(i, None)
            acked[i] = None
        excess = len(acked) - ACKED_WINDOWS * self.size
        if excess > 0:
            for i in list(itertools.islice(acked, excess)):
                del acked[i]
        return self.room > 0 and (not self.caught_up or bool(self._held))
