"""The sealed group state: round trips, size buckets, bounds, tampering and moved blobs."""

from __future__ import annotations

import json

import pytest

from porch.crypto.errors import (
    BAD_CONTENT,
    BAD_KEY,
    DECRYPT_FAILED,
    STALE_REVISION,
    UNSUPPORTED_VERSION,
    ContentError,
    CryptoError,
    DecryptError,
)
from porch.crypto.group_state import (
    BUCKETS,
    HEADER_LEN,
    MAX_DESCRIPTION_CHARS,
    MAX_NAME_CHARS,
    MAX_TIMER_SECONDS,
    NONCE_LEN,
    TAG_LEN,
    GroupSettings,
    GroupState,
    blob_epoch,
    decode_state,
    open_group_state,
    seal_group_state,
    state_to_json,
)

KEY = bytes(range(32))
GROUP = "g-7f3a"
STATE = GroupState(
    name="Climbing 🧗",
    description="Saturdays\nat the wall",
    avatar="media:01J0AVATAR",
    timer_seconds=86400,
    settings=GroupSettings(members_can_edit=False, join_approval=True),
)


def test_round_trip_across_members() -> None:
    blob = seal_group_state(KEY, GROUP, 4, 2, STATE)
    assert blob_epoch(blob) == 2
    for _member in range(3):
        assert open_group_state(KEY, GROUP, 4, blob, min_revision=3) == STATE
    minimal = GroupState(name="x")
    assert open_group_state(KEY, GROUP, 0, seal_group_state(KEY, GROUP, 0, 0, minimal)) == minimal


def test_blob_size_does_not_reveal_the_name_length() -> None:
    sizes = {
        len(seal_group_state(KEY, GROUP, 1, 0, GroupState(name=name)))
        for name in ("a", "a" * MAX_NAME_CHARS, "名" * MAX_NAME_CHARS, "🧗" * MAX_NAME_CHARS)
    }
    assert sizes == {HEADER_LEN + NONCE_LEN + BUCKETS[0] + TAG_LEN}
    largest = GroupState(
        name="🧗" * MAX_NAME_CHARS,
        description="🧗" * MAX_DESCRIPTION_CHARS,
        avatar='"' * 512,
        timer_seconds=MAX_TIMER_SECONDS,
    )
    blob = seal_group_state(KEY, GROUP, 1, 0, largest)
    assert len(blob) - HEADER_LEN - NONCE_LEN - TAG_LEN in BUCKETS
    assert open_group_state(KEY, GROUP, 1, blob) == largest


def test_tampering_is_refused() -> None:
    blob = seal_group_state(KEY, GROUP, 4, 0, STATE)
    for position in (HEADER_LEN, HEADER_LEN + NONCE_LEN, len(blob) - 1):
        tampered = bytearray(blob)
        tampered[position] ^= 1
        with pytest.raises(DecryptError) as err:
            open_group_state(KEY, GROUP, 4, bytes(tampered))
        assert err.value.code == DECRYPT_FAILED
    # The epoch is in the header and the associated data: changing it fails too.
    moved_epoch = blob[:1] + (1).to_bytes(4, "big") + blob[HEADER_LEN:]
    with pytest.raises(DecryptError):
        open_group_state(KEY, GROUP, 4, moved_epoch)
    with pytest.raises(DecryptError):
        open_group_state(bytes(32), GROUP, 4, blob)
    with pytest.raises(DecryptError):
        open_group_state(KEY, GROUP, 4, blob[:-1])
    with pytest.raises(DecryptError):
        open_group_state(KEY, GROUP, 4, blob[:20])


def test_a_blob_cannot_move_to_another_group_or_revision() -> None:
    blob = seal_group_state(KEY, GROUP, 4, 0, STATE)
    for group, revision in (("g-other", 4), (GROUP, 5), (GROUP, 3)):
        with pytest.raises(DecryptError) as err:
            open_group_state(KEY, group, revision, blob)
        assert err.value.code == DECRYPT_FAILED


def test_an_older_revision_than_one_seen_is_stale() -> None:
    old = seal_group_state(KEY, GROUP, 3, 0, STATE)
    with pytest.raises(DecryptError) as err:
        open_group_state(KEY, GROUP, 3, old, min_revision=4)
    assert err.value.code == STALE_REVISION


def test_unknown_blob_version_is_unsupported() -> None:
    blob = seal_group_state(KEY, GROUP, 1, 0, STATE)
    with pytest.raises(ContentError) as err:
        open_group_state(KEY, GROUP, 1, b"\x02" + blob[1:])
    assert err.value.code == UNSUPPORTED_VERSION


@pytest.mark.parametrize(
    "state",
    [
        GroupState(name=""),
        GroupState(name="x" * (MAX_NAME_CHARS + 1)),
        GroupState(name="line\nbreak"),
        GroupState(name="x", description="d" * (MAX_DESCRIPTION_CHARS + 1)),
        GroupState(name="x", description="bell\x07"),
        GroupState(name="x", avatar=""),
        GroupState(name="x", timer_seconds=-1),
        GroupState(name="x", timer_seconds=MAX_TIMER_SECONDS + 1),
        GroupState(name="\ud800"),
    ],
)
def test_out_of_bounds_states_are_refused(state: GroupState) -> None:
    with pytest.raises(ContentError) as err:
        seal_group_state(KEY, GROUP, 1, 0, state)
    assert err.value.code == BAD_CONTENT


def test_bad_ids_and_keys_are_refused() -> None:
    for group, revision, epoch in (("", 1, 0), ("a\x00b", 1, 0), (GROUP, -1, 0), (GROUP, 1, 2**32)):
        with pytest.raises(CryptoError):
            seal_group_state(KEY, group, revision, epoch, STATE)
    with pytest.raises(CryptoError) as err:
        seal_group_state(b"short", GROUP, 1, 0, STATE)
    assert err.value.code == BAD_KEY


def test_decode_checks_what_a_member_sealed() -> None:
    good = json.loads(state_to_json(STATE))
    assert decode_state(json.dumps({**good, "future": 1}).encode()) == STATE
    for bad in (
        {**good, "v": 2},
        {**good, "timer": True},
        {**good, "settings": {"members_can_edit": 1, "join_approval": False}},
        {k: v for k, v in good.items() if k != "name"},
        [],
    ):
        with pytest.raises(ContentError):
            decode_state(json.dumps(bad).encode())
