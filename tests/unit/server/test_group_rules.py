"""The group rules of spec B as pure decisions (services/group_rules.py)."""

from __future__ import annotations

import pytest

from porch.protocol.errors import ErrorCode, ProtocolError
from porch.server.services import group_rules as rules
from porch.server.store.base import ADMIN, MEMBER, Group, GroupEdit, GroupMember

A, B, C, D = (f"{c * 8}-0000-4000-8000-000000000000" for c in "abcd")


def group(*members: tuple[str, str, int], edit: bool = False, approval: bool = False) -> Group:
    return Group(
        id="g",
        revision=5,
        state=b"s",
        state_revision=1,
        members_can_edit=edit,
        join_approval=approval,
        members=tuple(GroupMember(a, r, s) for a, r, s in members),
        pending=(),
        invite_hash=b"h" * 32,
    )


ALICE_BOB = group((A, ADMIN, 0), (B, MEMBER, 1))


def refused(decide: rules.Decide, g: Group, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as exc:
        decide(g)
    assert exc.value.code is code


def test_non_members_get_the_unknown_group_answer_everywhere() -> None:
    for decide in [
        rules.set_state(C, 5, b"x"),
        rules.set_settings(C, 5, True, True),
        rules.add_members(C, 5, [D], 10),
        rules.remove_member(C, 5, B),
        rules.leave(C),
        rules.set_role(C, 5, B, ADMIN),
        rules.set_invite(C, b"i" * 32),
        rules.revoke_invite(C),
        rules.answer_request(C, D, True, 10),
    ]:
        with pytest.raises(ProtocolError) as exc:
            decide(ALICE_BOB)
        assert exc.value.code is ErrorCode.NOT_FOUND and exc.value.message == rules.NO_GROUP


def test_permission_comes_before_the_revision_and_the_revision_before_the_target() -> None:
    refused(rules.set_state(B, 4, b"x"), ALICE_BOB, ErrorCode.FORBIDDEN)
    refused(rules.set_state(A, 4, b"x"), ALICE_BOB, ErrorCode.REVISION_CONFLICT)
    refused(rules.remove_member(A, 4, D), ALICE_BOB, ErrorCode.REVISION_CONFLICT)
    refused(rules.remove_member(A, 5, D), ALICE_BOB, ErrorCode.NOT_FOUND)
    assert rules.set_state(A, 5, b"x")(ALICE_BOB) == GroupEdit(state=b"x")


def test_members_can_edit_lets_members_add_and_remove_members_but_never_admins() -> None:
    open_group = group((A, ADMIN, 0), (B, MEMBER, 1), (C, MEMBER, 1), edit=True)
    assert rules.add_members(B, 5, [D, D, A], 10)(open_group) == GroupEdit(add=(D,))
    assert rules.add_members(B, 5, [A, C], 10)(open_group) is None  # all in already
    assert rules.remove_member(B, 5, C)(open_group) == GroupEdit(remove=(C,))
    refused(rules.remove_member(B, 5, A), open_group, ErrorCode.FORBIDDEN)
    refused(rules.remove_member(B, 5, B), open_group, ErrorCode.BAD_REQUEST)
    refused(rules.set_settings(B, 5, False, False), open_group, ErrorCode.FORBIDDEN)
    refused(rules.add_members(B, 5, [D], 3), open_group, ErrorCode.GROUP_FULL)


def test_the_last_admin() -> None:
    refused(rules.set_role(A, 5, A, MEMBER), ALICE_BOB, ErrorCode.LAST_ADMIN)
    assert rules.set_role(A, 5, A, ADMIN)(ALICE_BOB) is None
    # Leaving hands the group to the longest-standing member (lowest since, then id).
    g = group((A, ADMIN, 0), (C, MEMBER, 2), (D, MEMBER, 1))
    assert rules.leave(A)(g) == GroupEdit(remove=(A,), roles=((D, ADMIN),))
    two_admins = group((A, ADMIN, 0), (B, ADMIN, 1), (C, MEMBER, 1))
    assert rules.leave(A)(two_admins) == GroupEdit(remove=(A,))
    assert rules.leave(A)(group((A, ADMIN, 0))) == GroupEdit(remove=(A,))


def test_join_by_invite() -> None:
    token = b"h" * 32
    refused(rules.join(C, b"other" * 6, 10), ALICE_BOB, ErrorCode.NOT_FOUND)
    assert rules.join(C, token, 10)(ALICE_BOB) == GroupEdit(add=(C,))
    assert rules.join(B, token, 10)(ALICE_BOB) is None
    refused(rules.join(C, token, 2), ALICE_BOB, ErrorCode.GROUP_FULL)
    approval = group((A, ADMIN, 0), approval=True)
    assert rules.join(C, token, 10)(approval) == GroupEdit(request=(C,))
    waiting = Group(**{**_fields(approval), "pending": (C,)})
    assert rules.join(C, token, 10)(waiting) is None
    refused(rules.join(D, token, 1), waiting, ErrorCode.GROUP_FULL)  # requests are capped too
    assert rules.answer_request(A, C, True, 10)(waiting) == GroupEdit(add=(C,))
    assert rules.answer_request(A, C, False, 10)(waiting) == GroupEdit(drop_requests=(C,))
    refused(rules.answer_request(A, D, True, 10), waiting, ErrorCode.NOT_FOUND)


def _fields(g: Group) -> dict[str, object]:
    return {name: getattr(g, name) for name in Group.__slots__}
