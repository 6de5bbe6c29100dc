"""The Porch server: HTTP API and WebSocket gateway on one port (docs/design.md)."""
