"""Safety numbers of contacts and their verification (docs/design.md, "Verified contacts").

The safety number is Signal's numeric fingerprint (porch.crypto.safety, docs/protocol.md
"Safety numbers") over this account's master key, kept in the profile's secrets, and the
contact's, fetched from the key directory and checked as every bundle is (porch.client.core.keys:
a change is pinned, noted in the conversation and announced). Only when the directory cannot be
reached is the pinned key used, so a number shown is never older than it has to be.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from porch.client.api import HttpApi
from porch.client.core import Bundle
from porch.client.errors import IdentityError, ServerUnreachable, Timeout
from porch.client.store import LocalStore
from porch.client.verified import Verification
from porch.crypto.safety import SafetyNumber, safety_number
from porch.crypto.signing import MasterKey


@dataclass(frozen=True, slots=True)
class ContactIdentity:
    """A contact's current master key, our safety number with it and its verification."""

    account_id: str
    master_key: str  # base64, as the key directory and the store spell it
    safety_number: SafetyNumber
    verification: Verification


def own_master_key(store: LocalStore) -> str:
    seed = store.get_secret("master_key")
    if seed is None:
        raise IdentityError("this profile holds no master key; register again")
    return MasterKey.from_private_bytes(seed).public_b64


async def current_key(
    account_id: str,
    api: HttpApi,
    store: LocalStore,
    verify: Callable[[Bundle, bool], None],
) -> str:
    """The contact's master key from the directory (verified and pinned), else the pinned one."""
    try:
        bundle = await api.get_keys(account_id)
    except (ServerUnreachable, Timeout):
        pinned = store.contact_master_key(account_id)
        if pinned is None:
            raise
        return pinned
    if bundle.account_id != account_id:
        raise IdentityError(f"the key directory answered for another account than {account_id[:8]}")
    verify(bundle, False)  # IdentityError unless its device keys verify; pins the master key
    return bundle.master_key


def identity(store: LocalStore, own_id: str, account_id: str, master_key: str) -> ContactIdentity:
    try:
        number = safety_number(own_id, own_master_key(store), account_id, master_key)
    except ValueError as exc:
        raise IdentityError(f"no safety number with {account_id[:8]}: {exc}") from None
    return ContactIdentity(account_id, master_key, number, store.verification(account_id))
