"""Reply quotes checked against the local history (issue 8 fix M2-2).

A quote on the wire is the sender's claim: ``{"id", "author", "body"}``. Shown as is, anyone
could put words in another's mouth ("alice: I owe Bob $1000"). So a reader shows the quoted
message's own text when this device has it (same conversation, same author, same id) and
ignores the quote's body; when it does not, the quote is shown as "original not found", its
body clearly marked as the replier's words, never as the author's."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, TypeVar

from porch.crypto.rich import MAX_QUOTE_CHARS, Quote

if TYPE_CHECKING:
    from porch.client.history import HistoryMessage
    from porch.client.rich_store import StoredMessage


class _Finder(Protocol):
    def find_message(
        self, peer: str, author: str, client_id: str, me: str
    ) -> StoredMessage | None: ...


class _Replying(Protocol):
    @property
    def peer(self) -> str: ...
    @property
    def reply(self) -> Quote | None: ...


M = TypeVar("M", bound=_Replying)


def preview(m: HistoryMessage) -> str:
    """What a reply quotes of a message: its text, else its first attachment."""
    if m.text:
        return m.text[:MAX_QUOTE_CHARS]
    if m.attachments:
        a = m.attachments[0]
        return f"📎 {a.name or a.content_type}"[:MAX_QUOTE_CHARS]
    return ""


def checked(store: _Finder, m: M, me: str) -> M:
    """``m`` with its quote's body replaced by the local original's text and
    ``reply_found`` set, or unchanged (``reply_found`` False) when the original is unknown."""
    quote = m.reply
    if quote is None:
        return m
    found = store.find_message(m.peer, quote.author, quote.id, me)
    if found is None or found.message.status == "notice":
        return m
    body = "This message was deleted" if found.message.deleted else preview(found.message)
    return replace(m, reply=replace(quote, body=body), reply_found=True)  # type: ignore[type-var]


def quote_text(quote: Quote, found: bool, author: str) -> str:
    """The quote as one line (``author`` already a printable label)."""
    if found:
        return f"{author}: {quote.body}"
    said = f": \u201c{quote.body}\u201d" if quote.body else ""
    return f"{author} (original not found; the replier's quote{said})"
