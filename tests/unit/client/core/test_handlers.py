"""The content handler registry, and what the core may import."""

from __future__ import annotations

import ast
import json
import sqlite3
from pathlib import Path
from typing import Any

import porch.client.core
from porch.client.core import Envelope, Handlers, default_handlers
from porch.client.core.context import CoreState
from porch.client.core.handlers import ReceiptHandler, TextHandler, UnknownHandler
from porch.client.events import Message
from porch.crypto.content import Receipt, Text, Unknown, pad
from porch.protocol.codec import b64encode

from .conftest import PeerFactory, events, fetches, frames_of


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any, bool]] = []

    def persist(
        self, state: CoreState, env: Envelope, content: Any, db: sqlite3.Connection
    ) -> bool:
        return True

    def react(self, state: CoreState, env: Envelope, content: Any, new: bool) -> None:
        self.seen.append((env.sender, content, new))


def test_unknown_and_unregistered_kinds_fall_back_harmlessly() -> None:
    handlers = Handlers()
    assert handlers.for_content(Text("a", "b", 1)) is handlers.fallback
    defaults = default_handlers()
    assert isinstance(defaults.for_content(Text("a", "b", 1)), TextHandler)
    assert isinstance(defaults.for_content(Receipt("read", ("a",))), ReceiptHandler)
    assert isinstance(defaults.for_content(Unknown("reaction", {})), UnknownHandler)


def test_a_kind_this_version_does_not_know_is_acked_without_an_event(
    make_peer: PeerFactory,
) -> None:
    alice, bob = make_peer(), make_peer()
    recorder = _Recorder()
    bob.core.handlers.register(Unknown, recorder)
    directory = {alice.account_id: alice, bob.account_id: bob}.__getitem__
    alice.queue_text(bob, "hi")
    [send] = alice.send_all(directory)
    [envelope] = alice.envelopes_for(send.frame, bob)
    [fetch] = fetches(bob.core.receive(envelope))
    assert isinstance(
        events(bob.core.keys_fetched(alice.account_id, fetch.token, alice.bundle()))[0], Message
    )
    bob.core.flush()
    # A later version's content kind, sent over the same session.
    reaction = pad(json.dumps({"v": 1, "t": "poll", "question": "+1", "id": "m1"}).encode())
    ct = alice.olm.encrypt((bob.account_id, bob.device_id), reaction)
    frame = {
        **envelope,
        "id": envelope["id"] + 1,
        "ts": envelope["ts"] + 1,
        "kind": ct.kind,
        "body": b64encode(ct.body),
    }
    actions = bob.core.receive(frame)
    assert events(actions) == [] and fetches(actions) == []
    assert frames_of(bob.core.flush(), "ack") == [{"type": "ack", "ids": [frame["id"]]}]
    [(sender, content, _)] = recorder.seen
    assert sender == alice.account_id and isinstance(content, Unknown) and content.t == "poll"


def test_the_core_does_no_io() -> None:
    """No asyncio, HTTP or sockets in porch.client.core (sans-IO, as h11)."""
    banned = {
        "asyncio",
        "httpx",
        "websockets",
        "socket",
        "porch.client.api",
        "porch.client.client",
        "porch.client.transport",
        "porch.client.runner",
        "threading",
    }
    root = Path(porch.client.core.__file__).parent
    found = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [(path.name, n) for n in names if n in banned or n.split(".")[0] in banned]
    assert len(list(root.glob("*.py"))) >= 8 and found == []
