"""`porch verify` against a real server: both sides see the same digits, a scanned code marks
the contact verified, and a later key change pauses `porch send` until `--accept`."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import pytest

from porch.cli.exits import Exit
from porch.cli.main import main
from porch.client import Client, Verification
from porch.client.errors import IdentityError
from tests.integration.server import ServerProcess
from tests.unit.cli.conftest import register


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    code = main(argv)
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


class _Terminal:
    def isatty(self) -> bool:
        return True


def test_verify_scan_then_a_key_change_pauses_send_until_accepted(
    server: ServerProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alice_dir, bob_dir, new_bob_dir = tmp_path / "alice", tmp_path / "bob", tmp_path / "bob2"
    tag = secrets.token_hex(3)
    register(server, alice_dir, username=f"alice{tag}")
    bob_phone = register(server, bob_dir, username=f"bob{tag}")
    bob, alice = f"@bob{tag}", f"@alice{tag}"
    a = ["--profile", str(alice_dir)]

    # Both sides: the same 60 digits, different QR payloads; nothing verified yet (no
    # terminal, no --yes: it only shows).
    code, mine = _json(["verify", bob, "--json", *a], capsys)
    assert code == 0 and mine["state"] == "unverified"
    code, theirs = _json(["verify", alice, "--json", "--profile", str(bob_dir)], capsys)
    assert code == 0
    digits = mine["digits"]
    assert isinstance(digits, str) and len(digits) == 60 and digits == theirs["digits"]
    assert mine["qr"] != theirs["qr"]

    # In a terminal it asks; anything but "yes" marks nothing.
    asked: list[str] = []
    with monkeypatch.context() as m:
        m.setattr("sys.stdin", _Terminal())
        m.setattr("builtins.input", lambda prompt: asked.append(prompt) or "no")
        assert main(["verify", bob, *a]) == Exit.FAILED
    assert asked == [f"Do these numbers match what {bob} sees? Type yes to mark them verified: "]
    assert "Not marked verified" in capsys.readouterr().err

    # Scanning one's own code is a mismatch: a warning, exit 1, still unverified.
    assert main(["verify", bob, "--scan", str(mine["qr"]), *a]) == Exit.FAILED
    err = capsys.readouterr().err
    assert "does not match" in err
    assert main(["verify", bob, "--scan", "zz", *a]) == Exit.USAGE
    assert "Safety number" not in capsys.readouterr().out  # refused before anything is shown
    # Bob's code matches.
    code, scanned = _json(["verify", bob, "--json", "--scan", str(theirs["qr"]), *a], capsys)
    assert code == 0 and scanned["match"] is True and scanned["state"] == "verified"
    # The text form shows the digits as three lines of four groups, and the state.
    assert main(["verify", bob, *a]) == 0
    out = capsys.readouterr().out
    groups = " ".join(digits[i : i + 5] for i in range(0, 20, 5))
    assert f"    {groups}\n" in out and "is verified." in out

    # A message goes while the key is the verified one.
    assert main(["send", "--to", bob, *a, "before"]) == 0
    capsys.readouterr()

    # Bob registers again on a new profile: a new master key under the same account.
    register(server, new_bob_dir, bob_phone)
    assert main(["send", "--to", bob, "--timeout", "20", *a, "after the change"]) == Exit.QUEUED
    err = capsys.readouterr().err
    assert f"{bob}'s safety number changed since you verified it" in err, err
    assert f"`porch verify {bob} --accept`" in err
    assert main(["outbox", "--json", *a]) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    paused = [e for e in entries if e["kind"] == "text"]
    assert [(e["state"], e["error_code"]) for e in paused] == [("paused", "identity_changed")]
    code, changed = _json(["verify", bob, "--json", *a], capsys)
    assert code == 0 and changed["state"] == "verified_key_changed"
    assert changed["digits"] != digits

    # Accepting sends it, once, to the new bob; the contact is unverified now.
    code, accepted = _json(["verify", bob, "--accept", "--json", *a], capsys)
    assert code == 0, accepted
    assert accepted["resumed"] == 1 and accepted["sent"] is True
    assert accepted["state"] == "unverified"
    assert main(["recv", "--json", "--wait", "2", "--profile", str(new_bob_dir)]) == 0
    received = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    texts = [r["text"] for r in received if "id" in r]
    assert texts == ["after the change"], received
    assert main(["outbox", "--json", *a]) == 0
    left = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e for e in left if e["kind"] == "text"] == []

    # Verifying the new number needs the key it was computed over to be the current one.
    code, again = _json(["verify", bob, "--yes", "--json", *a], capsys)
    assert code == 0 and again["state"] == "verified" and again["digits"] == changed["digits"]

    async def mark_another_key() -> None:
        client = Client(alice_dir)
        try:
            with pytest.raises(IdentityError, match="changed while it was compared"):
                await client.mark_verified(bob, "A" * 43 + "=")
            assert await client.verification(bob) is Verification.VERIFIED
        finally:
            await client.aclose()

    asyncio.run(mark_another_key())
