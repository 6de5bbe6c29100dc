"""`porch group ...`: create, list, show and change groups, invite and join (spec B, E).

Each change is made on the server, then told to the members: the update (and a new group
state key, when one is due) is queued for ``g:<group id>`` and sent before the command exits
(at most SEND_WAIT seconds; ``--no-send`` only queues it, and the next command that connects
sends it). A GROUP argument is a group id, an unambiguous start of one (as git takes commit
ids), or the exact name of one of your groups. Errors reach the boundary in porch.cli.main;
text others chose (names, descriptions, labels) goes through ``printable``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from porch.cli.exits import Exit
from porch.cli.text import printable

if TYPE_CHECKING:  # the SDK is imported when the command runs (porch.cli.main, lazy start-up)
    from porch.client import Client
    from porch.client.groups import GroupInfo

Common = Callable[[argparse.ArgumentParser], None]
Sync = Callable[
    [Callable[[argparse.Namespace], Coroutine[Any, Any, int]]],
    Callable[[argparse.Namespace], int],
]
SEND_WAIT = 5.0
MAX_MEMBERS_ARGS = 1000  # the server adds at most 1000 accounts at once (spec B)
GROUP_HELP = "a group id, the start of one, or the group's name"
MEMBER_HELP = "+NUMBER, @USERNAME or an account id"
YES_NO = ("yes", "no")


def add_parser(sub: Any, common: Common, sync: Sync) -> None:
    p = sub.add_parser("group", help="create, list, change and join groups")
    common(p)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, fn: Any, help: str, *, change: bool = True) -> argparse.ArgumentParser:
        q: argparse.ArgumentParser = actions.add_parser(name, help=help)
        common(q)
        q.add_argument(  # accepted everywhere (scripts pass it alike); shown where it acts
            "--no-send",
            action="store_true",
            help="only queue the update for the members (the next porch recv, send or chat "
            "sends it)"
            if change
            else argparse.SUPPRESS,
        )
        q.add_argument("--json", action="store_true", help="one JSON object")
        q.set_defaults(func=sync(fn))
        return q

    q = action("create", create, "create a group with you as its admin")
    q.add_argument("name", help="the group's name (members see it; the server does not)")
    q.add_argument("--member", action="append", default=[], metavar="M", help=MEMBER_HELP)
    q.add_argument("--description", default="", help="a description for the members")
    q.add_argument("--admins-only", action="store_true", help="only admins may add members or edit")
    q.add_argument(
        "--approval", action="store_true", help="an admin approves who joins by invite link"
    )
    action("list", list_groups, "list your groups", change=False)
    q = action("info", info, "show a group's members, roles and settings", change=False)
    q.add_argument("group", help=GROUP_HELP)
    q = action("add", add, "add members to a group")
    q.add_argument("group", help=GROUP_HELP)
    q.add_argument("members", nargs="+", metavar="M", help=MEMBER_HELP)
    q = action("remove", remove, "remove a member from a group")
    q.add_argument("group", help=GROUP_HELP)
    q.add_argument("member", metavar="M", help=MEMBER_HELP)
    q.add_argument("--yes", action="store_true", help="remove without asking")
    q = action("leave", leave, "leave a group")
    q.add_argument("group", help=GROUP_HELP)
    q.add_argument("--yes", action="store_true", help="leave without asking")
    for name, fn, what in (
        ("promote", promote, "make a member an admin"),
        ("demote", demote, "make an admin a member again"),
    ):
        q = action(name, fn, what)
        q.add_argument("group", help=GROUP_HELP)
        q.add_argument("member", metavar="M", help=MEMBER_HELP)
    q = action("rename", rename, "give a group a new name")
    q.add_argument("group", help=GROUP_HELP)
    q.add_argument("name", help="the new name")
    q = action("settings", settings, "show or change who may edit and who approves joins")
    q.add_argument("group", help=GROUP_HELP)
    q.add_argument(
        "--members-can-edit",
        choices=YES_NO,
        help="yes: members too change the name, members and link; no: admins only",
    )
    q.add_argument(
        "--join-approval", choices=YES_NO, help="yes: an admin approves who joins by link"
    )
    q = action("invite", invite, "make an invite link (it replaces the old one)", change=False)
    q.add_argument("group", help=GROUP_HELP)
    q.add_argument("--revoke", action="store_true", help="turn the invite link off instead")
    q = action("join", join, "join a group by its porch://group invite link")
    q.add_argument("link", help="the porch://group?token=...#key=... link")
    for name, approve in (("approve", True), ("deny", False)):
        q = action(name, answer, f"{name} a request to join a group")
        q.add_argument("group", help=GROUP_HELP)
        q.add_argument("member", metavar="M", help=MEMBER_HELP)
        q.set_defaults(approve=approve)


# Output --------------------------------------------------------------------------------------


async def _labels(client: Client, accounts: list[str]) -> dict[str, str]:
    return {a: ("you" if a == client.account_id else await client.name_of(a)) for a in accounts}


async def _record(client: Client, g: GroupInfo) -> dict[str, Any]:
    labels = await _labels(client, [a for a, _ in g.members] + list(g.pending))
    return {
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "revision": g.revision,
        "role": g.role,
        "members": [{"account": a, "label": labels[a], "role": r} for a, r in g.members],
        "pending": [{"account": a, "label": labels[a]} for a in g.pending],
        "invite": g.invite,
        "settings": {
            "members_can_edit": g.settings.members_can_edit,
            "join_approval": g.settings.join_approval,
        },
    }


def _print_info(record: dict[str, Any]) -> None:
    name = record["name"] or "(name not readable yet: no key for it has arrived)"
    print(f"{printable(name)}  ({record['id']})")
    if record["description"]:
        print(f"  {printable(record['description'], multiline=True)}")
    edit = "members may edit" if record["settings"]["members_can_edit"] else "admins only edit"
    approval = "joins need approval" if record["settings"]["join_approval"] else "joins open"
    link = "invite link on" if record["invite"] else "no invite link"
    role = record["role"] or "not a member"
    print(f"revision {record['revision']}; you: {role}; {edit}; {approval}; {link}")
    print(f"members ({len(record['members'])}):")
    for m in record["members"]:
        print(f"  {printable(m['label']):<24} {m['role']}")
    if record["pending"]:
        print("asking to join: " + ", ".join(printable(p["label"]) for p in record["pending"]))


async def _show(client: Client, args: argparse.Namespace, g: GroupInfo, said: str) -> None:
    record = await _record(client, g)
    if args.json:
        print(json.dumps(record, ensure_ascii=False))
    else:
        print(printable(said))


async def _deliver(client: Client, args: argparse.Namespace) -> None:
    """Send what the change queued for the members (unless --no-send)."""
    if getattr(args, "no_send", True):
        return
    async with client:
        if not await client.flush(timeout=SEND_WAIT):
            print(
                "porch: the update for the members is queued; it is sent the next time this "
                "profile connects (porch outbox shows it)",
                file=sys.stderr,
            )


def _confirm(question: str, yes: bool) -> bool:
    from porch.cli.devices import _confirm as confirm

    return confirm(question, yes)


# Commands ------------------------------------------------------------------------------------


async def _run(args: argparse.Namespace, body: Callable[[Client], Coroutine[Any, Any, int]]) -> int:
    from porch.cli.commands import _client

    client = _client(args)
    try:
        code = await body(client)
        if code == Exit.OK:
            await _deliver(client, args)
    finally:
        await client.aclose()
    return code


async def create(args: argparse.Namespace) -> int:
    from porch.client.errors import UsageError

    if len(args.member) > MAX_MEMBERS_ARGS:
        raise UsageError(f"a group starts with at most {MAX_MEMBERS_ARGS} other members")

    async def body(client: Client) -> int:
        g = await client.groups.create(
            args.name,
            args.member,
            description=args.description,
            members_can_edit=not args.admins_only,
            join_approval=args.approval,
        )
        await _show(client, args, g, f"Created {g.label} ({g.id}) with {len(g.members)} members.")
        return Exit.OK

    return await _run(args, body)


async def list_groups(args: argparse.Namespace) -> int:
    async def body(client: Client) -> int:
        groups = await client.groups.list()
        if args.json:
            print(json.dumps([await _record(client, g) for g in groups], ensure_ascii=False))
            return Exit.OK
        if not groups:
            print("You are in no groups; `porch group create NAME --member M` makes one.")
        for g in groups:
            role = f"  ({g.role})" if g.role == "admin" else ""
            print(f"{g.id[:8]}  {printable(g.label):<24} {len(g.members):>4} members{role}")
        return Exit.OK

    return await _run(args, body)


async def info(args: argparse.Namespace) -> int:
    async def body(client: Client) -> int:
        record = await _record(client, await client.groups.info(args.group))
        if args.json:
            print(json.dumps(record, ensure_ascii=False))
        else:
            _print_info(record)
        return Exit.OK

    return await _run(args, body)


async def add(args: argparse.Namespace) -> int:
    async def body(client: Client) -> int:
        g = await client.groups.add(args.group, args.members)
        await _show(client, args, g, f"Added {len(args.members)} to {g.label}.")
        return Exit.OK

    return await _run(args, body)


async def remove(args: argparse.Namespace) -> int:
    async def body(client: Client) -> int:
        gid = client.groups.find(args.group)
        who = printable(args.member.strip())
        if not _confirm(f"Remove {who} from the group?", args.yes):
            print("Nobody was removed.")
            return Exit.FAILED
        g = await client.groups.remove(gid, args.member)
        await _show(client, args, g, f"Removed {who} from {g.label}; the group has a new key.")
        return Exit.OK

    return await _run(args, body)


async def leave(args: argparse.Namespace) -> int:
    async def body(client: Client) -> int:
        gid = client.groups.find(args.group)
        if not _confirm("Leave the group? Only a new invite brings you back.", args.yes):
            print("You are still in the group.")
            return Exit.FAILED
        # Its name while this device is still in it (it printed the id: trial2).
        label = next((g.label for g in client.groups.local() if g.id == gid), f"group {gid[:8]}")
        await client.groups.leave(gid)
        if args.json:
            print(json.dumps({"id": gid, "left": True}))
        else:
            print(f"You left {printable(label)}.")
        return Exit.OK

    return await _run(args, body)


async def promote(args: argparse.Namespace) -> int:
    async def body(client: Client) -> int:
        g = await client.groups.promote(args.group, args.member)
        await _show(client, args, g, f"{args.member.strip()} is now an admin of {g.label}.")
        return Exit.OK

    return await _run(args, body)


async def demote(args: argparse.Namespace) -> int:
    async def body(client: Client) -> int:
        g = await client.groups.demote(args.group, args.member)
        await _show(client, args, g, f"{args.member.strip()} is no longer an admin of {g.label}.")
        return Exit.OK

    return await _run(args, body)


async def rename(args: argparse.Namespace) -> int:
    async def body(client: Client) -> int:
        g = await client.groups.rename(args.group, args.name)
        await _show(client, args, g, f"The group is now called {g.label}.")
        return Exit.OK

    return await _run(args, body)


def _settings_text(record: dict[str, Any]) -> str:
    s = record["settings"]
    edit, approval = s["members_can_edit"], s["join_approval"]
    return (
        f"Members can edit the group info: {'yes' if edit else 'no (admins only)'}\n"
        f"Admins approve new members: {'yes' if approval else 'no (a link joins at once)'}"
    )


async def settings(args: argparse.Namespace) -> int:
    """No option: print the settings; --members-can-edit / --join-approval: change them."""
    change = {
        name: value == "yes"
        for name, value in (
            ("members_can_edit", args.members_can_edit),
            ("join_approval", args.join_approval),
        )
        if value is not None
    }
    if not change:
        args.no_send = True  # nothing changed: nothing to send

    async def body(client: Client) -> int:
        if change:
            g = await client.groups.set_settings(args.group, **change)
        else:
            g = await client.groups.info(args.group)
        record = await _record(client, g)
        if args.json:
            print(json.dumps(record, ensure_ascii=False))
        else:
            said = "Changed the settings" if change else "Settings"
            print(f"{said} of {printable(g.label)}:")
            print(_settings_text(record))
        return Exit.OK

    return await _run(args, body)


async def invite(args: argparse.Namespace) -> int:
    async def body(client: Client) -> int:
        if args.revoke:
            await client.groups.revoke_invite(args.group)
            print(json.dumps({"invite": None}) if args.json else "The invite link is off.")
            return Exit.OK
        had_link = (await client.groups.info(args.group)).invite
        link = await client.groups.invite(args.group)
        if args.json:
            print(json.dumps({"invite": link}))
        else:
            if had_link:
                print("This link replaces the previous one, which no longer works.")
            print(
                "Anyone with this link can join (and read the group's name); share it privately:\n"
            )
            print(f"  porch group join '{link}'")
        return Exit.OK

    return await _run(args, body)


async def join(args: argparse.Namespace) -> int:
    from porch.client.group_links import parse_group_link

    parse_group_link(args.link)  # a malformed link is refused before the profile is opened

    async def body(client: Client) -> int:
        g = await client.groups.join(args.link)
        if g is None:
            print(
                json.dumps({"status": "pending"})
                if args.json
                else "Asked to join; an admin of the group has to approve it."
            )
            return Exit.OK
        await _show(client, args, g, f"Joined {g.label} ({len(g.members)} members).")
        return Exit.OK

    return await _run(args, body)


async def answer(args: argparse.Namespace) -> int:
    async def body(client: Client) -> int:
        g = await client.groups.answer(args.group, args.member, args.approve)
        who = args.member.strip()
        said = f"{who} is in {g.label} now." if args.approve else f"{who} was turned away."
        await _show(client, args, g, said)
        return Exit.OK

    return await _run(args, body)
