"""Client commands: register, send, recv, devices, block, unblock, whoami.

The SDK is imported inside the commands, not here: building the parser must stay cheap
(porch.cli.main, lazy start-up). Errors are not caught here either: they reach the one
boundary in porch.cli.main, which prints a sentence and picks the exit code. Everything shown
to people that someone else chose (message text, names, labels) goes through `printable`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from porch.cli.exits import bounded
from porch.cli.text import printable

if TYPE_CHECKING:
    from porch.client import Client, Message
    from porch.client.profile import ProfileConfig

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
    p.add_argument("--to", required=True, help="+NUMBER, @USERNAME or an account id")
    p.add_argument(
        "--timeout",
        type=bounded(float, 0.1, 3600),
        default=30.0,
        help="seconds to wait for the server (0.1-3600)",
    )
    p.add_argument("text", nargs="+", help="the message")
    p.set_defaults(func=_sync(send))

    p = sub.add_parser("recv", help="print messages received, acknowledging them")
    _common(p)
    p.add_argument(
        "--wait",
        type=bounded(float, 0, 86400),
        default=2.0,
        help="exit after this many idle seconds (0-86400)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_sync(recv))

    p = sub.add_parser("devices", help="list this account's devices")
    _common(p)
    p.set_defaults(func=_sync(devices))

    p = sub.add_parser("whoami", help="show this profile's account")
    _common(p)
    p.set_defaults(func=_sync(whoami))

    for name, blocked in (("block", True), ("unblock", False)):
        p = sub.add_parser(name, help=f"{name} an account (+NUMBER, @USERNAME or id)")
        _common(p)
        p.add_argument("who")
        p.set_defaults(func=_sync(block), blocked=blocked)


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
    # Before the server is asked: an account whose keys cannot be saved would be lost.
    check_writable(profile)

    async def read_code() -> str:
        print(CODE_HINT, file=sys.stderr)
        return _interruptible(_read_code)

    def progress(message: str) -> None:
        print(message, file=sys.stderr)

    config = await Client.register(
        args.server,
        args.phone,
        read_code,
        args.profile,
        name=args.name,
        username=args.username,
        progress=progress,
    )
    handle = f" (@{config.username})" if config.username else ""
    print(
        printable(
            f"Registered {config.phone}{handle} as account {config.account_id}, "
            f"device {config.device_id}."
        )
    )
    print(f"Profile: {Path(args.profile).resolve()}")
    return 0


async def send(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        result = await client.send_text(args.to, " ".join(args.text), timeout=args.timeout)
        await client.flush(timeout=2.0)  # delivery receipts it owes others go out too
    print(f"sent {result.id} at {_iso(result.ts)}", file=sys.stderr)
    return 0


async def recv(args: argparse.Namespace) -> int:
    from porch.client import Drained, Message, ReceiptEvent

    async with _client(args) as client:
        await client.wait_connected(timeout=max(args.wait, 10.0))
        drained = False
        while True:
            # Until the backlog is drained, wait as long as a reconnect could take.
            event = await client.next_event(args.wait if drained else max(args.wait, 10.0))
            if event is None:
                break
            if isinstance(event, Drained):
                drained = True
            elif isinstance(event, Message):
                _print_message(client, event, args.json)
            elif isinstance(event, ReceiptEvent) and args.json:
                print(
                    json.dumps(
                        {"receipt": event.kind, "from": event.sender, "ids": list(event.ids)}
                    )
                )
        await client.flush(timeout=5.0)
    return 0


def _print_message(client: Client, m: Message, as_json: bool) -> None:
    if as_json:
        record: dict[str, Any] = {
            "from": m.sender,
            "from_label": client.label(m.sender),
            "device": m.sender_device,
            "text": m.text,
            "id": m.id,
            "ts": m.ts,
            "server_ts": m.server_ts,
        }
        print(json.dumps(record, ensure_ascii=False), flush=True)
    else:
        label, text = printable(client.label(m.sender)), printable(m.text, multiline=True)
        print(f"[{_iso(m.ts)}] {label}: {text}", flush=True)


async def devices(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        for d in await client.api.devices():
            me = " (this device)" if d["device_id"] == client.device_id else ""
            seen = datetime.fromtimestamp(d["last_seen_day"] * 86400, UTC).date()
            name = printable(d["name"] or "-")
            print(f"{d['device_id']:>3}  {name:<20} last seen {seen}{me}")
    return 0


async def whoami(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        me = await client.api.me()
    print(f"account   {printable(str(me['account_id']))}")
    print(f"device    {me['device_id']}")
    phone, discoverable = printable(str(me["phone"])), bool(me["discoverable"])
    print(f"phone     {phone} ({'discoverable' if discoverable else 'not discoverable'})")
    print(f"username  {printable('@' + me['username']) if me['username'] else '-'}")
    print(f"server    {printable(args.server or client.config.server)}")
    return 0


async def block(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        account_id = await client.block(args.who, args.blocked)
    print(f"{'blocked' if args.blocked else 'unblocked'} {printable(account_id)}")
    return 0


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="seconds")
