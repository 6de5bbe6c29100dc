"""Bounds and field types shared by the frames of both directions (docs/protocol.md, "Frames").

Every integer on the wire has a range here, so that the models, the gateway and the exported
JSON Schema (docs/protocol.schema.json) agree on it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

ACCOUNT_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
CLIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# A send (docs/protocol.md, "Sending"): at most MAX_DESTINATIONS accounts, each with at most
# MAX_DEVICES_PER_DESTINATION devices, and at most MAX_DEVICES_PER_SEND devices in all.
MAX_DESTINATIONS = 1000
MAX_DEVICES_PER_DESTINATION = 64
MAX_DEVICES_PER_SEND = 5000
MAX_ACK_IDS = 1000
ENVELOPES_PER_FRAME = 64

# Integer bounds (docs/protocol.md, "Frames"): ids are SQL BIGINT / INTEGER columns, so a
# number outside them is refused here, as bad_frame, before any store sees it.
MAX_ENVELOPE_ID = 2**63 - 1
MAX_DEVICE_ID = 2**31 - 1
MAX_REGISTRATION_ID = 2**32 - 1
MAX_PING_N = 2**53 - 1  # exact in a JavaScript number, so a browser echoes it unchanged
# Group revisions (spec B): exact in a JavaScript number, like ping's n.
MAX_GROUP_REVISION = 2**53 - 1
# Server timestamps are milliseconds since the epoch, stored as BIGINT.
MAX_TIMESTAMP_MS = 2**63 - 1
# A send's `ttl` (docs/protocol.md, "Sending"): seconds its envelopes may wait undelivered,
# at most a year, like a disappearing message's timer (issue 8).
MAX_TTL_SECONDS = 31_536_000

# Size promises (docs/protocol.md, "Frame size limits"). PORCH_MAX_FRAME_BYTES may not exceed
# MAX_CLIENT_FRAME_BYTES; an envelope's body is a part of one accepted client frame, and the
# envelope's other fields (ids, account, timestamp) with the `envelopes` wrapper take far
# less than ENVELOPE_OVERHEAD_BYTES. So every envelope the protocol accepts fits in a server
# frame of MAX_SERVER_FRAME_BYTES; one stored by other means that does not is replaced by a
# `too_large` marker rather than sent.
MAX_CLIENT_FRAME_BYTES = 1 << 20
ENVELOPE_OVERHEAD_BYTES = 1024
MAX_SERVER_FRAME_BYTES = MAX_CLIENT_FRAME_BYTES + ENVELOPE_OVERHEAD_BYTES

# Checked by pattern (in pydantic's Rust core) rather than by decoding: the server never
# decodes ciphertext, so it only needs to know the text is base64, not what it holds.
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2,3}(?:==?)?)?$"

AccountId = Annotated[str, Field(pattern=ACCOUNT_ID_PATTERN)]
GroupId = Annotated[str, Field(pattern=ACCOUNT_ID_PATTERN)]  # a UUID4 the creator chose
GroupRevision = Annotated[int, Field(ge=0, le=MAX_GROUP_REVISION)]
DeviceId = Annotated[int, Field(ge=1, le=MAX_DEVICE_ID)]
EnvelopeId = Annotated[int, Field(ge=1, le=MAX_ENVELOPE_ID)]
ClientMessageId = Annotated[str, Field(pattern=CLIENT_ID_PATTERN)]
Timestamp = Annotated[int, Field(ge=0, le=MAX_TIMESTAMP_MS)]
PingN = Annotated[int, Field(ge=0, le=MAX_PING_N)]
TtlSeconds = Annotated[int, Field(ge=1, le=MAX_TTL_SECONDS)]
OlmKind = Annotated[int, Field(ge=0, le=1)]
# Ciphertext kinds (docs/protocol.md, "Sending"): 0 Olm pre-key, 1 Olm message, 2 Megolm; the
# rest are reserved and stored opaquely, so that a new kind needs no server upgrade.
MAX_CIPHERTEXT_KIND = 255
CiphertextKind = Annotated[int, Field(ge=0, le=MAX_CIPHERTEXT_KIND)]
