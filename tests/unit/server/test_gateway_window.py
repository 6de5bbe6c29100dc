"""DeliveryWindow: reads after a cursor, bus envelopes held in memory, bounded everywhere."""

from __future__ import annotations

from porch.server.domain import Envelope
from porch.server.gateway.window import HELD_BYTES, DeliveryWindow

BOB = "1f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"


def _env(envelope_id: int, body: str = "b") -> Envelope:
    return Envelope(envelope_id, BOB, 1, BOB, 2, 1_700_000_000_000, 1, body)


def _read(w: DeliveryWindow, queue: list[Envelope]) -> tuple[list[int], bool]:
    """One read of the store holding queue, as the pump does it."""
    after, limit = w.next_read()
    batch = [e for e in queue if e.id > after][:limit]
    chosen, more = w.read(batch, limit)
    return [e.id for e in chosen], more


def test_reads_start_after_the_cursor_and_ask_only_for_the_room() -> None:
    w = DeliveryWindow(4)
    queue = [_env(i) for i in range(1, 11)]
    assert w.next_read() == (0, 4)
    assert _read(w, queue) == ([1, 2, 3, 4], True)
    assert w.room == 0
    w.acknowledged([1, 2])
    del queue[:2]
    # Only the two freed places are read, from after the last id read.
    assert w.next_read() == (4, 2)
    assert _read(w, queue) == ([5, 6], True)
    w.acknowledged([3, 4, 5, 6])
    del queue[:4]
    assert _read(w, queue) == ([7, 8, 9, 10], True)
    assert not w.caught_up
    w.acknowledged([7])
    assert _read(w, queue[1:]) == ([], False)
    assert w.caught_up


def test_a_late_commit_below_the_cursor_is_found_through_its_bus_event() -> None:
    # PostgreSQL across nodes: id 5 becomes visible after id 6 was read.
    w = DeliveryWindow(8)
    assert _read(w, [_env(6)]) == ([6], False)
    assert w.caught_up
    w.offer(_env(7))  # caught up: held, not read
    assert [e.id for e in w.take(0)] == [7]
    w.resync()  # or a late event while behind: the cursor goes back
    assert w.next_read() == (0, 6)
    assert _read(w, [_env(5), _env(6), _env(7)]) == ([5], False)


def test_an_event_during_a_read_keeps_the_window_behind_and_rewinds() -> None:
    w = DeliveryWindow(8)
    w.offer(_env(3))  # not caught up yet: left for the read
    after, limit = w.next_read()
    assert after == 0
    w.offer(_env(2))  # arrives while the read runs (committed late, below what it returns)
    chosen, more = w.read([_env(3), _env(4)], limit)
    assert [e.id for e in chosen] == [3, 4] and not more
    assert not w.caught_up  # the read cannot prove that nothing is missing
    assert w.next_read()[0] == 1
    assert _read(w, [_env(2), _env(3), _env(4)]) == ([2], False)
    assert w.caught_up


def test_held_envelopes_go_out_in_order_as_the_window_frees() -> None:
    w = DeliveryWindow(2)
    _read(w, [])
    assert w.caught_up
    for i in (1, 2):
        assert w.offer(_env(i))
    assert [e.id for e in w.take(0)] == [1, 2]
    assert w.offer(_env(3))
    assert w.take(0) == []  # window full: 3 waits in memory
    w.acknowledged([1])
    assert [e.id for e in w.take(0)] == [3]
    assert w.caught_up
    assert not w.offer(_env(3))  # a repeated wake-up is ignored


def test_past_the_held_bounds_the_store_is_read_from_the_first_held() -> None:
    w = DeliveryWindow(2)
    _read(w, [_env(8)])
    w.acknowledged([8])
    _read(w, [])
    w.offer(_env(10))
    w.offer(_env(11))
    w.offer(_env(12))  # a third held envelope: more than the window
    assert not w.caught_up
    assert w.take(0) == []
    assert w.next_read() == (8, 2)  # 10 and 11 are read again from the store
    big = DeliveryWindow(100)
    _read(big, [])
    big.offer(_env(1, "x" * (HELD_BYTES - 10)))
    big.offer(_env(2, "x" * 20))  # past HELD_BYTES
    assert not big.caught_up
    assert big.next_read() == (0, 100)


def test_acknowledged_ids_are_remembered_for_four_windows_only() -> None:
    w = DeliveryWindow(2)
    w.acknowledged(list(range(1, 11)))
    assert not w.known(1) and not w.known(2)
    assert all(w.known(i) for i in range(3, 11))


def test_a_held_envelope_whose_ttl_ran_out_is_not_handed_over() -> None:
    w = DeliveryWindow(4)
    _read(w, [])
    w.offer(Envelope(1, BOB, 1, BOB, 2, 1, 1, "b", expires=100))
    w.offer(Envelope(2, BOB, 1, BOB, 2, 1, 1, "b", expires=300))
    assert [e.id for e in w.take(200)] == [2]
    assert w.room == 3 and w.next_read() == (2, 3)


def test_acked_ids_leave_the_window_at_once_and_wake_the_pump_only_with_work() -> None:
    w = DeliveryWindow(4)
    queue = [_env(i) for i in range(1, 7)]
    assert _read(w, queue) == ([1, 2, 3, 4], True)
    # Behind: the freed room is read at once, while the delete of 1 and 2 runs; a read that
    # still sees them (the delete not yet committed) does not hand them over again.
    assert w.acknowledged([1, 2])
    assert w.room == 2 and w.known(1)
    assert _read(w, queue) == ([5, 6], True)
    assert w.acknowledged([3, 4, 5, 6])
    w.resync()  # a re-read from the start meets 1-6 before their delete commits
    assert _read(w, queue) == ([], True)
    assert w.next_read() == (4, 4)
    assert _read(w, queue) == ([], False)
    assert w.caught_up
    # Caught up with nothing held: an ack gives the pump nothing to do.
    w.offer(_env(7))
    [seven] = w.take(0)
    assert not w.acknowledged([seven.id])
    # A held envelope waiting for room: the ack that makes room wakes the pump.
    full = DeliveryWindow(1)
    _read(full, [])
    full.offer(_env(1))
    full.take(0)
    full.offer(_env(2))
    assert full.take(0) == []
    assert full.acknowledged([1])
    assert [e.id for e in full.take(0)] == [2]
