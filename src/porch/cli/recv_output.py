"""What `porch recv` prints for each message it shows: a line (or a JSON record) with the
reply quote checked against the local history (porch.client.quotes), the marks and the saved
attachments. The SDK is imported inside the functions (lazy start-up, porch.cli.main)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from porch.cli import media
from porch.cli.text import printable

if TYPE_CHECKING:
    from porch.client import Client, GroupUpdated
    from porch.client.shared import ReceivedMessage


async def print_group_update(client: Client, event: GroupUpdated, as_json: bool) -> None:
    from porch.client.group_view import describe_update, update_record

    labels = {a: await client.name_of(a) for a in (event.by, *event.targets)}
    known = {g.id: g for g in client.groups.local()}
    info = known.get(event.group)
    group = info.label if info else f"group {event.group[:8]}"
    # The settings a change set, if nothing changed the group since (the fetch behind it).
    settings = info.settings if info and info.revision == event.revision else None

    def label(account: str) -> str:
        return "you" if account == client.account_id else labels.get(account, account[:8])

    text = describe_update(event, label, group, settings)
    if as_json:
        print(json.dumps(update_record(event, text), ensure_ascii=False), flush=True)
    else:
        print(f"* {printable(text)}", flush=True)


async def print_unshown(client: Client, args: argparse.Namespace) -> None:
    from porch.client.groups import GROUP_PEER_PREFIX

    groups = {g.id: g.label for g in client.groups.local()}
    while batch := client.unshown():  # in batches: a long backlog is not decrypted at once
        for m in batch:
            # Claimed before printing: of two commands printing at once, exactly one prints it.
            if client.claim_shown(m.row):
                group = m.peer[len(GROUP_PEER_PREFIX) :] if m.peer.startswith("g:") else None
                label = await client.name_of(m.author or m.peer) if m.author or not group else ""
                if group is not None:
                    if group not in groups:  # its first message came before we fetched it
                        groups[group] = await _group_label(client, group)
                    name = groups[group]
                    label = f"{name}/{label}" if label else name
                quoted = None
                if m.reply is not None:
                    author = m.reply.author
                    me = author == client.account_id
                    quoted = "me" if me else await client.name_of(author)
                fetch = not args.no_download
                if args.json:  # one record, naming the saved files
                    files = await media.save_attachments(client, m, fetch=fetch)
                    _print_message(m, label, True, client.account_id, group, files, quoted)
                    continue
                # The text first (it is marked shown already), then the downloads: Ctrl-C
                # during a long one loses nothing (`porch download` resumes it).
                _print_message(m, label, False, client.account_id, group, None, quoted)
                media.print_attachments(await media.save_attachments(client, m, fetch=fetch))


async def _group_label(client: Client, group_id: str) -> str:
    from porch.client.errors import ClientError

    try:
        return (await client.groups.info(group_id)).label
    except ClientError:  # offline, or no longer a member: the id says which group
        return "group " + group_id[:8]


def _print_message(
    m: ReceivedMessage,
    label: str,
    as_json: bool,
    me: str = "",
    group: str | None = None,
    files: list[dict[str, Any]] | None = None,
    quoted: str | None = None,
) -> None:
    """``quoted``: the label of the author a reply quotes."""
    from porch.client import retry
    from porch.client.quotes import quote_text

    if as_json:
        sender = m.author if group is not None and m.author else m.peer
        record: dict[str, Any] = {
            "from": sender,
            "from_label": label,
            "device": m.sender_device,
            "group": group,
        }
        if m.status == retry.NOTICE:  # the safety number or the device list changed
            devices = m.client_id.startswith(retry.DEVICES_NOTICE_PREFIX)
            event = "devices_changed" if devices else "identity_changed"
            record |= {"event": event, "account": m.peer, "text": m.text}
        elif m.status == retry.UNDECRYPTABLE:  # a message was lost; maybe a resend comes
            asked = m.text.endswith(retry.ASKED_TO_RESEND)
            record |= {"event": "undecryptable", "retry_requested": asked, "text": m.text}
            record["server_ts"] = m.server_ts or m.ts
        else:
            record |= {"text": m.text, "id": m.client_id, "ts": m.ts, "server_ts": m.server_ts}
            record |= {k: True for k in ("edited", "deleted", "forwarded") if getattr(m, k)}
            record |= {"attachments": files} if files else {}
            if m.reply is not None:
                record["reply"] = {
                    "id": m.reply.id,
                    "author": m.reply.author,
                    "found": m.reply_found,
                    "body": m.reply.body,
                }
        if m.outgoing:  # a sent copy (spec D): written on another of our devices, to m.peer
            to = None if group is not None else m.peer
            record |= {"from": me, "from_label": "me", "outgoing": True, "to": to}
        print(json.dumps(record, ensure_ascii=False), flush=True)
    elif m.status in (retry.NOTICE, retry.UNDECRYPTABLE):
        print(f"! {printable(m.text, multiline=True)}", flush=True)
    else:
        text = "This message was deleted" if m.deleted else printable(m.text, multiline=True)
        marks = [f" ({k})" for k, on in (("edited", m.edited), ("forwarded", m.forwarded)) if on]
        who = f"me -> {printable(label)}" if m.outgoing else printable(label)
        print(f"[{iso(m.ts)}] {who}: {text}{''.join(marks)}", flush=True)
        if m.reply is not None and not m.deleted:  # checked locally (porch.client.quotes)
            line = quote_text(m.reply, m.reply_found, printable(quoted or m.reply.author[:8]))
            print(f"    > {printable(line)}", flush=True)


def iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="seconds")
