"""The JSON Schema of the WebSocket protocol, exported from the frame models.

docs/protocol.schema.json is this module's output, checked in, and what the browser client
generates its types from; tests/unit/protocol/test_schema.py fails when it is out of date.
Regenerate it with

    python -m porch.protocol.schema            # writes docs/protocol.schema.json
    python -m porch.protocol.schema --check    # exit status 1 if the file differs

The schema is JSON Schema 2020-12: `$defs` has one definition per frame, `ClientFrame` and
`ServerFrame` are the two directions, `ErrorCode` and `CloseCode` the codes, and the document
itself accepts any frame of either direction. Server frames are closed
(`additionalProperties: false`): they describe exactly what this version sends, while a client
still ignores unknown fields and frame types (docs/protocol.md, section 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from porch.protocol import PROTOCOL_VERSION
from porch.protocol import fields as lim
from porch.protocol.client_frames import MAX_ERROR_MESSAGE, ClientFrame
from porch.protocol.close_codes import CloseCode
from porch.protocol.server_frames import MAX_ENVELOPE_BYTES, ServerFrame

DEFAULT_PATH = Path("docs/protocol.schema.json")
REGENERATE = "python -m porch.protocol.schema"

_CLOSE_CODE_MEANINGS = {
    CloseCode.NORMAL: "Normal closure.",
    CloseCode.GOING_AWAY: "The peer is going away.",
    CloseCode.ABNORMAL: "No close frame (reported by client libraries, never sent).",
    CloseCode.MESSAGE_TOO_BIG: "A frame above the socket cap (4 KiB before ready).",
    CloseCode.INTERNAL_ERROR: "Keepalive ping not answered in time: reconnect.",
    CloseCode.SERVICE_RESTART: "Server shutting down: reconnect with backoff.",
    CloseCode.AUTH: "Authentication failed or timed out, or the device was removed or "
    "registered again: do not retry with the same credentials.",
    CloseCode.REPLACED: "This device connected again and this connection was replaced: "
    "do not reconnect automatically.",
}


def build_schema() -> dict[str, Any]:
    # Validation mode: what a frame on the wire must look like (server frames have no
    # defaults, so the two modes differ only for the client frames' optional fields).
    adapters: list[tuple[str, JsonSchemaMode, TypeAdapter[Any]]] = [
        ("ClientFrame", "validation", TypeAdapter(ClientFrame)),
        ("ServerFrame", "validation", TypeAdapter(ServerFrame)),
    ]
    unions, defs = TypeAdapter.json_schemas(adapters, ref_template="#/$defs/{model}")
    definitions: dict[str, Any] = dict(defs["$defs"])
    directions = {"ClientFrame": "client -> server", "ServerFrame": "server -> client"}
    for key, mode, _ in adapters:
        definitions[key] = {"description": f"Any {directions[key]} frame.", **unions[(key, mode)]}
    definitions["ErrorCode"]["description"] = (
        "Stable error codes (docs/protocol.md, section 5); a code never changes meaning."
    )
    definitions["CloseCode"] = {
        "description": "WebSocket close codes (docs/protocol.md, Connection lifecycle).",
        "type": "integer",
        "oneOf": [
            {"const": int(code), "title": code.name, "description": _CLOSE_CODE_MEANINGS[code]}
            for code in CloseCode
        ],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Porch WebSocket protocol v{PROTOCOL_VERSION}",
        "description": f"Generated from src/porch/protocol by `{REGENERATE}`; do not edit.",
        "x-porch-protocol-version": PROTOCOL_VERSION,
        "x-porch-limits": {
            "max_client_frame_bytes": lim.MAX_CLIENT_FRAME_BYTES,
            "max_server_frame_bytes": lim.MAX_SERVER_FRAME_BYTES,
            "max_envelope_bytes": MAX_ENVELOPE_BYTES,
            "envelopes_per_frame": lim.ENVELOPES_PER_FRAME,
            "max_ack_ids": lim.MAX_ACK_IDS,
            "max_destinations": lim.MAX_DESTINATIONS,
            "max_devices_per_destination": lim.MAX_DEVICES_PER_DESTINATION,
            "max_devices_per_send": lim.MAX_DEVICES_PER_SEND,
            "max_error_message": MAX_ERROR_MESSAGE,
            "max_ttl_seconds": lim.MAX_TTL_SECONDS,
        },
        "oneOf": [{"$ref": "#/$defs/ClientFrame"}, {"$ref": "#/$defs/ServerFrame"}],
        "$defs": dict(sorted(definitions.items())),
    }


def render() -> str:
    """The file's exact text: two-space indents, non-ASCII kept, a final newline."""
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
        if current != text:
            print(f"{args.path} is out of date; run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    args.path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
