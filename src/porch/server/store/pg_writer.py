"""PostgreSQL's batch writer: the two hot writes (storing sends, deleting acknowledged
envelopes) of every connection on a node, a batch at a time, as a few set-based statements
(a send's shared payload, spec A, is one more; its last envelope's ack deletes it).

The counterpart of the SQLite store thread's group commit: one task takes every request
waiting at that moment (up to MAX_BATCH) and runs them in one transaction, so a burst costs
one commit (one WAL flush), and one sender's messages commit in the order they were queued,
which a pool of independent transactions would not guarantee. Across nodes no order is
needed: a device is connected to one node. A transient failure retries the batch; any other
failure writes it again operation by operation, each in a savepoint, so one bad operation
fails alone. Every request's future is resolved on every path, cancellation included.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from porch.failures import log_failure
from porch.server.domain import Envelope
from porch.server.retry import Classifier, retry
from porch.server.store.base import (
    OutgoingCopy,
    OutgoingDestination,
    SharedPayload,
    StoredMessage,
    StoreError,
)

log = logging.getLogger("porch.store")

MAX_BATCH = 1000


@dataclass(slots=True)
class SendRequest:
    sender_account: str
    sender_device: int
    client_id: str
    destinations: Sequence[OutgoingDestination]
    shared: SharedPayload | None
    now: int
    expires: int
    deadline: int | None  # a ttl send's envelope expiry, before `expires` (spec §7)
    future: asyncio.Future[StoredMessage]

    @property
    def until(self) -> int:
        """When the send's envelopes and payload expire (its idempotency record: `expires`)."""
        return self.expires if self.deadline is None else self.deadline


@dataclass(slots=True)
class AckRequest:
    account_id: str
    device_id: int
    ids: Sequence[int]
    future: asyncio.Future[int]


Request = SendRequest | AckRequest


class BatchWriter:
    def __init__(self, pool: Callable[[], asyncpg.Pool], transient: Classifier) -> None:
        self._pool = pool
        self._transient = transient
        self.queue: asyncio.Queue[Request] = asyncio.Queue()

    def fail_queued(self) -> None:
        """Answer whatever is still queued (the writer has stopped): never left waiting."""
        while not self.queue.empty():
            _resolve([(self.queue.get_nowait(), StoreError("store is closed"))])

    async def run(self) -> None:
        """The writer task: one per node, for as long as the store is open."""
        while True:
            batch = [await self.queue.get()]
            while len(batch) < MAX_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self._write_batch(batch)
            except BaseException as exc:  # cancelled (closing), or a bug: nobody waits forever
                _resolve([(r, _failure(exc)) for r in batch])
                if not isinstance(exc, Exception):
                    raise
                log_failure(log, "the writer failed on a batch of %d", len(batch), exc=exc)

    async def _write_batch(self, batch: list[SendRequest | AckRequest]) -> None:
        """The whole batch in one transaction; if that fails, each operation in a savepoint of
        its own, so that one bad operation fails alone (as in the SQLite store)."""
        sends = [r for r in batch if isinstance(r, SendRequest)]
        acks = [r for r in batch if isinstance(r, AckRequest)]

        async def attempt() -> tuple[list[StoredMessage], list[int]]:
            async with self._pool().acquire() as c:
                try:
                    async with c.transaction():
                        stored = await _store_sends(c, sends) if sends else []
                        deleted = await _delete_acks(c, acks) if acks else []
                except Exception as exc:
                    if self._transient(exc):
                        c.terminate()  # the pool opens a fresh one for the retry
                    raise
            return stored, deleted

        try:
            # A lost connection or a failover is retried as a whole. A send retried after a
            # commit whose answer was lost is found by its idempotency record: answered as a
            # duplicate with its first timestamp, never stored twice.
            stored, deleted = await retry(
                attempt, self._transient, f"a write batch of {len(batch)}"
            )
        except Exception as exc:
            log.warning("a write batch of %d failed (%s)", len(batch), type(exc).__name__)
            if len(batch) == 1:
                _resolve([(batch[0], _failure(exc))])
            else:
                await self._write_each(batch)
            return
        _resolve([*zip(sends, stored, strict=True), *zip(acks, deleted, strict=True)])

    async def _write_each(self, batch: list[SendRequest | AckRequest]) -> None:
        outcomes: list[tuple[SendRequest | AckRequest, object]] = []
        try:
            async with self._pool().acquire() as c, c.transaction():
                for r in batch:
                    try:
                        async with c.transaction():  # nested: a savepoint
                            if isinstance(r, SendRequest):
                                result: object = (await _store_sends(c, [r]))[0]
                            else:
                                result = (await _delete_acks(c, [r]))[0]
                    except Exception as exc:
                        log.error("a write failed alone: %s", type(exc).__name__)
                        result = _failure(exc)
                    outcomes.append((r, result))
        except Exception as exc:  # the commit (or the connection) failed: nothing was written
            outcomes = [(r, _failure(exc)) for r in batch]
        _resolve(outcomes)  # only after the commit: a result means "stored"


def _failure(exc: BaseException) -> StoreError:
    return StoreError(f"write failed: {type(exc).__name__}")


def _resolve(outcomes: Sequence[tuple[SendRequest | AckRequest, object]]) -> None:
    for r, outcome in outcomes:
        fut: asyncio.Future[Any] = r.future
        if fut.done():
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


async def _store_sends(c: asyncpg.Connection, sends: list[SendRequest]) -> list[StoredMessage]:
    """Store a batch of sends in three statements, whatever its size."""
    keys = [(r.sender_account, r.sender_device, r.client_id) for r in sends]
    first: dict[tuple[str, int, str], int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    unique = sorted(first.values())
    inserted = await c.fetch(
        "INSERT INTO sent_messages (sender_account, sender_device, client_id, ts, expires)"
        " SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::bigint[], $5::bigint[])"
        " ON CONFLICT DO NOTHING RETURNING sender_account, sender_device, client_id",
        [sends[i].sender_account for i in unique],
        [sends[i].sender_device for i in unique],
        [sends[i].client_id for i in unique],
        [sends[i].now for i in unique],
        [sends[i].expires for i in unique],
    )
    new = {(r[0], r[1], r[2]) for r in inserted}
    old_ts: dict[tuple[str, int, str], int] = {}
    stale = [k for k in first if k not in new]
    if stale:
        rows = await c.fetch(
            "SELECT s.sender_account, s.sender_device, s.client_id, s.ts FROM sent_messages s"
            " JOIN unnest($1::text[], $2::int[], $3::text[]) AS t(a, d, c)"
            " ON s.sender_account = t.a AND s.sender_device = t.d AND s.client_id = t.c",
            [k[0] for k in stale],
            [k[1] for k in stale],
            [k[2] for k in stale],
        )
        old_ts = {(r[0], r[1], r[2]): int(r[3]) for r in rows}
    fresh = [i for i in unique if keys[i] in new]
    payload_of = await _store_payloads(c, [(i, sends[i]) for i in fresh])
    copies = [
        (i, d.account_id, copy) for i in fresh for d in sends[i].destinations for copy in d.copies
    ]
    ids: list[int] = []
    # What each copy delivers (kind, body) and what its row holds (body, payload id).
    delivered = [_delivered(sends[i], copy) for i, _, copy in copies]
    if copies:
        # Ids are taken first so that the order of the envelopes is the order of the batch.
        ids = await _next_ids(c, "envelopes", len(copies))
        await c.execute(
            "INSERT INTO envelopes (id, account_id, device_id, sender_account, sender_device,"
            " ts, kind, body, expires, payload_id) SELECT * FROM unnest($1::bigint[],"
            " $2::text[], $3::int[], $4::text[], $5::int[], $6::bigint[], $7::smallint[],"
            " $8::text[], $9::bigint[], $10::bigint[])",
            ids,
            [account for _, account, _ in copies],
            [copy.device_id for _, _, copy in copies],
            [sends[i].sender_account for i, _, _ in copies],
            [sends[i].sender_device for i, _, _ in copies],
            [sends[i].now for i, _, _ in copies],
            [kind for kind, _ in delivered],
            ["" if copy.body is None else copy.body for _, _, copy in copies],
            [sends[i].until for i, _, _ in copies],
            [None if copy.body is not None else payload_of[i] for i, _, copy in copies],
        )
    envelopes: dict[int, list[Envelope]] = {}
    for envelope_id, (i, account, copy), (kind, body) in zip(ids, copies, delivered, strict=True):
        r = sends[i]
        envelopes.setdefault(i, []).append(
            Envelope(
                envelope_id,
                account,
                copy.device_id,
                r.sender_account,
                r.sender_device,
                r.now,
                kind,
                body,
                expires=r.deadline,
            )
        )
    results = []
    for i, r in enumerate(sends):
        if first[keys[i]] == i and keys[i] in new:
            results.append(StoredMessage(r.now, tuple(envelopes.get(i, ())), False))
        else:
            ts = old_ts.get(keys[i], sends[first[keys[i]]].now)
            results.append(StoredMessage(ts, (), True))
    return results


def _delivered(r: SendRequest, copy: OutgoingCopy) -> tuple[int, str]:
    if copy.kind is not None and copy.body is not None:
        return copy.kind, copy.body
    if r.shared is None:
        raise ValueError("a copy without a body needs the shared payload")
    return r.shared.kind, r.shared.body


async def _next_ids(c: asyncpg.Connection, table: str, n: int) -> list[int]:
    return [
        r[0]
        for r in await c.fetch(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, $1)",
            n,
        )
    ]


async def _store_payloads(
    c: asyncpg.Connection, sends: list[tuple[int, SendRequest]]
) -> dict[int, int]:
    """One payloads row per send with a shared body: {index in the batch: payload id}."""
    with_shared = [(i, r, r.shared) for i, r in sends if r.shared is not None]
    if not with_shared:
        return {}
    ids = await _next_ids(c, "payloads", len(with_shared))
    await c.execute(
        "INSERT INTO payloads (id, kind, body, expires)"
        " SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::bigint[])",
        ids,
        [p.kind for _, _, p in with_shared],
        [p.body for _, _, p in with_shared],
        [r.until for _, r, _ in with_shared],
    )
    return {i: pid for (i, _, _), pid in zip(with_shared, ids, strict=True)}


async def _delete_acks(c: asyncpg.Connection, acks: list[AckRequest]) -> list[int]:
    flat = [(i, a.account_id, a.device_id, n) for n, a in enumerate(acks) for i in a.ids]
    rows = await c.fetch(
        "DELETE FROM envelopes e USING unnest($1::bigint[], $2::text[], $3::int[], $4::int[])"
        " AS t(id, a, d, n) WHERE e.id = t.id AND e.account_id = t.a AND e.device_id = t.d"
        " RETURNING t.n, e.payload_id",
        [f[0] for f in flat],
        [f[1] for f in flat],
        [f[2] for f in flat],
        [f[3] for f in flat],
    )
    counts = [0] * len(acks)
    for r in rows:
        counts[r[0]] += 1
    released = sorted({r[1] for r in rows if r[1] is not None})
    if released:
        # Shared payloads whose last envelope this batch deleted (store/payloads.py).
        await c.execute(
            "DELETE FROM payloads p USING unnest($1::bigint[]) AS t(id) WHERE p.id = t.id"
            " AND NOT EXISTS (SELECT 1 FROM envelopes e WHERE e.payload_id = p.id)",
            released,
        )
    return counts
