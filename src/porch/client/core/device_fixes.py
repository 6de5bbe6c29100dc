"""What the server said was wrong with a send's device lists, kept until the next claim.

A `mismatched_devices` or `stale_devices` refusal names, per account, the devices that are
missing, extra or stale (docs/protocol.md, "Sending"; spec A); the outbox drops the extra and
stale ones and claims keys for the missing and stale ones before it sends again. Read from an
untrusted frame, so every list is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_FIX_IDS = 1024  # device ids remembered per recipient from one error frame
MAX_FIX_ACCOUNTS = 1000  # accounts read from one error frame (the protocol's bound)


@dataclass(slots=True)
class DeviceFix:
    """What the server said was wrong with our device list for a recipient."""

    missing: set[int] = field(default_factory=set)
    extra: set[int] = field(default_factory=set)
    stale: set[int] = field(default_factory=set)


def _device_ids(value: Any) -> set[int]:
    if not isinstance(value, list):
        return set()
    return {d for d in value[:MAX_FIX_IDS] if isinstance(d, int) and not isinstance(d, bool)}


def _account_fixes(value: Any) -> list[tuple[str, dict[str, Any]]]:
    """(account, its entry) of an error's `accounts` detail (spec A), bounded."""
    if not isinstance(value, list):
        return []
    return [
        (entry["account"], entry)
        for entry in value[:MAX_FIX_ACCOUNTS]
        if isinstance(entry, dict) and isinstance(entry.get("account"), str)
    ]


def record_fixes(fixes: dict[str, DeviceFix], frame: dict[str, Any]) -> None:
    """Add an error frame's per-account device lists to fixes."""
    for account, wrong in _account_fixes(frame.get("accounts")):
        fix = fixes.setdefault(account, DeviceFix())
        fix.missing.update(_device_ids(wrong.get("missing")))
        fix.extra.update(_device_ids(wrong.get("extra")))
        fix.stale.update(_device_ids(wrong.get("stale")))
