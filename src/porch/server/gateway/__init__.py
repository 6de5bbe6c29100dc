"""The WebSocket gateway: one Connection per socket (docs/protocol.md, "Frames")."""
