"""Field checks shared by every content kind (docs/protocol.md, "Content object").

Each check raises :class:`ContentError` (code ``bad_content``) naming the field, so a malformed
content fails alone with a readable reason and never reaches the store half-parsed.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from porch.crypto.errors import ContentError
from porch.protocol.codec import b64decode
from porch.protocol.fields import ACCOUNT_ID_PATTERN

# Timestamps and sizes must survive a round trip through a JavaScript number in the browser.
MAX_SAFE_INTEGER = 2**53 - 1
MAX_GROUP_ID_BYTES = 128
MAX_TEXT_BYTES = 64 * 1024

_ACCOUNT_ID = re.compile(ACCOUNT_ID_PATTERN)

MAX_EPOCH = 2**32 - 1
# A vodozemac SessionKey (v2) is 229 bytes: 306 characters of unpadded base64.
MAX_SESSION_KEY_CHARS = 512

# group_update (issue 7 spec E): what the change was, and on whom (at most one server call's
# worth of accounts: the server adds at most 1000 at once).
GROUP_ACTIONS = (
    "create",
    "add",
    "remove",
    "leave",
    "promote",
    "demote",
    "join",
    "state",
    "settings",
)
MAX_GROUP_UPDATE_TARGETS = 1000


def fail(message: str) -> NoReturn:
    raise ContentError(message)


def check_str(value: str, what: str) -> str:
    # Lone surrogates cannot be encoded as UTF-8, so such a string could never be sent on.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ContentError(f"{what} is not valid Unicode") from None
    return value


def check_int(value: Any, what: str, low: int, high: int, *, bound: str | None = None) -> int:
    """An exact JSON integer in low..high: bool is an int in Python but not a number in JSON."""
    if type(value) is not int or not low <= value <= high:
        fail(f"{what} must be an integer in {low}..{bound or high}")
    return value


def check_ts(value: Any, what: str) -> int:
    return check_int(value, what, 0, MAX_SAFE_INTEGER, bound="2**53-1")


def check_bool(value: Any, what: str) -> bool:
    if type(value) is not bool:
        fail(f"{what} must be true or false")
    return value


def validate_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        fail(f"{what} must be a non-empty string")
    return check_str(value, what)


def validate_body(value: Any, what: str) -> str:
    if not isinstance(value, str):
        fail(f"{what} must be a string")
    check_str(value, what)
    if len(value.encode("utf-8")) > MAX_TEXT_BYTES:
        fail(f"{what} exceeds {MAX_TEXT_BYTES} bytes")
    return value


def validate_account(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _ACCOUNT_ID.fullmatch(value):
        fail(f"{what} must be an account id")
    return value


def validate_group_id(value: Any) -> str:
    validate_id(value, "group id")
    raw = value.encode("utf-8")
    if len(raw) > MAX_GROUP_ID_BYTES or b"\x00" in raw:
        fail(f"group id must be at most {MAX_GROUP_ID_BYTES} bytes without NUL")
    return str(value)


def validate_b64(value: Any, what: str, *, size: int | None, max_chars: int) -> bytes:
    if not isinstance(value, str) or not value or len(value) > max_chars:
        fail(f"{what} must be a base64 string of at most {max_chars} characters")
    try:
        raw = b64decode(value)
    except ValueError:
        fail(f"{what} is not base64")
    if size is not None and len(raw) != size:
        fail(f"{what} must encode {size} bytes")
    return raw


# Group kinds (docs/protocol.md, "Group key content" and "Group updates") ------------------


def validate_group_key(group: Any, session: Any, key: Any, sig: Any) -> None:
    validate_group_id(group)
    validate_b64(session, "group_key session", size=32, max_chars=44)
    validate_b64(key, "group_key key", size=None, max_chars=MAX_SESSION_KEY_CHARS)
    validate_b64(sig, "group_key sig", size=64, max_chars=88)


def validate_group_state_key(group: Any, epoch: Any, key: Any) -> None:
    validate_group_id(group)
    check_int(epoch, "group_state_key epoch", 0, MAX_EPOCH, bound="2**32-1")
    validate_b64(key, "group_state_key key", size=32, max_chars=44)


def validate_group_update(group: Any, revision: Any, action: Any, targets: Any) -> None:
    validate_group_id(group)
    check_ts(revision, "group_update revision")
    if action not in GROUP_ACTIONS:
        fail(f"group_update action must be one of {', '.join(GROUP_ACTIONS)}")
    if not isinstance(targets, list) or len(targets) > MAX_GROUP_UPDATE_TARGETS:
        fail(f"group_update targets must be a list of at most {MAX_GROUP_UPDATE_TARGETS}")
    for target in targets:
        validate_account(target, "group_update target")
    if len(set(targets)) != len(targets):
        fail("group_update targets must not repeat")
