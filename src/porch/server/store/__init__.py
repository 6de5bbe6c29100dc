"""Persistence behind one interface (base.Store); SQLite by default."""

from porch.server.store.base import Store, StoreError

__all__ = ["Store", "StoreError"]
