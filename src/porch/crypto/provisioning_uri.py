"""The ``porch://link`` provisioning URI (Signal's ``sgnl://linkdevice``) and its QR code.

The new device shows this URI (as text and as a QR code): the server's provisioning channel id
and the device's ephemeral X25519 public key (porch.crypto.provisioning, the cipher that key is
for), and optionally a name to show in the primary's confirmation. Every field is checked
within fixed bounds (docs/protocol.md, "Provisioning (linking a device)"). Sans-IO.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit

from porch.crypto.errors import BAD_PROVISIONING, UNSUPPORTED_VERSION, ProvisioningError
from porch.crypto.provisioning import KEY_LEN, UUID_RE, b64url_key

URI_VERSION: Final = 1
URI_SCHEME: Final = "porch"
URI_HOST: Final = "link"
MAX_URI_LEN: Final = 512
MAX_URI_PARAMS: Final = 8
# 32 characters of UTF-8, percent-encoded, stay within MAX_URI_LEN with the other parameters.
MAX_URI_NAME: Final = 32
_B64URL_KEY_RE: Final = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, unpadded


def _bad(message: str) -> ProvisioningError:
    return ProvisioningError(message, code=BAD_PROVISIONING)


@dataclass(frozen=True)
class ProvisioningUri:
    """``porch://link?uuid=<channel id>&pub_key=<base64url key>&v=1`` (Signal's
    ``sgnl://linkdevice?uuid=...&pub_key=...``): the channel id is a lowercase UUID, the key is
    the new device's 32-byte X25519 public key."""

    channel_id: str
    public_key: bytes
    # The new device's name, to show in the primary's confirmation ("Link a new device
    # 'NAME'?"). Unauthenticated: whoever made the URI chose it.
    name: str | None = None

    def __str__(self) -> str:
        return build_provisioning_uri(self.channel_id, self.public_key, self.name)


def _clean_name(name: str) -> str:
    return "".join(c for c in name if c.isprintable()).strip()[:MAX_URI_NAME]


def build_provisioning_uri(channel_id: str, public_key: bytes, name: str | None = None) -> str:
    """The URI text; ProvisioningError (``bad_provisioning``) on a bad id or key length.
    A name is optional (after ``v``, trimmed to MAX_URI_NAME printable characters)."""
    if not UUID_RE.fullmatch(channel_id):
        raise _bad("channel id must be a lowercase UUID")
    if len(public_key) != KEY_LEN:
        raise _bad(f"public key must be {KEY_LEN} bytes")
    params: dict[str, str | int] = {
        "uuid": channel_id,
        "pub_key": b64url_key(public_key),
        "v": URI_VERSION,
    }
    if name and _clean_name(name):
        params["name"] = _clean_name(name)
    return f"{URI_SCHEME}://{URI_HOST}?{urlencode(params)}"


def parse_provisioning_uri(text: str) -> ProvisioningUri:
    """Parse and check every field of a provisioning URI.

    ProvisioningError with code ``unsupported_version`` for a version other than 1 (checked
    first: another version may change the other fields), ``bad_provisioning`` for anything else
    malformed. Unknown parameters are ignored, within MAX_URI_LEN and MAX_URI_PARAMS.
    """
    if len(text) > MAX_URI_LEN:
        raise _bad(f"provisioning URI is longer than {MAX_URI_LEN} characters")
    if not text.isascii() or not text.isprintable():
        raise _bad("provisioning URI must be printable ASCII")
    try:
        parts = urlsplit(text)
        pairs = parse_qsl(
            parts.query, keep_blank_values=True, strict_parsing=True, max_num_fields=MAX_URI_PARAMS
        )
    except ValueError as exc:
        raise _bad(f"malformed provisioning URI: {exc}") from None
    if parts.scheme != URI_SCHEME or parts.netloc != URI_HOST or parts.path not in ("", "/"):
        raise _bad(f"not a {URI_SCHEME}://{URI_HOST} URI")
    if parts.fragment:
        raise _bad("provisioning URI must not have a fragment")
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise _bad(f"parameter {key!r} is repeated")
        params[key] = value
    version = params.get("v")
    if version is None:
        raise _bad("provisioning URI has no version (v)")
    if not re.fullmatch(r"0|[1-9][0-9]{0,8}", version):
        raise _bad("provisioning URI version must be a small decimal integer without leading 0")
    if int(version) != URI_VERSION:
        raise ProvisioningError(
            f"provisioning URI version {version} is not supported (only {URI_VERSION}); "
            "update Porch on this device",
            code=UNSUPPORTED_VERSION,
        )
    channel_id = params.get("uuid")
    if channel_id is None or not UUID_RE.fullmatch(channel_id):
        raise _bad("uuid must be a lowercase UUID")
    key_text = params.get("pub_key")
    if key_text is None or not _B64URL_KEY_RE.fullmatch(key_text):
        raise _bad(f"pub_key must be {KEY_LEN} bytes of unpadded base64url")
    try:
        public_key = base64.urlsafe_b64decode(key_text + "=")
    except (binascii.Error, ValueError):
        raise _bad("pub_key is not base64url") from None
    # 43 characters carry 258 bits: refuse the non-canonical spellings of the same 32 bytes.
    if b64url_key(public_key) != key_text:
        raise _bad("pub_key is not canonical base64url")
    name = params.get("name")
    if name is not None and (len(name) > MAX_URI_NAME or _clean_name(name) != name):
        raise _bad(f"name must be at most {MAX_URI_NAME} printable characters")
    return ProvisioningUri(channel_id=channel_id, public_key=public_key, name=name or None)


def qr_text(uri: str, *, border: int = 4) -> str:
    """The URI as a QR code drawn with Unicode half blocks, two module rows per line.

    Light modules are drawn as blocks (the foreground), for terminals with dark backgrounds;
    the quiet zone ``border`` (the QR spec's 4 by default) keeps it scannable on light ones.
    """
    import segno  # only where a QR code is drawn: every other import of porch.crypto stays lean

    qr = segno.make(uri, micro=False)
    out = io.StringIO()
    qr.terminal(out=out, compact=True, border=border)
    return out.getvalue()
