"""The root of the store's exceptions, in a module of its own so that every per-domain
interface module (base.py, media_records.py) can derive from it without importing the other."""

from __future__ import annotations


class StoreError(Exception):
    """Base of store failures that services translate into API errors."""
