"""The receive path: envelope -> checks -> keys -> decrypt -> content handler.

Store first, acknowledge second (docs/design.md, "The client"): an envelope id is queued for
`ack` only after the transaction that stored its content and marked it seen has committed.

When the sender device's keys are not cached, or a decryption failure calls for fetching them
afresh, the envelope is parked and a FetchKeys action goes out; the async layer fetches in a
task and feeds the answer back (``keys_fetched``). Envelopes from that sender queue behind the
parked one (their order is kept), while other senders' envelopes are handled at once, so one
slow key fetch no longer stalls receiving. Parked envelopes are not acknowledged, so the
server's delivery window is the back-pressure; MAX_PARKED bounds them all the same.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

from porch.client import retry
from porch.client.core.actions import FetchKeys, Reconnect
from porch.client.core.context import CoreState
from porch.client.core.group_receive import GroupReceiver
from porch.client.core.handlers import Envelope, Handlers
from porch.client.core.keys import Bundle, cache_directory, find_device
from porch.client.errors import ClientError, IdentityError, ServerError
from porch.client.events import DecryptionFailed
from porch.client.store import PeerDeviceRow
from porch.crypto.content import decode_content
from porch.crypto.errors import CryptoError
from porch.crypto.olm import OlmCiphertext
from porch.failures import log_failure
from porch.protocol.codec import b64decode
from porch.protocol.frames import ACCOUNT_ID_PATTERN, MAX_DEVICE_ID, MAX_ENVELOPE_ID

log = logging.getLogger("porch.client")

_ACCOUNT_ID = re.compile(ACCOUNT_ID_PATTERN)
# The server's default delivery window (PORCH_DELIVERY_WINDOW): it sends no more unacknowledged
# envelopes than that, so more parked ones mean a server that does not keep its bound.
MAX_PARKED = 256
KIND_MEGOLM = 2  # spec A: ciphertext kind 2 is a group (Megolm) message


def _is_int(value: object, low: int = 0, high: int = 2**63 - 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


@dataclass(slots=True)
class _Parked:
    env: Envelope
    frame: dict[str, Any]
    # Set on the envelope whose failure asked for fresh keys: the key it failed with, and why.
    failed_with: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class _Fetch:
    token: int
    fresh: bool  # a refetch after a failure: the fetched devices replace the cached ones


class Receiver:
    def __init__(
        self,
        state: CoreState,
        handlers: Handlers,
        groups: GroupReceiver,
        max_parked: int = MAX_PARKED,
    ) -> None:
        self._state, self._handlers, self._max_parked = state, handlers, max_parked
        self._groups = groups
        self._parked: dict[str, deque[_Parked]] = {}  # by sender, oldest first
        self._fetching: dict[str, _Fetch] = {}  # by sender: the fetch the head waits for
        self._tokens = 0

    @property
    def parked(self) -> int:
        return sum(len(q) for q in self._parked.values())

    def reset(self) -> None:
        """The connection is gone: what was parked was not acknowledged, so it comes again."""
        self._parked.clear()
        self._fetching.clear()

    # Envelopes in --------------------------------------------------------------------------

    def take(self, frame: Any) -> None:
        """Handle one envelope; one that cannot be taken is rejected and reported, so that it
        never stops the queue or loops through reconnects (docs/protocol.md, "Delivery")."""
        state = self._state
        if not isinstance(frame, dict):
            log.warning("ignored an envelope that is not an object")
            return
        envelope_id, sender, device = frame.get("id"), frame.get("from"), frame.get("from_device")
        if not _is_int(envelope_id, 0, MAX_ENVELOPE_ID):
            log.warning("ignored an envelope without a valid id")  # nothing to reject
            return
        assert isinstance(envelope_id, int)
        who = (
            sender if isinstance(sender, str) else "",
            device if isinstance(device, int) and _is_int(device) else 0,
        )
        if frame.get("too_large") is True:
            log.warning("envelope %d from %s was too large to deliver", envelope_id, who[0][:8])
            state.refuse(envelope_id, "too_large", *who)
            return
        # A sender that is no account id would make the key lookup fail (400) on every try.
        if not (
            isinstance(sender, str)
            and _ACCOUNT_ID.fullmatch(sender)
            and _is_int(device, 1, MAX_DEVICE_ID)
            and _is_int(frame.get("ts"))
            and _is_int(frame.get("kind"))
            and isinstance(frame.get("body"), str)
        ):
            log.warning("envelope %d is malformed", envelope_id)
            state.refuse(envelope_id, "malformed", *who)
            return
        assert isinstance(device, int)
        env = Envelope(envelope_id, int(frame["ts"]), sender, device)
        if envelope_id and state.store.seen(envelope_id, env.ts):
            state.ack(envelope_id)  # redelivered: it was stored already
            return
        queue = self._parked.get(sender)
        if queue is not None:  # behind an envelope of the same sender that waits for keys
            if self.parked >= self._max_parked:
                self._overflow()
                return
            queue.append(_Parked(env, frame))
            return
        self._guarded(_Parked(env, frame))

    def _overflow(self) -> None:
        log.warning("more than %d envelopes wait for keys: reconnecting", self._max_parked)
        self.reset()
        self._state.out.append(Reconnect("too many envelopes wait for the senders' keys"))

    # Keys in -------------------------------------------------------------------------------

    def keys_fetched(self, account: str, token: int, bundle: Bundle) -> None:
        fetch = self._fetching.get(account)
        if fetch is None or fetch.token != token:
            return  # the connection it was for is gone (its envelopes come again)
        del self._fetching[account]
        head = self._parked[account].popleft()
        try:
            if bundle.account_id != account:
                raise IdentityError(
                    f"the key directory answered for another account than {account[:8]}"
                )
            cache_directory(self._state, bundle, replace=fetch.fresh)
        except IdentityError as exc:  # keys that do not verify: asking again cannot help
            self._undecryptable(head.env, str(exc))
        except Exception as exc:  # a bug or bad data: as for a failure inside the envelope
            log_failure(log, "the keys for envelope %d could not be taken", head.env.id, exc=exc)
            env = head.env
            self._state.refuse(env.id, "unprocessable", env.sender, env.device, type(exc).__name__)
        else:
            self._guarded(head, fetched=True)
        self._resume(account)

    def keys_fetch_failed(self, account: str, token: int, error: ClientError) -> None:
        fetch = self._fetching.get(account)
        if fetch is None or fetch.token != token:
            return
        if isinstance(error, IdentityError) or (
            isinstance(error, ServerError) and error.code == "not_found"
        ):
            # The sender has no keys (any more), or none that verify: it never will.
            del self._fetching[account]
            self._undecryptable(self._parked[account].popleft().env, str(error))
            self._resume(account)
            return
        # Transient: leave every waiting envelope unacknowledged and reconnect, so they come
        # again (a key directory that is down would fail the other senders' fetches too).
        self.reset()
        self._state.out.append(Reconnect(f"cannot fetch the sender's keys: {error}"))

    def _resume(self, account: str) -> None:
        """Handle the sender's queued envelopes in order, until one waits for keys again."""
        queue = self._parked.get(account)
        while queue:
            self._guarded(queue[0], queued=True)
            if account in self._fetching:
                return  # parked again, still at the head of its queue
            queue.popleft()
        self._parked.pop(account, None)

    # One envelope --------------------------------------------------------------------------

    def _guarded(self, item: _Parked, fetched: bool = False, queued: bool = False) -> None:
        try:
            self._handle(item, fetched, queued)
        except Exception as exc:  # a bug or bad data: the same bytes would fail again
            log_failure(log, "envelope %d could not be handled", item.env.id, exc=exc)
            self._state.refuse(
                item.env.id, "unprocessable", item.env.sender, item.env.device, type(exc).__name__
            )

    def _park(self, item: _Parked, fresh: bool, queued: bool) -> None:
        """Wait for the sender's keys: ``item`` becomes (or stays) the head of its queue."""
        state, sender = self._state, item.env.sender
        if not queued:
            if self.parked >= self._max_parked:
                self._overflow()
                return
            self._parked.setdefault(sender, deque()).appendleft(item)
        self._tokens += 1
        self._fetching[sender] = _Fetch(self._tokens, fresh)
        reason = "refetch" if fresh else "unknown_device"
        state.out.append(FetchKeys(sender, self._tokens, reason))

    def _handle(self, item: _Parked, fetched: bool, queued: bool) -> None:
        env, frame = item.env, item.frame
        if frame["kind"] == KIND_MEGOLM:  # a group message: no Olm session, no key fetch
            self._groups.take(env, frame)
            return
        try:
            ciphertext = OlmCiphertext(int(frame["kind"]), b64decode(str(frame["body"])))
        except (ValueError, KeyError) as exc:
            self._undecryptable(env, f"malformed envelope: {exc}")
            return
        device = find_device(self._state, env.sender, env.device)
        if device is None:
            if fetched:  # the directory was just asked and does not list it
                self._undecryptable(
                    env, f"{env.sender[:8]} has no device {env.device} in the key directory"
                )
            else:
                self._park(item, fresh=False, queued=queued)
            return
        failed_with, item.failed_with = item.failed_with, None
        if failed_with is not None:  # the answer to a refetch
            if device.curve25519 != failed_with[0]:
                self._decrypt_and_deliver(env, device, ciphertext, final=True)
            else:
                self._undecryptable(env, failed_with[1], request_retry=True)
            return
        reason = self._decrypt_and_deliver(env, device, ciphertext, final=False)
        if reason is None:
            return
        if not fetched and self._state.retrier.may_refetch(env.sender, env.device):
            # The cached keys may be stale (the sender re-registered or reinstalled): as Signal
            # does, fetch them afresh and, if they changed, decrypt again.
            item.failed_with = (device.curve25519, reason)
            self._park(item, fresh=True, queued=queued)
            return
        self._undecryptable(env, reason, request_retry=True)

    def _decrypt_and_deliver(
        self, env: Envelope, device: PeerDeviceRow, ciphertext: OlmCiphertext, final: bool
    ) -> str | None:
        """Decrypt and deliver. A decryption failure returns its reason, unless this was the
        ``final`` try: then the envelope is dealt with as undecryptable."""
        state = self._state
        try:
            plaintext = state.olm.decrypt((env.sender, env.device), device.curve25519, ciphertext)
        except CryptoError as exc:
            if not final:
                return str(exc)
            self._undecryptable(env, str(exc), request_retry=True)
            return None
        try:
            content = decode_content(plaintext)
        except CryptoError as exc:  # it decrypted, so a resend would carry the same content
            self._undecryptable(env, str(exc))
            return None
        handler = self._handlers.for_content(content)
        with state.store.transaction() as db:
            state.persist_olm(db)
            new = handler.persist(state, env, content, db)
            if env.id:
                state.store.mark_seen(env.id, env.ts, db)
        state.ack(env.id)
        handler.react(state, env, content, new)
        return None

    def _undecryptable(self, env: Envelope, reason: str, request_retry: bool = False) -> None:
        # Acknowledged all the same (the same bytes can never decrypt later, and keeping them
        # would block the queue), but never silently: history keeps a placeholder, the
        # application is told, and where a resend can help the sender is asked for one.
        state = self._state
        # Info, not a warning: the user is told through the placeholder and the event, and
        # anyone can send undecryptable envelopes, so a warning per envelope would let them
        # flood a `porch recv`'s terminal.
        log.info("could not decrypt a message from %s/%s: %s", env.sender[:8], env.device, reason)
        asked = request_retry and state.retrier.request(env.sender, env.device, env.ts)
        text = retry.placeholder_text(state.label(env.sender), asked)
        with state.store.transaction() as db:
            state.persist_olm(db)  # a decrypted but malformed content still moved the ratchet
            state.store.add_message(
                env.sender,
                retry.placeholder_id(env.device, env.ts),
                False,
                env.device,
                env.ts,
                text,
                retry.UNDECRYPTABLE,
                db,
            )
            if env.id:
                state.store.mark_seen(env.id, env.ts, db)
        state.ack(env.id)
        state.emit(DecryptionFailed(env.sender, env.device, reason, asked, env.ts))
