"""Group sends in the outbox: key shares over Olm, then one shared Megolm frame (spec A, E).

An outbox item whose recipient is ``g:<group id>`` is a group send of its content (a text with
``group``, a ``group_update``, a ``group_state_key``). Its destinations are the group's member
accounts as this device last fetched them (GroupStore.group_members), this account included:
its other devices get the message like any member device (the sent copy of a group send).
The outbox claims keys for member devices without an Olm session (one ClaimKeys per account),
then ``frames`` builds, in order:

1. the key shares GroupCrypto.prepare says are owed, as `send` frames with per-device Olm
   ciphertexts of the ``group_key`` content and fresh client ids. The server checks whole
   accounts (every current device of a destination account must be listed, spec A), so a
   share frame names every ready device of each account that owes a share; devices that hold
   the session already get it again and keep their first copy (GroupCrypto.receive_key).
   Frames stay under SHARE_FRAME_BUDGET characters of ciphertext and the send bounds;
2. the message: one `send` naming every member device with no body of its own and the kind-2
   body as ``shared``.

Both leave on the same connection in that order; the server commits one connection's sends in
the order they came, so a member's backlog holds the key before the message. A share counts as
given once its `sent` arrives (``mark_shared``); until then later sends on this connection treat
it as given (no second share). A share frame the server refuses for any reason other than the
device lists (which refuse the message too, and the retry shares again) starts a new session on
the next send, so that no device stays without the key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from porch.client.core import frames
from porch.client.core.context import CoreState
from porch.client.core.groups import GroupCrypto
from porch.client.store import OutboxItem, PeerDeviceRow
from porch.crypto.content import GroupUpdate, decode_content
from porch.protocol.codec import b64encode
from porch.protocol.fields import MAX_DESTINATIONS, MAX_DEVICES_PER_SEND

log = logging.getLogger("porch.client")

GROUP_PREFIX: Final = "g:"
KIND_MEGOLM: Final = 2
# Ciphertext characters per share frame: well under the server's default frame limit
# (512 KiB), leaving room for the JSON around them.
SHARE_FRAME_BUDGET: Final = 400 * 1024
DEVICE_ENTRY_OVERHEAD: Final = 96  # the JSON of one device entry around its body

Device = tuple[str, int]
EncryptTo = Callable[[str, list[PeerDeviceRow], bytes], list[dict[str, Any]]]


def group_of(recipient: str) -> str | None:
    """The group id of an outbox recipient ``g:<id>``; None for an account."""
    return recipient[len(GROUP_PREFIX) :] if recipient.startswith(GROUP_PREFIX) else None


def is_leave(content: bytes) -> bool:
    try:
        decoded = decode_content(content)
    except (ValueError, KeyError):
        return False
    return isinstance(decoded, GroupUpdate) and decoded.action == "leave"


@dataclass(frozen=True, slots=True)
class _Share:
    group_id: str
    session_id: str
    devices: frozenset[Device]


class GroupSends:
    def __init__(self, state: CoreState, crypto: GroupCrypto, encrypt_to: EncryptTo) -> None:
        self._state, self.crypto, self._encrypt_to = state, crypto, encrypt_to
        self._shares: dict[str, _Share] = {}  # share frame id -> what it carries
        # Shares sent on this connection whose `sent` has not come yet, by (group, session).
        self._given: dict[tuple[str, str], set[Device]] = {}
        self._ids = 0

    def reset(self) -> None:
        """A new connection: unanswered shares may never have been stored; share again."""
        self._shares.clear()
        self._given.clear()

    # Who -----------------------------------------------------------------------------------

    def accounts(self, item: OutboxItem) -> list[str]:
        """The member accounts an item for a group goes to, this account last ([] when this
        account is not a member: ``refusal`` says why)."""
        gid = group_of(item.recipient)
        assert gid is not None
        me = self._state.account_id
        members = [m.account_id for m in self._state.store.group_members(gid)]
        if me not in members and not (is_leave(item.content) and members):
            return []
        return [a for a in members if a != me] + [me]

    def refusal(self, item: OutboxItem) -> str | None:
        """Why an item for a group cannot go (this account is not in it), or None."""
        gid = group_of(item.recipient)
        assert gid is not None
        if self.accounts(item):
            return None
        label = self._state.store.get_group(gid)
        what = f"group {gid[:8]}"
        if label is None:
            return f"this device knows no {what}: it was never joined here, or was forgotten"
        return f"you are no longer a member of {what}: you left it or were removed"

    def ready(self, account: str) -> list[PeerDeviceRow]:
        state = self._state
        return [
            d
            for d in state.store.peer_devices(account)
            if not state.is_me(account, d.device_id)
            and state.olm.has_session((account, d.device_id))
        ]

    # Frames --------------------------------------------------------------------------------

    def frames(self, item: OutboxItem, ttl: int | None = None) -> list[dict[str, Any]]:
        """The share frames, then the message frame ([] when no other device exists: only
        this device is in the group). Only the message frame carries ttl (spec §7): the key
        shares serve the session's later messages too, which must not lose their key."""
        gid = group_of(item.recipient)
        assert gid is not None
        by_account = {a: self.ready(a) for a in self.accounts(item)}
        by_account = {a: rows for a, rows in by_account.items() if rows}
        devices = [d for rows in by_account.values() for d in rows]
        plan = self.crypto.prepare(gid, devices, self._state.clock())
        given = self._given.setdefault((gid, plan.session_id), set())
        owed = {(s.account_id, s.device_id) for s in plan.shares} - given
        out = []
        if owed:
            content = plan.shares[0].content
            accounts = sorted({a for a, _ in owed})
            out = self._share_frames(gid, plan.session_id, accounts, by_account, content)
        if not by_account:
            return out
        body = b64encode(self.crypto.encrypt(gid, item.content))
        destinations = [
            frames.destination(a, [frames.ciphertext(d.device_id, d.registration_id) for d in rows])
            for a, rows in by_account.items()
        ]
        if len(destinations) > MAX_DESTINATIONS or len(devices) > MAX_DEVICES_PER_SEND:
            log.warning("group %s has more devices than one send may name", gid[:8])
        out.append(frames.send(item.client_id, destinations, (KIND_MEGOLM, body), ttl=ttl))
        return out

    def _share_frames(
        self,
        gid: str,
        session_id: str,
        accounts: list[str],
        by_account: dict[str, list[PeerDeviceRow]],
        content: bytes,
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        batch: list[dict[str, Any]] = []
        carried: set[Device] = set()
        size = devices = 0

        def close() -> None:
            nonlocal batch, carried, size, devices
            if batch:
                self._ids += 1
                frame_id = f"gk{self._ids}x{self._state.clock() % 10**9}"
                self._shares[frame_id] = _Share(gid, session_id, frozenset(carried))
                self._given.setdefault((gid, session_id), set()).update(carried)
                out.append(frames.send(frame_id, batch))
            batch, carried, size, devices = [], set(), 0, 0

        for account in accounts:
            rows = by_account[account]
            entries = self._encrypt_to(account, rows, content)
            cost = sum(len(e.get("body") or "") + DEVICE_ENTRY_OVERHEAD for e in entries)
            if batch and (
                size + cost > SHARE_FRAME_BUDGET
                or len(batch) >= MAX_DESTINATIONS
                or devices + len(entries) > MAX_DEVICES_PER_SEND
            ):
                close()
            batch.append(frames.destination(account, entries))
            carried.update((account, d.device_id) for d in rows)
            size, devices = size + cost, devices + len(entries)
        close()
        return out

    # The server's answers to share frames --------------------------------------------------

    def on_sent(self, frame_id: str) -> bool:
        """True when ``frame_id`` was a share frame (its devices now hold the session)."""
        share = self._shares.pop(frame_id, None)
        if share is None:
            return False
        self.crypto.mark_shared(share.group_id, share.session_id, share.devices)
        return True

    def on_error(self, frame_id: str, device_error: bool) -> bool:
        """True when ``frame_id`` was a share frame. A device list error refuses the message
        too (the outbox fixes the lists and the retry shares again); any other refusal starts
        a new session next time, as the message may have gone without the key."""
        share = self._shares.pop(frame_id, None)
        if share is None:
            return False
        given = self._given.get((share.group_id, share.session_id))
        if given is not None:
            given.difference_update(share.devices)
        if not device_error:
            log.info("group %s: a key share was refused; the next send rotates", share.group_id[:8])
            self.crypto.member_removed(share.group_id)
        return True
