"""`porch react`, `reply`, `edit`, `delete`, `timer`, `forward` and `history` (issue 8).

PEER is a +NUMBER, @USERNAME or account id, or a group: "g:" and its id, the start of its id,
or its name (a word that is no account names a group, as `porch group send` takes it). MSG
names a message of that conversation: its id (or the start of one, as `porch history` shows
it), `last` (the latest), or `-N` (the Nth latest). Like `porch send`, each command exits 0
once the server has what it sent, 75 when it stays queued, 1 when the server refused it.
The SDK is imported when a command runs (porch.cli.main, lazy start-up); errors reach the one
boundary there. Text others chose goes through `printable`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from porch.cli.exits import Exit, bounded
from porch.cli.text import printable

if TYPE_CHECKING:
    from porch.client import Client
    from porch.client.history import HistoryMessage
    from porch.client.waiters import SendResult

Common = Callable[[argparse.ArgumentParser], None]
Sync = Callable[
    [Callable[[argparse.Namespace], Coroutine[Any, Any, int]]],
    Callable[[argparse.Namespace], int],
]
PEER_HELP = "+NUMBER, @USERNAME, an account id, or a group (g:ID, its id's start, or its name)"
MSG_HELP = "a message id (or its start, as porch history shows it), last, or -N (Nth latest)"
MAX_HISTORY = 1000
SHORT_ID = 8
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DURATION = re.compile(r"(\d{1,9})([smhdw]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def add_parsers(sub: Any, common: Common, sync: Sync) -> None:
    def command(name: str, fn: Any, help: str, *, msg: bool = True) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help)
        common(p)
        p.add_argument("peer", metavar="PEER", help=PEER_HELP)
        if msg:
            p.add_argument("msg", metavar="MSG", help=MSG_HELP)
        p.add_argument(
            "--timeout",
            type=bounded(float, 0.1, 3600),
            default=30.0,
            help="seconds to wait for the server (0.1-3600)",
        )
        p.set_defaults(func=sync(fn))
        return p

    p = command("react", react, "react to a message with an emoji")
    p.add_argument("emoji", nargs="?", default="", help="the emoji (leave out with --remove)")
    p.add_argument("--remove", action="store_true", help="remove your reaction")
    p = command("reply", reply, "reply to a message, quoting it")
    p.add_argument("text", nargs="+", help="the reply")
    p = command("edit", edit, "change the text of a message you sent (within 48 hours)")
    p.add_argument("text", nargs="+", help="the new text")
    command("delete", delete, "delete a message you sent, for everyone (within 48 hours)")
    p = command("forward", forward, "send a copy of a message to up to 5 chats")
    p.add_argument("to", nargs="+", metavar="TO", help="where to: " + PEER_HELP)
    p = command("timer", timer, "set disappearing messages for a conversation", msg=False)
    p.add_argument("duration", help="30s, 5m, 1h, 1d, 1w (up to 365 days), or off")
    p = sub.add_parser("history", help="show a conversation: replies, reactions, edits, files")
    common(p)
    p.add_argument("peer", metavar="PEER", help=PEER_HELP)
    p.add_argument(
        "--limit", type=bounded(int, 1, MAX_HISTORY), default=50, help="messages (1-1000)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per message")
    p.set_defaults(func=sync(history))


def _client(args: argparse.Namespace) -> Client:
    from porch.client import Client

    return Client(args.profile, server=args.server)


async def conversation_of(client: Client, text: str) -> str:
    """The history peer PEER names (see the module's docstring)."""
    text = text.strip()
    if text.startswith(("+", "@")):
        return await client.resolve(text)
    if text.startswith("g:"):
        return await client.conversation(text)
    if _UUID.fullmatch(text.lower()):
        if any(g.id == text.lower() for g in client.groups.local()):
            return "g:" + text.lower()
        return await client.resolve(text)
    return "g:" + client.groups.find(text)


def listed(client: Client, peer: str) -> list[HistoryMessage]:
    from porch.client import retry

    skip = (retry.NOTICE, retry.UNDECRYPTABLE)
    return [m for m in client.history(peer, MAX_HISTORY) if m.status not in skip]


def pick(messages: list[HistoryMessage], msg: str) -> HistoryMessage:
    """The message MSG names among a conversation's (oldest first)."""
    from porch.client.errors import ClientCode, UsageError

    live = [m for m in messages if not m.deleted]
    if msg == "last" or re.fullmatch(r"-\d{1,4}", msg):
        n = 1 if msg == "last" else int(msg[1:])
        if not 1 <= n <= len(live):
            raise UsageError(
                f"the conversation has {len(live)} messages here, so {msg} names none; "
                "`porch history PEER` lists them"
            )
        return live[-n]
    found = {m.client_id: m for m in live if m.client_id.startswith(msg)} if msg else {}
    if len(found) == 1:
        return next(iter(found.values()))
    if msg in found:
        return found[msg]
    if not found:
        raise UsageError(
            f"no message {printable(msg[:24])!r} in that conversation; "
            "`porch history PEER` shows their ids",
            code=ClientCode.MESSAGE_NOT_FOUND,
        )
    raise UsageError(f"{msg!r} starts {len(found)} message ids; give more of it")


async def _sent(client: Client, action: Awaitable[SendResult]) -> int:
    """Wait for what the command sent, and say how it went (`porch send`'s exit codes)."""
    from porch.cli.commands import QUEUED_HINT
    from porch.client.errors import SendFailed, SendPaused, Timeout

    try:
        result = await action
    except (Timeout, SendPaused) as exc:
        print(f"porch: {printable(str(exc))}; {QUEUED_HINT}", file=sys.stderr)
        return Exit.QUEUED
    except SendFailed as exc:
        print(f"porch: failed: {printable(str(exc))} ({exc.code})", file=sys.stderr)
        return Exit.FAILED
    await client.flush(timeout=2.0)
    print(f"sent {result.id}", file=sys.stderr)
    return 0


async def _on_message(
    args: argparse.Namespace, act: Callable[[Client, str, HistoryMessage], Awaitable[SendResult]]
) -> int:
    async with _client(args) as client:
        peer = await conversation_of(client, args.peer)
        target = pick(listed(client, peer), args.msg)
        return await _sent(client, act(client, peer, target))


def _author(client: Client, m: HistoryMessage) -> str:
    return client.account_id if m.outgoing else (m.author or m.peer)


async def react(args: argparse.Namespace) -> int:
    from porch.client.errors import UsageError

    emoji = "" if args.remove else args.emoji.strip()
    if not emoji and not args.remove:
        raise UsageError("give the emoji to react with, or --remove to take yours back")
    return await _on_message(
        args, lambda c, p, m: c.react(p, m.client_id, emoji, author=_author(c, m))
    )


async def reply(args: argparse.Namespace) -> int:
    text = " ".join(args.text)
    return await _on_message(
        args, lambda c, p, m: c.reply(p, m.client_id, text, author=_author(c, m))
    )


async def edit(args: argparse.Namespace) -> int:
    text = " ".join(args.text)
    return await _on_message(args, lambda c, p, m: c.edit(p, m.client_id, text))


async def delete(args: argparse.Namespace) -> int:
    return await _on_message(args, lambda c, p, m: c.delete(p, m.client_id))


async def forward(args: argparse.Namespace) -> int:
    from porch.client.errors import ClientCode, UsageError

    if len(args.to) > 5:
        raise UsageError(
            "you can forward a message to at most 5 chats at once", code=ClientCode.FORWARD_LIMIT
        )
    async with _client(args) as client:
        peer = await conversation_of(client, args.peer)
        target = pick(listed(client, peer), args.msg)
        chats = [await conversation_of(client, to) for to in args.to]
        code = 0
        for chat in chats:
            # One forward per chat, so each one's outcome is said (and its exit code counts).
            single = client.forward(peer, target.client_id, [chat])
            code = max(code, await _sent(client, _first(single)))
        return code


async def _first(results: Awaitable[list[SendResult]]) -> SendResult:
    return (await results)[0]


def parse_duration(text: str) -> int:
    """'off' or 0 -> 0; 30s, 5m, 1h, 1d, 1w (or plain seconds) -> seconds, up to 365 days."""
    from porch.client.errors import UsageError
    from porch.crypto.rich import MAX_TIMER_SECONDS

    value = text.strip().lower()
    if value in ("off", "0"):
        return 0
    match = _DURATION.fullmatch(value)
    seconds = int(match.group(1)) * _UNIT[match.group(2)] if match else -1
    if not 1 <= seconds <= MAX_TIMER_SECONDS:
        raise UsageError(
            f"{printable(text[:32])!r} is no timer; give 30s, 5m, 1h, 1d or 1w "
            "(at most 365 days), or off"
        )
    return seconds


async def timer(args: argparse.Namespace) -> int:
    from porch.client.core.rich import describe_seconds

    seconds = parse_duration(args.duration)
    async with _client(args) as client:
        peer = await conversation_of(client, args.peer)
        what = f"set to {describe_seconds(seconds)}" if seconds else "turned off"
        if peer.startswith("g:"):
            await client.set_timer(peer, seconds)  # the group's state: changed on the server
            await client.flush(timeout=5.0)
            print(f"Disappearing messages {what}.")
            return 0
        result = client.set_timer(peer, seconds)
        code = await _sent(client, _present(result))
    if code == 0:
        print(f"Disappearing messages {what}.")
    return code


async def _present(result: Awaitable[SendResult | None]) -> SendResult:
    done = await result
    assert done is not None  # a 1:1 timer is a content, sent
    return done


async def history(args: argparse.Namespace) -> int:
    from porch.client.core.rich import describe_seconds

    async with _client(args) as client:
        peer = await conversation_of(client, args.peer)
        messages = client.history(peer, args.limit)
        names = {a: await client.name_of(a) for a in _accounts(client, messages)}
        seconds = client.timer_of(peer)
    names[client.account_id] = "me"
    if args.json:
        for m in messages:
            print(json.dumps(history_record(m), ensure_ascii=False))
        return 0
    if seconds:
        print(f"Disappearing messages: {describe_seconds(seconds)}")
    for m in messages:
        print(format_message(m, names, client.account_id))
    return 0


def _accounts(client: Client, messages: list[HistoryMessage]) -> set[str]:
    out: set[str] = set()
    for m in messages:
        out.add(_author(client, m))
        out.update(r for r, _ in m.reactions)
        if m.reply is not None:
            out.add(m.reply.author)
    out.discard(client.account_id)
    return out


def human_size(size: int) -> str:
    """One unit style everywhere (decimal kB, MB, as the server words its limits)."""
    from porch.client.media_http import human_size as decimal

    return decimal(size)


def format_message(m: HistoryMessage, names: dict[str, str], me: str) -> str:
    """A history entry as lines for a terminal: text, quote, files, reactions."""
    from porch.client.quotes import quote_text

    author = me if m.outgoing else (m.author or m.peer)
    who = printable(names.get(author, author[:8]))
    when = datetime.fromtimestamp(m.ts / 1000, UTC).isoformat(timespec="seconds")
    if m.status in ("notice", "undecryptable"):
        return f"! {printable(m.text, multiline=True)}"
    body = "This message was deleted" if m.deleted else printable(m.text, multiline=True)
    marks = "".join(
        f" ({mark})" for mark, on in (("edited", m.edited), ("forwarded", m.forwarded)) if on
    )
    lines = [f"[{when}] {m.client_id[:SHORT_ID]} {who}: {body}{marks}"]
    if m.reply is not None and not m.deleted:  # under the reply's header, the quote checked
        quoted = printable(names.get(m.reply.author, m.reply.author[:8]))
        lines.append(f"    > {printable(quote_text(m.reply, m.reply_found, quoted))}")
    for a in m.attachments:
        kind = "voice note" if a.voice else printable(a.content_type)
        dims = f", {a.width}\u00d7{a.height}" if a.width and a.height else ""
        name = printable(a.name) if a.name else "(no name)"
        lines.append(f"    📎 {name} ({kind}, {human_size(a.size)}{dims})")
    if m.reactions:
        shown = ", ".join(
            f"{printable(e)} {printable(names.get(r, r[:8]))}" for r, e in m.reactions
        )
        lines.append(f"    {shown}")
    return "\n".join(lines)


def history_record(m: HistoryMessage) -> dict[str, Any]:
    return {
        "id": m.client_id,
        "peer": m.peer,
        "outgoing": m.outgoing,
        "author": m.author,
        "ts": m.ts,
        "text": m.text,
        "status": m.status,
        "edited": m.edited,
        "deleted": m.deleted,
        "forwarded": m.forwarded,
        "expires_at": m.expires_at,
        "reply": None
        if m.reply is None
        else {"id": m.reply.id, "author": m.reply.author, "found": m.reply_found},
        "reactions": [{"from": r, "emoji": e} for r, e in m.reactions],
        "attachments": [
            {"id": a.id, "name": a.name, "type": a.content_type, "size": a.size}
            for a in m.attachments
        ],
        "edits": [{"ts": ts, "text": body} for ts, body in m.edits],
    }
