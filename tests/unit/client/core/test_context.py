"""Client message ids (core/context.py)."""

from __future__ import annotations

import secrets

import pytest

from porch.client.core import context


def test_a_message_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # A dash first would make `porch reply PEER ID` read the id as an option.
    drawn = iter(["-KvSG8aWxxxxxxxx", "-AAAAAAAAAAAAAAA", "KvSG8aWxxxxxxxxx"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: next(drawn))
    assert context.new_message_id() == "KvSG8aWxxxxxxxxx"


def test_message_ids_are_sixteen_urlsafe_characters() -> None:
    ids = {context.new_message_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 16 and not i.startswith("-") for i in ids)
