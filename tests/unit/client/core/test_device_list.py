"""A contact's signed device list in the client core (core/keys.py, spec C): verified with the
pinned master key, never a lower version, only listed devices used, changes announced."""

from __future__ import annotations

from dataclasses import replace

import pytest

from porch.client.core import Bundle
from porch.client.core.keys import verify_bundle
from porch.client.errors import IdentityError
from porch.client.events import DevicesChanged
from porch.crypto.signing import ListedDevice, MasterKey, device_list_payload
from porch.protocol.codec import b64encode
from tests.unit.client.core.conftest import Peer, PeerFactory, events


def listed(bundle: Bundle, master: MasterKey, version: int, ids: tuple[int, ...]) -> Bundle:
    devices = [
        ListedDevice(d.device_id, d.registration_id, d.ed25519)
        for d in bundle.devices
        if d.device_id in ids
    ]
    payload = device_list_payload(bundle.account_id, version, devices)
    return replace(bundle, device_list=(b64encode(payload), master.sign(payload)))


def test_lists_are_verified_and_never_go_back(make_peer: PeerFactory) -> None:
    alice: Peer = make_peer()
    bob: Peer = make_peer()
    make_peer(of=bob, device_id=2)
    core = alice.core
    base = bob.bundle()
    # Version 1 lists device 1 only: device 2 is left out, and no event for the first list.
    kept = verify_bundle(core.state, listed(base, bob.master, 1, (1,)), False)
    assert [d.device_id for d in kept.devices] == [1]
    assert not core.state.take()
    assert alice.store.contact_device_list(bob.account_id) == (1, frozenset({1}))
    actions = core.verify_bundle(listed(base, bob.master, 2, (1, 2)), False)
    assert events(actions) == [DevicesChanged(bob.account_id, (2,), ())]
    with pytest.raises(IdentityError, match="older"):
        core.verify_bundle(listed(base, bob.master, 1, (1,)), False)
    with pytest.raises(IdentityError, match="not signed"):
        core.verify_bundle(listed(base, MasterKey.generate(), 3, (1,)), False)
    with pytest.raises(IdentityError, match="no longer"):
        core.verify_bundle(base, False)  # the list vanished, the master key did not change
    assert alice.store.contact_device_list(bob.account_id) == (2, frozenset({1, 2}))
