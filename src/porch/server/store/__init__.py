"""Persistence behind per-domain interfaces (base.py), composed into one Store; SQLite by
default, PostgreSQL for several nodes."""

from porch.server.store.base import Store, StoreError

__all__ = ["Store", "StoreError"]
