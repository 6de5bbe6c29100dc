"""This user's typing indicator in `porch chat`: when to send "started" and when "stopped".

While the user types in the open conversation, one "started" goes at most every
TYPING_SEND_EVERY seconds; "stopped" goes TYPING_IDLE seconds after the last keystroke, and at
once when a text is sent or the conversation is left. The indicators themselves are online-only
(Client.set_typing: never queued, never stored).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from textual.timer import Timer

TYPING_SEND_EVERY = 3.0  # at most one "started" per this many seconds while typing
TYPING_IDLE = 4.0  # send "stopped" after this long without a keystroke


class TypingSender:
    def __init__(
        self,
        peer: Callable[[], str | None],
        send: Callable[[str, bool], None],
        set_timer: Callable[[float, Callable[[], Awaitable[None]]], Timer],
    ) -> None:
        """``peer``: the open conversation when "stopped" goes (the app's, read then);
        ``send``: sends one indicator; ``set_timer``: the app's (Textual's) timers."""
        self._peer, self._send, self._set_timer = peer, send, set_timer
        self._sent_at = 0.0
        self._active = False
        self._idle: Timer | None = None

    def keystroke(self, peer: str) -> None:
        now = time.monotonic()
        if not self._active or now - self._sent_at >= TYPING_SEND_EVERY:
            self._active, self._sent_at = True, now
            self._send(peer, True)
        if self._idle is not None:
            self._idle.stop()
        self._idle = self._set_timer(TYPING_IDLE, self.stop)

    async def stop(self) -> None:
        """Say "stopped" if "started" went since the last "stopped" (a timer's callback)."""
        if self._idle is not None:
            self._idle.stop()
            self._idle = None
        peer = self._peer()
        if self._active and peer is not None:
            self._active = False
            self._send(peer, False)
