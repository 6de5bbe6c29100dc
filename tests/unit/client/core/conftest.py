"""Client cores without a socket or server: real Olm machines, real local stores, and a
key directory and a server played by hand (the frames are passed between cores here)."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from porch.client.core import (
    Action,
    Bundle,
    ClaimKeys,
    ClientCore,
    DirectoryDevice,
    EmitEvent,
    FetchKeys,
    SendFrame,
)
from porch.client.events import Event
from porch.client.store import LocalStore
from porch.crypto.at_rest import Sealer
from porch.crypto.content import Text, encode_content
from porch.crypto.olm import OlmMachine
from porch.crypto.signing import MasterKey

_ids = itertools.count(1000)


@dataclass
class Peer:
    """One device: its core, plus what the key directory knows about it."""

    core: ClientCore
    store: LocalStore
    olm: OlmMachine
    master: MasterKey
    account_id: str
    device_id: int
    registration_id: int
    signature: str
    others: list[Peer] = field(default_factory=list)  # more devices of the same account

    def directory_device(self, claim: bool) -> DirectoryDevice:
        otk = self.olm.generate_one_time_keys(1)[0] if claim else None
        return DirectoryDevice(
            self.device_id,
            self.registration_id,
            self.olm.curve25519,
            self.olm.ed25519,
            self.signature,
            otk,
        )

    def bundle(self, claim: bool = False, devices: tuple[int, ...] | None = None) -> Bundle:
        """What GET /v1/keys (claim False) or POST .../claim (claim True) would answer."""
        every = [self, *self.others]
        chosen = [p for p in every if devices is None or p.device_id in devices]
        return Bundle(
            self.account_id, self.master.public_b64, [p.directory_device(claim) for p in chosen]
        )

    def queue_text(self, to: Peer, text: str, ttl: int | None = None) -> str:
        """What Client.send_text writes: the outbox item and the pending history line."""
        client_id = f"m{next(_ids)}"
        now = 1_700_000_000_000
        content = encode_content(Text(client_id, text, now))
        with self.store.transaction() as db:
            self.store.enqueue(client_id, to.account_id, content, False, now, ttl=ttl)
            self.store.add_message(
                to.account_id, client_id, True, self.device_id, now, text, "pending", db
            )
        return client_id

    def send_all(self, directory: Callable[[str], Peer]) -> list[SendFrame]:
        """Run the outbox once, answering each ClaimKeys from ``directory``."""
        frames = []
        for item in self.core.next_outbox_items():
            actions = self.core.prepare(item)
            claims = [a for a in actions if isinstance(a, ClaimKeys)]
            while claims:  # as the runner does: an answer may ask for one more
                claim = claims.pop(0)
                # One's own account (sent copies) is always in the directory.
                own = claim.account == self.account_id
                target = self if own else directory(claim.account)
                bundle = target.bundle(not claim.listing, claim.devices)
                actions = self.core.keys_claimed(claim, bundle)
                claims += [a for a in actions if isinstance(a, ClaimKeys)]
            frames += [a for a in actions if isinstance(a, SendFrame)]
        return frames

    def envelopes_for(
        self, frame: dict[str, Any], to: Peer, ts: int | None = None
    ) -> list[dict[str, Any]]:
        """The envelopes the server would store for ``to``'s device from one `send` frame."""
        shared = frame.get("shared") or {}
        return [
            {
                "type": "envelope",
                "id": next(_ids),
                "from": self.account_id,
                "from_device": self.device_id,
                "ts": ts if ts is not None else 1_700_000_000_000 + next(_ids),
                "kind": m.get("kind", shared.get("kind")),
                "body": m.get("body", shared.get("body")),
            }
            for m in devices_of(frame, to.account_id)
            if m["device"] == to.device_id
        ]


def devices_of(frame: dict[str, Any], account: str) -> list[dict[str, Any]]:
    """The device entries of ``account``'s destination in a `send` frame ([] if none)."""
    for d in frame["destinations"]:
        if d["account"] == account:
            return list(d["devices"])
    return []


def accounts_of(frame: dict[str, Any]) -> list[str]:
    return [d["account"] for d in frame["destinations"]]


def events(actions: list[Action]) -> list[Event]:
    return [a.event for a in actions if isinstance(a, EmitEvent)]


def frames_of(actions: list[Action], kind: str) -> list[dict[str, Any]]:
    return [a.frame for a in actions if isinstance(a, SendFrame) and a.frame["type"] == kind]


def fetches(actions: list[Action]) -> list[FetchKeys]:
    return [a for a in actions if isinstance(a, FetchKeys)]


PeerFactory = Callable[..., Peer]


@pytest.fixture
def make_peer(tmp_path: Path) -> Iterator[PeerFactory]:
    stores: list[LocalStore] = []

    def make(of: Peer | None = None, device_id: int = 1, reregister: Peer | None = None) -> Peer:
        """A new account; with ``of``, another device of that account; with ``reregister``,
        that account registered again (the same id, a new master key and device keys)."""
        store = LocalStore(tmp_path / f"p{next(_ids)}.db", Sealer(os.urandom(32)))
        stores.append(store)
        olm = OlmMachine.create(os.urandom(32))
        master = of.master if of is not None else MasterKey.generate()
        account = of.account_id if of is not None else str(uuid.uuid4())
        if reregister is not None:
            account = reregister.account_id
        registration = 4000 + device_id
        signature = master.sign_device(
            account, device_id, registration, olm.curve25519, olm.ed25519
        )
        peer = Peer(
            ClientCore(store, olm, account, device_id),
            store,
            olm,
            master,
            account,
            device_id,
            registration,
            signature,
        )
        if of is not None:
            of.others.append(peer)
        return peer

    yield make
    for store in stores:
        store.close()
