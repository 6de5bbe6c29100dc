"""Attachments in the `porch` command: `send --file`, saving what `recv` receives, and
`porch download PEER MSG` (README.md, "Sending files").

Progress bars go to standard error, and only when it is a terminal (rich.progress); scripts
see the final lines only. The SDK is imported inside the functions: building the parser must
stay cheap (porch.cli.main, lazy start-up).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from porch.cli.devices import Common, Sync
from porch.cli.exits import CommandError, Exit
from porch.cli.text import printable

if TYPE_CHECKING:
    from porch.client import Client
    from porch.client.shared import ReceivedMessage
    from porch.client.store import HistoryMessage

    Shown = ReceivedMessage | HistoryMessage

Progress = Callable[[int, int], None]

INTERRUPTED = "upload interrupted; nothing was sent"


def add_send_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--file", type=Path, help="send this file (a photo, video, voice note, ...)")
    p.add_argument("--caption", help="text shown with the file (default: the message text)")
    p.add_argument("--voice", action="store_true", help="send the audio file as a voice note")


def add_parsers(sub: Any, common: Common, sync: Sync) -> None:
    p = sub.add_parser("download", help="save the attachments of a received message")
    common(p)
    from porch.cli.rich import MSG_HELP, PEER_HELP

    p.add_argument("peer", metavar="PEER", help=PEER_HELP)
    p.add_argument("msg", metavar="MSG", help=MSG_HELP)
    p.add_argument("--dest", type=Path, help="directory to save into (default: the downloads)")
    p.set_defaults(func=sync(download))


def add_recv_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-download",
        action="store_true",
        help="list attachments without saving them (fetch them later with porch download)",
    )


@contextlib.contextmanager
def progress_bar(label: str) -> Iterator[Progress | None]:
    """A rich progress bar on standard error, or None (no callback) when it is not a tty."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import Progress as Bar

    bar = Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task(printable(label), total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


async def upload_file(args: argparse.Namespace, client: Client, text: str) -> tuple[str, str]:
    """`porch send --file`: prepare, upload and queue the file; (client id, what was sent).

    Ctrl-C before the message is queued leaves nothing behind to send: say so."""
    import asyncio

    from porch.client.errors import ServerUnreachable, Timeout
    from porch.client.media_http import human_size

    if args.caption is not None and text.strip():
        raise CommandError(
            "the caption is given twice (--caption and the message text); give one of them"
        )
    path = Path(args.file).expanduser()
    to = f"g:{client.groups.find(args.group)}" if args.group is not None else args.to
    try:
        with progress_bar(f"uploading {path.name}") as progress:
            result = await client.send_file(
                to,
                path,
                caption=args.caption if args.caption is not None else text,  # one is empty
                voice=args.voice,
                progress=progress,
                wait=False,
            )
    except (asyncio.CancelledError, KeyboardInterrupt):
        print(f"porch: {INTERRUPTED}", file=sys.stderr)
        raise
    except (ServerUnreachable, Timeout) as exc:
        # A file cannot be queued before it is uploaded: nothing is kept, but it is still a
        # temporary failure, so the exit code is `porch send`'s 75 (README, "Exit codes").
        raise CommandError(
            f"the server is unreachable ({exc}); nothing was sent; try again when it is up",
            Exit.QUEUED,
        ) from None
    # The size of what was sent: the prepared file (re-encoded without its metadata), as the
    # recipient will see it, not the original's.
    peer = await client.conversation(to)
    sent = next((m for m in client.history(peer, 50) if m.client_id == result.id), None)
    size = sent.attachments[0].size if sent is not None and sent.attachments else "?"
    return result.id, printable(f"{path.name} ({human_size(size)}) as ")


async def save_attachments(
    client: Client, m: Shown, *, fetch: bool, dest: Path | None = None
) -> list[dict[str, Any]]:
    """Download (or with fetch False, only describe) a message's attachments; one record
    each, for the printed line or the JSON output. A failure is reported and the rest go on."""
    from porch.client.errors import ClientError
    from porch.client.media_http import human_size

    records = []
    peer, client_id = m.peer, m.client_id
    for att in m.attachments:
        name = att.name or f"attachment-{att.id[:8]}"
        record: dict[str, Any] = {"name": name, "size": att.size, "type": att.content_type}
        record |= {"voice": True} if att.voice else {}
        record |= {"duration_ms": att.duration_ms} if att.duration_ms is not None else {}
        if fetch:
            try:
                with progress_bar(f"downloading {name}") as progress:
                    path = await client.download(
                        att, peer=peer, client_id=client_id, dest_dir=dest, progress=progress
                    )
                record["path"] = str(path)
            except ClientError as exc:
                record |= {"error": exc.code, "message": str(exc)}
        about = ", ".join([human_size(att.size), *_kind(att.voice, att.duration_ms)])
        record["line"] = _describe(record, about, peer, client_id)
        records.append(record)
    return records


def _kind(voice: bool, duration_ms: int | None) -> list[str]:
    """ "voice note" and "1:05" for what has them (the sender's claims, only shown)."""
    out = ["voice note"] if voice else []
    if duration_ms is not None:
        seconds = duration_ms // 1000
        out.append(f"{seconds // 60}:{seconds % 60:02d}")
    return out


def _describe(record: dict[str, Any], size: str, peer: str, client_id: str) -> str:
    name = printable(record["name"])
    if "path" in record:
        return f"  saved {name} ({size}): {printable(record['path'])}"
    if "error" in record:
        return f"  ! {name} ({size}) not saved: {printable(record['message'])}"
    return f"  {name} ({size}); save it with: porch download {printable(peer)} {client_id}"


def print_attachments(records: list[dict[str, Any]]) -> None:
    for record in records:
        print(record["line"], flush=True)


async def download(args: argparse.Namespace) -> int:
    from porch.cli import rich
    from porch.client import Client

    async with Client(args.profile, server=args.server) as client:
        # PEER and MSG name a conversation and a message as every message command does.
        peer = await rich.conversation_of(client, args.peer)
        message = rich.pick(rich.listed(client, peer), args.msg)
        if not message.attachments:
            raise CommandError(
                f"message {printable(message.client_id)} has no attachments; "
                "name another one (`porch history PEER` shows them)",
                Exit.FAILED,
            )
        records = await save_attachments(client, message, fetch=True, dest=args.dest)
    print_attachments(records)
    return Exit.FAILED if any("error" in r for r in records) else Exit.OK
