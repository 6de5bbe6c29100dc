"""Group invite links (issue 7 spec E; docs/protocol.md, "Group invite links").

    porch://group?token=TOKEN#key=STATEKEY&epoch=N

``token`` is the server's invite token (43 characters of unpadded base64url: 32 random bytes);
the fragment holds the group state key of ``epoch`` (32 bytes, unpadded base64url) so that the
joiner can open the group's name before and after joining. The fragment is never sent to the
server: only ``token`` goes into ``POST /v1/groups/join``. Anything malformed is refused with
UsageError ``bad_link`` and a sentence that says what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Final, NoReturn
from urllib.parse import parse_qsl, urlsplit

from porch.client.errors import ClientCode, UsageError
from porch.crypto.group_state import MAX_EPOCH, STATE_KEY_LEN

SCHEME: Final = "porch"
HOST: Final = "group"
MAX_LINK_LEN: Final = 256  # the longest valid link is about 120 characters
MAX_PARAMS: Final = 8
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_KEY = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes
_EPOCH = re.compile(r"0|[1-9][0-9]{0,9}")


@dataclass(frozen=True, slots=True)
class GroupLink:
    token: str
    state_key: bytes
    epoch: int

    def __repr__(self) -> str:  # the key never lands in a log line or a traceback
        return f"GroupLink(token=<hidden>, state_key=<hidden>, epoch={self.epoch})"


def _bad(message: str) -> NoReturn:
    raise UsageError(f"this is not a usable group link: {message}", code=ClientCode.BAD_LINK)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def format_group_link(link: GroupLink) -> str:
    if not _TOKEN.fullmatch(link.token):
        _bad("the invite token must be 43 characters of base64url")
    if len(link.state_key) != STATE_KEY_LEN:
        _bad(f"the group key must be {STATE_KEY_LEN} bytes")
    if type(link.epoch) is not int or not 0 <= link.epoch <= MAX_EPOCH:
        _bad("the key epoch must be an integer in 0..2**32-1")
    key = _b64url(link.state_key)
    return f"{SCHEME}://{HOST}?token={link.token}#key={key}&epoch={link.epoch}"


def _pairs(text: str, where: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=True, max_num_fields=MAX_PARAMS
        )
    except ValueError:
        _bad(f"its {where} is malformed")
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            _bad(f"{name!r} appears twice")
        out[name] = value
    return out


def parse_group_link(text: str) -> GroupLink:
    """Check every part of a link; unknown parameters are ignored (within the bounds)."""
    text = text.strip()
    if len(text) > MAX_LINK_LEN:
        _bad(f"it is longer than {MAX_LINK_LEN} characters")
    if not text.isascii() or not text.isprintable():
        _bad("it must be printable ASCII")
    try:
        parts = urlsplit(text)
    except ValueError:
        _bad("it is not a URI")
    if parts.scheme != SCHEME or parts.netloc != HOST or parts.path not in ("", "/"):
        _bad(f"it must start with {SCHEME}://{HOST}?")
    query = _pairs(parts.query, "query") if parts.query else {}
    token = query.get("token")
    if token is None or not _TOKEN.fullmatch(token):
        _bad("the invite token (token=) is missing or not 43 characters of base64url")
    if not parts.fragment:
        _bad("the part after # with the group key is missing (was the link cut off?)")
    fragment = _pairs(parts.fragment, "part after #")
    key = fragment.get("key")
    if key is None or not _KEY.fullmatch(key):
        _bad("the group key (key=) is missing or not 43 characters of base64url")
    try:
        raw = base64.urlsafe_b64decode(key + "=")
    except (binascii.Error, ValueError):
        _bad("the group key is not base64url")
    if len(raw) != STATE_KEY_LEN or _b64url(raw) != key:
        _bad(f"the group key must encode exactly {STATE_KEY_LEN} bytes")
    epoch = fragment.get("epoch")
    if epoch is None or not _EPOCH.fullmatch(epoch) or int(epoch) > MAX_EPOCH:
        _bad("the key epoch (epoch=) is missing or not an integer in 0..2**32-1")
    return GroupLink(token=token, state_key=raw, epoch=int(epoch))
