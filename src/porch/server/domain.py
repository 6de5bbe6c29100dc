"""What the message path hands between store, services, bus and gateway.

The gateway and the bus deal in these, never in store rows, so a store can change its tables
without touching them (ARCHITECTURE.md, "Components with lifecycles").
"""

from __future__ import annotations

from dataclasses import dataclass


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made
# building one 4-10 times dearer (1.3 against 6.8 µs for these ten fields on the 2-core VM,
# 2026-12-01), and the store builds one per envelope read or written, the bus one per device of
# a group message (issue 10). Nothing changes an envelope after it is built.
@dataclass(slots=True)
class Envelope:
    """One ciphertext for one device. A stored envelope has the id of its queue entry, which
    the device acknowledges; an online-only one (ephemeral: typing) is never stored, is not
    acknowledged and is dropped rather than queued when its connection is behind. On the wire
    an online-only envelope carries id 0 (docs/protocol.md, "Online-only envelopes"); here the
    flag says so, so no code needs to know that convention but the frame encoder."""

    id: int
    account_id: str
    device_id: int
    sender_account: str
    sender_device: int
    ts: int
    kind: int
    body: str
    ephemeral: bool = False
    # A send with a ttl (docs/protocol.md, "Sending"): the epoch ms after which it is never
    # delivered. None: the retention's, which only the store's queries need to know.
    expires: int | None = None

    @property
    def wire_id(self) -> int:
        return 0 if self.ephemeral else self.id

    @classmethod
    def online_only(
        cls,
        account_id: str,
        device_id: int,
        sender_account: str,
        sender_device: int,
        ts: int,
        kind: int,
        body: str,
    ) -> Envelope:
        return cls(0, account_id, device_id, sender_account, sender_device, ts, kind, body, True)
