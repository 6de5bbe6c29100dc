"""The Client's methods about whom to trust: this account's linked devices (spec C) and
verified contacts (porch.client.identities, docs/design.md "Verified contacts").

A mixin of porch.client.client.Client, kept apart so that the client module stays about its
connection, outbox and messages; the attributes below are the Client's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from porch.client import identities, linking
from porch.client.errors import IdentityError, UsageError
from porch.client.verified import Verification

if TYPE_CHECKING:
    from porch.client.api import HttpApi
    from porch.client.core import Bundle
    from porch.client.profile import ProfileConfig
    from porch.client.runner import Runner
    from porch.client.store import LocalStore
    from porch.crypto.safety import SafetyNumber


class TrustMixin:
    if TYPE_CHECKING:
        api: HttpApi
        config: ProfileConfig
        _store: LocalStore
        _runner: Runner

        @property
        def account_id(self) -> str: ...
        async def resolve(self, to: str) -> str: ...
        def label(self, account_id: str) -> str: ...
        def _verify_bundle(self, bundle: Bundle, check_one_time_keys: bool) -> None: ...

    # Linked devices (spec C) -----------------------------------------------------------------

    async def devices(self) -> list[dict[str, Any]]:
        """This account's devices: device_id, name, created, last_seen_day, has_keys."""
        return await self.api.devices()

    async def link_device(self, uri: str) -> None:
        """Give the new device that shows ``uri`` this account's keys (UsageError if ``uri``
        is not a linking URI). The new device then publishes the account's device list."""
        await linking.approve_link(self.api, self._store, self.config, linking.parse_link_uri(uri))

    async def remove_device(self, device_id: int) -> None:
        """Revoke one of this account's other devices and publish the list without it."""
        await linking.remove_device(self.api, self._store, self.config, device_id)

    async def leave(self) -> None:
        """Remove this device from the account (the account's other devices stay). Its
        credential ends with it; the caller then erases the profile (profile.erase_profile).
        ServerError ``forbidden`` when it is the account's only device."""
        await linking.leave_device(self.api, self._store, self.config)

    # Verification (porch.client.identities, docs/design.md "Verified contacts") -------------

    async def identity(self, contact: str) -> identities.ContactIdentity:
        """The contact's current master key, the safety number with it, its verification."""
        account_id = await self.resolve(contact)
        if account_id == self.account_id:
            raise UsageError("a safety number is between two accounts; name another one")
        key = await identities.current_key(account_id, self.api, self._store, self._verify_bundle)
        return identities.identity(self._store, self.account_id, account_id, key)

    async def safety_number(self, contact: str) -> SafetyNumber:
        return (await self.identity(contact)).safety_number

    async def verification(self, contact: str) -> Verification:
        """Unverified, verified, or verified with a master key that changed since."""
        return self._store.verification(await self.resolve(contact))

    async def mark_verified(self, contact: str, master_key_b64: str) -> int:
        """Record that the user compared the safety number over ``master_key_b64`` (from
        ``identity``); messages paused for the contact go. Returns how many resumed."""
        account_id = await self.resolve(contact)
        if self._store.contact_master_key(account_id) != master_key_b64:
            raise IdentityError(
                f"the safety number with {self.label(account_id)} changed while it was "
                "compared; compare the new one"
            )
        self._store.set_verified_key(account_id, master_key_b64)
        return self._resume(account_id)

    async def accept_identity(self, contact: str) -> int:
        """Accept a verified contact's changed key without verifying it (the contact is
        unverified again); paused messages go. Returns how many resumed."""
        account_id = await self.resolve(contact)
        if self._store.verification(account_id) is Verification.KEY_CHANGED:
            self._store.set_verified_key(account_id, None)
        return self._resume(account_id)

    def _resume(self, account_id: str) -> int:
        resumed = self._store.resume(account_id)
        if resumed:
            self._runner.wake_outbox()  # another owner sees the new outbox rows by itself
        return resumed
