"""The outbox's key claims (porch.client.core.outbox): which keys an item still needs per
destination account, the claimed bundles fed back (``keys_claimed``), and what a failed claim
means for the item.

A mixin of porch.client.core.outbox.Outbox; the attributes below are the Outbox's. Separate
because claiming is its own round trip through the async layer: ``prepare`` returns one
ClaimKeys per account, and the item is encrypted only once every claim is answered. Own
devices are learnt by listing one's own account once per Outbox (per process; `GET /v1/keys`,
which takes no one-time key) and claiming only those without a session, then from the
server's `mismatched_devices` refusals (porch.client.core.device_fixes).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from porch.client.core.actions import Action, ClaimKeys, PauseOutbox
from porch.client.core.group_send import group_of
from porch.client.core.keys import Bundle, cache_directory, start_sessions
from porch.client.errors import (
    ClientError,
    IdentityError,
    RecipientNotFound,
    SendFailed,
    ServerError,
)
from porch.crypto.errors import CryptoError
from porch.failures import reason

if TYPE_CHECKING:
    from porch.client.core.context import CoreState
    from porch.client.core.device_fixes import DeviceFix
    from porch.client.store import OutboxItem

log = logging.getLogger("porch.client")

# How long the outbox waits after the key directory could not be reached.
CLAIM_RETRY_DELAY = 1.0


class KeyClaimsMixin:
    if TYPE_CHECKING:
        _state: CoreState
        device_fixes: dict[str, DeviceFix]
        _claiming: dict[str, set[str]]
        _own_known: bool

        def _pause_if_unaccepted(self, item: OutboxItem) -> list[Action]: ...
        def _encrypt(self, item: OutboxItem) -> list[Action]: ...
        def fail(self, item: OutboxItem, code: str, message: str) -> list[Action]: ...

    def _optional(self, item: OutboxItem, account: str) -> bool:
        """Whether the item goes without ``account`` when its keys cannot be had: one's own
        (sent copies, and the copies of a note to self, are a courtesy), or a member of a
        group (the others still get it)."""
        return account == self._state.account_id or group_of(item.recipient) is not None

    def _claim_for(self, item: OutboxItem, account: str) -> ClaimKeys | None:
        state = self._state
        own = account == state.account_id  # a note to self too: list, then claim the others
        fix = self.device_fixes.pop(account, None)
        devices = {d.device_id: d for d in state.store.peer_devices(account)}
        if fix is not None:
            for device_id in fix.extra | fix.stale:
                state.store.drop_peer_device(account, device_id)
                state.olm.forget_peer((account, device_id))
                devices.pop(device_id, None)
        need = {
            d
            for d in devices
            if not state.is_me(account, d)
            and (not state.olm.has_session((account, d)) or (account, d) in state.renew)
        }
        if fix is not None:
            need |= fix.missing | fix.stale
        if own and not self._own_known:
            return ClaimKeys(item, None, account, listing=True)
        if not devices and not own:  # nothing cached: every device of the account
            return ClaimKeys(item, None, account)
        if need:
            return ClaimKeys(item, tuple(sorted(need)), account)
        return None

    def keys_claimed(self, claim: ClaimKeys, bundle: Bundle) -> list[Action]:
        state, account = self._state, claim.account
        if claim.listing:
            return self._own_listed(claim, bundle)
        try:
            if bundle.account_id != account:
                raise IdentityError(
                    f"the key directory answered for another account than {account[:8]}"
                )
            start_sessions(state, bundle)
        except (IdentityError, CryptoError) as exc:
            if self._optional(claim.item, account):
                log.info("not to %s this time: %s", account[:8], reason(exc))
                return self._claim_done(claim)
            self._claiming.pop(claim.item.client_id, None)
            return self.fail(claim.item, getattr(exc, "code", "identity"), str(exc))
        state.renew.difference_update((account, d) for d in claim.devices or ())
        return self._claim_done(claim)

    def _own_listed(self, claim: ClaimKeys, bundle: Bundle) -> list[Action]:
        """One's own devices, listed: claim keys of the other ones without a session."""
        state, account = self._state, claim.account
        self._own_known = True
        try:
            if bundle.account_id != account:
                raise IdentityError("the key directory answered for another account")
            cache_directory(state, bundle, replace=False)
        except IdentityError as exc:
            log.info("no sent copies this time: %s", reason(exc))
            return self._claim_done(claim)
        need = tuple(
            sorted(
                d.device_id
                for d in bundle.devices
                if not state.is_me(account, d.device_id)
                and not state.olm.has_session((account, d.device_id))
            )
        )
        if need and claim.item.client_id in self._claiming:
            return [ClaimKeys(claim.item, need, account)]  # the account stays awaited
        return self._claim_done(claim)

    def _claim_done(self, claim: ClaimKeys) -> list[Action]:
        if claim.account == self._state.account_id:
            self._own_known = True
        waiting = self._claiming.get(claim.item.client_id)
        if waiting is None:
            return []  # another claim of the item failed it or paused the outbox
        waiting.discard(claim.account)
        if waiting:
            return []  # the other accounts' claims are still out
        del self._claiming[claim.item.client_id]
        # The claim is often where a changed key shows first (a stale device, then new keys).
        paused = self._pause_if_unaccepted(claim.item)
        if paused:
            return paused
        # Devices the directory did not give keys for stay out; the server names them, if
        # they exist, in a mismatched_devices error, and they are claimed then.
        return self._encrypt(claim.item)

    def keys_claim_failed(self, claim: ClaimKeys, error: ClientError) -> list[Action]:
        if claim.account == self._state.account_id:
            # Sent copies (and a note to self's copies) are a courtesy: the message goes
            # without them.
            log.info("no sent copies this time: %s", reason(error))
            return self._claim_done(claim)
        permanent = isinstance(error, (RecipientNotFound, IdentityError, SendFailed)) or (
            isinstance(error, ServerError) and error.code in ("not_found", "bad_request")
        )
        if permanent and self._optional(claim.item, claim.account):
            # A member without keys (deleted, say): the group's other members still get it.
            log.info("group send without %s: %s", claim.account[:8], reason(error))
            return self._claim_done(claim)
        self._claiming.pop(claim.item.client_id, None)
        if permanent:
            return self.fail(claim.item, error.code, str(error))
        log.info("outbox waits: %s", reason(error))
        return [PauseOutbox(CLAIM_RETRY_DELAY)]
