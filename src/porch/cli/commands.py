"""Client commands: register, send, recv (whoami, block, unblock: account.py; outbox:
outbox.py; verify: verify.py; link and devices: devices.py; attachments: media.py).

Several commands may run on one profile at once (docs/design.md, "Several processes on one
profile"): the first owns the connection and the others relay through it, so none kicks
another off.

The SDK is imported inside the commands, not here: building the parser must stay cheap
(porch.cli.main, lazy start-up). Errors are not caught here either: they reach the one
boundary in porch.cli.main, which prints a sentence and picks the exit code. Everything shown
to people that someone else chose (message text, names, labels) goes through `printable`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from porch.cli import media
from porch.cli.exits import Exit, bounded
from porch.cli.recv_output import iso
from porch.cli.text import printable

if TYPE_CHECKING:
    from porch.client import Client
    from porch.client.profile import ProfileConfig

QUEUED_HINT = (
    "queued: will be retried the next time this profile connects (porch outbox to see or cancel)"
)
# A server that cannot be reached (refused, unknown host) for this long is reported then, not
# after all of --timeout: the message is in the outbox either way.
UNREACHABLE_S = 5.0


def paused_hint(to: str) -> str:
    """What `porch send` says when the recipient's key changed since it was verified."""
    who = printable(to.strip())
    return (
        f"{who}'s safety number changed since you verified it; compare it again with "
        f"`porch verify {who}`, or accept the new key with `porch verify {who} --accept`. "
        "The message stays queued and is sent once you do."
    )


Sub: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="profile directory (PORCH_PROFILE; default: the per-user data directory)",
    )
    p.add_argument("--server", help="server URL for this run (overrides the profile's)")


def add_parsers(sub: Sub) -> None:
    p = sub.add_parser("register", help="register this device with a phone number")
    _common(p)
    p.add_argument("--phone", required=True, help="E.164 number, like +14155550100")
    p.add_argument("--name", default="", help="a name for this device")
    p.add_argument("--username", help="also claim this @username")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a profile already in --profile DIR without asking (its identity, "
        "history and contacts are lost)",
    )
    p.set_defaults(func=_sync(register))

    p = sub.add_parser("send", help="send a text message; exits 0 once the server has it")
    _common(p)
    to = p.add_mutually_exclusive_group(required=True)
    to.add_argument("--to", help="+NUMBER, @USERNAME or an account id")
    to.add_argument("--group", help="a group: its id, the start of its id, or its name")
    p.add_argument(
        "--timeout",
        type=bounded(float, 0.1, 3600),
        default=30.0,
        help="seconds to wait for the server (0.1-3600; one that cannot be reached: 5)",
    )
    p.add_argument(
        "text", nargs="*", help="the message (with --file: its caption); - reads it from stdin"
    )
    media.add_send_options(p)
    p.set_defaults(func=_run_send)

    p = sub.add_parser("recv", help="print messages received, acknowledging them")
    _common(p)
    p.add_argument(
        "--wait",
        type=bounded(float, 0, 86400),
        default=2.0,
        help="exit after this many idle seconds (0-86400)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    media.add_recv_options(p)
    p.set_defaults(func=_sync(recv))

    from porch.cli import account, devices, groups, outbox, rich, verify  # main.py: no change

    account.add_parsers(sub, _common, _sync)
    devices.add_parsers(sub, _common, _sync)
    media.add_parsers(sub, _common, _sync)
    rich.add_parsers(sub, _common, _sync)
    groups.add_parser(sub, _common, _sync)
    outbox.add_parser(sub, _common, _sync)
    verify.add_parser(sub, _common, _sync)


def _sync(
    fn: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        import asyncio

        from porch.client.profile import check_server_url, default_profile_dir

        if getattr(args, "profile", None) is None:
            args.profile = default_profile_dir()
        if getattr(args, "server", None):
            args.server = check_server_url(args.server)  # a usage error before any I/O
        return asyncio.run(fn(args))

    return run


def _client(args: argparse.Namespace) -> Client:
    from porch.client import Client

    return Client(args.profile, server=args.server)


CODE_HINT = (
    "(A development server's console SMS provider writes the code to the server's log and to "
    "sms-outbox.jsonl in its data directory, porch-data/ by default.)"
)


def _interruptible(prompt: Callable[[], str]) -> str:
    """Run a blocking prompt on the event loop's own thread so that Ctrl-C ends it at once.

    On purpose: nothing else runs during a prompt, and getpass restores the terminal's echo
    itself when interrupted (a worker thread would keep asyncio.run waiting for the Enter key
    after Ctrl-C). asyncio.run's own SIGINT handler only cancels the task, which a blocking
    read never notices, so Python's default handler, which raises KeyboardInterrupt at once,
    is put back for the prompt."""
    import signal
    import threading

    previous = None
    # Not when SIGINT is ignored (a background job, nohup): that choice is the caller's.
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return prompt()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _read_code() -> str:
    """The verification code, from the terminal (not echoed) or one line of standard input."""
    import getpass

    from porch.client.errors import UsageError

    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line.strip():
            raise UsageError(
                "no verification code on standard input; pipe the code in, or run "
                "the command in a terminal to type it"
            )
        return line.strip()
    for _ in range(3):
        code = getpass.getpass("Verification code: ").strip().replace(" ", "").replace("-", "")
        # Checked here so that a typo does not use up one of the server's attempts.
        if len(code) == 6 and code.isascii() and code.isdigit():
            return code
        print("The code is six digits; type it again.", file=sys.stderr)
    raise UsageError("no six-digit code was typed; run the command again for a new code")


def _confirm_replace(args: argparse.Namespace, old: ProfileConfig | None) -> bool:
    """Whether registering may replace the profile already in args.profile."""
    from porch.client.errors import UsageError

    who = "an unreadable profile"
    if old is not None:
        handle = f" (@{old.username})" if old.username else ""
        who = f"the profile of {old.phone}{handle}, account {old.account_id}"
    lost = (
        f"{args.profile} holds {printable(who)}. Registering into it replaces this device's "
        "identity keys and deletes its message history and contacts, and the people you talk "
        "to will see your safety number change."
    )
    if args.force:
        print(f"{lost} Replacing it (--force).", file=sys.stderr)
        return True
    if not sys.stdin.isatty():
        raise UsageError(
            f"{lost} Pass --force to replace it, or register into another --profile DIR"
        )
    print(lost, file=sys.stderr)
    answer = _interruptible(lambda: input("Replace it? Type yes to continue: "))
    return answer.strip().lower() == "yes"


async def register(args: argparse.Namespace) -> int:
    from porch.client import Client
    from porch.client.errors import ClientError, UsageError
    from porch.client.profile import PROFILE_FILE, ProfileConfig, check_writable

    if not args.server:
        raise UsageError("register needs --server URL (for example http://127.0.0.1:8000)")
    profile = Path(args.profile)
    if (profile / PROFILE_FILE).exists():
        try:
            old: ProfileConfig | None = ProfileConfig.load(profile)
        except ClientError:
            old = None
        if not _confirm_replace(args, old):
            print("porch: nothing changed.", file=sys.stderr)
            return 1
    existed = profile.exists()
    # Before the server is asked: an account whose keys cannot be saved would be lost.
    check_writable(profile)

    hinted: list[bool] = []

    async def read_code() -> str:
        if not hinted:  # once: after a wrong code it would be the same two lines again
            print(CODE_HINT, file=sys.stderr)
            hinted.append(True)
        return _interruptible(_read_code)

    def progress(message: str) -> None:
        print(message, file=sys.stderr)

    try:
        config = await Client.register(
            args.server,
            args.phone,
            read_code,
            args.profile,
            name=args.name,
            username=args.username,
            progress=progress,
        )
    except BaseException:
        if not existed:
            _remove_if_bare(profile)  # a failed or cancelled first register leaves nothing
        raise
    handle = f" (@{config.username})" if config.username else ""
    print(
        printable(
            f"Registered {config.phone}{handle} as account {config.account_id}, "
            f"device {config.device_id}."
        )
    )
    print(f"Profile: {Path(args.profile).resolve()}")
    return 0


def _run_send(args: argparse.Namespace) -> int:
    # Three outcomes, three exit codes: 0 sent (the server has it), 75 queued (it stays in the
    # outbox: a timeout, a server that is down, Ctrl-C after queueing), 1 failed (refused for
    # good; it stays in the outbox as failed and is never sent by itself).
    queued: list[str] = []
    try:
        code = _sync(lambda a: send(a, queued))(args)
    except KeyboardInterrupt:
        code = 130
    if code == 130 and queued:  # interrupted after the message was stored
        print(f"porch: {QUEUED_HINT}", file=sys.stderr)
        return Exit.QUEUED
    return code


def _remove_if_bare(profile: Path) -> None:
    """Remove a profile directory that register made and left holding only its lock file."""
    from porch.client.ownership import LOCK_FILE

    with contextlib.suppress(OSError):
        if {p.name for p in profile.iterdir()} <= {LOCK_FILE}:
            (profile / LOCK_FILE).unlink(missing_ok=True)
            profile.rmdir()


def _stdin_text() -> str:
    """The message from standard input (`porch send --to @bob -`), one final newline dropped;
    read at most a little past the content limit, so a huge input is refused, not buffered."""
    from porch.client.errors import UsageError
    from porch.crypto.content import MAX_TEXT_BYTES

    data = sys.stdin.buffer.read(MAX_TEXT_BYTES + 1)
    if len(data) > MAX_TEXT_BYTES:
        raise UsageError(
            f"the message on standard input is over {MAX_TEXT_BYTES:,} bytes; send a long text "
            "as a file: porch send --to @bob --file FILE"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("standard input is not UTF-8 text; send it with --file") from None
    return text[:-1] if text.endswith("\n") else text


async def send(args: argparse.Namespace, queued: list[str] | None = None) -> int:
    from porch.client.errors import SendFailed, SendPaused, Timeout, UsageError

    queued = [] if queued is None else queued
    text, what = _stdin_text() if args.text == ["-"] else " ".join(args.text), ""
    if not text.strip() and args.file is None:  # `porch send --to @bob "$EMPTY"`: nothing sent
        raise UsageError(
            'the message is empty; give its text, like porch send --to @bob "hi" (or - to '
            "read it from standard input: echo hi | porch send --to @bob -)"
        )
    async with _client(args) as client:
        if args.file is not None:  # uploaded first; then queued like a text (cli/media.py)
            pending_id, what = await media.upload_file(args, client, text)
        elif args.group is not None:
            pending_id = await client.groups.send(args.group, text)
        else:
            pending_id = (await client.send_text(args.to, text, wait=False)).id
        queued.append(pending_id)  # durable from here on: a crash or Ctrl-C leaves it queued
        first = waited = min(args.timeout, UNREACHABLE_S)
        try:
            try:
                result = await client.wait_sent(pending_id, timeout=first)
            except Timeout:
                if first >= args.timeout or (not client.connected and client.connect_error):
                    raise
                waited = args.timeout  # reached, but slow: wait for the rest of --timeout
                result = await client.wait_sent(pending_id, timeout=args.timeout - first)
        except Timeout:
            why = f"the server did not acknowledge {pending_id} within {waited:g} s"
            if not client.connected:  # say why: a wrong port or a server that is down
                reason = f" ({client.connect_error})" if client.connect_error else ""
                why = (
                    f"could not reach {args.server or client.config.server} within "
                    f"{waited:g} s{reason}; check the address and that the server is running"
                )
            print(f"porch: {printable(why)}; {QUEUED_HINT}", file=sys.stderr)
            return Exit.QUEUED
        except SendPaused:
            print(f"porch: {paused_hint(args.to or args.group)}", file=sys.stderr)
            return Exit.QUEUED
        except SendFailed as exc:
            print(f"porch: failed: {printable(str(exc))} ({exc.code})", file=sys.stderr)
            return Exit.FAILED
        await client.flush(timeout=2.0)  # delivery receipts it owes others go out too
    print(f"sent {what}{result.id} at {iso(result.ts)}", file=sys.stderr)
    return 0


async def recv(args: argparse.Namespace) -> int:
    from porch.cli.recv_output import print_group_update, print_unshown
    from porch.cli.rich_events import print_rich_event
    from porch.client import (
        DecryptionFailed,
        DevicesChanged,
        Drained,
        GroupUpdated,
        IdentityChanged,
        Message,
        MessageDeleted,
        MessageEdited,
        ReactionChanged,
        ReceiptEvent,
        TimerChanged,
    )

    async with _client(args) as client:
        # First what earlier commands received and nobody has shown (a `porch send` stores
        # what it receives while it waits), even with the server down; then what arrives.
        await print_unshown(client, args)
        await client.wait_connected(timeout=max(args.wait, 10.0))
        drained = not client.owner  # a relay has no backlog of its own to wait for
        while True:
            # Until the backlog is drained, wait as long as a reconnect could take.
            event = await client.next_event(args.wait if drained else max(args.wait, 10.0))
            if event is None:
                break
            if isinstance(event, Drained):
                drained = True
            elif isinstance(
                event, Message | IdentityChanged | DevicesChanged | DecryptionFailed | TimerChanged
            ):
                # Each of these wrote a line into the history first (a message, a notice, a
                # placeholder): printed from there, once, whichever command gets to it.
                await print_unshown(client, args)
            elif isinstance(event, GroupUpdated):
                await print_group_update(client, event, args.json)
            elif isinstance(event, ReactionChanged | MessageEdited | MessageDeleted):
                await print_rich_event(client, event, args.json)
            elif isinstance(event, ReceiptEvent) and args.json:
                print(
                    json.dumps(
                        {"receipt": event.kind, "from": event.sender, "ids": list(event.ids)}
                    )
                )
        await client.flush(timeout=5.0)
    return 0
