"""The rules of the server. Services take plain values and collaborators, never requests."""
