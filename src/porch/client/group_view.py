"""Group changes in words, for `porch recv`, `porch chat` and other front ends.

"Alice added Bob to Hikers": a ``group_update`` content (spec E) as GroupUpdated shows it.
Names come from the caller (``label``: an account id to @username, +number or "you"), so the
same sentence serves the terminal and JSON consumers; the caller makes them printable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from porch.client.events import GroupUpdated
from porch.crypto.group_state import GroupSettings

MAX_NAMED_TARGETS = 5  # "Alice added Bob, Carol, ... and 12 others"


def _names(targets: tuple[str, ...], label: Callable[[str], str]) -> str:
    names = [label(t) for t in targets[:MAX_NAMED_TARGETS]]
    rest = len(targets) - len(names)
    if rest > 0:
        names.append(f"{rest} other{'s' if rest > 1 else ''}")
    if len(names) <= 1:
        return "".join(names) or "nobody"
    return ", ".join(names[:-1]) + " and " + names[-1]


def settings_words(settings: GroupSettings) -> str:
    """The settings as the browser's notice words them (web/src/core/group_notices.ts)."""
    edit = (
        "members can edit the group info"
        if settings.members_can_edit
        else "only admins edit the group info"
    )
    joins = (
        "admins approve new members"
        if settings.join_approval
        else "new members join without approval"
    )
    return f"{edit} and {joins}"


def describe_update(
    update: GroupUpdated,
    label: Callable[[str], str],
    group: str,
    settings: GroupSettings | None = None,
) -> str:
    """One sentence for a group change; ``group`` is the group's label (its name);
    ``settings``: the group's as fetched, for a ``settings`` change of that revision."""
    if not update.by:  # found out from the server (GroupSync.failed): nobody said who did it
        return f"you are no longer a member of {group}: you were removed"
    by, whom = label(update.by), _names(update.targets, label)
    match update.action:
        case "create":
            with_ = f" with {whom}" if update.targets else ""
            return f"{by} created {group}{with_}"
        case "add":
            return f"{by} added {whom} to {group}"
        case "remove":
            return f"{by} removed {whom} from {group}"
        case "leave":
            return f"{by} left {group}"
        case "join":
            return f"{by} joined {group} with an invite link"
        case "promote":
            return f"{by} made {whom} an admin of {group}"
        case "demote":
            return f"{by} made {whom} a member (no longer an admin) of {group}"
        case "state":
            return f"{by} changed the name or description of {group}"
        case "settings":
            now = f": {settings_words(settings)}" if settings is not None else ""
            return f"{by} changed the settings of {group}{now}"
    return f"{by} changed {group}"


def update_record(update: GroupUpdated, text: str) -> dict[str, Any]:
    """The `porch recv --json` line for a group change."""
    return {
        "type": "group_update",
        "group": update.group,
        "revision": update.revision,
        "by": update.by,
        "action": update.action,
        "targets": list(update.targets),
        "text": text,
    }
