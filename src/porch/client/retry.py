"""Retry requests: how a message that could not be decrypted gets resent.

Signal's answer to a failed decryption (its DecryptionErrorMessage, sent when a session was
lost or a contact reinstalled) is for the receiver to name the failed message and for the
sender to start a new session and send it again from its own history. Porch does the same with
a ``retry`` content (docs/protocol.md, section 8), which the receiver sends over a new session
started from one of the sender's one-time keys, so it is a pre-key message the sender can
always decrypt. Both sides are bounded, so two broken clients cannot ask each other for ever:

- the receiver asks at most ``MAX_REQUESTS_PER_DEVICE`` times per ``REQUEST_WINDOW_MS`` per
  sender device (each request claims one of that device's one-time keys);
- the sender resends a message at most ``MAX_RESENDS_PER_MESSAGE`` times, and only messages of
  its own history sent within ``RESEND_WINDOW_MS`` (Signal keeps its resend log for a day).

The rules (:func:`plan_resend`, :class:`RequestLimiter`) do no I/O; :class:`Retrier` applies
them with the store and outbox the client core (porch.client.core) passes in.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from porch.client.store import HistoryMessage, LocalStore
from porch.crypto.content import Retry, Text, encode_content

log = logging.getLogger("porch.client")

RESEND_WINDOW_MS = 24 * 3_600_000
MAX_RESENDS_PER_MESSAGE = 3
REQUEST_WINDOW_MS = 3_600_000
MAX_REQUESTS_PER_DEVICE = 10
MAX_TRACKED_DEVICES = 1024
# A failure refetches the sender's keys; a flood of garbage from one device must not turn into
# a flood of key fetches, so at most this many per device per minute.
MAX_REFETCHES_PER_DEVICE = 3
REFETCH_WINDOW_MS = 60_000
# History statuses of the lines the client writes itself into a conversation.
UNDECRYPTABLE = "undecryptable"  # a placeholder for a message that could not be decrypted
NOTICE = "notice"  # e.g. "the safety number changed"


class Queue(Protocol):
    def __call__(self, recipient: str, content: bytes, ttl: int | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class Resend:
    """Send ``message`` again (same client message id, so the receiver shows it once)."""

    message: HistoryMessage


@dataclass(frozen=True, slots=True)
class NoResend:
    reason: str


def plan_resend(
    message: HistoryMessage | None, resent_before: int, now_ms: int
) -> Resend | NoResend:
    """What to do with a retry request for ``message`` (None: nothing of ours matched)."""
    if message is None or not message.outgoing:
        return NoResend("no message of ours matches the request")
    if message.status == "pending":
        return NoResend("the message was never sent")
    if message.deleted:
        return NoResend("the message was deleted for everyone")
    if message.expires_at is not None and message.expires_at <= now_ms:
        return NoResend("the message has disappeared")
    if now_ms - message.ts > RESEND_WINDOW_MS:
        return NoResend("the message is older than the resend window")
    if resent_before >= MAX_RESENDS_PER_MESSAGE:
        return NoResend(f"the message was resent {resent_before} times already")
    return Resend(message)


class RequestLimiter:
    """Caps the retry requests sent to each peer device: a sliding count per window."""

    def __init__(
        self,
        limit: int = MAX_REQUESTS_PER_DEVICE,
        window_ms: int = REQUEST_WINDOW_MS,
        max_devices: int = MAX_TRACKED_DEVICES,
    ) -> None:
        self._limit, self._window, self._max = limit, window_ms, max_devices
        self._sent: OrderedDict[tuple[str, int], list[int]] = OrderedDict()

    def allow(self, peer: tuple[str, int], now_ms: int) -> bool:
        """True (and counted) if one more request to ``peer`` fits in the window."""
        recent = [t for t in self._sent.pop(peer, []) if now_ms - t < self._window]
        allowed = len(recent) < self._limit
        if allowed:
            recent.append(now_ms)
        self._sent[peer] = recent
        while len(self._sent) > self._max:  # bounded: forget the least recently asked
            self._sent.popitem(last=False)
        return allowed


def placeholder_id(sender_device: int, server_ts: int) -> str:
    """The history id of the placeholder for a failed envelope (stable, so shown once)."""
    return f"undecryptable-{sender_device}-{server_ts}"


def identity_notice(label: str) -> str:
    return (
        f"The safety number with {label} changed (they re-registered or reinstalled). "
        "Verify it with them."
    )


DEVICES_NOTICE_PREFIX = "devices-"  # the client id of a devices_notice row


def devices_notice(label: str, added: int, removed: int) -> str:
    """A contact's signed device list changed (spec C): said in their conversation, as Signal
    does, so that a device the user did not expect is seen."""
    parts = []
    if added:
        parts.append(f"linked {'a new device' if added == 1 else f'{added} new devices'}")
    if removed:
        parts.append(f"removed {'a device' if removed == 1 else f'{removed} devices'}")
    return f"{label} {' and '.join(parts)}. Messages now go to the devices they list."


ASKED_TO_RESEND = "asked them to resend."


def placeholder_text(label: str, asked: bool) -> str:
    if asked:
        return f"A message from {label} could not be decrypted; {ASKED_TO_RESEND}"
    return f"A message from {label} could not be decrypted."


def resend_content(m: HistoryMessage, now_ms: int) -> tuple[Text, int | None]:
    """The text to send again for ``m``, and its envelope ttl: the same id, body and rich
    fields (attachments by pointer, the quote, the forwarded mark), and for a disappearing
    message what is left of its time, so every device still removes it when the original
    said (expires_at = ts + exp * 1000, spec §3) and the server drops it then (spec §7)."""
    exp = ttl = None
    if m.expires_at is not None:
        # ``m.ts`` is the server's timestamp by now (set_status), not the one the original
        # carried: exp is measured from it so that ts + exp * 1000 still lands on expires_at.
        exp = max(1, math.ceil((m.expires_at - m.ts) / 1000))
        ttl = max(1, math.ceil((m.expires_at - now_ms) / 1000))
    text = Text(
        m.client_id,
        m.text,
        m.ts,
        attachments=m.attachments,
        reply=m.reply,
        forwarded=m.forwarded,
        expires=exp,
    )
    return text, ttl


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Retrier:
    """Both ends of a retry request for one Client: asking for a resend, and answering one.

    Collaborators are the client core's: ``store`` (returns its local store, which a Client
    reopens when entered again), ``queue`` (puts a content into the durable outbox for an
    account) and ``renew`` (the next message to that device starts a new session from a
    freshly claimed key).

    Neither side throws sessions away: as Signal archives rather than deletes a session that
    failed, the older ones stay to decrypt messages already in flight, and a new session
    becomes the preferred one for what is sent next.
    """

    def __init__(
        self,
        store: Callable[[], LocalStore],
        device_id: int,
        queue: Queue,
        renew: Callable[[str, int], None],
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        self._store, self._device_id = store, device_id
        self._queue, self._renew, self._clock = queue, renew, clock
        self._limiter = RequestLimiter()
        self._refetches = RequestLimiter(MAX_REFETCHES_PER_DEVICE, REFETCH_WINDOW_MS)

    def may_refetch(self, sender: str, device: int) -> bool:
        """Whether a decryption failure from this device may fetch its keys afresh now."""
        return self._refetches.allow((sender, device), self._clock())

    def request(self, sender: str, device: int, server_ts: int) -> bool:
        """Queue a retry request for the envelope (sender, device, server_ts); False if the
        per-device cap says no."""
        if not self._limiter.allow((sender, device), self._clock()):
            log.info("no retry request to %s/%s: too many lately", sender[:8], device)
            return False
        # Whatever session we hold with that device may not work: the request goes out on a new
        # one, a pre-key message from a claimed key that the sender can always decrypt.
        self._renew(sender, device)
        self._queue(sender, encode_content(Retry(server_ts, device)))
        return True

    def answer(self, peer: str, peer_device: int, request: Retry) -> None:
        """The peer could not decrypt one of our messages: new session, then resend it."""
        if request.device != self._device_id:
            return  # about a message from another of our devices; that device answers it
        # The peer could not use our session: what we send next goes on a fresh one.
        self._renew(peer, peer_device)
        store = self._store()
        message = store.find_outgoing(peer, request.id, request.ts)
        resent = 0 if message is None else store.resend_count(peer, message.client_id)
        plan = plan_resend(message, resent, self._clock())
        if isinstance(plan, NoResend):
            log.info("retry request from %s/%s unanswered: %s", peer[:8], peer_device, plan.reason)
            return
        store.count_resend(peer, plan.message.client_id)
        # A new outbox id (the server would deduplicate the old one), the same message id.
        text, ttl = resend_content(plan.message, self._clock())
        self._queue(peer, encode_content(text), ttl=ttl)
