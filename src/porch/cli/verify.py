"""`porch verify CONTACT`: the safety number with a contact, and marking it verified.

The number is Signal's numeric fingerprint (docs/protocol.md, "Safety numbers"): 60 digits in
12 groups of 5, shown in three lines of four groups as Signal shows them, with a QR code of the
binary payload (byte mode). Both people see the same digits; comparing them (or scanning the
other's code: ``--scan`` takes the other side's payload in hex, the encoding ``--json`` prints
ours in) and confirming marks the contact verified. A verified contact whose key changes later
pauses the messages sent to it until ``--accept`` or a new verification (docs/design.md,
"Verified contacts"). Text others chose goes through ``printable``; errors reach the boundary
in porch.cli.main.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from porch.cli.exits import Exit
from porch.cli.text import printable

if TYPE_CHECKING:  # the SDK is imported when the command runs (porch.cli.main, lazy start-up)
    from porch.client import Client
    from porch.crypto.safety import SafetyNumber

Common = Callable[[argparse.ArgumentParser], None]
Sync = Callable[
    [Callable[[argparse.Namespace], Coroutine[Any, Any, int]]],
    Callable[[argparse.Namespace], int],
]
GROUPS_PER_LINE = 4
MAX_SCAN_CHARS = 2048  # twice the largest payload porch.crypto.safety reads, in hex
SEND_WAIT = 10.0  # how long messages that were paused get to reach the server


def add_parser(sub: Any, common: Common, sync: Sync) -> None:
    p = sub.add_parser(
        "verify",
        help="show the safety number with a contact and mark it verified",
        description="Compare the 60 digits (or the QR code) with what the contact's porch "
        "shows; when they match, the contact is verified, and a later change of their key "
        "pauses what you send them until you compare again or --accept it.",
    )
    common(p)
    p.add_argument("contact", help="+NUMBER, @USERNAME or an account id")
    p.add_argument(
        "--scan",
        metavar="PAYLOAD",
        help="the other side's safety number payload in hex (their `porch verify --json` "
        "prints it as qr): verified when it matches, exit 1 when it does not",
    )
    p.add_argument("--yes", action="store_true", help="mark verified without asking")
    p.add_argument(
        "--accept",
        action="store_true",
        help="accept a verified contact's changed key without verifying it (unverified "
        "again); paused messages are sent",
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=sync(verify))


def _scanned(text: str) -> bytes:
    from porch.client.errors import UsageError

    compact = "".join(text.split())
    try:
        if len(compact) > MAX_SCAN_CHARS:
            raise ValueError
        return bytes.fromhex(compact)
    except ValueError:
        raise UsageError(
            "--scan takes the other side's payload in hex (the qr field of their "
            "`porch verify --json`)"
        ) from None


def qr_text(payload: bytes) -> str:
    """The binary payload as a QR code in byte mode, drawn with half blocks (two module rows
    per line, light modules as blocks: the style of porch.crypto.provisioning_uri.qr_text)."""
    import segno  # only where a QR code is drawn

    out = io.StringIO()
    segno.make(payload, mode="byte", micro=False).terminal(out=out, compact=True, border=4)
    return out.getvalue()


def _lines(number: SafetyNumber) -> list[str]:
    groups = number.groups()
    return [
        " ".join(groups[i : i + GROUPS_PER_LINE]) for i in range(0, len(groups), GROUPS_PER_LINE)
    ]


def _confirm(label: str) -> bool:
    from porch.cli.commands import _interruptible

    question = f"Do these numbers match what {label} sees? Type yes to mark them verified: "
    return _interruptible(lambda: input(question)).strip().lower() == "yes"


async def verify(args: argparse.Namespace) -> int:
    from porch.cli.commands import _client

    async with _client(args) as client:
        return await _verify(client, args)


async def _verify(client: Client, args: argparse.Namespace) -> int:
    from porch.client import Verification
    from porch.crypto.errors import CryptoError
    from porch.crypto.safety import Comparison

    # A malformed --scan is a usage error before anything is shown or fetched.
    scanned = None if args.scan is None else _scanned(args.scan)
    ident = await client.identity(args.contact)
    label = printable(await client.name_of(ident.account_id))
    number = ident.safety_number
    record: dict[str, Any] = {
        "account": ident.account_id,
        "label": label,
        "digits": number.digits,
        "groups": list(number.groups()),
        "qr": number.qr_payload().hex(),
        "state": str(ident.verification),
    }
    out = sys.stderr if args.json else sys.stdout
    if args.accept:
        changed = ident.verification is Verification.KEY_CHANGED
        resumed = await client.accept_identity(ident.account_id)
        if changed:
            print(f"Accepted the new safety number with {label}; not verified.", file=out)
        else:
            print(f"Nothing to accept: {label}'s key did not change.", file=out)
        return await _done(client, args, record, resumed, out)
    if not args.json:
        print(f"Safety number with {label}:\n")
        for line in _lines(number):
            print(f"    {line}")
        print()
        print(qr_text(number.qr_payload()))
        print(_state_line(ident.verification, label))
    confirmed = False
    if scanned is not None:
        try:
            comparison = number.compare(scanned)
        except CryptoError as exc:
            from porch.client.errors import UsageError

            raise UsageError(
                f"that is not a safety number code ({exc}); scan the code the other person's "
                "`porch verify` (or Contact info in the browser) shows"
            ) from None
        record["match"] = comparison is Comparison.MATCH
        if comparison is Comparison.DIFFERENT_VERSION:
            print(
                f"porch: {label}'s code was made by a different version of the safety number; "
                "compare the digits instead",
                file=sys.stderr,
            )
            return _emit(args, record, Exit.FAILED)
        if comparison is Comparison.MISMATCH:
            print(
                f"porch: WARNING: the scanned code does not match the safety number with "
                f"{label}. Someone may be intercepting your messages, or one of you has an "
                "old number: do not mark them verified.",
                file=sys.stderr,
            )
            return _emit(args, record, Exit.FAILED)
        confirmed = True
    elif args.yes:
        confirmed = True
    elif sys.stdin.isatty() and not args.json:
        if not _confirm(label):
            print("Not marked verified.", file=sys.stderr)
            return Exit.FAILED
        confirmed = True
    if not confirmed:  # no terminal to ask on, and no --yes: show only
        return _emit(args, record, Exit.OK)
    resumed = await client.mark_verified(ident.account_id, ident.master_key)
    print(f"Marked {label} verified.", file=out)
    return await _done(client, args, record, resumed, out)


def _state_line(state: str, label: str) -> str:
    from porch.client import Verification

    if state == Verification.VERIFIED:
        return f"{label} is verified."
    if state == Verification.KEY_CHANGED:
        return (
            f"{label}'s safety number changed since you verified it: compare the new one, "
            "or accept it with --accept. Messages to them wait until then."
        )
    return f"{label} is not verified."


async def _done(
    client: Client, args: argparse.Namespace, record: dict[str, Any], resumed: int, out: Any
) -> int:
    record["state"] = str(await client.verification(record["account"]))
    record["resumed"] = resumed
    if resumed:
        sent = await client.flush(timeout=SEND_WAIT)
        record["sent"] = sent
        what = f"{resumed} paused message{'s' if resumed != 1 else ''}"
        if sent:
            print(f"Sent {what}.", file=out)
        else:
            print(f"{what} queued; sent the next time this profile connects.", file=out)
    return _emit(args, record, Exit.OK)


def _emit(args: argparse.Namespace, record: dict[str, Any], code: int) -> int:
    if args.json:
        print(json.dumps(record, ensure_ascii=False))
    return code
